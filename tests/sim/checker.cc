#include "tests/sim/checker.h"

#include <algorithm>
#include <map>

#include <fmt/core.h>

#include "consensus/membership_state.h"
#include "consensus/assert.h"
#include "tests/sim/app.h"
#include "tests/sim/simulation.h"

namespace coworker::sim {

namespace {

std::string id_text(const consensus::ProposalId& id) {
  return fmt::format("{}/{}/{}", id.proposer, id.boot, id.sequence);
}

// (slot, chain) of a snapshot: LogApp's, or the membership state's header.
std::optional<LogApp::Decoded> decode_snapshot(const consensus::Snapshot& snapshot) {
  if (auto decoded = LogApp::decode(snapshot)) return decoded;
  const auto header = consensus::MembershipState::header(snapshot.bytes);
  if (!header || header->slot != snapshot.slot) return std::nullopt;
  return LogApp::Decoded{header->slot, header->chain};
}

}  // namespace

// ---- AgreementChecker ----

Slot& AgreementChecker::position(ParticipantId node) {
  if (_position.size() <= node) _position.resize(node + 1, 0);
  return _position[node];
}

const consensus::Entry* AgreementChecker::reference(Slot slot) const {
  if (slot == 0 || slot >= _reference.size() || !_reference[slot]) return nullptr;
  return &*_reference[slot];
}

void AgreementChecker::on_boot(Simulation& sim, ParticipantId node, const consensus::Snapshot& recovered) {
  position(node) = 0;
  if (recovered.slot > 0) check_snapshot(sim, node, recovered, "recovered");
}

void AgreementChecker::on_install(Simulation& sim, ParticipantId node,
                                  const consensus::Snapshot& snapshot) {
  if (snapshot.slot <= position(node)) {
    sim.violate(name(), fmt::format("node {} installed snapshot {} at position {}", node,
                                    snapshot.slot, position(node)));
    return;
  }
  check_snapshot(sim, node, snapshot, "installed");
}

void AgreementChecker::check_snapshot(Simulation& sim, ParticipantId node,
                                      const consensus::Snapshot& snapshot, const char* how) {
  const auto decoded = decode_snapshot(snapshot);
  if (!decoded) {
    sim.violate(name(), fmt::format("node {} {} an undecodable snapshot", node, how));
    return;
  }
  // Every slot of a snapshot was learned one by one by whoever made it.
  if (decoded->slot > _contiguous || _chain[decoded->slot] != decoded->chain) {
    sim.violate(name(), fmt::format("node {} {} snapshot at {} that disagrees with the decided "
                                    "prefix (known through {})",
                                    node, how, decoded->slot, _contiguous));
    return;
  }
  position(node) = decoded->slot;
}

void AgreementChecker::on_learn(Simulation& sim, ParticipantId node, const consensus::Decided& decided) {
  Slot& at = position(node);
  if (decided.slot != at + 1) {
    sim.violate(name(), fmt::format("node {} learned slot {} right after {}: prefix broken", node,
                                    decided.slot, at));
    return;
  }
  at = decided.slot;
  if (_reference.size() <= decided.slot) _reference.resize(decided.slot + 1);
  auto& reference = _reference[decided.slot];
  if (reference) {
    if (*reference != decided.entry) {
      sim.violate(name(),
                  fmt::format("slot {}: node {} learned {} but {} was learned before", decided.slot,
                              node, id_text(decided.entry.id), id_text(reference->id)));
    }
    return;
  }
  reference = decided.entry;
  while (_contiguous + 1 < _reference.size() && _reference[_contiguous + 1]) {
    _contiguous++;
    _chain.push_back(LogApp::extend(_chain.back(), *_reference[_contiguous]));
  }
  COWORKER_ASSERT(_chain.size() == _contiguous + 1);
}

void AgreementChecker::start_at(Slot slot, uint64_t chain) {
  COWORKER_ASSERT(_contiguous == 0);
  _reference.resize(slot + 1);
  _chain.assign(slot + 1, 0);
  _chain[slot] = chain;
  _contiguous = slot;
}

std::optional<std::string> AgreementChecker::unsettled(const Simulation& sim) const {
  const Slot decided = highest_decided();
  for (ParticipantId node = 1; node <= sim.size(); node++) {
    const Participant& participant = sim.node(node);
    if (!participant.has_paxos()) continue;
    if (participant.applied() < decided) {
      return fmt::format("node {} learned through {} of {} decided slots", node,
                         participant.applied(), decided);
    }
  }
  return std::nullopt;
}

// ---- ProposalChecker ----

void ProposalChecker::on_crash(Simulation&, ParticipantId node) {
  // Its undecided proposals were volatile: nothing owes them any more.
  for (auto it = _owed.begin(); it != _owed.end();) {
    it = it->second == node ? _owed.erase(it) : std::next(it);
  }
}

void ProposalChecker::on_propose(Simulation& sim, ParticipantId node, const consensus::ProposalId& id,
                                 const std::string& value) {
  const auto [it, fresh] = _proposals.emplace(id, Proposal{value, node, 0});
  if (!fresh) {
    sim.violate(name(), fmt::format("proposal id {} issued twice", id_text(id)));
    return;
  }
  _owed.emplace(id, node);
}

void ProposalChecker::on_learn(Simulation& sim, ParticipantId node, const consensus::Decided& decided) {
  if (decided.entry.noop()) {
    if (!decided.entry.value.empty()) sim.violate(name(), "a noop carries bytes");
    return;
  }
  const auto it = _proposals.find(decided.entry.id);
  if (it == _proposals.end() || it->second.value != decided.entry.value) {
    sim.violate(name(), fmt::format("node {} learned at slot {} an entry nobody proposed ({})",
                                    node, decided.slot, id_text(decided.entry.id)));
    return;
  }
  Proposal& proposal = it->second;
  if (proposal.slot == 0) {
    proposal.slot = decided.slot;
    _acked++;
    _owed.erase(decided.entry.id);
  } else if (proposal.slot != decided.slot && node == proposal.at) {
    _duplicates++;  // at-least-once (paxos.h step 9); counted once, by its proposer
  }
}

bool ProposalChecker::decided(const consensus::ProposalId& id) const {
  const auto it = _proposals.find(id);
  return it != _proposals.end() && it->second.slot != 0;
}

std::optional<std::string> ProposalChecker::unsettled(const Simulation&) const {
  if (_owed.empty()) return std::nullopt;
  const auto& [id, node] = *_owed.begin();
  return fmt::format("{} proposals not decided, first {} accepted by live node {}", _owed.size(),
                     id_text(id), node);
}

// ---- LeaseChecker ----

void LeaseChecker::after_tick(Simulation& sim) {
  ParticipantId holder = 0;
  for (ParticipantId node = 1; node <= sim.size(); node++) {
    const Participant& participant = sim.node(node);
    if (!participant.has_paxos() || !participant.paxos().holds_lease()) continue;
    if (holder != 0) {
      sim.violate(name(), fmt::format("nodes {} and {} both hold a leader lease", holder, node));
      return;
    }
    holder = node;
  }
  if (holder == 0) return;
  const consensus::Paxos& lease = sim.node(holder).paxos();
  // While the lease runs, no other leader can get a slot past the holder's
  // decided prefix chosen. Not "no higher ballot leads": ballots order
  // leaders only within a configuration, and a higher ballot may still lead
  // an earlier configuration whose slots are all decided, deciding nothing
  // the lease protects (seed 108536 of member-churn). Checked two ways.
  //
  // (a) The mechanism (paxos.h steps 2 and 14): no leader of a higher
  // ballot holds a majority's promises of any voter set the lease counts.
  // The lease needs acks from a majority of each, each acker is bound from
  // the ack for lease_ticks and refuses the higher ballot until then (nor
  // acks it after promising it), so such a majority could only have
  // promised after the lease ran out.
  const consensus::Paxos::Configurations counted = lease.lease_configurations();
  // (b) The outcome, for any other ballot: no leader covered (a majority
  // promised its ballot, step 13) the configuration of a slot it may
  // propose past the holder's prefix — within its window (invariant 7),
  // where its own decided prefix fixes the voters (step 12) — while a
  // majority of those voters, live, would still accept its ballot (promised
  // nothing higher). A crashed voter counts once it is back, before it can
  // accept anything.
  std::map<ParticipantId, consensus::Ballot> promised;  // by Paxos id, the live participants
  for (ParticipantId node = 1; node <= sim.size(); node++) {
    const Participant& participant = sim.node(node);
    if (!participant.has_paxos()) continue;
    promised[participant.paxos().self()] = participant.paxos().promised();
  }
  const Slot protected_from = lease.decided_through() + 1;
  for (ParticipantId node = 1; node <= sim.size(); node++) {
    const Participant& participant = sim.node(node);
    if (node == holder || !participant.has_paxos() || !participant.paxos().leading()) continue;
    const consensus::Paxos& other = participant.paxos();
    if (other.ballot() > lease.ballot()) {
      for (const std::vector<ParticipantId>* voters : counted) {
        if (!other.covers(*voters)) continue;
        sim.violate(name(), fmt::format("node {} (ballot {}.{}) has a majority's promises of "
                                        "voters node {}'s lease counts while it runs",
                                        node, other.ballot().round, other.ballot().node, holder));
        return;
      }
    }
    const std::vector<ParticipantId>* previous = nullptr;
    for (Slot slot = std::max(protected_from, other.decided_through() + 1);
         slot <= other.decided_through() + other.alpha(); slot++) {
      const std::vector<ParticipantId>& voters = other.voters_for(slot);
      if (&voters == previous) continue;
      previous = &voters;
      if (!other.covers(voters)) continue;
      size_t accepting = 0;
      for (ParticipantId voter : voters) {
        const auto it = promised.find(voter);
        if (it != promised.end() && it->second <= other.ballot()) accepting++;
      }
      if (accepting < consensus::majority_of(voters)) continue;
      sim.violate(name(), fmt::format("node {} could decide slot {} while node {} holds a lease",
                                      node, slot, holder));
      return;
    }
  }
}

}  // namespace coworker::sim
