#include "tests/sim/membership_checker.h"

#include <fmt/core.h>

#include <algorithm>

#include "consensus/paxos.h"
#include "consensus/assert.h"
#include "tests/sim/simulation.h"

namespace coworker::sim {

using consensus::Effect;

MembershipChecker::MembershipChecker(const MembershipSimOptions& options, uint64_t seed,
                                     std::vector<ParticipantId> initial_voters)
    : _table(options.params.buckets, options.params.replicas),
      _reference(options.params.buckets),
      _latest(std::move(initial_voters)),
      _migrations(options.executor || options.migrations),
      _lease_ticks(options.timing.lease_ticks) {
  if (options.static_members > 0) {
    const consensus::MembershipDurable image = static_image(options, 1, seed);
    consensus::Reader reader(image.paxos.snapshot.bytes);
    auto state = consensus::MembershipState::decode(reader);
    COWORKER_ASSERT(state.has_value());
    COWORKER_ASSERT(_table.decode(reader));
    _table.take_changes();
    _state = std::move(*state);
    _base = _state.applied();
    for (const auto& [id, member] : _state.members()) _arrivals[member.nonce] = id;
    _reference.start(_state, _table);
  }
  _digest.push_back(_table.digest());
  _rule[_base] = _state.rule_voters();
  _schedule[1] = _latest;
}

std::vector<std::vector<ParticipantId>> MembershipChecker::governing() const {
  std::vector<std::vector<ParticipantId>> result;
  auto it = _schedule.upper_bound(_state.applied() + 1);
  COWORKER_ASSERT(it != _schedule.begin());
  for (--it; it != _schedule.end(); ++it) result.push_back(it->second);
  for (const auto& [id, voters] : _proposed) result.push_back(voters);
  return result;
}

void MembershipChecker::on_proposed(const consensus::Entry& entry) {
  if (entry.reconfigures()) _proposed[entry.id] = entry.voters;
  const auto decoded = consensus::decode_entry(entry.value);
  if (decoded && !std::holds_alternative<consensus::Acks>(*decoded)) _changes.insert(entry.id);
}

void MembershipChecker::on_learn(Simulation& sim, ParticipantId, const consensus::Decided& decided) {
  if (_alpha == 0) _alpha = sim.participant_options().limits.window_slots_max;
  const Slot next = _state.applied() + 1;
  if (decided.slot < next) return;
  _proposed.erase(decided.entry.id);
  _changes.erase(decided.entry.id);
  if (decided.slot > next) {
    _early.emplace(decided.slot, decided.entry);
    return;
  }
  apply(sim, decided.slot, decided.entry);
  while (!_early.empty() && _early.begin()->first == _state.applied() + 1) {
    const auto first = _early.begin();
    apply(sim, first->first, first->second);
    _early.erase(first);
  }
}

// One reference slot: the state and table as every participant must have
// them after it.
void MembershipChecker::apply(Simulation& sim, Slot slot, const consensus::Entry& entry) {
  std::optional<consensus::MembershipEntry> decoded;
  if (!entry.noop()) decoded = consensus::decode_entry(entry.value);
  _reference.fold(slot, decoded, [&](uint32_t b) { return _table.target(b); });
  const Effect effect = _state.apply(slot, entry, _table);
  const bool targets_moved = effect.kind == Effect::Kind::arrived ||
                             effect.kind == Effect::Kind::leaving ||
                             effect.kind == Effect::Kind::departed ||
                             effect.kind == Effect::Kind::unreachable ||
                             effect.kind == Effect::Kind::returned;
  const uint64_t confirmed = _table.acks_confirmed();
  const uint64_t voided = _table.acks_void();
  _table.apply(slot, effect, _state);
  _counts.acks_confirmed += _table.acks_confirmed() - confirmed;
  _counts.acks_void += _table.acks_void() - voided;
  switch (effect.kind) {
    case Effect::Kind::undecodable:
      sim.violate(name(), fmt::format("slot {} holds no membership entry", slot));
      break;
    case Effect::Kind::arrived: {
      _counts.arrivals++;
      const auto [it, fresh] = _arrivals.emplace(effect.nonce, effect.id);
      if (!fresh) {
        sim.violate(name(), fmt::format("nonce {}.{} arrived twice: as {} and as {}",
                                        effect.nonce.data_dir, effect.nonce.incarnation,
                                        it->second, effect.id));
      }
      break;
    }
    case Effect::Kind::retried:
      _counts.retried++;
      break;
    case Effect::Kind::departed:
      _counts.departures++;
      check_no_lease(sim, effect.id, "departed");
      _no_lease.insert(effect.id);
      break;
    case Effect::Kind::unreachable:
      _counts.marks++;
      // Marked, it stays a member of the governments where it is alone: a
      // lease it gets later (applying the mark first) is sound.
      check_no_lease(sim, effect.id, "marked unreachable");
      break;
    case Effect::Kind::returned:
      _counts.returns++;
      break;
    case Effect::Kind::leaving:
      _counts.leaves++;
      break;
    default:
      break;
  }
  if (entry.reconfigures()) check_reconfiguration(sim, slot, entry);
  std::vector<ParticipantId> rule = _state.rule_voters();
  if (rule != _rule.rbegin()->second) _rule[slot] = std::move(rule);
  for (const bucket::GovernmentChange& change : _table.take_changes()) {
    if (_table.current(change.bucket).replicas.empty()) {
      sim.violate(name(), fmt::format("the current government of bucket {} became empty at slot {}",
                                      change.bucket, slot));
    }
  }
  if (auto why = _reference.agree(_state, _table)) {
    sim.violate(name(), fmt::format("slot {}: the membership state and table applied it to "
                                    "other values than the log's: {}",
                                    slot, *why));
  }
  if (targets_moved) check_targets(sim, slot);
  COWORKER_ASSERT(_digest.size() == slot - _base);
  _digest.push_back(_table.digest());
}

const std::vector<ParticipantId>& MembershipChecker::rule_at(Slot slot) const {
  auto it = _rule.upper_bound(slot);
  COWORKER_ASSERT(it != _rule.begin());
  return std::prev(it)->second;
}

// A reconfiguration that takes effect (the same compare and swap as Paxos)
// must name the rule's voters at its basis.
void MembershipChecker::check_reconfiguration(Simulation& sim, Slot slot,
                                              const consensus::Entry& entry) {
  if (entry.replaces != _latest || entry.voters == _latest ||
      !consensus::valid_voters(entry.voters)) {
    return;
  }
  _latest = entry.voters;
  _schedule[slot + _alpha] = entry.voters;
  _counts.reconfigurations++;
  const auto decoded = consensus::decode_entry(entry.value);
  const auto* reconfigure = decoded ? std::get_if<consensus::Reconfigure>(&*decoded) : nullptr;
  if (reconfigure == nullptr || reconfigure->basis >= slot || reconfigure->basis < _base) {
    sim.violate(name(), fmt::format("slot {}: a reconfiguration without a valid basis", slot));
    return;
  }
  const auto& rule = rule_at(reconfigure->basis);
  if (entry.voters != rule) {
    sim.violate(name(), fmt::format("slot {}: voters {} do not follow the rule {} at slot {}", slot,
                                    ids_text(entry.voters), ids_text(rule), reconfigure->basis));
  }
}

// One target leader per bucket, first of its government, eligible; even.
void MembershipChecker::check_targets(Simulation& sim, Slot slot) {
  const bucket::Distributor& distributor = _table.distributor();
  std::vector<ParticipantId> eligible;  // the reference's active members, in arrival order
  for (const auto& [id, member] : _reference.members()) {
    if (member.status == consensus::MemberStatus::active) eligible.push_back(id);
  }
  std::vector<ParticipantId> chosen = distributor.eligible();
  std::sort(chosen.begin(), chosen.end());
  if (chosen != eligible) {
    sim.violate(name(), fmt::format("slot {}: eligible {}, but the active members are {}", slot,
                                    ids_text(chosen), ids_text(eligible)));
    return;
  }
  std::map<ParticipantId, uint32_t> led;
  for (ParticipantId id : eligible) led[id] = 0;
  const size_t k = _table.replicas();
  for (uint32_t b = 0; b < _table.buckets(); b++) {
    const std::vector<ParticipantId> target = _table.target(b);
    if (target.empty() != eligible.empty()) {
      sim.violate(name(), fmt::format("slot {}: bucket {} has target {} with eligible {}", slot, b,
                                      ids_text(target), ids_text(eligible)));
      return;
    }
    if (target.empty()) continue;
    if (target[0] != distributor.leader(b) || led.count(target[0]) == 0) {
      sim.violate(name(), fmt::format("slot {}: bucket {} has no single eligible target leader", slot, b));
      return;
    }
    led[target[0]]++;
    // Distributor rule 4: the leader, then (k-1)/2 neighbours on each side
    // in arrival order, right before left; with k eligible or fewer, all of
    // them, leader first, then the ones after it in arrival order, wrapping.
    std::vector<ParticipantId> expected{target[0]};
    const size_t n = eligible.size();
    const size_t at = static_cast<size_t>(
        std::find(eligible.begin(), eligible.end(), target[0]) - eligible.begin());
    if (n <= k) {
      for (size_t d = 1; d < n; d++) expected.push_back(eligible[(at + d) % n]);
    } else {
      for (size_t d = 1; d <= (k - 1) / 2; d++) {
        expected.push_back(eligible[(at + d) % n]);
        expected.push_back(eligible[(at + n - d) % n]);
      }
    }
    if (target != expected) {
      sim.violate(name(), fmt::format("slot {}: bucket {} has target {}, its leader's neighbours "
                                      "make {}",
                                      slot, b, ids_text(target), ids_text(expected)));
      return;
    }
  }
  if (led.empty()) return;
  const auto [low, high] = std::minmax_element(
      led.begin(), led.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  if (high->second - low->second > 1) {
    sim.violate(name(), fmt::format("slot {}: leadership uneven on targets ({} leads {}, {} leads {})",
                                    slot, high->first, high->second, low->first, low->second));
  }
}

void MembershipChecker::check_no_lease(Simulation& sim, ParticipantId id, const char* why) {
  for (ParticipantId host = 1; host <= sim.size(); host++) {
    const Participant& participant = sim.node(host);
    if (!participant.has_paxos()) continue;
    const consensus::MembershipNode& node = participant.member().node();
    if (node.id() == id && node.holds_read_lease()) {
      sim.violate(name(), fmt::format("participant {} (host {}) was {} while it held a read lease "
                                      "until {} (its tick {})",
                                      id, host, why, node.lease_until(), node.now()));
      return;
    }
  }
}

void MembershipChecker::on_applied(Simulation& sim, ParticipantId host) {
  const Participant& participant = sim.node(host);
  if (!participant.has_paxos()) return;
  const MemberHost& member = participant.member();
  _last_id[host] = member.node().id();
  const Slot applied = member.node().state().applied();
  if (applied < _base || applied >= _base + _digest.size()) return;
  if (member.table().digest() != _digest[applied - _base]) {
    sim.violate(name(), fmt::format("host {} (participant {}) derived other targets or governments "
                                    "than the log at slot {}",
                                    host, member.node().id(), applied));
  }
}

void MembershipChecker::after_tick(Simulation& sim) {
  for (ParticipantId host = 1; host <= sim.size(); host++) {
    const Participant& participant = sim.node(host);
    if (!participant.has_paxos()) continue;
    const consensus::MembershipNode& node = participant.member().node();
    _last_id[host] = node.id();
    if (_no_lease.count(node.id()) != 0 && node.holds_read_lease()) {
      sim.violate(name(), fmt::format("participant {} (host {}) holds a read lease after its "
                                      "departure or mark",
                                      node.id(), host));
      return;
    }
    check_lease_prefix(sim, host, node);
  }
  _applied_before_step = _state.applied();
}

void MembershipChecker::check_lease_prefix(Simulation& sim, ParticipantId host,
                                           const consensus::MembershipNode& node) {
  HostClock& clock = _clocks[host];
  // A restart or a new arrival's Paxos: its ticks count from 0 again.
  if (!clock.started || clock.generation != node.generation() || node.now() < clock.last) {
    clock = HostClock{node.generation(), node.now(), {}, true};
    clock.decided_before[node.now()] = _applied_before_step;
  }
  // The ticks its clock reached in this step (none, one, or two when it runs
  // fast): a heartbeat sent at one of them saw at least what was decided
  // before the step.
  for (Tick t = clock.last + 1; t <= node.now(); t++) clock.decided_before[t] = _applied_before_step;
  clock.last = node.now();
  const Tick keep = 4 * _lease_ticks + 8;
  while (!clock.decided_before.empty() && clock.decided_before.begin()->first + keep < clock.last) {
    clock.decided_before.erase(clock.decided_before.begin());
  }
  if (!node.holds_read_lease() || node.lease_until() < _lease_ticks) return;
  const Tick sent = node.lease_until() - _lease_ticks;
  const auto at = clock.decided_before.find(sent);
  if (at == clock.decided_before.end()) return;  // sent before this clock began
  if (node.state().applied() < at->second) {
    sim.violate(name(), fmt::format("participant {} (host {}) holds a read lease until {} (its tick "
                                    "{}), from a heartbeat sent at its tick {}, having applied slot "
                                    "{}; slot {} was decided before that heartbeat",
                                    node.id(), host, node.lease_until(), node.now(), sent,
                                    node.state().applied(), at->second));
  }
}

MembershipChecker::Counts MembershipChecker::counts() const { return _counts; }

std::optional<std::string> MembershipChecker::unsettled(const Simulation& sim) const {
  std::set<ParticipantId> live;  // arrival ids of live, current participants
  for (ParticipantId host = 1; host <= sim.size(); host++) {
    const Participant& participant = sim.node(host);
    if (!participant.up()) {
      // Down for good at the end: it must be gone, or marked if alone somewhere.
      const auto last = _last_id.find(host);
      if (last == _last_id.end()) continue;
      const consensus::Member* member = _state.member(last->second);
      if (member != nullptr && member->status != consensus::MemberStatus::unreachable) {
        return fmt::format("participant {} (host {}) is down but not departed", last->second, host);
      }
      continue;
    }
    const consensus::MembershipNode& node = participant.member().node();
    if (node.refused()) continue;
    if (node.arriving()) return fmt::format("host {} is still arriving", host);
    if (!node.has_paxos()) continue;
    const consensus::Member* member = _state.member(node.id());
    if (member == nullptr) return fmt::format("host {}: participant {} is no member", host, node.id());
    if (node.recovering()) return fmt::format("participant {} is recovering", node.id());
    const bool others = std::any_of(_state.members().begin(), _state.members().end(), [](const auto& m) {
      return m.second.status == consensus::MemberStatus::active;
    });
    if (member->status == consensus::MemberStatus::leaving && others) {
      std::string held;
      for (uint32_t b = 0; b < _table.buckets(); b++) {
        const auto& replicas = _table.current(b).replicas;
        if (std::find(replicas.begin(), replicas.end(), node.id()) == replicas.end()) continue;
        held += fmt::format(" {}:{}->{}", b, ids_text(replicas), ids_text(_table.target(b)));
      }
      return fmt::format("participant {} is still leaving, holding{}", node.id(), held);
    }
    if (member->status == consensus::MemberStatus::unreachable) {
      return fmt::format("participant {} is alive but marked unreachable", node.id());
    }
    if (!node.holds_read_lease() && member->status != consensus::MemberStatus::leaving) {
      return fmt::format("participant {} holds no read lease", node.id());
    }
    live.insert(node.id());
  }
  if (_latest != _state.rule_voters()) {
    return fmt::format("voters {} do not follow the rule {}", ids_text(_latest),
                       ids_text(_state.rule_voters()));
  }
  for (uint32_t b = 0; b < _table.buckets(); b++) {
    const auto& current = _table.current(b).replicas;
    const bool alive = std::any_of(current.begin(), current.end(),
                                   [&](ParticipantId id) { return live.count(id) != 0; });
    // Every member leaving: no target, nobody to take the bucket (the
    // leavers keep it and keep voting, membership_state.h).
    if (_migrations && alive && !_table.target(b).empty() && current != _table.target(b)) {
      return fmt::format("bucket {} is at {} but its target is {}", b, ids_text(current),
                         ids_text(_table.target(b)));
    }
  }
  return std::nullopt;
}

}  // namespace coworker::sim
