// ServerFlags: the command line of build/bin/coworker (DESIGN §3, "Defaults
// and limits" and "Command line"), parsed by parse_server_flags.
//
//   coworker --listen 127.0.0.1:7000 --peer-listen 127.0.0.1:7100 --data-dir DIR
//            [--join HOST:PORT[,HOST:PORT...]]... [--cores N] [--buckets B]
//            [--replicas K] [--sync always|none] [--heartbeat-ms MS]
//            [--departure-timeout-ms MS] [--recovery-timeout-ms MS]
//            [--max-connections N] [--segment-bytes SIZE] [--retention-bytes SIZE]
//            [--retention-ms MS] [--connection-expiry DURATION]
//            [--leave-timeout-ms MS] [--log-level error|warn|info|debug]
//            [--help] [--version]
//
// SIZE is bytes or a number with KiB/MiB/GiB; DURATION is like 24h, 90m,
// 3600s, 250ms, or plain milliseconds. Each value is range-checked here, and
// the flags that constrain each other are checked together, so a participant
// started with a bad command line exits at once with exit code 2 and one line
// "coworker: <reason>" that names the flag; the layers below may assert.
//
// Parsed once on the main thread before the cores start; each core then
// reads its own copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bucket/log_store.h"
#include "bucket/segment.h"
#include "tools/common/cli.h"
#include "tools/coworker/log.h"

namespace coworker::server {

// --sync: `none` skips fdatasync (benchmarks only).
enum class SyncMode : uint8_t { always, none };

struct ServerFlags {
  static constexpr uint64_t unlimited = UINT64_MAX;  // --retention-bytes / --retention-ms
  static constexpr unsigned cores_max = 256;
  static constexpr uint32_t buckets_max = 65536;
  static constexpr unsigned replicas_max = 7;
  // A departure comes after the read leases it must outlast: a lease is 4
  // heartbeats and its drift margin 0.4 (consensus::MembershipTiming).
  static constexpr uint32_t heartbeats_per_departure_min = 5;
  // A segment holds at least one whole phaser write (up to 1 MiB plus its
  // first message of up to 1 MiB) with room to spare; a multiple of 4 KiB for
  // the log store's O_DIRECT zero-fill (bucket/log_store.cc).
  static constexpr uint64_t segment_bytes_min = 4ull << 20;
  static constexpr uint64_t segment_bytes_max = 16ull << 30;
  static constexpr uint64_t segment_bytes_align = 4096;

  cli::Address listen;       // clients' HTTP address (required)
  cli::Address peer_listen;  // peers' address; outgoing peer links bind its host (required)
  std::string data_dir;      // required
  std::vector<cli::Address> join;  // any members' peer addresses; empty: bootstrap or restart
  unsigned cores = 1;              // parse_server_flags sets the default: online_cpus()
  uint32_t buckets = 64;           // a power of two, 1..65536
  unsigned replicas = 3;           // odd, 1..7
  SyncMode sync = SyncMode::always;
  bucket::Prepare prepare = bucket::Prepare::recycle;  // how log segments are made ready
  uint32_t heartbeat_ms = 100;
  uint32_t departure_timeout_ms = 1000;  // >= 5 heartbeats
  uint32_t recovery_timeout_ms = 30000;
  uint64_t max_connections = 100000;  // live connections per issuer
  uint64_t segment_bytes = 64ull << 20;
  uint64_t retention_bytes = unlimited;
  uint64_t retention_ms = unlimited;
  uint64_t connection_expiry_ms = 24ull * 3600 * 1000;
  uint32_t leave_timeout_ms = 30000;
  LogLevel log_level = LogLevel::info;
};

// The online CPUs, clamped to 1..ServerFlags::cores_max: the --cores default.
unsigned online_cpus();

// Either the flags to run with, or what to print before exiting: help or
// version text (stdout, exit 0), or one error line (stderr, exit 2).
struct ParseResult {
  std::optional<ServerFlags> flags;
  cli::CliExit exit;  // meaningful only without flags
};

ParseResult parse_server_flags(int argc, const char* const* argv);

// The log store's configuration these flags ask for, for core `core` of
// the log in `log_dir` (the participant's cores, and a re-map's new logs).
bucket::LogStore::Config log_store_config(const ServerFlags& flags, const std::string& log_dir,
                                          unsigned core);

}  // namespace coworker::server
