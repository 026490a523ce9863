// ClusterNode's hops (DESIGN §4): where a bucket's requests go, the calls
// waiting for a peer's answer, and the requests peers hop to us. Core 0.
#include <fmt/format.h>

#include "consensus/assert.h"
#include "reactor/loop.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/dispatch.h"
#include "tools/coworker/log.h"
#include "tools/coworker/participant.h"

namespace coworker::server {

using consensus::ParticipantId;
using reactor::Task;

uint64_t ClusterNode::slot() const { return _host ? _host->node().state().applied() : 0; }

// Every applied slot: parked requests look at the table again, and members
// that are gone count as departures (/metrics).
void ClusterNode::applied() {
  _table_changed.notify_all();
  // A call to a participant that departed or was marked ends now (call()).
  for (auto& [id, call] : _calls) call->done.notify_all();
  if (!_host) return;
  const consensus::MembershipNode& node = _host->node();
  const ParticipantId leader =
      !node.has_paxos() ? consensus::no_participant
                        : (node.leading() ? self() : node.paxos().leader());
  if (leader != _logged_leader && leader != consensus::no_participant) {
    log_info(0, "membership leader: {}{}", leader, leader == self() ? " (this participant)" : "");
    _logged_leader = leader;
  }
  const auto& members = _host->node().state().members();
  for (auto it = _members.begin(); it != _members.end();) {
    if (members.count(*it) == 0) {
      _departures++;
      it = _members.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, member] : members) _members.insert(id);
}

Task<Destination> ClusterNode::where(uint32_t bucket, uint64_t slot, Clock::time_point deadline) {
  COWORKER_ASSERT(bucket < _participant.buckets());
  // A hop's sender saw a newer table: catch up first, or its view of the
  // leader and ours would send the request back and forth.
  while (_host && this->slot() < slot && Clock::now() < deadline) {
    auto parked = park(deadline);
    co_await parked;
  }
  Destination destination;
  if (!_host || health() != "serving") co_return destination;  // nowhere
  const bucket::CurrentGovernment& current = _host->table().current(bucket);
  destination.leader = current.leader();
  if (destination.leader == consensus::no_participant) co_return destination;
  if (destination.leader == self()) {
    destination.kind = Destination::Kind::here;
    co_return destination;
  }
  const consensus::Member* member = _host->node().state().member(destination.leader);
  if (member == nullptr) co_return destination;  // departed: the table moves on soon
  if (member->status == consensus::MemberStatus::unreachable) {
    // Marked, it left every government with another survivor (table.h), so
    // it leads only where it is alone. A marked participant that applied
    // its own mark has been heard since and returns within a heartbeat or
    // two, so it keeps serving its own requests meanwhile.
    destination.kind = Destination::Kind::unreachable;
    co_return destination;
  }
  destination.kind = Destination::Kind::peer;
  destination.address = std::string(peer_part(member->address));
  co_return destination;
}

Task<void> ClusterNode::park(Clock::time_point deadline) {
  if (_parked >= parked_max || Clock::now() >= deadline) co_return;
  _parked++;
  Status woken = co_await _table_changed.wait();
  _parked--;
  (void)woken;  // stopping: the caller's deadline or health ends its loop
}

bool ClusterNode::may_answer(ParticipantId id) const {
  if (!_host) return false;
  const consensus::Member* member = _host->node().state().member(id);
  return member != nullptr && member->status != consensus::MemberStatus::unreachable;
}

Task<std::optional<Hop>> ClusterNode::call(const Destination& to, Hop request,
                                           Clock::time_point deadline) {
  COWORKER_ASSERT(to.kind == Destination::Kind::peer);
  if (_calls.size() >= hop_calls_max || !_peers) co_return std::nullopt;
  HopCall call;
  call.deadline = deadline;
  request.call = _next_call++;
  const uint64_t id = request.call;
  _calls.emplace(id, &call);
  _participant.metrics().hops_sent_total++;
  _peers->send(to.address, FrameType::hop, encode_hop(request));
  while (!call.done.is_set() && Clock::now() < deadline && may_answer(to.leader)) {
    Status woken = co_await call.done.wait();
    if (!woken) break;  // the core stops
  }
  _calls.erase(id);  // answered (already gone), expired, gone, or stopping
  if (!call.answer && Clock::now() < deadline && !may_answer(to.leader)) {
    _participant.metrics().hops_abandoned_total++;
  }
  co_return std::move(call.answer);
}

// Calls are few (hop_calls_max) and their deadlines differ: each tick
// wakes the ones whose deadline passed, and the parked requests, which
// re-check their own deadlines.
void ClusterNode::expire_calls() {
  const Clock::time_point now = Clock::now();
  for (auto& [id, call] : _calls) {
    if (call->deadline <= now) call->done.notify_all();
  }
  if (_parked > 0) _table_changed.notify_all();
}

void ClusterNode::on_hop_frame(const PeerInfo& from, std::string_view payload) {
  consensus::Decoded<Hop> decoded = decode_hop(payload);
  if (!decoded) {
    log_warn(0, "a hop from {} does not decode: {}", from.address, decoded.error);
    return;
  }
  Hop& hop = *decoded.value;
  if (std::holds_alternative<AppendAnswer>(hop.content) ||
      std::holds_alternative<ReadAnswer>(hop.content)) {
    const auto it = _calls.find(hop.call);
    if (it == _calls.end()) return;  // its caller gave up: the client was answered 503
    it->second->answer = std::move(hop);
    it->second->done.set();
    _calls.erase(it);
    return;
  }
  reactor::Loop::current().spawn(serve_hop(from.address, std::move(hop)));
}

// A peer's request: decide it as if a client had sent it here, with the
// hops it took, and answer on the link it came from.
Task<void> ClusterNode::serve_hop(std::string address, Hop request) {
  Hop answer;
  answer.call = request.call;
  if (_hops_served >= hops_served_max) {
    if (auto* append = std::get_if<AppendHop>(&request.content)) {
      answer.content = AppendAnswer{std::vector<consensus::MessageResult>(
          append->messages.size(), {consensus::Outcome::overloaded, 0})};
    } else {
      answer.content = ReadAnswer{429, R"({"error": "too many hopped requests", "code": "overloaded"})" "\n"};
    }
    _peers->send(address, FrameType::hop, encode_hop(answer));
    co_return;
  }
  _hops_served++;
  _participant.metrics().hops_received_total++;
  if (auto* append = std::get_if<AppendHop>(&request.content)) {
    const Clock::time_point deadline =
        Clock::now() + std::chrono::milliseconds(append->route.deadline_ms);
    auto dispatch = dispatch_append(_participant, append->bucket, std::move(append->messages),
                                    Budget{append->route.slot, append->route.hops, deadline});
    Placed placed = co_await dispatch;
    answer.content = AppendAnswer{std::move(placed.results)};
  } else {
    ReadHop& read = std::get<ReadHop>(request.content);
    const Clock::time_point deadline =
        Clock::now() + std::chrono::milliseconds(read.route.deadline_ms);
    const Budget budget{read.route.slot, read.route.hops, deadline};
    auto dispatch = dispatch_read(_participant, std::move(read), budget);
    ReadAnswer read_answer = co_await dispatch;
    answer.content = std::move(read_answer);
  }
  _hops_served--;
  if (_peers) _peers->send(address, FrameType::hop, encode_hop(answer));
}

}  // namespace coworker::server
