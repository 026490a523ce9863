#include "tests/sim/phaser_layer.h"

#include <fmt/core.h>

#include <algorithm>

#include "consensus/assert.h"
#include "tests/sim/membership_checker.h"
#include "tests/sim/simulation.h"

namespace coworker::sim {

PhaserLayer::PhaserLayer(Simulation& sim, const PhaserStackOptions& options, uint32_t buckets,
                         uint32_t hosts, uint64_t seed)
    : _sim(sim),
      _options(options),
      _buckets(buckets),
      _hosts(hosts),
      _prng(consensus::derive_seed(seed, 5)),
      _checker(buckets),
      _workload(_prng, [&] {
        WorkloadOptions workload = options.workload;
        workload.buckets = buckets;
        return workload;
      }(), _checker) {}

consensus::Government PhaserLayer::government(uint32_t bucket) const {
  const MembershipChecker* membership = _sim.membership();
  COWORKER_ASSERT(membership != nullptr);
  // The checkers' own fold of the log (membership_reference.h), which the
  // membership checker compares with the table's at every slot.
  const MembershipReference::Government& current = membership->reference().government(bucket);
  return consensus::Government{current.slot, current.replicas, current.step};
}

std::vector<ParticipantId> PhaserLayer::participants() const {
  std::vector<ParticipantId> ids;
  for (ParticipantId host = 1; host <= _hosts; host++) ids.push_back(host);
  return ids;
}

ParticipantId PhaserLayer::host_at_address_of(ParticipantId id) const {
  const consensus::Member* member = _sim.membership()->state().member(id);
  if (member == nullptr) return 0;
  const ParticipantId host = host_of(member->address);
  return host >= 1 && host <= _hosts ? host : 0;
}

ParticipantId PhaserLayer::host_of_id(ParticipantId id) const {
  const ParticipantId host = host_at_address_of(id);
  return host != 0 && !_sim.node(host).gave_up(id) ? host : 0;
}

bool PhaserLayer::discarded(ParticipantId id) const {
  const ParticipantId host = host_at_address_of(id);
  return host != 0 && _sim.node(host).gave_up(id);
}

const DurableImage& PhaserLayer::image(ParticipantId id) const {
  static const DurableImage none;
  const ParticipantId host = host_of_id(id);
  return host == 0 ? none : host_image(host);
}

const DurableImage& PhaserLayer::host_image(ParticipantId host) const {
  return _sim.node(host).disk().image();
}

bool PhaserLayer::live(ParticipantId id) const {
  const ParticipantId host = host_of_id(id);
  return host != 0 && _sim.node(host).up() && _sim.membership()->state().is_member(id);
}

std::set<uint32_t> PhaserLayer::dead_buckets() const {
  // Buckets whose every member is down. The membership settles only once
  // every host that is not lost for good is up again, so when everything
  // else has settled these are the buckets whose replicas are all lost
  // (DESIGN §7.6: exempt from liveness).
  std::set<uint32_t> dead;
  for (uint32_t b = 0; b < _buckets; b++) {
    bool any = false;
    for (ParticipantId m : government(b).replicas) {
      const ParticipantId host = host_of_id(m);
      any |= host != 0 && _sim.node(host).up();
    }
    if (!any) dead.insert(b);
  }
  return dead;
}

void PhaserLayer::reply(ParticipantId host, const consensus::Reply& reply) {
  _workload.on_emitted(reply);  // acknowledged now, delivered or not
  if (!_healed && _prng.chance(_options.client_drop_per_mille, 1000)) return;
  ClientPacket packet;
  packet.deliver = _sim.now() + 1 + _prng.below(3);
  packet.sequence = _sequence++;
  packet.request = false;
  packet.reply = reply;
  _clients.push_back(std::move(packet));
}

void PhaserLayer::leader_committed(ParticipantId host, const consensus::Write& write) {
  _checker.leader_committed(*this, host, write);
  if (_checker.violated()) _sim.violate(name(), _checker.violation());
}

void PhaserLayer::repair(ParticipantId host, uint32_t bucket) {
  // A copy holding a planted write (disk.h plant_write) that meets its
  // leader's writes before its host learns it was departed: found, as it
  // should be. The host arrives anew, and the copy is an offer again.
  if (_checker.holds_planted(host, bucket)) {
    _sim.trace().note(_sim.now(), fmt::format("host {} bucket {}: the planted copy found at "
                                              "a member's check (marked for repair)",
                                              host, bucket));
    return;
  }
  // No other disk corrupts here: a replica that cannot follow its leader is a bug.
  _sim.violate(name(), fmt::format("participant {} bucket {}: marked for repair", host, bucket));
}

StreamMeter::Disk PhaserLayer::stream_disk(ParticipantId id, uint32_t bucket) const {
  StreamMeter::Disk disk;  // a host gone, or an id given up: nothing
  const ParticipantId host = host_of_id(id);
  if (host == 0) return disk;
  const DurableImage& image = host_image(host);
  if (const auto found = image.references.find(bucket); found != image.references.end()) {
    disk.held = found->second.void_copy() ? 0 : found->second.end();
  }
  if (const auto at = _checker.planted_at(host, bucket)) disk.held = std::min(disk.held, *at);
  if (const auto found = image.resets.find(bucket); found != image.resets.end()) {
    disk.resets = found->second;
  }
  return disk;
}

void PhaserLayer::sent(const PhaserPacket& packet) {
  const uint32_t bucket = consensus::bucket_of(packet.message);
  if (auto why = _streams.sent(packet.to, packet.message, stream_disk(packet.to, bucket))) {
    _sim.violate(name(), *why);
  }
}

void PhaserLayer::delivered(ParticipantId host, const PhaserPacket& packet) {
  const auto* ack = std::get_if<consensus::CatchupAck>(&packet.message);
  const PhaserHost* phasers = _sim.node(host).phasers();
  if (ack == nullptr || phasers == nullptr || phasers->self() != packet.to) return;
  _streams.told(packet.from, *ack, stream_disk(packet.from, ack->bucket), packet.life);
}

void PhaserLayer::planted(ParticipantId host, uint32_t bucket, consensus::Position at) {
  const auto& resets = host_image(host).resets;
  const auto found = resets.find(bucket);
  _checker.planted(host, bucket, at, found == resets.end() ? 0 : found->second);
}

void PhaserLayer::heal() {
  _healed = true;
  _workload.stop_new_windows();
}

void PhaserLayer::deliver_clients(Tick now) {
  std::sort(_clients.begin(), _clients.end(), [](const ClientPacket& a, const ClientPacket& b) {
    return a.deliver != b.deliver ? a.deliver < b.deliver : a.sequence < b.sequence;
  });
  std::vector<ClientPacket> due, keep;
  for (ClientPacket& p : _clients) (p.deliver <= now ? due : keep).push_back(std::move(p));
  _clients = std::move(keep);
  for (ClientPacket& p : due) {
    if (!p.request) {
      _workload.on_reply(now, p.reply);
      continue;
    }
    Participant& host = _sim.node(p.attempt.target);
    if (!host.up() || host.phasers() == nullptr) continue;  // lost; the client times out
    host.phasers()->append(now, p.attempt.bucket, p.attempt.token, std::move(p.attempt.messages));
  }
  const auto target = [&](uint32_t bucket, bool other) -> ParticipantId {
    const ParticipantId leader = host_of_id(government(bucket).leader());
    if (!other && leader != 0 && _prng.chance(800, 1000)) return leader;
    return 1 + _prng.below(_hosts);
  };
  for (AppendAttempt& attempt : _workload.tick(now, target)) {
    if (!_healed && _prng.chance(_options.client_drop_per_mille, 1000)) continue;
    ClientPacket packet;
    packet.deliver = now + 1 + _prng.below(3);
    packet.sequence = _sequence++;
    packet.attempt = std::move(attempt);
    _clients.push_back(std::move(packet));
  }
}

void PhaserLayer::serve_reads() {
  if (!_prng.chance(_options.read_per_mille, 1000)) return;
  const uint32_t bucket = static_cast<uint32_t>(_prng.below(_buckets));
  // Every participant that believes it leads the bucket serves the read, if
  // it holds a read lease (DESIGN §3): only those may.
  for (ParticipantId id = 1; id <= _hosts; id++) {
    Participant& host = _sim.node(id);
    if (!host.up() || host.phasers() == nullptr) continue;
    const consensus::Phaser* phaser = host.phasers()->phaser(bucket);
    if (phaser == nullptr || !phaser->serving()) continue;
    if (!host.member().node().holds_read_lease()) continue;
    _checker.lease_read(id, bucket, phaser->commit_end());
  }
}

// A void copy serving in its bucket's government (the reference's rule 6)
// is being repaired: its host proposes the shrink (membership_host.h step 6),
// or the bucket's commits wait on a member that acks nothing until its host
// is departed.
void PhaserLayer::check_void_members() {
  for (uint32_t bucket = 0; bucket < _buckets; bucket++) {
    for (ParticipantId member : government(bucket).replicas) {
      const ParticipantId host = host_of_id(member);
      if (host == 0 || !_sim.node(host).up()) continue;
      const auto& references = host_image(host).references;
      const auto found = references.find(bucket);
      if (found == references.end() || !found->second.void_copy()) continue;
      if (_sim.node(host).member().engine().repairing(bucket)) continue;
      _sim.violate(name(), fmt::format("participant {} bucket {}: a void copy serves in the "
                                       "government, and no repair of it is pending",
                                       member, bucket));
      return;
    }
  }
}

void PhaserLayer::after_tick(Simulation& sim) {
  COWORKER_ASSERT(&sim == &_sim);
  deliver_clients(sim.now());
  serve_reads();
  check_void_members();
  _checker.after_step(*this);
  if (_checker.violated()) sim.violate(name(), _checker.violation());
}

std::optional<std::string> PhaserLayer::unsettled(const Simulation&) const {
  const std::set<uint32_t> dead = dead_buckets();
  if (!_workload.quiet(dead)) return "windows still open:" + _workload.describe_open();
  std::string why;
  if (!_checker.settled(*this, dead, &why)) return why;
  return std::nullopt;
}

}  // namespace coworker::sim
