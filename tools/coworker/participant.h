// Participant: one coworker process — the layers assembled (DESIGN §6).
//
// Created by main() once the flags are parsed, the data directory is locked
// and the boot hint read (boot.h step 1); run() starts the cores
// (reactor::Smp) and returns the exit code once they stopped. Every core
// serves HTTP from the start (503, /v1/health "recovering", until it can
// serve). Core 0 first replays every core's log on a thread of its own
// (boot.h step 2) while it heartbeats `recovering` from the hint
// (beacon.h); then every core opens its log and the membership starts. Per core (`Core`, core.h):
// the core's LogStore, the engine's storage over it, the BucketHost of the
// buckets assigned to the core (bucket b on core b mod --cores), an HTTP
// server on the core's SO_REUSEPORT listener, a ticker and a durability
// pump. On core 0 also (`ClusterNode`, cluster_node.h): the membership host
// and the peer transport.
//
// What crosses cores (reactor::submit_to, never shared memory): a client
// request for a bucket of another core; governments from core 0 to the
// bucket's core; phaser messages between the bucket's core and core 0,
// where the peer links live; reports of silent replicas to core 0; the
// /v1/cluster and /v1/health answers, built on core 0. Everything else is
// owned by one core: each core reads only its own objects, reached through
// this class's per-core pointers, and the immutable recovery image.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/recovery.h"
#include "consensus/assert.h"
#include "consensus/membership_node.h"
#include "http/router.h"
#include "consensus/phaser.h"
#include "reactor/ops.h"
#include "reactor/latch.h"
#include "reactor/smp.h"
#include "reactor/sync.h"
#include "tools/coworker/boot.h"
#include "tools/coworker/data_dir.h"
#include "tools/coworker/flags.h"
#include "tools/coworker/metrics.h"

namespace coworker::server {

class Core;
class ClusterNode;
class PeerTransport;

// Time in ticks, derived from --heartbeat-ms: a membership heartbeat is
// heartbeat_ticks ticks (DESIGN §3 timings become tick counts here).
struct Timing {
  reactor::Milliseconds tick{20};
  consensus::MembershipTiming membership;
  consensus::Paxos::Timing paxos;
  consensus::Phaser::Config phaser;
  uint64_t append_timeout_ticks = 100;  // a client append waits this long for its phaser
};
Timing timing_from(const ServerFlags& flags);

class Participant {
 public:
  // `hint`: who this participant was (boot.h step 1), heartbeated from
  // while the log replays; none for a fresh or arriving participant.
  Participant(ServerFlags flags, DataDir data_dir, std::optional<BootHint> hint);
  ~Participant();
  Participant(const Participant&) = delete;
  Participant& operator=(const Participant&) = delete;

  // Runs every core until a signal stops them; the exit code.
  int run();

  const ServerFlags& flags() const { return _flags; }
  const Timing& timing() const { return _timing; }
  const DataDir& data_dir() const { return _data_dir; }
  // The replayed state (boot.h step 2): read only once core 0 loaded it
  // (every core's log is opened after that).
  const bucket::EngineImage& image() const { return _loaded.image; }
  unsigned cores() const { return _flags.cores; }
  // The cluster's bucket count: --buckets (a restart checks it against the
  // membership state first).
  uint32_t buckets() const { return _flags.buckets; }
  unsigned core_of(uint32_t bucket) const { return bucket % _flags.cores; }
  // This participant's address in the membership log: "<peer>|<http>".
  const std::string& address() const { return _address; }

  // The calling core's objects (each used only on its own core).
  bool has_core(unsigned core) const { return _cores[core] != nullptr; }
  Core& core(unsigned core) {
    COWORKER_ASSERT(_cores[core] != nullptr);
    return *_cores[core];
  }
  // The calling core's counters (metrics.h): each core writes only its own.
  CoreMetrics& metrics() { return *_metrics[reactor::Loop::current().core()]; }
  const CoreMetrics& metrics_of(unsigned core) const { return *_metrics[core]; }
  bool has_cluster() const { return _cluster != nullptr; }
  ClusterNode& cluster() {
    COWORKER_ASSERT(_cluster != nullptr);
    return *_cluster;
  }

  // The cluster's id (its genesis draw), once the membership told core 0;
  // 0 before. Any core reads it: connection ids carry a check of it
  // (connection_text.h).
  uint64_t cluster_id() const { return _cluster_id.load(std::memory_order_relaxed); }
  void set_cluster_id(uint64_t id) { _cluster_id.store(id, std::memory_order_relaxed); }

  // Set by a core that cannot go on (its log failed, the cluster refused
  // us): every core stops and run() returns `code`.
  void fail(int code, const std::string& reason);

 private:
  // Every core: HTTP from the start (serve_http), the core's state and log
  // (start_core), then, once the loop stops, the cluster and the core closed.
  reactor::Task<void> core_main(unsigned core);
  reactor::Task<void> serve_http(unsigned core);
  // Returns once this core serves (core 0: the membership started), or
  // early when the process stops (fail() said why).
  reactor::Task<void> start_core(unsigned core);
  // Core 0: boot.h step 2 on its thread, heartbeating from the hint
  // meanwhile (beacon.h); false when it failed (fail() said why) or the
  // process stops.
  reactor::Task<bool> load_state();
  // SIGTERM: leave the cluster, then exit 0 (bounded by --leave-timeout-ms);
  // SIGINT, or SIGTERM while not a serving member or asked twice: stop.
  void on_signal(int signo);

  ServerFlags _flags;
  Timing _timing;
  DataDir _data_dir;
  const std::optional<BootHint> _hint;
  // Written by core 0 before it arrives at _state_loaded, then read by
  // every core; each core takes its index out of it.
  Loaded _loaded;
  std::unique_ptr<reactor::Latch> _state_loaded;  // every core arrives, core 0 once loaded
  std::atomic<bool> _stop_replay{false};           // core 0 tells the replay's thread
  std::string _address;
  std::vector<int> _http_fds;  // one SO_REUSEPORT listener per core
  std::unique_ptr<http::Router> _router;
  std::unique_ptr<reactor::Smp> _smp;
  std::vector<std::unique_ptr<Core>> _cores;  // slot c written by core c before it is ready
  std::unique_ptr<ClusterNode> _cluster;      // core 0's
  // Core 0's: the RecoveryBeacon's transport, listening, until the
  // ClusterNode takes it over (beacon.h).
  std::unique_ptr<PeerTransport> _handed_peers;
  std::vector<std::unique_ptr<CoreMetrics>> _metrics;  // slot c written by core c only
  std::atomic<uint64_t> _cluster_id{0};       // written by core 0 only
  bool _leaving = false;                      // SIGTERM came (core 0 only)
  std::unique_ptr<reactor::Latch> _all_ready;  // every core, once it can take governments
};

}  // namespace coworker::server
