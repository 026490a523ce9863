#include "tests/sim/schedule_checker.h"

#include <fmt/core.h>

#include <iterator>

#include "consensus/paxos.h"
#include "consensus/assert.h"
#include "tests/sim/simulation.h"

namespace coworker::sim {

ScheduleChecker::ScheduleChecker(consensus::Schedule initial, Slot through, Slot alpha)
    : _schedule(std::move(initial)), _through(through), _alpha(alpha) {
  COWORKER_ASSERT(!_schedule.empty());
  COWORKER_ASSERT(_alpha > 0);
}

const std::vector<ParticipantId>& ScheduleChecker::voters_for(Slot slot) const {
  const auto it = _schedule.upper_bound(slot);
  COWORKER_ASSERT(it != _schedule.begin());
  return std::prev(it)->second.voters;
}

// The same rule as Paxos::schedule_decided, written again from the contract.
void ScheduleChecker::apply(const consensus::Entry& entry) {
  _through++;
  if (!entry.reconfigures()) return;
  const auto& latest = _schedule.rbegin()->second.voters;
  if (entry.replaces != latest || entry.voters == latest || !consensus::valid_voters(entry.voters)) {
    return;
  }
  _schedule.emplace(_through + _alpha, consensus::ScheduledVoters{_through, entry.voters});
  _reconfigurations++;
}

void ScheduleChecker::on_learn(Simulation& sim, ParticipantId node,
                               const consensus::Decided& decided) {
  if (decided.slot == _through + 1) {
    apply(decided.entry);
    while (!_early.empty() && _early.begin()->first == _through + 1) {
      apply(_early.begin()->second);
      _early.erase(_early.begin());
    }
  } else if (decided.slot > _through + 1) {
    _early.emplace(decided.slot, decided.entry);
  }
  if (decided.quorum.empty()) return;
  if (decided.slot > _through + _alpha) {
    sim.violate(name(), fmt::format("node {} decided slot {} before the slots that fix its voters "
                                    "(reference through {})",
                                    node, decided.slot, _through));
    return;
  }
  const auto& voters = voters_for(decided.slot);
  size_t votes = 0;
  for (ParticipantId id : decided.quorum) votes += consensus::contains(voters, id) ? 1 : 0;
  if (votes < consensus::majority_of(voters)) {
    std::string quorum;
    for (ParticipantId id : decided.quorum) quorum += fmt::format(" {}", id);
    std::string expected;
    for (ParticipantId id : voters) expected += fmt::format(" {}", id);
    sim.violate(name(), fmt::format("node {} decided slot {} with quorum{}, not a majority of "
                                    "its voters{}: two configurations decide one slot",
                                    node, decided.slot, quorum, expected));
  }
}

}  // namespace coworker::sim
