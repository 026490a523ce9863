// MembershipChecker: the membership invariants of issue 4 (DESIGN §1, §2,
// §3, §5), checked after every event of a membership-mode simulation.
//
// Owned by the Simulation for the run. It folds the first decision anyone
// learned for each slot (the agreement checker makes every other participant
// agree with it) twice: through the code under test (MembershipState,
// BucketTable), whose table digest per slot every participant's must equal,
// and through its own fold (membership_reference.h), which the first must
// equal at every slot. Checks, each bounded per
// event (O(buckets) per decided slot or applied batch, O(hosts) per tick):
//   - members, their status and each bucket's current government and step
//     are the reference's;
//   - every participant derives the same targets and current governments
//     from the same prefix (its table's digest at its applied slot);
//   - the eligible participants are the reference's active members; one
//     target leader per bucket, the first of its target government, the
//     rest its neighbours in arrival order (distributor.h rule 4, rebuilt
//     here); leadership even on targets (max - min <= 1);
//   - no current government ever becomes empty;
//   - an arrival nonce is decided once (a retried arrival gets no second id);
//   - every reconfiguration that takes effect names the rule's voters at its
//     basis slot; an undecodable entry is a violation;
//   - no participant is departed or marked unreachable while it holds a
//     read lease, and a departed one never holds one again;
//   - a participant holding a read lease has applied every slot decided
//     (learned by anyone) before it sent the heartbeat the lease counts
//     from (its lease_until - lease_ticks, on its own clock): the lease
//     stands for "nothing decided then is unknown here" (DESIGN §3), which
//     the stale-read check sees only when a read happens to fall in the gap.
// Liveness, once faults stopped (unsettled): arrivals done, nobody
// recovering or leaving, crashed participants departed (or marked, if last
// survivors), live unreachable ones returned, every live member holding a
// read lease, voters following the rule, and every bucket with a live
// replica at its target (unless it has none: every member is leaving).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bucket/table.h"
#include "consensus/membership_state.h"
#include "tests/sim/checker.h"
#include "tests/sim/membership_host.h"
#include "tests/sim/membership_reference.h"

namespace coworker::sim {

class MembershipChecker final : public Checker {
 public:
  struct Counts {
    uint64_t arrivals = 0;
    uint64_t retried = 0;
    uint64_t departures = 0;
    uint64_t marks = 0;  // unreachable
    uint64_t returns = 0;
    uint64_t leaves = 0;
    uint64_t reconfigurations = 0;
    uint64_t acks_confirmed = 0;
    uint64_t acks_void = 0;
  };

  // Static start: the reference begins at the genesis state (slot N);
  // otherwise empty at slot 0. `initial_voters`: the schedule's first.
  MembershipChecker(const MembershipSimOptions& options, uint64_t seed,
                    std::vector<ParticipantId> initial_voters);

  const char* name() const override { return "membership"; }
  void on_learn(Simulation&, ParticipantId, const consensus::Decided&) override;
  void on_applied(Simulation&, ParticipantId) override;
  void after_tick(Simulation&) override;
  std::optional<std::string> unsettled(const Simulation&) const override;

  const consensus::MembershipState& state() const { return _state; }
  // Voter sets of the configurations that govern a slot past the reference
  // prefix (the current one and every one scheduled), and of every
  // reconfiguration proposed and not decided yet (it may still be).
  std::vector<std::vector<ParticipantId>> governing() const;
  // The voters follow the rule, and nothing that could change them (a
  // reconfiguration, an arrival, a leave, a departure, a mark, a return) is
  // on its way.
  bool voters_settled() const {
    return _proposed.empty() && _changes.empty() && _latest == _state.rule_voters();
  }
  void on_withdraw(Simulation&, ParticipantId, const consensus::ProposalId& id) override {
    _changes.erase(id);
  }
  void on_proposed(const consensus::Entry& entry);
  const bucket::BucketTable& table() const { return _table; }
  // Members and current governments by the checkers' own fold of the log.
  const MembershipReference& reference() const { return _reference; }
  Counts counts() const;

 private:
  void apply(Simulation& sim, Slot slot, const consensus::Entry& entry);
  void check_reconfiguration(Simulation& sim, Slot slot, const consensus::Entry& entry);
  void check_targets(Simulation& sim, Slot slot);
  void check_no_lease(Simulation& sim, ParticipantId id, const char* why);
  const std::vector<ParticipantId>& rule_at(Slot slot) const;

  consensus::MembershipState _state;
  bucket::BucketTable _table;
  MembershipReference _reference;  // compared with _state and _table at every slot
  Slot _base = 0;                // the slot _digest[0] is the table after
  std::vector<uint64_t> _digest;  // reference table digest after each slot
  std::map<Slot, consensus::Entry> _early;
  std::map<consensus::Nonce, ParticipantId> _arrivals;
  std::map<Slot, std::vector<ParticipantId>> _rule;  // rule voters from this slot on
  std::vector<ParticipantId> _latest;               // latest scheduled voters
  std::map<Slot, std::vector<ParticipantId>> _schedule;  // first slot -> voters
  std::map<consensus::ProposalId, std::vector<ParticipantId>> _proposed;  // reconfigurations
  std::set<consensus::ProposalId> _changes;  // proposed entries that change members
  Slot _alpha = 0;
  // Without migrations (neither the stand-in executor nor the engine's: the
  // phaser families other than phaser-grow) governments never move to
  // their targets, so liveness does not ask for that.
  bool _migrations = true;
  std::set<ParticipantId> _no_lease;  // departed
  // The lease-prefix check: per host, for each tick of its clock, the
  // reference's applied slot before the step in which its clock reached it
  // (the last few leases' worth of ticks).
  void check_lease_prefix(Simulation& sim, ParticipantId host, const consensus::MembershipNode& node);
  struct HostClock {
    uint64_t generation = 0;  // the node's; a new one starts a new clock
    Tick last = 0;            // the newest tick recorded
    std::map<Tick, Slot> decided_before;
    bool started = false;
  };
  std::map<ParticipantId, HostClock> _clocks;
  Slot _applied_before_step = 0;  // the reference's applied slot when the step began
  Tick _lease_ticks = 0;
  std::map<ParticipantId, ParticipantId> _last_id;  // host -> its last arrival id
  Counts _counts;
};

}  // namespace coworker::sim
