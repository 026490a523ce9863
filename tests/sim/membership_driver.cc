#include "tests/sim/membership_driver.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <utility>

#include "consensus/membership_entry.h"
#include "consensus/paxos.h"
#include "consensus/assert.h"
#include "tests/sim/faults.h"
#include "tests/sim/membership_checker.h"
#include "tests/sim/phaser_layer.h"
#include "tests/sim/trace.h"

namespace coworker::sim {

MembershipDriver::MembershipDriver(Simulation& sim, const Swarm& swarm, uint64_t seed)
    : _sim(sim),
      _swarm(swarm),
      _prng(consensus::derive_seed(seed, 3)),
      _aims(consensus::derive_seed(seed, 11)),
      _arrive_at(sim.size() + 1, 0),
      _restart_at(sim.size() + 1, 0),
      _unstick_at(sim.size() + 1, 0),
      _unhang_at(sim.size() + 1, 0),
      _recrash_at(sim.size() + 1, 0),
      _lost(sim.size() + 1, false) {
  COWORKER_ASSERT(swarm.sim.membership.has_value());
  const uint32_t members = std::max<uint32_t>(1, swarm.sim.membership->static_members);
  for (ParticipantId host = members + 1; host <= sim.size(); host++) {
    _arrive_at[host] = _prng.between(1, std::max<Tick>(1, swarm.membership.arrive_max));
  }
  // The first restart once the cluster formed and clients are writing (a
  // draw only in the rolling families: the others' streams stay as they were).
  if (swarm.membership.rolling_down_max != 0) _roll_next_at = _prng.between(100, 400);
  if (swarm.membership.ack_crash_per_mille != 0 || swarm.membership.ack_cut_per_mille != 0 ||
      swarm.membership.void_sole_per_mille != 0) {
    sim.on_proposed([this](ParticipantId host, const consensus::Entry& entry, bool released) {
      if (_healed) return;
      const std::optional<consensus::MembershipEntry> decoded = consensus::decode_entry(entry.value);
      if (!decoded || !std::holds_alternative<consensus::Acks>(*decoded)) return;
      if (_swarm.membership.ack_cut_per_mille != 0 || _swarm.membership.void_sole_per_mille != 0) {
        ack_proposed(host, std::get<consensus::Acks>(*decoded));
      }
      if (!released || _swarm.membership.ack_crash_per_mille == 0) return;
      const bool growth = leads_growth(host, std::get<consensus::Acks>(*decoded));
      if (!_prng.chance_per_mille(growth ? _swarm.membership.growth_crash_per_mille
                                         : _swarm.membership.ack_crash_per_mille)) {
        return;
      }
      _ack_proposers.push_back(host);
    });
  }
}

// Whether `acks` holds a growth of a bucket `host` leads by the log: the
// ack's government names a participant the current one does not.
bool MembershipDriver::leads_growth(ParticipantId host, const consensus::Acks& acks) const {
  const Participant& participant = _sim.node(host);
  if (!participant.has_paxos()) return false;
  const ParticipantId id = participant.member().node().id();
  const MembershipReference& reference = _sim.membership()->reference();
  for (const consensus::MigrationAck& ack : acks.acks) {
    if (ack.bucket >= reference.buckets()) continue;
    const MembershipReference::Government& government = reference.government(ack.bucket);
    if (ack.step != government.step || government.replicas.empty() ||
        government.replicas[0] != id) {
      continue;
    }
    for (ParticipantId member : ack.government) {
      if (std::find(government.replicas.begin(), government.replicas.end(), member) ==
          government.replicas.end()) {
        return true;
      }
    }
  }
  return false;
}

// The proposers of migration acks picked as they proposed (the ack is on its
// way to the leader, or the leader itself proposed it): down now, so the ack
// may be decided while they are.
void MembershipDriver::crash_after_acks() {
  for (ParticipantId host : std::exchange(_ack_proposers, {})) {
    if (!_sim.node(host).up()) continue;
    if (hosts_up() <= 1) return;
    // Back at once: the ack it proposed is likely still undecided then.
    crash(host, _prng.between(1, 5));
  }
}

void MembershipDriver::before_step() {
  boot_arrivals();
  restart_planted_early();
  restart_due();
  maybe_whole_crash();
  maybe_split();
  maybe_roll();
  crash_after_acks();
  maybe_cut_proposer();
  maybe_crash_sole();
  maybe_return_sole();
  maybe_lose();
  maybe_crash();
  maybe_leave();
  maybe_rejoin();
  maybe_partition();
  maybe_one_way();
  maybe_stick();
  maybe_hang();
}

void MembershipDriver::boot_arrivals() {
  const Tick now = _sim.now();
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (_arrive_at[host] == 0 || _arrive_at[host] > now) continue;
    _arrive_at[host] = 0;
    if (!_sim.node(host).up() && !_lost[host]) _sim.restart(host);
  }
}

// A host down with its id departed comes back at once while a live
// leader still lists that id (plant_window): at once where that leader has
// a write in flight (it resends it to the id every few ticks), else 1 in 4
// ticks.
void MembershipDriver::restart_planted_early() {
  if (_swarm.membership.plant_per_mille == 0 || _planted || _sim.phasers() == nullptr) return;
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (_restart_at[host] == 0 || _sim.node(host).up() || !plantable(host)) continue;
    const PlantWindow window = plant_window(host);
    if (window.aims.empty() || (!window.writing && !_aims.chance(1, 4))) continue;
    _restart_at[host] = _sim.now();
    // The leaders deaf to all but the host a while (a link fault): each
    // learns the departure late, so its write can meet the copy and commit.
    const Tick until = _sim.now() + _aims.between(10, 40);
    for (const ParticipantId leader : window.leaders) {
      for (ParticipantId from = 1; from <= _sim.size(); from++) {
        if (from != leader && from != host) _sim.network().block(from, leader, until);
      }
      _sim.trace().note(_sim.now(), fmt::format("host {} hears only host {} until {}", leader,
                                                host, until));
    }
  }
}

void MembershipDriver::restart_due() {
  const Tick now = _sim.now();
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (_restart_at[host] != 0 && _restart_at[host] <= now) {
      _restart_at[host] = 0;
      if (!_sim.node(host).up()) {
        maybe_plant(host);
        if (!maybe_damage_void_sole(host)) maybe_damage(host);
        const uint64_t repairs = _sim.node(host).disk().repairs_at_boot();
        _sim.restart(host);
        if (_sim.node(host).disk().repairs_at_boot() != repairs) {
          const Disk& disk = _sim.node(host).disk();
          _sim.trace().note(now, fmt::format("host {} repaired at boot: {} damaged; {}", host,
                                             disk.last_repair(),
                                             disk.last_repair_kept_id()
                                                 ? "it keeps its id, its void copies shrink out"
                                                 : "it arrives anew"));
        }
        // Its next recovery must fold this life from its boot record: crash
        // it before it names a round (a round every 16 ticks at most).
        if (_sim.node(host).disk().image_from_boot()) {
          _recrash_at[host] = now + _aims.between(1, 16);
        }
      }
    }
    if (_recrash_at[host] != 0 && _recrash_at[host] <= now) {
      _recrash_at[host] = 0;
      if (_sim.node(host).up() && !(_void_sole && _void_sole->sole_waits)) {
        _sim.trace().note(now, fmt::format("host {}: its life that began from nothing crashes "
                                           "(recovery.h step 4b)", host));
        crash(host, _aims.between(_swarm.down_min, _swarm.down_max));
      }
    }
    if (_unhang_at[host] != 0 && _unhang_at[host] <= now) {
      _unhang_at[host] = 0;
      if (_sim.node(host).up()) end_hang(host);
    }
    if (_unstick_at[host] != 0 && _unstick_at[host] <= now) {
      _unstick_at[host] = 0;
      if (_sim.node(host).up()) {
        _sim.act(host, [](consensus::MembershipNode& node) { return node.set_stuck(false); });
      }
    }
  }
}

// A rolling restart, as an operator upgrades a cluster: stop one host,
// start it again on its disk, wait until it serves, go on with the next.
// A host down past the departure timeout arrives anew; "serving" is then
// its new id's membership. A host that does not serve within a long wait
// is passed over (liveness after healing still checks the cluster).
void MembershipDriver::maybe_roll() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (swarm.rolling_down_max == 0) return;
  const Tick now = _sim.now();
  if (_roll_waiting) {
    const Participant& p = _sim.node(_rolled);
    const bool serving = p.up() && p.has_paxos() && !p.member().node().recovering() &&
                         p.member().node().state().is_member(p.member().node().id());
    if (!serving && now < _roll_since + 3000) return;
    _sim.trace().note(now, fmt::format("rolling: host {} {} after {} ticks", _rolled,
                                       serving ? "serves again" : "passed over",
                                       now - _roll_since));
    _roll_waiting = false;
    _roll_next_at = now + _prng.between(0, swarm.rolling_pause_max);
    return;
  }
  if (now < _roll_next_at) return;
  const ParticipantId host = _rolled % _sim.size() + 1;
  _rolled = host;
  if (!_sim.node(host).up()) return;  // down for another reason: the next one
  _rolls++;
  _roll_waiting = true;
  _roll_since = now;
  crash(host, _prng.between(1, swarm.rolling_down_max));
  _sim.trace().note(now, fmt::format("rolling: restart {} of host {}", _rolls, host));
}

ParticipantId MembershipDriver::random_member_host() {
  std::vector<ParticipantId> hosts;
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    const Participant& participant = _sim.node(host);
    if (!participant.has_paxos()) continue;
    if (!participant.member().node().state().is_member(participant.member().node().id())) continue;
    hosts.push_back(host);
  }
  if (hosts.empty()) return 0;
  return hosts[_prng.below(hosts.size())];
}

// A live host whose member the decided log marks unreachable, if any.
std::optional<ParticipantId> MembershipDriver::marked_member_host() {
  std::vector<ParticipantId> hosts;
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    const Participant& participant = _sim.node(host);
    if (!participant.has_paxos()) continue;
    const ParticipantId id = participant.member().node().id();
    const auto& members = _sim.membership()->state().members();
    const auto member = members.find(id);
    if (member == members.end() || member->second.status != consensus::MemberStatus::unreachable) {
      continue;
    }
    hosts.push_back(host);
  }
  if (hosts.empty()) return std::nullopt;
  return hosts[_prng.below(hosts.size())];
}

void MembershipDriver::crash(ParticipantId host, Tick down) {
  _sim.crash(host);
  _unstick_at[host] = 0;
  _unhang_at[host] = 0;  // a crash ends the hang (the disk comes back empty-handed)
  _restart_at[host] = down == 0 ? 0 : _sim.now() + down;
}

void MembershipDriver::maybe_crash() {
  if (_swarm.crash_per_mille == 0 || !_prng.chance_per_mille(_swarm.crash_per_mille)) return;
  // Not while a void heir's holder works its way back to serving: it
  // must get to where it could adopt before the fault period ends.
  if (_void_sole && _void_sole->sole_waits) return;
  std::vector<ParticipantId> up;
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (_sim.node(host).up()) up.push_back(host);
  }
  if (up.size() <= 1) return;
  // Two draws, sequenced: argument evaluation order differs between compilers.
  const ParticipantId host = up[_prng.below(up.size())];
  crash(host, _prng.between(_swarm.down_min, _swarm.down_max));
}

// Damage at rest on a host that is down (disk.h damage_at_rest): its boot
// repairs (bucket/repair.h), per bucket or giving up its id. Once per seed, and only
// where losing that id's copies is like losing one disk the others cover:
// no voter of a configuration that governs (its acceptor state goes with
// the id: maybe_lose's concern), and another member in every government
// that names it, up when the damage is done.
void MembershipDriver::maybe_damage(ParticipantId host) {
  if (_swarm.membership.damage_per_mille == 0 || _damaged || _healed) return;
  if (!_prng.chance_per_mille(_swarm.membership.damage_per_mille)) return;
  const consensus::Identity& identity = _sim.node(host).disk().image().membership.identity;
  const ParticipantId id = identity.id;
  if (id == consensus::no_participant || !may_discard(id)) return;
  // Nor an heir's copy: an adoption of it may be in flight (this host's
  // own, proposed before its crash), and once decided it is the bucket's
  // only copy with every committed position, so damage there loses the
  // bucket (phaser-repair seed 911496683: the adoption decided seven ticks
  // after the damage). The void heir's fault (maybe_damage_void_sole)
  // damages one on purpose, where the sole member still holds the log.
  if (_sim.membership()->reference().heir_dir(identity.data_dir)) return;
  const std::set<uint32_t> prefer =
      _swarm.membership.damage_bucket_payload ? aimed_buckets(host, id) : std::set<uint32_t>{};
  std::optional<std::string> fault = _sim.node(host).disk().damage_at_rest(
      _swarm.membership.damage_bucket_payload ? LogFiles::DamageTarget::bucket_payload
                                              : LogFiles::DamageTarget::any,
      Aimed{.buckets = prefer});
  if (!fault) return;
  _damaged = true;
  _sim.trace().note(_sim.now(), fmt::format("host {} (id {}): damage at rest, {}{}", host, id,
                                            *fault,
                                            prefer.empty() ? ""
                                                           : fmt::format(" (aimed at buckets {})",
                                                                         fmt::join(prefer, " "))));
}

// Acks a bucket waits on with no other member to serve it meanwhile:
//  - a sole member's confirming bump: a removal left the government one
//    member and named the removed one its heir (bucket/table.h), and the
//    sole member may commit nothing until an ack confirms it;
//  - a void copy's leader shrinking itself out (membership_host.h step 6):
//    it repaired the bucket at its boot and must never lead it.
// Cut the proposer off from every other participant as it proposes (the
// proposal, in flight, is dropped at delivery), past the departure timeout:
// the heir's holder adopts the bucket from the heir's copy, which must then
// hold every committed position, while the sole member, unconfirmed, may
// still take clients' writes; the void leader's hold ends unconfirmed.
// Once per seed.
void MembershipDriver::ack_proposed(ParticipantId host, const consensus::Acks& acks) {
  // A crash may come between the proposal and its report: the id is then
  // the disk's.
  const Participant& participant = _sim.node(host);
  const ParticipantId id = participant.has_paxos()
                               ? participant.member().node().id()
                               : participant.disk().image().membership.identity.id;
  const MembershipReference& reference = _sim.membership()->reference();
  const auto& copies = participant.disk().image().phasers;
  for (const consensus::MigrationAck& ack : acks.acks) {
    if (ack.bucket >= _swarm.sim.membership->params.buckets) continue;
    // Any ack of ours alone, whatever the reference folded so far (the
    // proposer may be the membership leader, ahead of it).
    if (ack.government == std::vector<ParticipantId>{id}) _bumped.insert({ack.bucket, ack.step});
    const MembershipReference::Government& government = reference.government(ack.bucket);
    if (ack.step != government.step || government.replicas.empty() ||
        government.replicas[0] != id) {
      continue;
    }
    const bool sole_bump = government.heir != consensus::no_participant &&
                           government.replicas.size() == 1 && ack.government == government.replicas;
    const auto copy = copies.find(ack.bucket);
    const bool void_shrink = copy != copies.end() && copy->second.repairing &&
                             std::find(ack.government.begin(), ack.government.end(), id) ==
                                 ack.government.end();
    if (!sole_bump && !void_shrink) continue;
    if (_cut_drawn || _swarm.membership.ack_cut_per_mille == 0 ||
        !_aims.chance_per_mille(_swarm.membership.ack_cut_per_mille)) {
      continue;
    }
    _cut_drawn = true;
    _cut_host = host;
    _cut_at = _sim.now() + 1;  // before the proposal's delivery: delays are 1 or more
    _sim.trace().note(_sim.now(), fmt::format("bucket {}: {} {} (host {}) proposed its ack; it is "
                                              "cut off at {}",
                                              ack.bucket, sole_bump ? "sole member" : "void leader",
                                              id, host, _cut_at));
    return;
  }
}

void MembershipDriver::maybe_cut_proposer() {
  if (_cut_at == 0 || _sim.now() < _cut_at) return;
  _cut_at = 0;
  if (_healed || !_sim.node(_cut_host).up()) return;
  std::vector<bool> side(_sim.size() + 1, false);
  side[_cut_host] = true;
  // Past the departure timeout, and a membership election's if it led.
  const Tick departure = _swarm.sim.membership->timing.departure_ticks;
  cut(_sim, side, false,
      _sim.now() + _aims.between(2 * departure, 4 * departure) + _swarm.sim.timing.leader_timeout_ticks);
}

// The void sole member, or the void heir: a removal left a government one
// member and named its heir (bucket/table.h). Crash the sole member as the
// log names the heir, before it proposes its confirming bump (none may be:
// one proposed by an intact copy may still be decided after the damage,
// and a decided bump ends the heir — a gap PROTOCOL "Heirs" describes).
// Then either restart it shortly with its copy of the bucket void (damage
// to that bucket's newest record): it must neither lead nor confirm, and
// the heir's holder adopts; or keep it down past the departure timeout
// and restart the heir's holder with its copy void: that copy must not
// adopt (the bucket would never serve again, mutation 44), and the sole
// member confirms when back. Half the time the holder's damage names no
// bucket (a header bit of each of the bucket's records): it gives up its
// id and forgets the bucket, and must not adopt it empty either
// (Identity::void_through, mutation 48). Only while the other copy is intact, so it
// holds every committed position: the damage is like losing a disk
// another one covers. Once per seed.
void MembershipDriver::maybe_crash_sole() {
  if (_swarm.membership.void_sole_per_mille == 0 || _healed || _sim.phasers() == nullptr) return;
  const MembershipReference& reference = _sim.membership()->reference();
  const uint32_t buckets = _swarm.sim.membership->params.buckets;
  if (_heirs.empty()) _heirs.assign(buckets, 0);
  for (uint32_t b = 0; b < buckets; b++) {
    const MembershipReference::Government& government = reference.government(b);
    const uint64_t seen = std::exchange(_heirs[b], government.heir_dir);
    if (_void_sole || _damaged || government.heir == consensus::no_participant ||
        government.heir_dir == seen || government.replicas.size() != 1 ||
        _bumped.count({b, government.step}) != 0) {
      continue;
    }
    const ParticipantId host = _sim.phasers()->host_of_id(government.replicas[0]);
    if (host < 1 || host > _sim.size() || !_sim.node(host).up()) continue;
    if (!_aims.chance_per_mille(_swarm.membership.void_sole_per_mille)) continue;
    const uint32_t up = hosts_up();
    if (up <= 1) continue;
    const ParticipantId holder = host_of_dir(government.heir_dir);
    if (holder != 0 && holder != host && up > 2 && _aims.chance(2, 3)) {
      // The void heir instead: the holder (crashed now if up) back soon
      // with its copy void, the sole member down past the departure
      // timeout (a bucket's last member is marked, not departed), back to
      // confirm: the void copy must not adopt meanwhile (mutation 44).
      // The holder serves again (returned from its mark, or arrived anew)
      // before it may adopt: the sole member stays down until then, and
      // past the adoption it must not make (maybe_return_sole).
      _void_sole = VoidSole{holder, b, government.step, government.heir_dir, host,
                            _aims.chance(2, 3), true};
      crash(host, 0);
      if (_sim.node(holder).up()) {
        crash(holder, _aims.between(1, 10));
      } else {
        _restart_at[holder] = _sim.now() + _aims.between(1, 10);
      }
      continue;
    }
    _void_sole = VoidSole{host, b, government.step, government.heir_dir, 0};
    crash(host, _aims.between(5, 30));
  }
}

// The void heir's holder has been an active member by the log for twice
// the departure timeout, time to adopt if it would (an id on its way out
// does not count: its departure may be in flight): the sole member comes
// back soon after (the heal brings it back else).
void MembershipDriver::maybe_return_sole() {
  if (!_void_sole || !_void_sole->sole_waits || _healed) return;
  VoidSole& sole = *_void_sole;
  const Participant& holder = _sim.node(sole.host);
  bool active = holder.up() && holder.has_paxos();
  if (active) {
    const auto& members = _sim.membership()->reference().members();
    const auto member = members.find(holder.member().node().id());
    active = member != members.end() && member->second.status == consensus::MemberStatus::active;
  }
  if (!active) {
    sole.holder_active_since = 0;
    return;
  }
  if (sole.holder_active_since == 0) sole.holder_active_since = _sim.now();
  const Tick departure = _swarm.sim.membership->timing.departure_ticks;
  if (_sim.now() - sole.holder_active_since < 2 * departure) return;
  sole.sole_waits = false;
  _restart_at[sole.sole_host] = _sim.now() + _aims.between(1, departure);
}

bool MembershipDriver::maybe_damage_void_sole(ParticipantId host) {
  if (!_void_sole || _void_sole->host != host) return false;
  const VoidSole sole = *_void_sole;  // once per seed: _void_sole stays set
  if (_damaged || _healed || _bumped.count({sole.bucket, sole.step}) != 0) return true;
  const MembershipReference::Government& government =
      _sim.membership()->reference().government(sole.bucket);
  if (government.step != sole.step || government.heir_dir != sole.heir_dir) return true;
  const auto intact = [&](const Participant& p) {
    const auto& copies = p.disk().image().phasers;
    const auto copy = copies.find(sole.bucket);
    return copy != copies.end() && !copy->second.repairing;
  };
  bool other_intact = false;  // the copy that must cover the damaged one
  if (sole.sole_host != 0) {
    other_intact = intact(_sim.node(sole.sole_host));
  } else if (const ParticipantId holder = host_of_dir(sole.heir_dir);
             holder != 0 && _sim.node(holder).up()) {
    other_intact = intact(_sim.node(holder));
  }
  if (!other_intact) return true;
  // An id given up takes its acceptor state with it: only a departed or
  // marked one, which no configuration to come names, and whose loss
  // every configuration that governs survives (else the copy is made void
  // under the same id). Its copies are like one disk lost: the sole
  // member, down, holds what it shares with them.
  const ParticipantId id = _sim.node(host).disk().image().membership.identity.id;
  const auto& members = _sim.membership()->reference().members();
  const auto member = members.find(id);
  const bool removed =
      member == members.end() || member->second.status == consensus::MemberStatus::unreachable;
  const bool given_up =
      sole.given_up && (id == consensus::no_participant || (removed && acceptor_spared(id)));
  const std::optional<std::string> fault = _sim.node(host).disk().damage_at_rest(
      given_up ? LogFiles::DamageTarget::bucket_headers : LogFiles::DamageTarget::bucket_payload,
      Aimed{.buckets = {sole.bucket}, .only = true});
  if (!fault) return true;
  _damaged = true;
  _sim.trace().note(_sim.now(), fmt::format("host {}: damage at rest, {} (the void {} of bucket {})",
                                            host, *fault,
                                            given_up         ? "heir's holder, its id given up"
                                            : sole.sole_host ? "heir's holder"
                                                             : "sole member",
                                            sole.bucket));
  return true;
}

uint32_t MembershipDriver::hosts_up() const {
  uint32_t up = 0;
  for (ParticipantId host = 1; host <= _sim.size(); host++) up += _sim.node(host).up();
  return up;
}

// The host whose disk holds data directory `dir` (a directory is one
// host's), not lost; 0 if none.
ParticipantId MembershipDriver::host_of_dir(uint64_t dir) const {
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (!_lost[host] && _sim.node(host).disk().image().membership.identity.data_dir == dir) {
      return host;
    }
  }
  return 0;
}

// damage_aim: the buckets the damage prefers on `host` (id `id`), by the
// log's governments or by what its copies hold.
std::set<uint32_t> MembershipDriver::aimed_buckets(ParticipantId host, ParticipantId id) const {
  std::set<uint32_t> buckets;
  switch (_swarm.membership.damage_aim) {
    case MembershipSwarm::DamageAim::any_bucket:
      break;
    case MembershipSwarm::DamageAim::led: {
      const MembershipReference& reference = _sim.membership()->reference();
      for (uint32_t b = 0; b < _swarm.sim.membership->params.buckets; b++) {
        const auto& replicas = reference.government(b).replicas;
        if (!replicas.empty() && replicas[0] == id) buckets.insert(b);
      }
      break;
    }
    case MembershipSwarm::DamageAim::empty:
      for (const auto& [bucket, copy] : _sim.node(host).disk().image().phasers) {
        if (copy.commit_end == 0 && !copy.repairing) buckets.insert(bucket);
      }
      break;
  }
  return buckets;
}

// A host whose id was departed while it was down arrives anew offering its
// old copies (DESIGN §5): once per seed, one of them holds a committed write
// no client sent (disk.h plant_write); in a plant window, every copy the
// window names, each up to its leader's commit end. Verified prefixes must drop that copy
// before its host serves the bucket (PhaserChecker::planted). Not where the
// reference names the host's data directory a bucket's heir: an adoption
// takes the heir's copy as the log (bucket/table.h), with nothing left to
// compare it with — an honest copy's committed positions are the log's,
// and the plant is a divergence beyond that.
void MembershipDriver::maybe_plant(ParticipantId host) {
  if (_swarm.membership.plant_per_mille == 0 || _planted || _sim.phasers() == nullptr) return;
  if (!plantable(host)) return;
  const ParticipantId id = _sim.node(host).disk().image().membership.identity.id;
  const PlantWindow window = plant_window(host);
  std::vector<std::optional<Disk::PlantAim>> aims;
  if (!window.aims.empty() && (window.writing || _aims.chance(3, 4))) {
    aims.assign(window.aims.begin(), window.aims.end());
  } else {
    if (!_prng.chance_per_mille(_swarm.membership.plant_per_mille)) return;
    aims = {std::nullopt};
  }
  for (const std::optional<Disk::PlantAim>& aim : aims) {
    const std::optional<Disk::Planted> planted = _sim.node(host).disk().plant_write(aim);
    if (!planted) continue;
    _planted = true;
    _sim.phasers()->planted(host, planted->bucket, planted->at);
    _sim.trace().note(_sim.now(), fmt::format("host {} (departed id {}): a write no client sent "
                                              "planted in bucket {} at [{},{}){}",
                                              host, id, planted->bucket, planted->at,
                                              planted->end,
                                              aim ? ", up to its leader's commit end" : ""));
  }
}

// The window chained checksums guard (PROTOCOL "Chained checksums"): the
// buckets of `host`'s copies whose live leader still lists the host's
// departed id in its government, with a commit end above the copy's (the
// copy acked a write whose commit its crash lost). A plant up to that
// commit end meets the leader's write in flight, or its next, at the
// restarted copy's commit end, where nothing but the write's `prior` tells
// the copy from the log's (phaser.h step 3: the commit mark it carries is
// at or below that end, and a write ending there would be compared).
MembershipDriver::PlantWindow MembershipDriver::plant_window(ParticipantId host) {
  const ParticipantId id = _sim.node(host).disk().image().membership.identity.id;
  PlantWindow window;
  for (const auto& [bucket, copy] : _sim.node(host).disk().image().phasers) {
    if (copy.repairing) continue;
    for (ParticipantId other = 1; other <= _sim.size(); other++) {
      if (other == host || !_sim.node(other).up() || _sim.node(other).phasers() == nullptr) continue;
      const consensus::Phaser* leader = _sim.node(other).phasers()->phaser(bucket);
      if (leader == nullptr || !leader->serving() || !leader->government().contains(id)) continue;
      const consensus::Position end = leader->commit_end();
      if (end > copy.commit_end && end - copy.commit_end <= max_planted_entries) {
        window.aims.push_back(Disk::PlantAim{bucket, end});
        if (leader->register_write() != nullptr) window.writing = true;
        window.leaders.insert(other);
        break;  // one per bucket: its serving leader
      }
    }
  }
  return window;
}

// Whether `host`'s copies may hold a plant: its id departed, its data
// directory no bucket's heir (maybe_plant).
bool MembershipDriver::plantable(ParticipantId host) const {
  const consensus::Identity& identity = _sim.node(host).disk().image().membership.identity;
  if (identity.id == consensus::no_participant) return false;
  if (_sim.membership()->state().member(identity.id) != nullptr) return false;
  return !_sim.membership()->reference().heir_dir(identity.data_dir);
}

// Whether `id` votes in a configuration that governs (the current one,
// one scheduled, one proposed).
bool MembershipDriver::votes(ParticipantId id) const {
  for (const auto& voters : _sim.membership()->governing()) {
    if (std::find(voters.begin(), voters.end(), id) != voters.end()) return true;
  }
  return false;
}

// Whether `id`'s acceptor state may go as one disk does: every
// configuration that governs and names it has a majority of active
// members without it (a departed voter still votes, but a leader must be
// found among the rest: phaser-repair seed 2851), and no disk is lost for
// good in this seed (maybe_lose counts only its own).
bool MembershipDriver::acceptor_spared(ParticipantId id) const {
  if (!votes(id)) return true;
  if (_swarm.membership.lose != 0) return false;
  const auto& members = _sim.membership()->reference().members();
  for (const auto& voters : _sim.membership()->governing()) {
    if (std::find(voters.begin(), voters.end(), id) == voters.end()) continue;
    size_t active = 0;
    for (ParticipantId voter : voters) {
      const auto member = members.find(voter);
      active += voter != id && member != members.end() &&
                member->second.status == consensus::MemberStatus::active;
    }
    if (active < consensus::majority_of(voters)) return false;
  }
  return true;
}

bool MembershipDriver::may_discard(ParticipantId id) const {
  const MembershipChecker& membership = *_sim.membership();
  if (!membership.voters_settled() || votes(id)) return false;
  for (uint32_t b = 0; b < _swarm.sim.membership->params.buckets; b++) {
    const auto& replicas = membership.reference().government(b).replicas;
    const bool named = std::find(replicas.begin(), replicas.end(), id) != replicas.end();
    if (!named) continue;
    // Another member that is up: one down may be departed before the
    // damaged copy is shrunk out, leaving it the bucket's last (void) copy
    // — a third fault in a bucket of three (phaser-repair seed 6509).
    bool other_up = false;
    for (ParticipantId other : replicas) {
      if (other == id) continue;
      const ParticipantId host =
          _sim.phasers() != nullptr ? _sim.phasers()->host_of_id(other) : other;
      other_up |= host >= 1 && host <= _sim.size() && _sim.node(host).up();
    }
    if (!other_up) return false;
  }
  return true;
}

// Participants lost for good (their disks with them): never a majority of
// any configuration that governs an undecided slot, and only while a
// majority of each of those has applied the whole log — voters that lag
// depend on the others' copies of the prefix, so losing those would lose
// the log (a voter set that has not caught up is not yet redundant).
void MembershipDriver::maybe_lose() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (_lost_done || swarm.lose == 0 || _sim.now() < swarm.lose_at) return;
  // The log's own view (the checker's reference), not any participant's.
  std::vector<std::vector<ParticipantId>> configurations = _sim.membership()->governing();
  // A reconfiguration under way may name the participants about to be
  // lost: a configuration with a dead majority stops the log for good.
  if (!_sim.membership()->voters_settled()) {
    if (_sim.now() >= swarm.lose_at + 1000) _lost_done = true;
    return;
  }
  // Nor unless the membership leader hears every other member now: a
  // member it has not heard from for a while may be departed next, and that
  // departure shrinks the rule's voters to the first V survivors in arrival
  // order — possibly exactly the participants lost, undetected yet and heard
  // a moment ago, so the leader's liveness check on the new voters passes
  // (seeds 19069 and 9940 of phaser-members: 2 of 5 lost, a third departed,
  // the new three voters included both). That is three failures of five.
  if (!leader_hears_everyone()) {
    if (_sim.now() >= swarm.lose_at + 1000) _lost_done = true;
    return;
  }
  const Slot decided = _sim.membership()->state().applied();
  std::map<ParticipantId, Slot> applied;  // live arrival id -> applied slot
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (_sim.node(host).has_paxos()) {
      applied[_sim.node(host).member().node().id()] = _sim.node(host).applied();
    }
  }
  for (const auto& voters : configurations) {
    size_t current = 0;
    for (ParticipantId id : voters) current += applied.count(id) && applied[id] >= decided ? 1 : 0;
    if (current < consensus::majority_of(voters)) {
      if (_sim.now() < swarm.lose_at + 1000) return;  // wait for them to catch up
      _lost_done = true;  // give up: never lose the only copies
      return;
    }
  }
  _lost_done = true;
  add_returning_rules(configurations);
  if (_sim.trace().verbose()) {
    std::string text;
    for (const auto& voters : configurations) {
      text += " [";
      for (ParticipantId id : voters) text += fmt::format(" {}", id);
      text += " ]";
    }
    _sim.trace().note(_sim.now(), "configurations to keep a majority of:" + text);
  }
  std::vector<size_t> lost_in(configurations.size(), 0);
  std::vector<ParticipantId> order;
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (_sim.node(host).has_paxos()) order.push_back(host);
  }
  for (size_t i = 0; i + 1 < order.size(); i++) {
    std::swap(order[i], order[i + _prng.below(order.size() - i)]);
  }
  uint32_t lost = 0;
  for (ParticipantId host : order) {
    if (lost == swarm.lose) break;
    const ParticipantId id = _sim.node(host).member().node().id();
    bool allowed = true;
    for (size_t i = 0; i < configurations.size(); i++) {
      const auto& voters = configurations[i];
      const bool voter = std::find(voters.begin(), voters.end(), id) != voters.end();
      if (voter && lost_in[i] + 1 > (voters.size() - 1) / 2) allowed = false;
    }
    if (!allowed) continue;
    for (size_t i = 0; i < configurations.size(); i++) {
      const auto& voters = configurations[i];
      if (std::find(voters.begin(), voters.end(), id) != voters.end()) lost_in[i]++;
    }
    _lost[host] = true;
    lost++;
    _sim.trace().note(_sim.now(), fmt::format("host {} is lost for good", host));
    crash(host, 0);
  }
}

// Members marked unreachable may return, each moving the rule's voters back
// to the first V in arrival order (seed 461 of member-lost: two returns made
// voters of three participants lost a moment before). The rule for every
// set of returns joins the configurations the loss must leave a majority of.
void MembershipDriver::add_returning_rules(std::vector<std::vector<ParticipantId>>& configurations) const {
  const consensus::MembershipState& state = _sim.membership()->state();
  std::vector<ParticipantId> marked;
  for (const auto& [id, member] : state.members()) {
    if (member.status == consensus::MemberStatus::unreachable) marked.push_back(id);
  }
  COWORKER_ASSERT(marked.size() < 16);
  for (uint32_t returns = 1; returns < (1u << marked.size()); returns++) {
    std::vector<ParticipantId> voters;  // arrival order: ids ascend
    for (const auto& [id, member] : state.members()) {
      const auto at = std::find(marked.begin(), marked.end(), id);
      const bool returned = at != marked.end() && (returns >> (at - marked.begin()) & 1) != 0;
      if (member.status == consensus::MemberStatus::active || returned) voters.push_back(id);
    }
    voters = consensus::MembershipState::first_voters(std::move(voters));
    if (std::find(configurations.begin(), configurations.end(), voters) == configurations.end()) {
      configurations.push_back(std::move(voters));
    }
  }
}

bool MembershipDriver::leader_hears_everyone() const {
  const Tick now = _sim.now();
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (!_sim.node(host).has_paxos()) continue;
    const consensus::MembershipNode& leader = _sim.node(host).member().node();
    if (!leader.leading() || !leader.grants_leases()) continue;
    for (const auto& [id, member] : _sim.membership()->state().members()) {
      if (id == leader.id() || member.status == consensus::MemberStatus::unreachable) continue;
      if (leader.last_acked(id) + 2 * _swarm.sim.membership->timing.heartbeat_ticks < now) return false;
    }
    return true;
  }
  return false;
}

void MembershipDriver::maybe_leave() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (swarm.leave_per_mille == 0 || _leaves >= swarm.leaves_max ||
      !_prng.chance_per_mille(swarm.leave_per_mille)) {
    return;
  }
  ParticipantId host = random_member_host();
  if (host == 0) return;
  // Half the time a member marked unreachable asks, when there is one: its
  // leave races its return (MembershipState: a marked member leaves too).
  if (swarm.leave_marked && _prng.chance(1, 2)) host = marked_member_host().value_or(host);
  // Keep a cluster to leave: count by the log (any one host's view may lag)
  // minus the leaves asked and not yet decided.
  size_t active = 0;
  for (const auto& [id, member] : _sim.membership()->state().members()) {
    active += member.status == consensus::MemberStatus::active && _asked_to_leave.count(id) == 0;
  }
  if (active <= 2) return;
  _asked_to_leave.insert(_sim.node(host).member().node().id());
  _leaves++;
  _sim.trace().event(_sim.now(), "leave", host);
  _sim.trace().note(_sim.now(), fmt::format("host {} leaves", host));
  _sim.act(host, [](consensus::MembershipNode& node) { return node.leave(); });
}

// A host that left (and exited) comes back: a new arrival of its data dir.
void MembershipDriver::maybe_rejoin() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (swarm.rejoin_per_mille == 0 || !_prng.chance_per_mille(swarm.rejoin_per_mille)) return;
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (!_sim.exited(host) || _lost[host]) continue;
    _sim.restart(host);
    return;
  }
}

void MembershipDriver::maybe_partition() {
  if (_swarm.partition_per_mille == 0 || !_prng.chance_per_mille(_swarm.partition_per_mille)) {
    return;
  }
  const size_t n = _sim.size();
  std::vector<bool> side(n + 1, false);
  if (_prng.chance(1, 2)) {
    side[1 + _prng.below(n)] = true;
  } else {
    for (ParticipantId host = 1; host <= n; host++) side[host] = _prng.chance(1, 2);
  }
  const bool one_way = _prng.chance_per_mille(_swarm.one_way_per_mille);
  cut(_sim, side, one_way, _sim.now() + _prng.between(_swarm.partition_min, _swarm.partition_max));
}

// One link, one way: the two ends still hear the membership leader, but a
// bucket leader on one end stops hearing probe answers (a report).
void MembershipDriver::maybe_one_way() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (swarm.one_way_per_mille == 0 || !_prng.chance_per_mille(swarm.one_way_per_mille)) return;
  const ParticipantId from = 1 + _prng.below(_sim.size());
  const ParticipantId to = 1 + _prng.below(_sim.size());
  if (from == to) return;
  const Tick until = _sim.now() + _prng.between(_swarm.partition_min, _swarm.partition_max);
  _sim.network().block(from, to, until);
  _sim.trace().event(_sim.now(), "one_way", from, to, until);
}

void MembershipDriver::maybe_stick() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (swarm.stuck_per_mille == 0 || !_prng.chance_per_mille(swarm.stuck_per_mille)) return;
  const ParticipantId host = random_member_host();
  if (host == 0 || _unstick_at[host] != 0) return;
  _unstick_at[host] = _sim.now() + _prng.between(swarm.stuck_min, swarm.stuck_max);
  _sim.trace().event(_sim.now(), "stuck", host, _unstick_at[host]);
  _sim.trace().note(_sim.now(), fmt::format("host {} is stuck until {}", host, _unstick_at[host]));
  _sim.act(host, [](consensus::MembershipNode& node) { return node.set_stuck(true); });
}

// A disk hangs (a stuck fdatasync): with phasers, a participant whose disk
// is stuck for the departure timeout stops its heartbeats (participant.h).
void MembershipDriver::maybe_hang() {
  if (_swarm.hang_per_mille == 0 || !_prng.chance_per_mille(_swarm.hang_per_mille)) return;
  const ParticipantId host = random_member_host();
  if (host == 0 || _unhang_at[host] != 0 || !_sim.node(host).up()) return;
  _unhang_at[host] = _sim.now() + _prng.between(_swarm.hang_min, _swarm.hang_max);
  _sim.trace().event(_sim.now(), "hang", host, _unhang_at[host]);
  _sim.trace().note(_sim.now(), fmt::format("host {}'s disk hangs until {}", host, _unhang_at[host]));
  _sim.node(host).disk().hang();
}

// The stuck fdatasync returns. Failed, the participant's log store fails
// for good and the process exits (disk.h): a crash, restarted later, with
// the batch it was syncing in doubt.
void MembershipDriver::end_hang(ParticipantId host) {
  if (_sim.node(host).disk().end_hang() == Disk::SyncEnd::ok) return;
  _sim.trace().event(_sim.now(), "sync-failed", host);
  _sim.trace().note(_sim.now(), fmt::format("host {}'s stuck fdatasync fails: it stops", host));
  crash(host, _prng.between(_swarm.down_min, _swarm.down_max));
}

void MembershipDriver::maybe_whole_crash() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (swarm.whole_crash_at == 0 || _sim.now() != swarm.whole_crash_at) return;
  _sim.trace().note(_sim.now(), "the whole cluster crashes");
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    if (!_sim.node(host).up()) continue;
    crash(host, 1 + _prng.below(std::max<Tick>(1, swarm.stagger_max)));
  }
}

void MembershipDriver::maybe_split() {
  const MembershipSwarm& swarm = _swarm.membership;
  if (swarm.split_at == 0 || _sim.now() != swarm.split_at) return;
  std::vector<bool> side(_sim.size() + 1, false);
  for (ParticipantId host = 1; host <= _sim.size() / 2; host++) side[host] = true;
  cut(_sim, side, false, _sim.now() + swarm.split_ticks);
}

void MembershipDriver::heal() {
  _healed = true;
  _ack_proposers.clear();
  calm_network(_sim);
  for (ParticipantId host = 1; host <= _sim.size(); host++) {
    _restart_at[host] = 0;
    _arrive_at[host] = 0;
    if (_sim.node(host).up()) {
      if (_unstick_at[host] != 0) {
        _sim.act(host, [](consensus::MembershipNode& node) { return node.set_stuck(false); });
      }
    } else if (!_lost[host] && !_sim.exited(host)) {
      _sim.restart(host);
    }
    _unstick_at[host] = 0;
    if (_unhang_at[host] != 0 && _sim.node(host).up()) _sim.node(host).disk().release();
    _unhang_at[host] = 0;
  }
}

}  // namespace coworker::sim
