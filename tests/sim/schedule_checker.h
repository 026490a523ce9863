// ScheduleChecker: no slot is decided by two configurations (paxos.h steps
// 12-15, DESIGN §5).
//
// Owned by the Simulation for the run, like every Checker. It rebuilds the
// reference configuration schedule from the first decision anyone learned
// for each slot (reconfigurations applied in slot order, compare and swap,
// α slots later), independently of any participant's Paxos, and checks every
// decision a leader reports with its quorum: the quorum holds a majority of
// the voters the reference schedule gives that slot. Each call is O(quorum +
// log of the schedule).
#pragma once

#include <map>

#include "consensus/paxos_types.h"
#include "tests/sim/checker.h"

namespace coworker::sim {

class ScheduleChecker final : public Checker {
 public:
  // `initial`: the schedule as of slot `through` (every participant's
  // starting point); α: the cluster's window_slots_max.
  ScheduleChecker(consensus::Schedule initial, Slot through, Slot alpha);

  const char* name() const override { return "schedule"; }
  void on_learn(Simulation&, ParticipantId, const consensus::Decided&) override;

  const consensus::Schedule& reference() const { return _schedule; }
  const std::vector<ParticipantId>& voters_for(Slot slot) const;
  Slot through() const { return _through; }
  uint64_t reconfigurations() const { return _reconfigurations; }

 private:
  void apply(const consensus::Entry& entry);

  consensus::Schedule _schedule;
  Slot _through;  // reference decisions applied through this slot
  const Slot _alpha;
  std::map<Slot, consensus::Entry> _early;  // first learned above _through + 1
  uint64_t _reconfigurations = 0;
};

}  // namespace coworker::sim
