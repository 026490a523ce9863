// PhaserSwarm: phasers of B buckets on N simulated participants, under a
// client workload and faults, with the membership played by an oracle.
//
// One per seed, single-threaded, deterministic (the seed's Prng alone). The
// oracle stands for the membership log (DESIGN §2, §3, §5) with its timing
// rules, so phaser bugs show up here isolated from membership bugs:
//   - it starts every government at its full size (as if grown), from the
//     distributor's targets over participants 1..N;
//   - it grants read leases: every tick, to each participant it can reach
//     (up, not cut off, disk not stuck, not reported), a grant counted from
//     its send tick and carrying the current slot; a participant's lease
//     counts only once it has applied that slot. In half the seeds a grant
//     is a message (issue 19 point 5): it arrives 1..grant_delay_max ticks
//     later, in any order, or is lost; one that finds its participant down,
//     cut off or booted again since it was sent is lost too (the server's
//     acks name the boot they answer);
//   - it departs a participant that is down, cut off, stuck or reported, but
//     only once its last grant is a lease plus a margin old; the last
//     survivor of a government is marked unreachable instead (it leaves every
//     government with another survivor and keeps its sole ones);
//   - news of a change reaches each participant after its own delay, in
//     order (a participant applies the log in slot order; in the seeds with
//     grants as messages, news_loss_per_mille of the messages are lost and
//     fetched again up to a departure timeout later, holding back what
//     follows); a departed participant that is cut off learns only after
//     the partition heals — until then it may still believe it leads.
// Faults: crashes (some for good, some of two replicas at once, some aimed
// at a leader mid-write), partitions (one-way and both ways, some aimed at a
// leader), hung disks, and the network's loss, duplication, delay, reorder
// and stale packets. Then everything heals and the swarm settles until the
// checkers are satisfied and every client window completed (liveness).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/phaser.h"
#include "consensus/prng.h"
#include "tests/sim/disk.h"
#include "tests/sim/network.h"
#include "tests/sim/phaser_checker.h"
#include "tests/sim/phaser_host.h"
#include "tests/sim/trace.h"
#include "tests/sim/workload.h"

namespace coworker::sim {

struct PhaserSwarmOptions {
  uint32_t participants = 3;
  uint32_t buckets = 8;
  uint32_t replicas = 3;
  NetworkOptions network;
  DiskOptions disk;
  WorkloadOptions workload;
  consensus::Phaser::Config phaser;  // caps, resend and report ticks
  Tick fault_ticks = 1500;
  Tick settle_ticks_max = 30000;
  // Membership timing.
  Tick lease_ticks = 20;
  Tick lease_margin = 5;
  Tick departure_ticks = 40;  // down, cut off or stuck this long: departed
  Tick notify_delay_max = 8;
  // Grants as messages (0, 0: received as sent).
  Tick grant_delay_max = 0;
  uint32_t grant_drop_per_mille = 0;
  uint32_t news_loss_per_mille = 0;
  // Faults, per tick per mille.
  uint32_t crash_per_mille = 0;
  uint32_t leader_crash_per_mille = 0;
  // Per answer: the leader crashes right after answering, before the commit
  // reaches its replicas (the next write or the trailing notice).
  uint32_t crash_after_answer_per_mille = 0;
  uint32_t double_crash_per_mille = 0;
  Tick down_min = 5;
  Tick down_max = 150;
  uint32_t lost_max = 0;  // participants crashed for good
  uint32_t partition_per_mille = 0;
  uint32_t leader_partition_per_mille = 0;
  uint32_t one_way_per_mille = 500;
  // One link between a bucket's leader and one of its replicas (issue 19
  // point 5): both ways, or one way — a leader deaf to the replica (it hears
  // the writes, its acks are lost) or a replica deaf to the leader. Neither
  // is cut off as a whole: only the leader's silence report departs it.
  uint32_t link_cut_per_mille = 0;
  Tick partition_min = 10;
  Tick partition_max = 200;
  uint32_t hang_per_mille = 0;
  Tick hang_min = 5;
  Tick hang_max = 120;
  uint32_t client_drop_per_mille = 0;
  uint32_t read_per_mille = 200;
};

struct PhaserSeedResult {
  bool violated = false;
  std::string violation;
  uint64_t acked = 0;
  uint64_t committed = 0;
  uint64_t reads = 0;
  uint64_t expired = 0;  // appends answered 409 connection_expired
  uint64_t handed_back = 0;  // messages a leadership's end handed back
  Tick ticks = 0;
  uint64_t digest = 0;
};

// The phaser families, in the order seeds cycle through them.
std::vector<std::string> phaser_family_names();
// Draws a swarm for the family named.
PhaserSwarmOptions draw_phaser_swarm(uint64_t seed, const std::string& family);
// Runs one seed to its end or its first violation.
PhaserSeedResult run_phaser_seed(uint64_t seed, const PhaserSwarmOptions& options, Trace& trace);
// The same, as coworker-sim's scenario families run a seed (scenario.h).
struct SeedResult;
struct Family;
SeedResult run_phaser_family(uint64_t seed, const Family& family, bool verbose);

class PhaserSwarm final : public PhaserHostEffects, public PhaserWorld {
 public:
  PhaserSwarm(uint64_t seed, const PhaserSwarmOptions& options, Trace& trace);
  ~PhaserSwarm();

  void step();
  void heal();
  bool settled(std::string* why);
  Tick now() const { return _now; }
  bool violated() const { return _checker.violated(); }
  const PhaserChecker& checker() const { return _checker; }
  Workload& workload() { return _workload; }

  // Scenario controls (tests and the fault driver).
  void crash(ParticipantId id, bool for_good);
  void restart(ParticipantId id);
  void cut_off(ParticipantId id, Tick until, bool one_way);
  void cut_link(uint32_t bucket, Tick until);
  void hang(ParticipantId id, Tick until);
  ParticipantId leader_of(uint32_t bucket) const;
  bool departed(ParticipantId id) const { return _departed.count(id) != 0; }
  bool up(ParticipantId id) const { return _nodes.at(id).host != nullptr; }

  // PhaserWorld.
  uint32_t buckets() const override { return _options.buckets; }
  consensus::Government government(uint32_t bucket) const override;
  std::vector<ParticipantId> participants() const override;
  const DurableImage& image(ParticipantId id) const override;
  bool live(ParticipantId id) const override;

  // PhaserHostEffects.
  void send(ParticipantId from, ParticipantId to, consensus::PhaserMessage message) override;
  void reply(ParticipantId at, const consensus::Reply& reply) override;
  void report(ParticipantId at, uint32_t bucket, ParticipantId silent) override;
  void leader_committed(ParticipantId at, const consensus::Write& write) override;
  void repair(ParticipantId at, uint32_t bucket) override;

 private:
  struct Node {
    std::unique_ptr<Disk> disk;
    std::unique_ptr<PhaserHost> host;  // null while down
    Tick restart_at = 0;               // 0: stays down (or is up)
    bool lost = false;                 // crashed for good
    Tick cut_until = 0;                // cut off from everyone (the membership too)
    Tick hung_until = 0;
    Tick hung_since = 0;
    Tick down_since = 0;
    Tick cut_since = 0;
    Tick last_grant = 0;               // the oracle's last grant sent to it
    bool reported = false;
    consensus::Slot applied = 0;       // membership news applied, in order
    std::vector<std::pair<Tick, consensus::Slot>> grants;  // (sent, slot), recent
    Tick news_at = 0;                  // its newest queued news' delivery tick
    uint64_t boots = 0;
  };
  struct Grant {
    Tick deliver = 0;
    ParticipantId to = 0;
    uint64_t boot = 0;  // the boot it was sent to
    Tick sent = 0;
    consensus::Slot slot = 0;
  };
  struct News {
    Tick deliver = 0;
    uint64_t sequence = 0;
    ParticipantId to = 0;
    consensus::Slot slot = 0;
    uint32_t bucket = 0;
    consensus::Government government;
    bool departed = false;  // "you are departed": stop
  };
  struct ClientPacket {
    Tick deliver = 0;
    uint64_t sequence = 0;
    bool request = true;
    AppendAttempt attempt;  // request
    ParticipantId at = 0;   // reply: from
    consensus::Reply reply;
  };

  void log(std::string_view name, uint64_t a, uint64_t b);
  void faults();
  void oracle();
  void depart(ParticipantId id);
  void announce(uint32_t bucket);
  void deliver_news();
  void deliver_grants();
  Tick news_delay();
  void deliver_clients();
  void serve_reads();
  bool lease_valid(ParticipantId id) const;
  bool reachable(ParticipantId id) const;
  void boot(ParticipantId id);
  std::set<uint32_t> dead_buckets() const;

  PhaserSwarmOptions _options;
  Trace& _trace;
  consensus::Prng _prng;
  Network _network;
  PhaserChecker _checker;
  Workload _workload;
  Tick _now = 0;
  bool _healed = false;
  std::map<ParticipantId, Node> _nodes;
  std::vector<consensus::Government> _truth;  // per bucket
  consensus::Slot _slot = 1;
  std::set<ParticipantId> _departed;
  std::vector<News> _news;  // kept sorted by (deliver, sequence)
  std::vector<Grant> _grants;  // in flight, in the order sent
  std::vector<ClientPacket> _clients;
  std::vector<ParticipantId> _crash_after_step;  // crashes asked for inside a host call
  uint64_t _sequence = 0;
  uint32_t _lost = 0;
};

}  // namespace coworker::sim
