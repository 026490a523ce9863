#include "tests/sim/faults.h"

#include <fmt/core.h>

#include <algorithm>

#include "consensus/assert.h"

namespace coworker::sim {

FaultDriver::FaultDriver(Simulation& sim, const Swarm& swarm, uint64_t seed)
    : _sim(sim),
      _swarm(swarm),
      _prng(consensus::derive_seed(seed, 2)),
      _restart_at(sim.size() + 1, 0),
      _release_at(sim.size() + 1, 0),
      _lost(sim.size() + 1, false),
      _promised(sim.size() + 1) {}

void FaultDriver::before_step() {
  restart_due();
  crash_after_promise();
  maybe_crash();
  maybe_partition();
  maybe_isolate_leader();
  maybe_cut_link();
  maybe_hang();
  maybe_propose();
  maybe_reconfigure();
}

ParticipantId FaultDriver::random_up() {
  std::vector<ParticipantId> up;
  for (ParticipantId id = 1; id <= _sim.size(); id++) {
    if (_sim.node(id).up()) up.push_back(id);
  }
  if (up.empty()) return 0;
  return up[_prng.below(up.size())];
}

// Losing a participant for good must leave a majority of voters.
bool FaultDriver::may_lose(ParticipantId id) const {
  const auto& voters = _sim.participant_options().configuration.voters;
  if (!_sim.participant_options().configuration.is_voter(id)) return true;
  size_t lost_voters = 0;
  for (ParticipantId voter : voters) lost_voters += _lost[voter] ? 1 : 0;
  return lost_voters + 1 <= (voters.size() - 1) / 2;
}

void FaultDriver::restart_due() {
  const Tick now = _sim.now();
  for (ParticipantId id = 1; id <= _sim.size(); id++) {
    if (_restart_at[id] != 0 && _restart_at[id] <= now) {
      _restart_at[id] = 0;
      _sim.restart(id);
    }
    if (_release_at[id] != 0 && _release_at[id] <= now) {
      _release_at[id] = 0;
      _sim.node(id).disk().release();
    }
  }
}

void FaultDriver::maybe_crash() {
  if (_swarm.crash_per_mille == 0 || !_prng.chance_per_mille(_swarm.crash_per_mille)) return;
  const ParticipantId id = random_up();
  if (id != 0) crash(id);
}

// Crashes aimed at the moment a promise was made: the record may still be on
// its way to the disk, and the Promised must not have left without it.
void FaultDriver::crash_after_promise() {
  if (_swarm.promise_crash_per_mille == 0) return;
  for (ParticipantId id = 1; id <= _sim.size(); id++) {
    if (!_sim.node(id).has_paxos()) continue;
    const consensus::Ballot promised = _sim.node(id).paxos().promised();
    if (promised <= _promised[id]) continue;
    _promised[id] = promised;
    if (_prng.chance_per_mille(_swarm.promise_crash_per_mille)) crash(id);
  }
}

void FaultDriver::crash(ParticipantId id) {
  _sim.crash(id);
  _release_at[id] = 0;  // a crash ends a hang
  size_t lost = 0;
  for (bool gone : _lost) lost += gone ? 1 : 0;
  if (lost < _swarm.lost_max && may_lose(id) && _prng.chance(1, 4)) {
    _lost[id] = true;
    _sim.trace().note(_sim.now(), fmt::format("node {} is lost for good", id));
    return;
  }
  _restart_at[id] = _sim.now() + _prng.between(_swarm.down_min, _swarm.down_max);
}

// A partition cuts the cluster into two random sides; one-way partitions cut
// only the links from the first side to the second.
void FaultDriver::maybe_partition() {
  if (_swarm.partition_per_mille == 0 || !_prng.chance_per_mille(_swarm.partition_per_mille)) {
    return;
  }
  const size_t n = _sim.size();
  std::vector<bool> side(n + 1, false);
  if (_prng.chance(1, 2)) {
    side[1 + _prng.below(n)] = true;  // isolate one participant
  } else {
    for (ParticipantId id = 1; id <= n; id++) side[id] = _prng.chance(1, 2);
  }
  const bool one_way = _prng.chance_per_mille(_swarm.one_way_per_mille);
  cut(_sim, side, one_way, _sim.now() + _prng.between(_swarm.partition_min, _swarm.partition_max));
}

// The Jepsen nemesis, aimed at the leader: either cut it off while it may
// still believe it leads (a new leader is elected next to a stale one), or
// silence it towards one participant only (that one campaigns while the rest
// still hear the leader: its lease must hold them).
void FaultDriver::maybe_isolate_leader() {
  if (_swarm.isolate_leader_per_mille == 0 ||
      !_prng.chance_per_mille(_swarm.isolate_leader_per_mille)) {
    return;
  }
  const ParticipantId leader = _sim.leader();
  if (leader == 0) return;
  const Tick until = _sim.now() + _prng.between(_swarm.partition_min, _swarm.partition_max);
  if (_prng.chance(1, 2)) {
    const ParticipantId deaf = 1 + _prng.below(_sim.size());
    if (deaf == leader) return;
    _sim.network().block(leader, deaf, until);
    _sim.trace().event(_sim.now(), "deafen", leader, deaf, until);
    return;
  }
  std::vector<bool> side(_sim.size() + 1, false);
  side[leader] = true;
  cut(_sim, side, false, until);
}

void FaultDriver::maybe_cut_link() {
  if (_swarm.link_cut_per_mille == 0 || !_prng.chance_per_mille(_swarm.link_cut_per_mille)) {
    return;
  }
  const size_t n = _sim.size();
  if (n < 2) return;
  const ParticipantId from = 1 + _prng.below(n);
  ParticipantId to = 1 + _prng.below(n - 1);
  if (to >= from) to++;
  const Tick until = _sim.now() + _prng.between(_swarm.partition_min, _swarm.partition_max);
  const bool both = _prng.chance(1, 3);
  _sim.network().block(from, to, until);
  if (both) _sim.network().block(to, from, until);
  _sim.trace().event(_sim.now(), "link cut", from, to, both, until);
  if (_sim.trace().verbose()) {
    _sim.trace().note(_sim.now(), fmt::format("link {} -> {}{} cut until {}", from, to,
                                              both ? " (both ways)" : "", until));
  }
}

void cut(Simulation& sim, const std::vector<bool>& side, bool one_way, Tick until) {
  const size_t n = sim.size();
  uint64_t mask = 0;
  for (ParticipantId from = 1; from <= n; from++) {
    if (side[from]) mask |= uint64_t{1} << from;
    for (ParticipantId to = 1; to <= n; to++) {
      if (from == to || side[from] == side[to]) continue;
      if (one_way && !side[from]) continue;
      sim.network().block(from, to, until);
    }
  }
  sim.trace().event(sim.now(), "partition", mask, one_way, until);
  if (sim.trace().verbose()) {
    sim.trace().note(sim.now(),
                     fmt::format("partition {:#x} one_way={} until {}", mask, one_way, until));
  }
}

void calm_network(Simulation& sim) {
  sim.trace().event(sim.now(), "heal");
  sim.trace().note(sim.now(), "heal: every fault ends");
  sim.network().heal();
  NetworkOptions calm = sim.network().options();
  calm.drop_per_mille = 0;
  calm.duplicate_per_mille = 0;
  calm.stale_per_mille = 0;
  sim.network().set_options(calm);
}

void FaultDriver::maybe_hang() {
  if (_swarm.hang_per_mille == 0 || !_prng.chance_per_mille(_swarm.hang_per_mille)) return;
  const ParticipantId id = random_up();
  if (id == 0 || _sim.node(id).disk().hung()) return;
  _sim.node(id).disk().hang();
  _release_at[id] = _sim.now() + _prng.between(_swarm.hang_min, _swarm.hang_max);
  _sim.trace().event(_sim.now(), "hang", id);
}

void FaultDriver::maybe_propose() {
  if (_swarm.propose_per_mille == 0 || !_prng.chance_per_mille(_swarm.propose_per_mille)) return;
  const uint64_t count = _prng.between(1, _swarm.burst_max);
  for (uint64_t i = 0; i < count; i++) {
    const ParticipantId id = random_up();
    if (id == 0) return;
    // Unique bytes per proposal: the checkers match values exactly.
    std::string value = fmt::format("v{}.{}", _sim.seed(), _proposals++);
    // Two draws, sequenced: argument evaluation order differs between compilers.
    const uint64_t length = _prng.below(24);
    const char filler = static_cast<char>('a' + _prng.below(26));
    value.append(length, filler);
    _sim.propose(id, std::move(value));
  }
}

// Reconfigurations to random odd voter sets (paxos.h steps 12-15), proposed
// at a random participant as the replacement of what it sees as latest.
void FaultDriver::maybe_reconfigure() {
  if (_swarm.reconfigure_per_mille == 0 ||
      !_prng.chance_per_mille(_swarm.reconfigure_per_mille)) {
    return;
  }
  const ParticipantId at = random_up();
  if (at == 0) return;
  const size_t n = _sim.size();
  const size_t size = std::min<size_t>(n % 2 == 1 ? n : n - 1, 1 + 2 * _prng.below(3));
  std::vector<ParticipantId> voters;
  for (ParticipantId id = 1; id <= n; id++) voters.push_back(id);
  for (size_t i = 0; i + 1 < voters.size(); i++) {  // Fisher-Yates, drawn in order
    std::swap(voters[i], voters[i + _prng.below(voters.size() - i)]);
  }
  voters.resize(size);
  std::sort(voters.begin(), voters.end());
  _sim.propose(at, fmt::format("r{}.{}", _sim.seed(), _proposals++), &voters);
}

void FaultDriver::heal() {
  calm_network(_sim);
  for (ParticipantId id = 1; id <= _sim.size(); id++) {
    _release_at[id] = 0;
    _restart_at[id] = 0;
    if (_sim.node(id).up()) {
      _sim.node(id).disk().release();
    } else if (!_lost[id]) {
      _sim.restart(id);
    }
  }
}

}  // namespace coworker::sim
