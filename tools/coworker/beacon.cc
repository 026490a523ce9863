#include "tools/coworker/beacon.h"

#include <variant>

#include <fmt/format.h>

#include "consensus/assert.h"
#include "consensus/membership_codec.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/log.h"
#include "tools/coworker/membership_frame.h"

namespace coworker::server {

RecoveryBeacon::RecoveryBeacon(BootHint hint, reactor::Milliseconds heartbeat)
    : _hint(std::move(hint)), _heartbeat(heartbeat) {
  COWORKER_ASSERT(_hint.id != consensus::no_participant);
  COWORKER_ASSERT(!_hint.members.empty());
}

RecoveryBeacon::~RecoveryBeacon() = default;

Result<void, std::string> RecoveryBeacon::listen(const reactor::Endpoint& peer_listen) {
  COWORKER_ASSERT(_peers == nullptr);
  PeerConfig config;
  config.connect_timeout = connect_timeout();
  _peers = std::make_unique<PeerTransport>(
      [this](const PeerInfo& from, FrameType type, std::string_view payload) {
        on_frame(from, type, payload);
      },
      config);
  Result<reactor::Endpoint> bound = _peers->listen(peer_listen);
  if (!bound) {
    return fmt::format("cannot listen on --peer-listen {}: {}", peer_listen.to_string(),
                       bound.error().message());
  }
  _peers->set_cluster(_hint.cluster);
  _peers->set_self_id(_hint.id);
  return {};
}

void RecoveryBeacon::beat() {
  COWORKER_ASSERT(_peers != nullptr);  // not handed over
  if (_told_gone) return;  // nothing left to keep (each answer costs a member a snapshot)
  _beats++;
  // Step 2: applied 0 and the hint's boot (the node's next boot is higher).
  const consensus::MemberHeartbeat heartbeat{_beats, 0, true, _hint.boots};
  const std::string payload = membership_envelope(_hint.id, consensus::no_participant, heartbeat);
  for (const std::string& member : _hint.members) {
    _peers->send(std::string(peer_part(member)), FrameType::membership, payload);
  }
}

std::unique_ptr<PeerTransport> RecoveryBeacon::hand_over() {
  COWORKER_ASSERT(_peers != nullptr);
  // `this` is not to be called any more: frames are dropped until the new
  // owner's handler, with its own connect timeout, replaces this one.
  _peers->hand_over([](const PeerInfo&, FrameType, std::string_view) {}, connect_timeout());
  _peers->set_cluster(0);
  _peers->set_self_id(0);
  return std::move(_peers);
}

reactor::Milliseconds RecoveryBeacon::connect_timeout() const {
  return std::min(PeerConfig{}.connect_timeout, _heartbeat);
}

reactor::Task<void> RecoveryBeacon::close() {
  if (_peers) co_await _peers->close();
}

// Step 3.
void RecoveryBeacon::on_frame(const PeerInfo& from, FrameType type, std::string_view payload) {
  if (type != FrameType::membership || _told_gone) return;
  std::optional<MembershipEnvelope> envelope = open_membership_envelope(payload);
  if (!envelope) return;
  auto message = consensus::decode_membership_message(envelope->body);
  if (!message) return;
  const auto* ack = std::get_if<consensus::MemberAck>(&*message.value);
  if (ack == nullptr || !ack->gone) return;
  _told_gone = true;
  log_info(0, "recovering: {} says id {} departed meanwhile; this participant arrives anew once "
           "its log is replayed", from.address, _hint.id);
}

}  // namespace coworker::server
