// coworker-bench's settings, as bench_main.cc parses them from the command
// line (DESIGN §8). Plain data, read by every core.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/common/cli.h"

namespace coworker::bench {

enum class Distribution : uint8_t { uniform, zipf };
// Where a request goes: its bucket's leader from /v1/cluster (the --server
// addresses when the leader is not known), or the --server addresses in turn
// (every participant hops what it does not lead).
enum class Route : uint8_t { leader, spread };

struct BenchOptions {
  std::vector<cli::Address> servers;
  cli::Output output = cli::Output::text;
  uint64_t connections = 64;
  uint64_t window = 1;  // messages per request: 1 is POST /v1/log/{id}
  uint64_t message_bytes = 100;
  uint64_t identifiers = 1000;
  std::string prefix = "k";  // identifier i is prefix + i
  Distribution distribution = Distribution::uniform;
  double zipf_exponent = 0.99;
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds warmup{1000};
  uint64_t rate = 0;  // windows per second over all connections; 0: closed loop
  Route route = Route::leader;
  unsigned cores = 1;
  uint64_t seed = 0;
  // A window not answered 2xx within this of its intended send time is
  // given up (indeterminate: it may or may not be logged).
  std::chrono::milliseconds give_up{30000};
  std::optional<std::string> plot;  // an SVG latency plot goes there
};

inline bool open_loop(const BenchOptions& options) { return options.rate > 0; }

}  // namespace coworker::bench
