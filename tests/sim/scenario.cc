#include "tests/sim/scenario.h"

#include <fmt/core.h>

#include "consensus/assert.h"
#include "tests/sim/faults.h"
#include "tests/sim/phaser_layer.h"
#include "tests/sim/phaser_swarm.h"
#include "tests/sim/membership_checker.h"
#include "tests/sim/membership_driver.h"

namespace coworker::sim {

namespace {

// The draw every family starts from: cluster shape, network, disk, limits.
void draw_common(consensus::Prng& prng, Swarm& swarm) {
  SimOptions& sim = swarm.sim;
  sim.participants = static_cast<uint32_t>(prng.between(3, 7));
  const uint64_t shape = prng.below(10);
  if (shape == 0) {
    sim.voters = 1;
  } else if (sim.participants >= 5 && shape >= 6) {
    sim.voters = 5;
  } else {
    sim.voters = 3;
  }
  static constexpr uint32_t drops[] = {0, 0, 10, 50, 150};
  sim.network.drop_per_mille = drops[prng.below(std::size(drops))];
  sim.network.duplicate_per_mille =
      prng.chance(1, 3) ? static_cast<uint32_t>(prng.between(1, 100)) : 0;
  sim.network.delay_min = 1;
  sim.network.delay_max = prng.between(1, 8);
  sim.network.reorder = prng.chance(1, 2);
  if (prng.chance(1, 2)) {
    sim.network.stale_per_mille = static_cast<uint32_t>(prng.between(1, 20));
    sim.network.stale_delay_max = prng.between(20, 400);
  }
  if (prng.chance(1, 2)) {
    sim.disk.latency_min = 0;
    sim.disk.latency_max = prng.between(1, 4);
  }
  sim.timing.election_jitter_ticks = prng.between(5, 40);
  // A deposed leader that does not notice keeps proposing: how long it
  // insists decides how much stale traffic the others see.
  sim.timing.leader_timeout_ticks = prng.between(30, 200);
  sim.limits.window_slots_max = prng.between(4, 64);
  sim.limits.batch_entries_max = prng.between(1, 16);
  sim.limits.learn_entries_max = prng.between(2, 64);
  sim.limits.retain_slots = prng.below(17);
  sim.snapshot_interval = prng.chance(1, 3) ? 0 : prng.between(4, 40);
  swarm.fault_ticks = prng.between(400, 1500);
  swarm.propose_per_mille = static_cast<uint32_t>(prng.between(20, 300));
  swarm.burst_max = static_cast<uint32_t>(prng.between(1, 4));
}

void draw_swarm_family(consensus::Prng& prng, Swarm& swarm) {
  swarm.crash_per_mille = static_cast<uint32_t>(prng.below(8));
  swarm.promise_crash_per_mille = static_cast<uint32_t>(prng.below(200));
  swarm.lost_max = static_cast<uint32_t>(prng.below(2));
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(8));
  swarm.hang_per_mille = static_cast<uint32_t>(prng.below(3));
  swarm.link_cut_per_mille = static_cast<uint32_t>(prng.below(5));
  swarm.isolate_leader_per_mille = static_cast<uint32_t>(prng.below(4));
}

// Whole sides, single links (one way or both) and the leader's links: a
// deaf candidate must be held by the lease the others still count.
void draw_partitions(consensus::Prng& prng, Swarm& swarm) {
  swarm.partition_per_mille = static_cast<uint32_t>(prng.between(5, 30));
  swarm.one_way_per_mille = static_cast<uint32_t>(prng.between(200, 800));
  swarm.partition_max = prng.between(30, 400);
  swarm.link_cut_per_mille = static_cast<uint32_t>(prng.between(3, 20));
  swarm.isolate_leader_per_mille = static_cast<uint32_t>(prng.between(2, 10));
}

void draw_crashes(consensus::Prng& prng, Swarm& swarm) {
  swarm.crash_per_mille = static_cast<uint32_t>(prng.between(5, 25));
  swarm.promise_crash_per_mille = static_cast<uint32_t>(prng.between(100, 600));
  swarm.down_min = 1;
  swarm.down_max = prng.between(5, 120);
  swarm.lost_max = static_cast<uint32_t>(prng.below(3));
  // Slow disks and slow links widen the windows between a record and the
  // messages that depend on it.
  swarm.sim.disk.latency_min = prng.below(2);
  swarm.sim.disk.latency_max = swarm.sim.disk.latency_min + prng.between(1, 6);
  swarm.sim.network.delay_max = prng.between(4, 16);
  swarm.sim.network.reorder = true;
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(5));
}

void draw_lagging(consensus::Prng& prng, Swarm& swarm) {
  swarm.sim.snapshot_interval = prng.between(2, 12);
  swarm.sim.limits.retain_slots = prng.below(4);
  swarm.propose_per_mille = static_cast<uint32_t>(prng.between(100, 400));
  swarm.partition_per_mille = static_cast<uint32_t>(prng.between(3, 10));
  swarm.partition_min = 100;
  swarm.partition_max = prng.between(200, 800);
  swarm.crash_per_mille = static_cast<uint32_t>(prng.below(4));
  swarm.down_max = prng.between(100, 600);
}

// Leaders cut off while they still believe they lead, voters crashing right
// after they promised, stale packets: the ingredients of lost promises and
// stale ballots.
void draw_takeover(consensus::Prng& prng, Swarm& swarm) {
  swarm.isolate_leader_per_mille = static_cast<uint32_t>(prng.between(5, 30));
  swarm.partition_min = 30;
  swarm.partition_max = prng.between(60, 400);
  swarm.sim.timing.leader_timeout_ticks = prng.between(60, 300);
  swarm.promise_crash_per_mille = static_cast<uint32_t>(prng.between(100, 900));
  swarm.crash_per_mille = static_cast<uint32_t>(prng.below(10));
  swarm.down_min = 1;
  swarm.down_max = prng.between(5, 60);
  swarm.sim.network.stale_per_mille = static_cast<uint32_t>(prng.between(0, 30));
  swarm.sim.network.stale_delay_max = prng.between(50, 300);
  swarm.sim.disk.latency_min = 0;
  swarm.sim.disk.latency_max = prng.between(0, 4);
}

// Voter sets change under the cluster's feet while it is partitioned and
// crashes: the configuration schedule of paxos.h steps 12-15.
void draw_reconfigure(consensus::Prng& prng, Swarm& swarm) {
  swarm.reconfigure_per_mille = static_cast<uint32_t>(prng.between(3, 20));
  swarm.sim.limits.window_slots_max = prng.between(2, 16);
  swarm.crash_per_mille = static_cast<uint32_t>(prng.below(8));
  swarm.promise_crash_per_mille = static_cast<uint32_t>(prng.below(300));
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(10));
  swarm.isolate_leader_per_mille = static_cast<uint32_t>(prng.below(5));
  swarm.lost_max = 0;  // a lost participant could be most of a future voter set
}

// ---- Membership families (membership_driver.h) ----

// What every membership family starts from: buckets, replicas, timings, the
// stand-in phasers. Client proposals do not exist in this mode.
void draw_membership(consensus::Prng& prng, Swarm& swarm, uint32_t static_members) {
  MembershipSimOptions membership;
  static constexpr uint32_t buckets[] = {8, 16, 32};
  membership.params.buckets = buckets[prng.below(std::size(buckets))];
  membership.params.replicas = swarm.sim.participants >= 5 && prng.chance(1, 4) ? 5 : 3;
  membership.params.cluster = prng.next();
  membership.static_members = static_members;
  membership.timing.snapshot_interval = prng.chance(1, 4) ? 0 : prng.between(8, 64);
  membership.executor_race_per_mille = static_cast<uint32_t>(prng.below(200));
  swarm.sim.membership = membership;
  swarm.sim.voters = 1;             // Paxos mode's fixed voters: unused here
  swarm.sim.snapshot_interval = 0;  // the node compacts itself
  swarm.sim.limits.window_slots_max = prng.between(4, 32);
  swarm.propose_per_mille = 0;
  swarm.fault_ticks = prng.between(800, 1600);
  swarm.settle_ticks_max = 20000;
  swarm.crash_per_mille = 0;
  swarm.partition_per_mille = 0;
  swarm.hang_per_mille = 0;
}

void draw_membership_grow(consensus::Prng& prng, Swarm& swarm) {
  draw_membership(prng, swarm, 0);
  swarm.membership.arrive_max = prng.between(50, 500);
  swarm.crash_per_mille = static_cast<uint32_t>(prng.below(3));
  swarm.down_min = 5;
  swarm.down_max = prng.between(20, 200);
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(4));
}

void draw_membership_churn(consensus::Prng& prng, Swarm& swarm) {
  const uint32_t hosts = swarm.sim.participants;
  draw_membership(prng, swarm, static_cast<uint32_t>(prng.between(std::min<uint32_t>(3, hosts), hosts)));
  swarm.membership.leave_per_mille = static_cast<uint32_t>(prng.between(1, 6));
  swarm.membership.leaves_max = static_cast<uint32_t>(prng.between(1, 3));
  swarm.membership.rejoin_per_mille = static_cast<uint32_t>(prng.between(1, 10));
  swarm.crash_per_mille = static_cast<uint32_t>(prng.between(2, 8));
  swarm.down_min = 5;
  swarm.down_max = prng.between(100, 500);  // long ones outlast the departure timeout
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(6));
}

void draw_membership_reports(consensus::Prng& prng, Swarm& swarm) {
  draw_membership(prng, swarm, swarm.sim.participants);
  swarm.membership.one_way_per_mille = static_cast<uint32_t>(prng.between(2, 10));
  swarm.membership.stuck_per_mille = static_cast<uint32_t>(prng.between(1, 5));
  swarm.partition_min = 50;
  swarm.partition_max = prng.between(100, 400);
  swarm.crash_per_mille = static_cast<uint32_t>(prng.below(3));
  swarm.down_min = 5;
  swarm.down_max = 100;
}

void draw_membership_voters(consensus::Prng& prng, Swarm& swarm) {
  swarm.sim.participants = static_cast<uint32_t>(prng.between(4, 7));
  draw_membership(prng, swarm, prng.chance(1, 2) ? 0 : swarm.sim.participants);
  swarm.membership.arrive_max = prng.between(50, 300);
  swarm.membership.leave_per_mille = static_cast<uint32_t>(prng.between(1, 4));
  swarm.membership.leaves_max = 2;
  swarm.membership.rejoin_per_mille = static_cast<uint32_t>(prng.between(1, 5));
  swarm.crash_per_mille = static_cast<uint32_t>(prng.between(1, 5));
  swarm.down_min = 50;
  swarm.down_max = 400;
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(4));
}

void draw_membership_restart(consensus::Prng& prng, Swarm& swarm) {
  draw_membership(prng, swarm, prng.chance(1, 3) ? 0 : swarm.sim.participants);
  swarm.membership.arrive_max = prng.between(50, 200);
  swarm.membership.whole_crash_at = prng.between(300, 700);
  swarm.membership.stagger_max = prng.between(5, 300);
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(4));
}

void draw_membership_split(consensus::Prng& prng, Swarm& swarm) {
  swarm.sim.participants = 6;
  draw_membership(prng, swarm, 6);
  swarm.membership.split_at = prng.between(100, 400);
  swarm.membership.split_ticks = prng.between(300, 900);
  swarm.fault_ticks = std::max<Tick>(swarm.fault_ticks, swarm.membership.split_at +
                                                            swarm.membership.split_ticks + 100);
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(2));
  // In three seeds of four a member leaves, one marked by the split when it
  // can: its leave races its return at the heal.
  if (prng.chance(3, 4)) {
    swarm.membership.leave_per_mille = static_cast<uint32_t>(prng.between(2, 6));
    swarm.membership.leaves_max = 1;
    swarm.membership.leave_marked = true;
  }
}

void draw_membership_lost(consensus::Prng& prng, Swarm& swarm) {
  swarm.sim.participants = 7;
  draw_membership(prng, swarm, 7);
  swarm.membership.lose = 3;
  swarm.membership.lose_at = prng.between(100, 500);
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(4));
}

// Phasers over the real membership (issue 5 on issue 4): a static start,
// governments at their targets, no migrations (a later issue grows
// governments; the stand-in executor and probes are off, the phasers report
// silent replicas themselves), clients and lease reads, and crashes, losses,
// partitions, one-way links, stuck cores and hung disks.
void draw_phaser_members(consensus::Prng& prng, Swarm& swarm) {
  swarm.sim.participants = static_cast<uint32_t>(prng.between(3, 7));
  draw_membership(prng, swarm, swarm.sim.participants);
  MembershipSimOptions& membership = *swarm.sim.membership;
  static constexpr uint32_t buckets[] = {4, 8, 16};
  membership.params.buckets = buckets[prng.below(std::size(buckets))];
  membership.executor = false;
  membership.probes = false;
  PhaserStackOptions phasers;
  phasers.phaser.write_messages_max = prng.chance(1, 2) ? prng.between(1, 4) : 4096;
  phasers.phaser.resend_ticks = static_cast<uint32_t>(prng.between(2, 6));
  // A leader reports a member silent for the departure timeout.
  phasers.phaser.report_ticks = static_cast<uint32_t>(membership.timing.departure_ticks);
  phasers.workload.clients = static_cast<uint32_t>(prng.between(1, 5));
  phasers.workload.untracked_clients = static_cast<uint32_t>(prng.below(2));
  phasers.workload.window_max = static_cast<uint32_t>(prng.between(1, 5));
  phasers.workload.identifiers = static_cast<uint32_t>(prng.between(4, 48));
  phasers.workload.attempt_timeout = prng.between(30, 120);
  phasers.workload.abandon_per_mille = static_cast<uint32_t>(prng.below(150));
  phasers.client_drop_per_mille = static_cast<uint32_t>(prng.below(30));
  phasers.read_per_mille = 300;
  swarm.sim.phasers = phasers;
  swarm.fault_ticks = prng.between(600, 1200);
  swarm.crash_per_mille = static_cast<uint32_t>(prng.below(5));
  swarm.down_min = 5;
  swarm.down_max = prng.between(20, 300);
  swarm.partition_per_mille = static_cast<uint32_t>(prng.below(4));
  swarm.partition_min = 20;
  swarm.partition_max = prng.between(50, 300);
  swarm.hang_per_mille = static_cast<uint32_t>(prng.below(4));
  swarm.hang_min = 10;
  swarm.hang_max = prng.between(40, 200);
  swarm.membership.one_way_per_mille = static_cast<uint32_t>(prng.below(4));
  swarm.membership.stuck_per_mille = static_cast<uint32_t>(prng.below(3));
  if (swarm.sim.participants >= 5 && prng.chance(1, 3)) {
    swarm.membership.lose = 2;
    swarm.membership.lose_at = prng.between(100, 500);
  }
}

// Phasers over the real membership with the engine's migrations: a static
// start with one member per government, so every bucket migrates to its
// target under load — growth when the bucket is still empty (held until the
// ack is decided), reorders (abdication: the new leader usurps), shrinks —
// while clients write and read. Faults stay below the departure timeout:
// a departed participant would arrive anew under an id that hosts no
// phasers in the simulator (acclimation is the phaser part 2 issue's).
void draw_phaser_grow(consensus::Prng& prng, Swarm& swarm) {
  draw_phaser_members(prng, swarm);
  MembershipSimOptions& membership = *swarm.sim.membership;
  membership.migrations = true;
  membership.one_member_start = true;
  // Long timeouts against short faults: no participant is departed (and
  // none arrives anew) unless faults pile up on one for 500 ticks.
  membership.timing.departure_ticks = 500;
  membership.timing.recovery_ticks = 500;
  swarm.sim.phasers->phaser.report_ticks = 500;
  const Tick below = 40;
  swarm.membership.lose = 0;
  swarm.membership.one_way_per_mille = 0;
  swarm.membership.stuck_per_mille = 0;
  swarm.down_max = std::min<Tick>(swarm.down_max, below);
  swarm.partition_max = std::min<Tick>(swarm.partition_max, below);
  swarm.partition_min = std::min<Tick>(swarm.partition_min, swarm.partition_max);
  swarm.hang_max = std::min<Tick>(swarm.hang_max, below);
  swarm.hang_min = std::min<Tick>(swarm.hang_min, swarm.hang_max);
}

// Phasers with the engine's migrations and departures (issue 11): crashes,
// partitions, stuck cores and hung disks past the departure timeout depart
// participants, which arrive anew under new ids with their old copies on
// disk; buckets shrink away from them, then grow back to them with
// acclimation (phaser.h step 9) and abdicate to their target leaders, under
// the full client workload. Restarted leaders hold their buckets until a
// bump (membership_host.h step 5).
void draw_phaser_churn(consensus::Prng& prng, Swarm& swarm) {
  draw_phaser_members(prng, swarm);
  MembershipSimOptions& membership = *swarm.sim.membership;
  membership.migrations = true;
  membership.one_member_start = prng.chance(1, 2);
  swarm.crash_per_mille = static_cast<uint32_t>(prng.between(1, 6));
  swarm.membership.plant_per_mille = 500;
}

// Phasers as a cluster forms (issue 11): one participant bootstraps holding
// every bucket, the others (up to seven) arrive one by one while clients
// write, so buckets grow with positions and abdicate as each arrival moves
// the targets; some participants leave again, down to three.
void draw_phaser_arrivals(consensus::Prng& prng, Swarm& swarm) {
  draw_phaser_members(prng, swarm);
  MembershipSimOptions& membership = *swarm.sim.membership;
  membership.static_members = 0;
  membership.migrations = true;
  swarm.membership.arrive_max = prng.between(50, 500);
  swarm.membership.lose = 0;
  const uint32_t hosts = swarm.sim.participants;
  if (hosts > 3 && prng.chance(1, 2)) {
    swarm.membership.leave_per_mille = static_cast<uint32_t>(prng.between(1, 4));
    swarm.membership.leaves_max = static_cast<uint32_t>(prng.between(1, hosts - 3));
  }
}

// Phasers under a rolling restart (issue 11 point 8, issue 16 point 2):
// every host in turn is stopped and started again on its disk while clients
// write and read, the next only once the last serves again; mostly within
// the departure timeout (it comes back as the same member: recovery, the
// boot hold, a bump), sometimes past it (departed, it arrives anew and its
// buckets grow back). Light faults beside.
void draw_phaser_rolling(consensus::Prng& prng, Swarm& swarm) {
  draw_phaser_members(prng, swarm);
  MembershipSimOptions& membership = *swarm.sim.membership;
  membership.migrations = true;
  membership.one_member_start = prng.chance(1, 2);
  swarm.crash_per_mille = 0;
  swarm.membership.lose = 0;
  swarm.membership.stuck_per_mille = 0;
  const Tick departure = membership.timing.departure_ticks;
  swarm.membership.rolling_down_max =
      prng.chance(3, 4) ? std::max<Tick>(2, departure / 2) : departure * 2;
  swarm.membership.rolling_pause_max = prng.between(0, 100);
  swarm.fault_ticks = prng.between(1500, 3000);
  swarm.membership.plant_per_mille = 500;
}

// Phasers with damage at rest (issue 19 point 4, issue 11 point 8): a
// participant down after a crash has a record of its log damaged (a bit
// flipped, or another record's bytes written over it); its restart runs
// the server's recovery and repair plan (bucket/repair.h) on its files.
// Damage to its membership state or promise counter: it gives up its id,
// keeps only what the damage did not reach, and arrives anew; the old id is
// departed, and its buckets grow back to the new one under load. Damage to
// buckets only (half the seeds aim at a bucket record's payload): it keeps
// its id, its void copies are shrunk out and grown back (membership_host.h
// step 6), unless it was departed while down. Sizes with a non-voter (4,
// 6, 7: the rule's voters are 3 or 5), since the damaged one must be no
// voter (driver). Faults aimed at void leaders and heirs come on top
// (draw_swarm: MembershipSwarm::damage_aim, ack_cut_per_mille,
// void_sole_per_mille).
void draw_phaser_repair(consensus::Prng& prng, Swarm& swarm) {
  draw_phaser_members(prng, swarm);
  static constexpr uint32_t sizes[] = {4, 6, 7};
  const uint32_t hosts = sizes[prng.below(std::size(sizes))];
  swarm.sim.participants = hosts;
  MembershipSimOptions& membership = *swarm.sim.membership;
  membership.static_members = hosts;
  membership.params.replicas = 3;
  membership.migrations = true;
  swarm.membership.lose = 0;
  swarm.crash_per_mille = static_cast<uint32_t>(prng.between(3, 8));
  swarm.down_max = prng.between(20, 200);
  swarm.membership.damage_per_mille = 500;
  swarm.membership.damage_bucket_payload = prng.chance(1, 2);
}

void draw_calm(consensus::Prng& prng, Swarm& swarm) {
  swarm.sim.network.drop_per_mille = 0;
  swarm.sim.network.duplicate_per_mille = 0;
  swarm.fault_ticks = prng.between(200, 600);
}

}  // namespace

const std::vector<Family>& families() {
  static const std::vector<Family> all = {
      {"paxos-swarm", "a bit of every fault", draw_swarm_family},
      {"paxos-partitions", "frequent symmetric and one-way partitions, single links, the leader's",
       draw_partitions},
      {"paxos-crashes", "frequent crashes and restarts, slow disks, slow links", draw_crashes},
      {"paxos-lagging", "long partitions and small snapshot intervals: catch-up", draw_lagging},
      {"paxos-takeover", "leaders cut off, voters crashing after promises, stale packets",
       draw_takeover},
      {"paxos-calm", "delays only: the baseline", draw_calm},
      {"paxos-reconfigure", "random voter sets scheduled under faults", draw_reconfigure},
      {"member-grow", "a cluster grows from one participant; retried arrivals",
       draw_membership_grow, true},
      {"member-churn", "leaves, rejoins, long crashes: departures and re-arrivals",
       draw_membership_churn, true},
      {"member-reports", "one-way links and stuck cores: bucket leaders report replicas",
       draw_membership_reports, true},
      {"member-voters", "voters leave and depart: voter replacement", draw_membership_voters,
       true},
      {"member-restart", "the whole cluster crashes, recoveries staggered",
       draw_membership_restart, true},
      {"member-split", "six participants split 3 | 3: marks, not departures; a marked one leaves",
       draw_membership_split, true},
      {"member-lost", "seven participants, three lost for good", draw_membership_lost, true},
      {"phaser-members", "phasers over the real membership log: crashes, losses, partitions, "
       "stuck cores, hung disks", draw_phaser_members, true},
      {"phaser-grow", "phasers migrate to their targets under load: growth of empty buckets, "
       "abdications, shrinks; short faults", draw_phaser_grow, true},
      {"phaser-churn", "phasers with migrations and departures: re-arrivals grow back with "
       "acclimation, restarted leaders bump", draw_phaser_churn, true},
      {"phaser-arrivals", "phasers as a cluster forms by arrivals one by one, some leaving "
       "again", draw_phaser_arrivals, true},
      {"phaser-rolling", "phasers under a rolling restart: every host in turn stopped and "
       "started on its disk, the next once it serves", draw_phaser_rolling, true},
      {"phaser-repair", "phasers with damage at rest: a participant repairs at its restart, "
       "arrives anew, its buckets grow back", draw_phaser_repair, true},
      {"phaser-calm", "phasers, delays and light loss only", nullptr, false, run_phaser_family},
      {"phaser-crashes", "phasers: crashes, leaders crashed mid-write, some for good", nullptr, false,
       run_phaser_family},
      {"phaser-partitions", "phasers: one-way and two-way partitions, cut-off leaders", nullptr, false,
       run_phaser_family},
      {"phaser-disks", "phasers: hung and slow disks, crashes", nullptr, false, run_phaser_family},
      {"phaser-double", "phasers: two replicas of a government crash at once", nullptr, false,
       run_phaser_family},
      {"phaser-swarm", "phasers: a bit of every fault", nullptr, false, run_phaser_family},
  };
  return all;
}

const Family* find_family(std::string_view name) {
  for (const Family& family : families()) {
    if (name == family.name) return &family;
  }
  return nullptr;
}

const Family& family_for_seed(uint64_t seed) { return families()[seed % families().size()]; }

uint32_t drift_covered_ppm(const SimOptions& sim) {
  // Paxos (paxos.h step 7): the leader's lease of L - M ticks from the send
  // of a heartbeat must end, on a slow leader clock, before a fast voter
  // that got it a tick later or more is free again after L of its ticks:
  // slow + (L - 1) slow / fast >= L - M, one tick of rounding on each side.
  // Membership (membership_node.h steps 2, 3): a member's lease of L ticks
  // from its heartbeat's send must end, on a slow member clock, before a
  // fast leader has waited L + M of its ticks since the ack it sent a tick
  // later or more: slow + (L + M - 1) slow / fast >= L.
  const uint64_t one = 1'000'000;
  const uint64_t lp = sim.timing.lease_ticks;
  uint64_t mp = sim.timing.lease_margin_ticks;
  if (sim.membership) mp = std::max<uint64_t>(mp, sim.membership->timing.margin_ticks);
  const auto covered = [&](uint64_t d) {
    const uint64_t slow = one - d;
    const uint64_t fast = one + d;
    bool ok = lp > mp && slow * fast + (lp - 1) * slow * one >= (lp - mp) * fast * one;
    if (sim.membership) {
      const uint64_t lm = sim.membership->timing.lease_ticks;
      const uint64_t mm = sim.membership->timing.margin_ticks;
      ok = ok && slow * fast + (lm + mm - 1) * slow * one >= lm * fast * one;
    }
    return ok;
  };
  uint64_t low = 0;
  uint64_t high = one / 5;  // 20%: far past any margin drawn here
  if (!covered(low)) return 0;
  while (low < high) {
    const uint64_t mid = (low + high + 1) / 2;
    if (covered(mid)) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return static_cast<uint32_t>(low);
}

Swarm draw_swarm(uint64_t seed, const Family& family) {
  consensus::Prng prng(consensus::derive_seed(seed, 1));
  Swarm swarm;
  draw_common(prng, swarm);
  family.draw(prng, swarm);
  // Last, so the draws before it stay what they were: the server waits 2
  // ticks before a trailing notice (tools/coworker/participant.cc).
  if (swarm.sim.phasers) {
    swarm.sim.phasers->phaser.notice_ticks = static_cast<uint32_t>(prng.between(1, 3));
    draw_expiry(prng, swarm.sim.phasers->phaser, swarm.sim.phasers->workload);
  }
  // Clock rates (issue 19 point 5), in half the seeds, from a stream of
  // their own so every other draw stays what it was: up to nine tenths of
  // the drift the lease margins cover. Paxos alone has no margin unless
  // given one: these seeds give it the membership's default, 2 ticks.
  consensus::Prng clocks(consensus::derive_seed(seed, 7));
  if (clocks.chance(1, 2)) {
    if (!swarm.sim.membership && swarm.sim.timing.lease_margin_ticks == 0) {
      swarm.sim.timing.lease_margin_ticks = 2;
    }
    swarm.sim.clock_drift_ppm = drift_covered_ppm(swarm.sim) * 9 / 10;
  }
  // Crashes right after a migration ack is proposed, in the families that
  // migrate (a stream of their own, as above), back within a few ticks.
  consensus::Prng acks(consensus::derive_seed(seed, 8));
  if (swarm.sim.membership && swarm.sim.membership->migrations) {
    swarm.membership.ack_crash_per_mille = static_cast<uint32_t>(acks.between(20, 100));
    swarm.membership.growth_crash_per_mille = static_cast<uint32_t>(acks.between(500, 900));
  }
  // Aimed faults where damage is drawn (a stream of their own, as above).
  consensus::Prng aims(consensus::derive_seed(seed, 9));
  if (swarm.membership.damage_per_mille != 0) {
    static constexpr MembershipSwarm::DamageAim damage_aims[] = {
        MembershipSwarm::DamageAim::any_bucket, MembershipSwarm::DamageAim::led,
        MembershipSwarm::DamageAim::empty};
    swarm.membership.damage_aim = damage_aims[aims.below(std::size(damage_aims))];
    swarm.membership.ack_cut_per_mille = aims.chance(2, 3) ? 700 : 0;
    swarm.membership.void_sole_per_mille = aims.chance(3, 4) ? 1000 : 0;
  }
  // The server's log files under every membership-mode disk (issue 19
  // points 3 and 4; tests/sim/log_files.h): about 15% more time per seed.
  if (swarm.sim.membership) swarm.sim.disk.files = true;
  return swarm;
}

std::string describe(const Swarm& swarm) {
  const SimOptions& sim = swarm.sim;
  return fmt::format(
      "participants={} voters={} drop={}‰ dup={}‰ delay=1..{} reorder={} stale={}‰x{} "
      "leader_timeout={} disk={}..{} "
      "window={} batch={} learn={} retain={} snapshot_every={} faults={} ticks "
      "propose={}‰x{} crash={}‰ promise_crash={}‰ lost<={} partition={}‰ one_way={}‰ "
      "isolate_leader={}‰ link_cut={}‰ hang={}‰ reconfigure={}‰ clock_drift={}ppm",
      sim.participants, sim.voters, sim.network.drop_per_mille, sim.network.duplicate_per_mille,
      sim.network.delay_max, sim.network.reorder, sim.network.stale_per_mille,
      sim.network.stale_delay_max, sim.timing.leader_timeout_ticks, sim.disk.latency_min,
      sim.disk.latency_max, sim.limits.window_slots_max, sim.limits.batch_entries_max,
      sim.limits.learn_entries_max, sim.limits.retain_slots, sim.snapshot_interval,
      swarm.fault_ticks, swarm.propose_per_mille, swarm.burst_max, swarm.crash_per_mille,
      swarm.promise_crash_per_mille, swarm.lost_max, swarm.partition_per_mille,
      swarm.one_way_per_mille, swarm.isolate_leader_per_mille, swarm.link_cut_per_mille,
      swarm.hang_per_mille, swarm.reconfigure_per_mille, sim.clock_drift_ppm);
}

namespace {

// Faults for fault_ticks, then healing and settling: the same for both
// drivers (FaultDriver, MembershipDriver).
template <class Driver>
SeedResult play(uint64_t seed, const Family& family, bool verbose) {
  const Swarm swarm = draw_swarm(seed, family);
  Trace trace(verbose);
  trace.note(0, fmt::format("seed={} family={} {}", seed, family.name, describe(swarm)));
  trace.mix(seed);
  Simulation sim(seed, swarm.sim, trace);
  Driver faults(sim, swarm, seed);
  for (Tick t = 0; t < swarm.fault_ticks && !sim.violated(); t++) {
    faults.before_step();
    sim.step();
  }
  if (!sim.violated()) {
    faults.heal();
    if (PhaserLayer* phasers = sim.phasers()) phasers->heal();
    sim.settle(swarm.settle_ticks_max);
  }
  SeedResult result;
  result.family = family.name;
  result.violated = sim.violated();
  result.violation = sim.violation();
  result.proposed = sim.proposals().proposed();
  result.acked = sim.proposals().acked();
  if (PhaserLayer* phasers = sim.phasers()) {
    result.acked += phasers->checker().acked_count();
    result.expired = phasers->workload().expired();
    result.handed_back = phasers->workload().handed_back();
  }
  result.duplicates = sim.proposals().duplicates();
  result.ticks = sim.now();
  trace.event(sim.now(), "end", result.acked, result.violated);
  if (const MembershipChecker* membership = sim.membership()) {
    const MembershipChecker::Counts counts = membership->counts();
    trace.event(sim.now(), "members", counts.arrivals, counts.departures, counts.marks,
                counts.acks_confirmed, counts.acks_void, counts.reconfigurations);
    trace.note(sim.now(),
               fmt::format("arrivals={} retried={} departures={} marks={} returns={} leaves={} "
                           "reconfigurations={} acks={} void_acks={} adoptions={}",
                           counts.arrivals, counts.retried, counts.departures, counts.marks,
                           counts.returns, counts.leaves, counts.reconfigurations,
                           counts.acks_confirmed, counts.acks_void,
                           membership->reference().adoptions()));
    const bucket::BucketTable& table = membership->table();
    uint32_t at_target = 0;
    for (uint32_t b = 0; b < table.buckets(); b++) {
      at_target += table.current(b).replicas == table.target(b) ? 1 : 0;
    }
    trace.note(sim.now(), fmt::format("governments at their target: {} of {}", at_target,
                                      table.buckets()));
    if (verbose) trace.note(sim.now(), "state:\n" + sim.describe_state());
  }
  result.digest = trace.digest();
  return result;
}

}  // namespace

SeedResult run_seed(uint64_t seed, const Family& family, bool verbose) {
  if (family.run != nullptr) return family.run(seed, family, verbose);
  if (family.membership) return play<MembershipDriver>(seed, family, verbose);
  return play<FaultDriver>(seed, family, verbose);
}

}  // namespace coworker::sim
