// The phaser families: what a seed of each draws, and how a seed runs.
#include <fmt/core.h>

#include "consensus/assert.h"
#include "tests/sim/phaser_swarm.h"
#include "tests/sim/scenario.h"

namespace coworker::sim {

namespace {

void draw_common(consensus::Prng& prng, PhaserSwarmOptions& o) {
  o.participants = static_cast<uint32_t>(prng.between(3, 7));
  o.buckets = 1u << prng.between(2, 4);  // 4..16
  o.replicas = prng.chance(1, 4) && o.participants >= 5 ? 5 : 3;
  o.network.delay_min = 1;
  o.network.delay_max = prng.between(1, 4);
  o.network.reorder = prng.chance(1, 2);
  o.network.drop_per_mille = static_cast<uint32_t>(prng.below(30));
  o.network.duplicate_per_mille = static_cast<uint32_t>(prng.below(30));
  o.network.stale_per_mille = static_cast<uint32_t>(prng.below(5));
  o.network.stale_delay_max = 200;
  o.disk.latency_min = 0;
  o.disk.latency_max = prng.between(0, 3);
  // Small write caps make writes split windows and queues wait.
  o.phaser.write_messages_max = prng.chance(1, 2) ? prng.between(1, 4) : 4096;
  o.phaser.write_bytes_max = prng.chance(1, 4) ? 16 : size_t{1} << 20;
  o.phaser.queue_messages_max = prng.chance(1, 4) ? prng.between(2, 8) : 1 << 16;
  o.phaser.resend_ticks = static_cast<uint32_t>(prng.between(2, 6));
  o.departure_ticks = prng.between(30, 60);
  o.lease_ticks = prng.between(10, 20);
  o.lease_margin = prng.between(1, 5);
  // A leader reports a silent member after the departure timeout.
  o.phaser.report_ticks = static_cast<uint32_t>(o.departure_ticks);
  o.notify_delay_max = prng.between(0, 10);
  o.workload.buckets = o.buckets;
  o.workload.clients = static_cast<uint32_t>(prng.between(1, 6));
  o.workload.untracked_clients = static_cast<uint32_t>(prng.below(2));
  o.workload.window_max = static_cast<uint32_t>(prng.between(1, 6));
  o.workload.identifiers = static_cast<uint32_t>(prng.between(4, 64));
  o.workload.attempt_timeout = prng.between(20, 80);
  o.workload.abandon_per_mille = static_cast<uint32_t>(prng.below(200));
  o.workload.early_resubmit_per_mille = static_cast<uint32_t>(prng.below(50));
  o.fault_ticks = prng.between(600, 1500);
  o.read_per_mille = 300;
}

struct PhaserFamily {
  const char* name;
  void (*draw)(consensus::Prng& prng, PhaserSwarmOptions& o);
};

const PhaserFamily phaser_families_table[] = {
    {"phaser-calm",
     [](consensus::Prng& prng, PhaserSwarmOptions& o) {
       o.network.drop_per_mille = 0;
       o.network.stale_per_mille = 0;
       o.fault_ticks = prng.between(300, 600);
     }},
    {"phaser-crashes",
     [](consensus::Prng& prng, PhaserSwarmOptions& o) {
       o.crash_per_mille = static_cast<uint32_t>(prng.between(2, 10));
       o.leader_crash_per_mille = static_cast<uint32_t>(prng.between(2, 10));
       o.crash_after_answer_per_mille = static_cast<uint32_t>(prng.below(5));
       o.lost_max = o.participants >= 5 ? 2 : 1;
       o.client_drop_per_mille = static_cast<uint32_t>(prng.below(50));
     }},
    {"phaser-partitions",
     [](consensus::Prng& prng, PhaserSwarmOptions& o) {
       o.partition_per_mille = static_cast<uint32_t>(prng.between(2, 10));
       o.leader_partition_per_mille = static_cast<uint32_t>(prng.between(2, 10));
       o.one_way_per_mille = static_cast<uint32_t>(prng.below(1001));
     }},
    {"phaser-disks",
     [](consensus::Prng& prng, PhaserSwarmOptions& o) {
       o.hang_per_mille = static_cast<uint32_t>(prng.between(2, 10));
       o.crash_per_mille = static_cast<uint32_t>(prng.below(5));
       o.disk.latency_max = prng.between(1, 6);
     }},
    {"phaser-double",
     [](consensus::Prng& prng, PhaserSwarmOptions& o) {
       o.participants = static_cast<uint32_t>(prng.between(5, 7));
       o.double_crash_per_mille = static_cast<uint32_t>(prng.between(2, 6));
       o.crash_per_mille = static_cast<uint32_t>(prng.below(5));
       o.lost_max = 2;
     }},
    {"phaser-swarm",
     [](consensus::Prng& prng, PhaserSwarmOptions& o) {
       o.crash_per_mille = static_cast<uint32_t>(prng.below(8));
       o.leader_crash_per_mille = static_cast<uint32_t>(prng.below(8));
       o.crash_after_answer_per_mille = static_cast<uint32_t>(prng.below(3));
       o.double_crash_per_mille = o.participants >= 5 ? static_cast<uint32_t>(prng.below(4)) : 0;
       o.lost_max = static_cast<uint32_t>(prng.below(2));
       o.partition_per_mille = static_cast<uint32_t>(prng.below(8));
       o.leader_partition_per_mille = static_cast<uint32_t>(prng.below(8));
       o.hang_per_mille = static_cast<uint32_t>(prng.below(6));
       o.client_drop_per_mille = static_cast<uint32_t>(prng.below(50));
     }},
};

}  // namespace

std::vector<std::string> phaser_family_names() {
  std::vector<std::string> names;
  for (const PhaserFamily& f : phaser_families_table) names.emplace_back(f.name);
  return names;
}

PhaserSwarmOptions draw_phaser_swarm(uint64_t seed, const std::string& family) {
  consensus::Prng prng(seed ^ 0x7068617365ull);
  PhaserSwarmOptions options;
  draw_common(prng, options);
  for (const PhaserFamily& f : phaser_families_table) {
    if (family == f.name) {
      f.draw(prng, options);
      // Last, so the draws before it stay what they were: the server waits
      // 2 ticks before a trailing notice (tools/coworker/participant.cc).
      options.phaser.notice_ticks = static_cast<uint32_t>(prng.between(1, 3));
      draw_expiry(prng, options.phaser, options.workload);
      // Single-link cuts (issue 19 point 5) where links are already cut.
      if (options.partition_per_mille != 0 || options.leader_partition_per_mille != 0) {
        options.link_cut_per_mille = static_cast<uint32_t>(prng.between(2, 10));
      }
      // Grants as messages in half the seeds, from a stream of their own so
      // every other draw stays what it was.
      consensus::Prng grants(consensus::derive_seed(seed, 10));
      if (grants.chance(1, 2)) {
        options.grant_delay_max = grants.between(1, 4);
        options.grant_drop_per_mille = static_cast<uint32_t>(grants.below(300));
        options.news_loss_per_mille = static_cast<uint32_t>(grants.below(100));
      }
      options.disk.files = true;  // the server's log files (log_files.h)
      return options;
    }
  }
  COWORKER_ASSERT(false && "unknown phaser family");
  return options;
}

PhaserSeedResult run_phaser_seed(uint64_t seed, const PhaserSwarmOptions& options, Trace& trace) {
  trace.mix(seed);
  PhaserSwarm swarm(seed, options, trace);
  for (Tick t = 0; t < options.fault_ticks && !swarm.violated(); t++) swarm.step();
  bool settled = false;
  std::string why;
  if (!swarm.violated()) {
    swarm.heal();
    for (Tick t = 0; t < options.settle_ticks_max && !swarm.violated(); t++) {
      if (swarm.settled(&why)) {
        settled = true;
        break;
      }
      swarm.step();
    }
  }
  PhaserSeedResult result;
  result.violated = swarm.violated() || !settled;
  result.violation = swarm.violated() ? swarm.checker().violation()
                                      : (settled ? std::string() : "liveness: " + why);
  result.acked = swarm.checker().acked_count();
  result.committed = swarm.checker().committed_count();
  result.reads = swarm.checker().reads();
  result.expired = swarm.workload().expired();
  result.handed_back = swarm.workload().handed_back();
  result.ticks = swarm.now();
  trace.event(swarm.now(), "end", result.acked, result.committed, result.violated);
  result.digest = trace.digest();
  return result;
}

SeedResult run_phaser_family(uint64_t seed, const Family& family, bool verbose) {
  Trace trace(verbose);
  trace.note(0, fmt::format("seed={} family={}", seed, family.name));
  const PhaserSeedResult r = run_phaser_seed(seed, draw_phaser_swarm(seed, family.name), trace);
  SeedResult result;
  result.family = family.name;
  result.violated = r.violated;
  result.violation = r.violation;
  result.proposed = r.committed;
  result.acked = r.acked;
  result.expired = r.expired;
  result.handed_back = r.handed_back;
  result.ticks = r.ticks;
  result.digest = r.digest;
  return result;
}

}  // namespace coworker::sim
