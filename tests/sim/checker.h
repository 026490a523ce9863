// Checker: a pluggable invariant over the whole simulated cluster, and the
// standard Paxos checkers.
//
// A Simulation owns its checkers for the run and calls them on every event
// (boot, crash, proposal, decision, snapshot) and after every tick. Each
// call does bounded work (map lookups, O(participants)), so checking after
// every step keeps thousands of seeds per minute. A checker reports a safety
// violation through Simulation::violate at once; at the end, after the faults
// healed, unsettled() says what liveness still lacks (the Simulation keeps
// stepping until no checker is unsettled, or gives up and reports it).
// The membership and phaser issues add their checkers next to these.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "consensus/paxos_types.h"

namespace coworker::sim {

class Simulation;
using consensus::ParticipantId;
using consensus::Slot;

class Checker {
 public:
  virtual ~Checker() = default;
  virtual const char* name() const = 0;

  virtual void on_boot(Simulation&, ParticipantId, const consensus::Snapshot& /*recovered*/) {}
  virtual void on_crash(Simulation&, ParticipantId) {}
  virtual void on_propose(Simulation&, ParticipantId, const consensus::ProposalId&,
                          const std::string& /*value*/) {}
  virtual void on_learn(Simulation&, ParticipantId, const consensus::Decided&) {}
  virtual void on_install(Simulation&, ParticipantId, const consensus::Snapshot&) {}
  // Membership mode: a proposal its node gave up (no longer owed), and the
  // node applied released decisions.
  virtual void on_withdraw(Simulation&, ParticipantId, const consensus::ProposalId&) {}
  virtual void on_applied(Simulation&, ParticipantId) {}
  virtual void after_tick(Simulation&) {}
  // Liveness, once faults stopped: why this checker is not yet satisfied.
  virtual std::optional<std::string> unsettled(const Simulation&) const { return std::nullopt; }
};

// Agreement and prefixes: no two participants learn different entries for a
// slot; each participant learns slots in order from its boot snapshot on;
// every snapshot (installed or recovered) equals the reference chain at its
// slot. The reference is the first entry anyone learned for each slot.
class AgreementChecker final : public Checker {
 public:
  const char* name() const override { return "agreement"; }
  void on_boot(Simulation&, ParticipantId, const consensus::Snapshot&) override;
  void on_learn(Simulation&, ParticipantId, const consensus::Decided&) override;
  void on_install(Simulation&, ParticipantId, const consensus::Snapshot&) override;
  // Every live participant learned every decided slot.
  std::optional<std::string> unsettled(const Simulation&) const override;

  Slot highest_decided() const { return _reference.size() - 1; }
  // Every participant starts from a snapshot at `slot` with this chain (the
  // membership static start): slots up to it are known to nobody.
  void start_at(Slot slot, uint64_t chain);
  const consensus::Entry* reference(Slot slot) const;

 private:
  void check_snapshot(Simulation&, ParticipantId, const consensus::Snapshot&, const char* how);
  Slot& position(ParticipantId node);

  std::vector<std::optional<consensus::Entry>> _reference{1};  // by slot; [0] unused
  std::vector<uint64_t> _chain{0};  // chain after slot s, for s <= _contiguous
  Slot _contiguous = 0;
  std::vector<Slot> _position;  // per participant: the last slot it learned this boot
};

// Validity and liveness of proposals: a learned entry was proposed, with
// these bytes; every proposal accepted by a participant that stayed up is
// decided at the end. Counts acknowledgements (first decisions).
class ProposalChecker final : public Checker {
 public:
  const char* name() const override { return "proposals"; }
  void on_crash(Simulation&, ParticipantId) override;
  void on_propose(Simulation&, ParticipantId, const consensus::ProposalId&, const std::string&) override;
  void on_withdraw(Simulation&, ParticipantId, const consensus::ProposalId& id) override {
    _owed.erase(id);
  }
  void on_learn(Simulation&, ParticipantId, const consensus::Decided&) override;
  std::optional<std::string> unsettled(const Simulation&) const override;

  uint64_t proposed() const { return _proposals.size(); }
  uint64_t acked() const { return _acked; }
  uint64_t duplicates() const { return _duplicates; }
  bool decided(const consensus::ProposalId& id) const;

 private:
  struct Proposal {
    std::string value;
    ParticipantId at = 0;
    Slot slot = 0;  // first slot it was decided at; 0 = not yet
  };
  std::map<consensus::ProposalId, Proposal> _proposals;
  std::map<consensus::ProposalId, ParticipantId> _owed;  // undecided, proposer still up
  uint64_t _acked = 0;
  uint64_t _duplicates = 0;
};

// Lease safety (paxos.h invariant 6, steps 2 and 14): at most one
// participant holds a leader lease at any tick; while one does, no leader of
// a higher ballot has a majority's promises of a voter set the lease counts,
// and no other leader could get a slot past the holder's decided prefix
// chosen.
class LeaseChecker final : public Checker {
 public:
  const char* name() const override { return "lease"; }
  void after_tick(Simulation&) override;
};

}  // namespace coworker::sim
