// FaultDriver: plays a Swarm's faults and client load against a Simulation.
//
// One per seed, owned by run_seed (or a test), acting between steps. It
// draws from its own Prng stream, so the faults of a seed depend only on the
// seed and on what the cluster exposes to it (who is up).
#pragma once

#include <cstdint>
#include <vector>

#include "consensus/prng.h"
#include "tests/sim/scenario.h"
#include "tests/sim/simulation.h"

namespace coworker::sim {

// Blocks every link from side to the other side (and back, unless
// one_way) until `until`; traced. Shared by the fault drivers.
void cut(Simulation& sim, const std::vector<bool>& side, bool one_way, Tick until);
// Every link open, no more loss, duplication or stale packets.
void calm_network(Simulation& sim);

class FaultDriver {
 public:
  FaultDriver(Simulation& sim, const Swarm& swarm, uint64_t seed);

  // Faults and proposals for the coming tick.
  void before_step();
  // Ends every fault: links open, no loss or duplication, disks released,
  // crashed participants restarted (except the ones lost for good).
  void heal();

  uint64_t proposals() const { return _proposals; }

 private:
  void restart_due();
  void maybe_crash();
  void crash(ParticipantId id);
  void crash_after_promise();
  void maybe_partition();
  void maybe_isolate_leader();
  void maybe_cut_link();
  void maybe_hang();
  void maybe_propose();
  void maybe_reconfigure();
  ParticipantId random_up();
  bool may_lose(ParticipantId id) const;

  Simulation& _sim;
  const Swarm& _swarm;
  consensus::Prng _prng;
  std::vector<Tick> _restart_at;  // per id; 0 = up or lost
  std::vector<Tick> _release_at;  // per id; 0 = disk not hung
  std::vector<bool> _lost;
  std::vector<consensus::Ballot> _promised;  // per id: last promise seen
  uint64_t _proposals = 0;
};

}  // namespace coworker::sim
