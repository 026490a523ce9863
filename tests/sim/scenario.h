// Scenario families and the swarm: what coworker-sim runs for each seed.
//
// A seed picks its family (seed mod the number of families, so a seed always
// replays the same family), then draws every swarm option from its own Prng
// stream: cluster shape, network faults, disk latency, Paxos limits, and the
// rates of crashes, partitions, hung disks and client proposals. A run has
// two phases: faults for `fault_ticks`, then healing (every link open, no
// loss or duplication, crashed participants restarted except the ones lost
// for good, disks released) and settling until every checker is satisfied.
//
// All families are registered in families() below, in one place; the
// membership and phaser issues add theirs there.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/prng.h"
#include "tests/sim/simulation.h"

namespace coworker::sim {

// What a membership family (membership_driver.h) plays, besides the common
// faults: arrivals, leaves, long crashes, reports, stuck cores, restarts of
// the whole cluster, and the two shapes of DESIGN's hard cases.
struct MembershipSwarm {
  Tick arrive_max = 300;           // hosts not members at the start boot by then
  uint32_t leave_per_mille = 0;    // per tick: a random member leaves (graceful)
  uint32_t leaves_max = 0;
  bool leave_marked = false;       // half the leaves are asked of a marked member when one is
  uint32_t rejoin_per_mille = 0;   // per tick: a host that left boots again (a new arrival)
  uint32_t one_way_per_mille = 0;  // per tick: one link cut one way (bucket leader reports)
  uint32_t stuck_per_mille = 0;    // per tick: a participant's core is stuck
  Tick stuck_min = 20;
  Tick stuck_max = 200;
  Tick whole_crash_at = 0;         // every participant crashes then (0: never) ...
  Tick stagger_max = 0;            // ... and restarts within this many ticks
  Tick split_at = 0;               // hosts split in two halves then (0: never) ...
  Tick split_ticks = 0;            // ... for this long
  uint32_t lose = 0;               // participants crashed for good (never a voter majority)
  Tick lose_at = 0;
  // A rolling restart (an operator's upgrade): hosts crash one at a time in
  // host order, each down 1..rolling_down_max ticks; the next goes once the
  // last is a serving member again (0: no rolling restart).
  Tick rolling_down_max = 0;
  Tick rolling_pause_max = 0;      // ticks between one host serving and the next crash
  // Per mille of migration-ack proposals: the proposer crashes right after,
  // while the ack may still be decided (a restarted leader must bump its
  // buckets first: bucket/membership_host.h step 5, mutation 18).
  uint32_t ack_crash_per_mille = 0;
  // The same for proposals that hold a growth ack proposed by the bucket's
  // leader (newcomers in the government): the case mutation 18 needs.
  uint32_t growth_crash_per_mille = 0;
  // Per mille of restarts: the host's log is damaged at rest while it is
  // down (disk.h damage_at_rest), once per seed, on a host that is no
  // voter and whose every bucket has another member; its boot repairs
  // (bucket/repair.h): per bucket under its id when only buckets were hit,
  // else it gives up its id and arrives anew.
  uint32_t damage_per_mille = 0;
  // The damage hits a bucket's record's payload among the newest (so the
  // boot repairs per bucket, keeping its id), not any record.
  bool damage_bucket_payload = false;
  // Aimed faults (issue 19 point 6), drawn in seeds with damage:
  // - a bucket's record the damage prefers (bucket_payload), when one has a
  //   record among the newest: any bucket's; one the host leads (its void
  //   copy is still named leader at the boot: it must never lead, mutation
  //   37); or one its copy holds no position of (the next write is at 0,
  //   which a void copy could take as its register: it must not, 38).
  enum class DamageAim : uint8_t { any_bucket, led, empty };
  DamageAim damage_aim = DamageAim::any_bucket;
  // - per mille of acks a bucket waits on with no other member to serve
  //   it (a sole member's confirming bump, its heir named, bucket/table.h;
  //   a void leader shrinking itself out): the proposer is cut off from
  //   every other participant as it proposes, past the departure timeout.
  //   The heir's copy is then adopted: nothing it did not hold may have
  //   been committed meanwhile (mutation 43), nor may a void copy adopt
  //   (44); the void leader's hold ends unconfirmed: it must still not
  //   lead (37).
  uint32_t ack_cut_per_mille = 0;
  // - per mille of heirs named: the government's sole member crashes at
  //   once, before it proposes its confirming bump, and either restarts
  //   shortly with its copy of the bucket void (the heir's holder adopts;
  //   the void copy must not lead, 37), or stays down while the heir's
  //   holder restarts with its copy void (a void copy must not adopt, 44)
  //   or, 2 in 3, gives up its id and forgets the bucket (it must not
  //   adopt it empty, 48), until the holder has served for twice the
  //   departure timeout; the sole member confirms when back.
  uint32_t void_sole_per_mille = 0;
  // Per mille of restarts of a host whose id was departed meanwhile (it
  // arrives anew offering its old copies, DESIGN §5): one copy gets a
  // committed write no client sent (disk.h plant_write), once per seed.
  uint32_t plant_per_mille = 0;
};

struct Swarm {
  SimOptions sim;
  MembershipSwarm membership;  // used when sim.membership is set
  Tick fault_ticks = 1000;
  Tick settle_ticks_max = 20000;     // generous: a settled run stops at once
  uint32_t propose_per_mille = 100;  // per tick: a client proposes to a random participant
  uint32_t burst_max = 1;            // proposals per such event
  uint32_t crash_per_mille = 0;      // per tick: a random live participant crashes
  Tick down_min = 5;
  Tick down_max = 200;
  uint32_t promise_crash_per_mille = 0;  // a voter whose promise just rose crashes now
  uint32_t lost_max = 0;                 // participants never restarted (at most a voter minority)
  uint32_t partition_per_mille = 0;      // per tick: a new partition starts
  Tick partition_min = 10;
  Tick partition_max = 300;
  uint32_t one_way_per_mille = 500;       // share of partitions that cut one direction only
  uint32_t isolate_leader_per_mille = 0;  // per tick: the leader is cut off (both ways)
  // Per tick: one random link is cut, one way (a participant deaf to one
  // other, or one that hears it but cannot answer) or, in a third of them,
  // both ways; for partition_min..partition_max ticks.
  uint32_t link_cut_per_mille = 0;
  uint32_t hang_per_mille = 0;            // per tick: a random disk hangs
  Tick hang_min = 5;
  Tick hang_max = 100;
  uint32_t reconfigure_per_mille = 0;  // per tick: a random odd voter set is proposed
};

struct SeedResult;
struct Family {
  const char* name;
  const char* summary;
  void (*draw)(consensus::Prng& prng, Swarm& swarm);  // adjusts the common draw
  bool membership = false;  // runs membership_driver.h instead of the Paxos FaultDriver
  // Families with their own driver (the phaser swarm) run a seed themselves.
  SeedResult (*run)(uint64_t seed, const Family& family, bool verbose) = nullptr;
};

const std::vector<Family>& families();
const Family* find_family(std::string_view name);
const Family& family_for_seed(uint64_t seed);

struct SeedResult {
  std::string family;
  bool violated = false;
  std::string violation;
  uint64_t proposed = 0;
  uint64_t acked = 0;
  uint64_t duplicates = 0;
  uint64_t expired = 0;  // appends answered 409 connection_expired
  uint64_t handed_back = 0;  // messages a leadership's end handed back
  uint64_t digest = 0;
  Tick ticks = 0;
};

// Runs one seed to the end (or to its first violation).
SeedResult run_seed(uint64_t seed, const Family& family, bool verbose);

// The swarm a seed draws (exposed for the verbose header and tests).
Swarm draw_swarm(uint64_t seed, const Family& family);
// The largest clock drift, in millionths either way, that the lease margins
// of these options cover (docs/PROTOCOL.md, "What a tick is").
uint32_t drift_covered_ppm(const SimOptions& sim);
std::string describe(const Swarm& swarm);

}  // namespace coworker::sim
