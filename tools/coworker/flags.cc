// The coworker command line (see flags.h): each flag with its default, range
// and help text, then the checks that involve two flags.
#include "tools/coworker/flags.h"

#include <unistd.h>

#include <algorithm>
#include <string_view>

namespace coworker::server {
namespace {

using cli::CliError;
using cli::Parsed;

constexpr uint64_t day_ms = 24ull * 3600 * 1000;
constexpr uint64_t connection_expiry_ms_max = 3650 * day_ms;

Parsed<uint32_t> parse_buckets(std::string_view text) {
  Parsed<uint32_t> n = cli::count_in<uint32_t>(1, ServerFlags::buckets_max)(text);
  if (n && (*n & (*n - 1)) != 0) return CliError{std::to_string(*n) + " is not a power of two"};
  return n;
}

Parsed<unsigned> parse_replicas(std::string_view text) {
  Parsed<unsigned> n = cli::count_in<unsigned>(1, ServerFlags::replicas_max)(text);
  if (n && *n % 2 == 0) return CliError{std::to_string(*n) + " is not odd (1, 3, 5 or 7)"};
  return n;
}

Parsed<uint64_t> parse_segment_bytes(std::string_view text) {
  Parsed<uint64_t> bytes = cli::parse_size_bytes(text);
  if (!bytes) return bytes;
  if (*bytes < ServerFlags::segment_bytes_min || *bytes > ServerFlags::segment_bytes_max) {
    return CliError{std::to_string(*bytes) + " is out of range 4MiB..16GiB"};
  }
  if (*bytes % ServerFlags::segment_bytes_align != 0) {
    return CliError{std::to_string(*bytes) + " is not a multiple of 4KiB"};
  }
  return bytes;
}

// "unlimited", or a non-zero value that `convert` accepts.
cli::Convert<uint64_t> or_unlimited(cli::Convert<uint64_t> convert) {
  return [convert = std::move(convert)](std::string_view text) -> Parsed<uint64_t> {
    if (text == "unlimited") return ServerFlags::unlimited;
    Parsed<uint64_t> n = convert(text);
    if (n && *n == 0) return CliError{"0 is not allowed (say 'unlimited' to keep everything)"};
    return n;
  };
}

Parsed<uint64_t> parse_connection_expiry(std::string_view text) {
  Parsed<uint64_t> ms = cli::parse_duration_ms(text);
  if (ms && (*ms == 0 || *ms > connection_expiry_ms_max)) {
    return CliError{std::string(text) + " is out of range 1ms..3650d"};
  }
  return ms;
}

void add_addresses(cli::FlagSet& set, ServerFlags* f) {
  set.add("--listen", &f->listen, cli::parse_address, "Client (HTTP) address")
      ->required()
      ->type_name("HOST:PORT");
  set.add("--peer-listen", &f->peer_listen, cli::parse_address,
          "Peer address; outgoing peer links bind its host")
      ->required()
      ->type_name("HOST:PORT");
  set.add<std::string>(
         "--data-dir", &f->data_dir,
         [](std::string_view text) -> Parsed<std::string> {
           if (text.empty()) return CliError{"must not be empty"};
           return std::string(text);
         },
         "Data directory (log, membership, cluster id)")
      ->required()
      ->type_name("DIR");
  set.add_address_list("--join", &f->join,
                       "Members' peer addresses to arrive through (repeatable)");
}

void add_shape(cli::FlagSet& set, ServerFlags* f) {
  set.add("--cores", &f->cores, cli::count_in<unsigned>(1, ServerFlags::cores_max),
          "Reactor threads, one per core (1..256)")
      ->type_name("N")
      ->default_str("online CPUs (" + std::to_string(f->cores) + ")");
  set.add("--buckets", &f->buckets, parse_buckets,
          "Buckets B, a power of two 1..65536 (fixed at bootstrap)")
      ->type_name("B")
      ->default_str("64");
  set.add("--replicas", &f->replicas, parse_replicas,
          "Replicas per bucket K, odd 1..7 (fixed at bootstrap)")
      ->type_name("K")
      ->default_str("3");
  set.add("--sync", &f->sync,
          cli::one_of<SyncMode>({{"always", SyncMode::always}, {"none", SyncMode::none}}),
          "fdatasync every batch, or none (benchmarks only)")
      ->type_name("always|none")
      ->default_str("always");
  set.add("--prepare", &f->prepare,
          cli::one_of<bucket::Prepare>({{"fallocate", bucket::Prepare::fallocate},
                                        {"zero_fill", bucket::Prepare::zero_fill},
                                        {"none", bucket::Prepare::none},
                                        {"recycle", bucket::Prepare::recycle}}),
          "How a log segment is made ready before use: unwritten extents, zeros written "
          "ahead, a file each write grows, or a segment retention retired (fallocate "
          "while none is free) (docs/PERFORMANCE.md)")
      ->type_name("fallocate|zero_fill|none|recycle")
      ->default_str("recycle");
  set.add<LogLevel>(
         "--log-level", &f->log_level,
         [](std::string_view text) -> Parsed<LogLevel> {
           if (std::optional<LogLevel> level = parse_log_level(text)) return *level;
           return CliError{"'" + std::string(text) + "' is not one of error, warn, info, debug"};
         },
         "Least severe level logged")
      ->type_name("error|warn|info|debug")
      ->default_str("info");
}

void add_timers(cli::FlagSet& set, ServerFlags* f) {
  set.add("--heartbeat-ms", &f->heartbeat_ms, cli::count_in<uint32_t>(1, 60000),
          "Heartbeat period (1..60000)")
      ->type_name("MS")
      ->default_str("100");
  set.add("--departure-timeout-ms", &f->departure_timeout_ms,
          cli::count_in<uint32_t>(1, 3600000),
          "Silence before a participant is departed (>= 5 heartbeats)")
      ->type_name("MS")
      ->default_str("1000");
  set.add("--recovery-timeout-ms", &f->recovery_timeout_ms, cli::count_in<uint32_t>(1, day_ms),
          "Replay time a recovering participant is allowed")
      ->type_name("MS")
      ->default_str("30000");
  set.add("--leave-timeout-ms", &f->leave_timeout_ms, cli::count_in<uint32_t>(1, day_ms),
          "Bound on a graceful leave (SIGTERM)")
      ->type_name("MS")
      ->default_str("30000");
  set.add("--connection-expiry", &f->connection_expiry_ms, parse_connection_expiry,
          "Idle time after which a connection's bucket state expires")
      ->type_name("DURATION")
      ->default_str("24h");
}

void add_storage(cli::FlagSet& set, ServerFlags* f) {
  set.add("--max-connections", &f->max_connections, cli::count_in<uint64_t>(1, 1000000000),
          "Live client connections per issuer; 429 beyond")
      ->type_name("N")
      ->default_str("100000");
  set.add("--segment-bytes", &f->segment_bytes, parse_segment_bytes,
          "Log segment size: 4MiB..16GiB, a multiple of 4KiB")
      ->type_name("SIZE")
      ->default_str("64MiB");
  set.add("--retention-bytes", &f->retention_bytes, or_unlimited(cli::parse_size_bytes),
          "Log bytes kept before the oldest segments go")
      ->type_name("SIZE|unlimited")
      ->default_str("unlimited");
  set.add("--retention-ms", &f->retention_ms, or_unlimited(cli::parse_count),
          "Age after which log segments go")
      ->type_name("MS|unlimited")
      ->default_str("unlimited");
}

// The checks that involve two flags, or "" when the flags agree.
std::string check_together(const ServerFlags& f) {
  const uint64_t departure_min =
      uint64_t{ServerFlags::heartbeats_per_departure_min} * f.heartbeat_ms;
  if (f.departure_timeout_ms < departure_min) {
    return "--departure-timeout-ms: " + std::to_string(f.departure_timeout_ms) +
           " is below " + std::to_string(ServerFlags::heartbeats_per_departure_min) +
           " heartbeats (" + std::to_string(ServerFlags::heartbeats_per_departure_min) +
           " x --heartbeat-ms " + std::to_string(f.heartbeat_ms) +
           " = " + std::to_string(departure_min) + ")";
  }
  if (f.listen == f.peer_listen) {
    return "--peer-listen: " + f.peer_listen.to_string() + " is also --listen; they must differ";
  }
  return "";
}

}  // namespace

unsigned online_cpus() {
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online < 1) return 1;
  return static_cast<unsigned>(std::min<long>(online, ServerFlags::cores_max));
}

ParseResult parse_server_flags(int argc, const char* const* argv) {
  ServerFlags flags;
  flags.cores = online_cpus();
  cli::FlagSet set{"coworker", "coworker: one participant of a Coworker cluster"};
  add_addresses(set, &flags);
  add_shape(set, &flags);
  add_timers(set, &flags);
  add_storage(set, &flags);
  set.app().footer(
      "SIZE: bytes, or a number with KiB, MiB or GiB (64MiB).\n"
      "DURATION: a number with d, h, m, s or ms (24h, 90m); a plain number is ms.\n"
      "A bad command line prints one line, \"coworker: <reason>\", and exits 2.");
  if (std::optional<cli::CliExit> exit = set.parse(argc, argv)) return {std::nullopt, *exit};
  if (std::string reason = check_together(flags); !reason.empty()) {
    return {std::nullopt, set.usage_error(reason)};
  }
  return {std::move(flags), {}};
}

bucket::LogStore::Config log_store_config(const ServerFlags& flags, const std::string& log_dir,
                                          unsigned core) {
  bucket::LogStore::Config config;
  config.dir = log_dir;
  config.core = core;
  config.segment_bytes = flags.segment_bytes;
  config.sync = flags.sync == SyncMode::always ? bucket::Sync::always : bucket::Sync::none;
  config.prepare = flags.prepare;
  return config;
}

}  // namespace coworker::server
