#include "tests/sim/checker.h"

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
  // A higher ballot completes phase 1 only once the lease ran out: the
  // voters it needs refused it until then.
  const consensus::Ballot ballot = sim.node(holder).paxos().ballot();
  for (ParticipantId node = 1; node <= sim.size(); node++) {
    const Participant& participant = sim.node(node);
    if (node == holder || !participant.has_paxos() || !participant.paxos().leading()) continue;
    if (participant.paxos().ballot() > ballot) {
      sim.violate(name(),
                  fmt::format("node {} leads above node {} while its lease runs", node, holder));
      return;
    }
  }
}

}  // namespace coworker::sim
