// MembershipDriver: plays a membership family's swarm against a Simulation
// in membership mode — arrivals, leaves and rejoins, crashes short and long
// (departures, re-arrivals), participants lost for good, partitions (random,
// one-way single links, the half split), stuck cores, a whole-cluster crash
// with staggered recoveries, a rolling restart — then heals and lets the
// cluster settle.
//
// One per seed, owned by run_seed (scenario.cc) for the families marked
// `membership`; draws from its own Prng stream
// (seed stream 3), so a seed's faults depend only on the seed and on what the
// cluster exposes (who is up, who leads, who is a voter).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "consensus/membership_entry.h"
#include "consensus/prng.h"
#include "tests/sim/scenario.h"
#include "tests/sim/simulation.h"

namespace coworker::sim {

class MembershipDriver {
 public:
  MembershipDriver(Simulation& sim, const Swarm& swarm, uint64_t seed);

  void before_step();
  void heal();

 private:
  void boot_arrivals();
  void restart_due();
  void maybe_crash();
  void maybe_lose();
  bool leader_hears_everyone() const;
  void add_returning_rules(std::vector<std::vector<ParticipantId>>& configurations) const;
  void maybe_leave();
  void maybe_rejoin();
  void maybe_partition();
  void maybe_one_way();
  void maybe_stick();
  void maybe_hang();
  void end_hang(ParticipantId host);
  void maybe_whole_crash();
  void maybe_split();
  void maybe_roll();
  void crash_after_acks();
  void ack_proposed(ParticipantId host, const consensus::Acks& acks);
  void maybe_cut_proposer();
  void maybe_crash_sole();
  bool maybe_damage_void_sole(ParticipantId host);
  void maybe_return_sole();
  void crash(ParticipantId host, Tick down);
  void maybe_damage(ParticipantId host);
  void maybe_plant(ParticipantId host);
  struct PlantWindow {
    std::vector<Disk::PlantAim> aims;
    bool writing = false;  // a leader among them has a write in flight
    std::set<ParticipantId> leaders;  // their hosts
  };
  PlantWindow plant_window(ParticipantId host);
  bool plantable(ParticipantId host) const;
  void restart_planted_early();
  static constexpr consensus::Position max_planted_entries = 4096;
  bool votes(ParticipantId id) const;
  bool leads_growth(ParticipantId host, const consensus::Acks& acks) const;
  bool acceptor_spared(ParticipantId id) const;
  bool may_discard(ParticipantId id) const;
  std::set<uint32_t> aimed_buckets(ParticipantId host, ParticipantId id) const;
  uint32_t hosts_up() const;
  ParticipantId host_of_dir(uint64_t dir) const;
  ParticipantId random_member_host();
  std::optional<ParticipantId> marked_member_host();

  Simulation& _sim;
  const Swarm& _swarm;
  consensus::Prng _prng;
  consensus::Prng _aims;  // the aimed faults' draws (stream 11): the others' stay
  std::vector<Tick> _arrive_at;  // per host; 0 = booted already or never
  std::vector<Tick> _restart_at;  // per host; 0 = none due
  std::vector<Tick> _unstick_at;  // per host; 0 = not stuck
  std::vector<Tick> _unhang_at;   // per host; 0 = its disk is not hung
  // Per host; 0 = none due: a crash of the life that began from nothing
  // (recovery.h step 4b), before it names a round.
  std::vector<Tick> _recrash_at;
  std::vector<bool> _lost;
  std::set<ParticipantId> _asked_to_leave;  // member ids
  uint32_t _leaves = 0;
  bool _lost_done = false;
  bool _damaged = false;  // damage_per_mille's one damage happened
  bool _planted = false;  // plant_per_mille's one write planted
  // ack_cut_per_mille: the one cut of an ack's proposer (host, when; 0:
  // none due).
  bool _cut_drawn = false;
  ParticipantId _cut_host = 0;
  Tick _cut_at = 0;
  // Sole members' confirming bumps proposed (bucket, step).
  std::set<std::pair<uint32_t, uint64_t>> _bumped;
  // void_sole_per_mille: each bucket's heir's directory when last looked
  // at (0: none), and the one void sole member drawn.
  std::vector<uint64_t> _heirs;
  struct VoidSole {
    ParticipantId host = 0;  // whose copy of the bucket is damaged at its restart
    uint32_t bucket = 0;
    uint64_t step = 0;
    uint64_t heir_dir = 0;
    ParticipantId sole_host = 0;  // the void heir's holder: the sole member, down
    // The void heir's holder: its damage names no bucket, so it gives up
    // its id and forgets a bucket left without a readable record
    // (LogFiles::DamageTarget::bucket_headers, mutation 48).
    bool given_up = false;
    // The void heir's holder: the sole member stays down until the holder
    // is an active member again (returned, or under a new id), then past
    // the departure timeout.
    bool sole_waits = false;
    Tick holder_active_since = 0;  // 0: not active now
  };
  std::optional<VoidSole> _void_sole;
  bool _healed = false;
  std::vector<ParticipantId> _ack_proposers;  // crash at the next step (crash_after_acks)
  // The rolling restart: the host restarted last (0: none yet), whether we
  // wait for it to serve, since when, and when the next one goes.
  ParticipantId _rolled = 0;
  bool _roll_waiting = false;
  Tick _roll_since = 0;
  Tick _roll_next_at = 0;
  uint32_t _rolls = 0;
};

}  // namespace coworker::sim
