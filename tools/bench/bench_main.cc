// coworker-bench: the load generator of a Coworker cluster (DESIGN §8).
//
//   coworker-bench --server HOST:PORT[,HOST:PORT...] [--duration S] [--json] ...
//
// Closed loop by default: --connections C client connections, each with one
// window in flight, sending the next as soon as the last was answered. With
// --rate R it is an open loop: windows are due at R per second whatever the
// answers, and latency counts from when a window was due, so a cluster that
// falls behind shows it (coordinated omission corrected). Connections,
// series and resubmissions are real (DESIGN §3): every acknowledged message
// is in the log exactly once. Each request goes to its bucket's leader from
// /v1/cluster, or to the --server addresses when no leader is known (they
// hop it). The connections run on --cores reactor threads (driver.h).
//
// Exit status: 0 the load ran; 1 it stopped early (a refusal that says the
// bench is wrong for this cluster, no participant answered, SIGINT) — the
// report says why; 2 a bad command line.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "reactor/smp.h"
#include "tools/bench/driver.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/bench/tally.h"
#include "tools/bench/workload.h"
#include "tools/common/cli.h"

using namespace coworker;
using namespace coworker::bench;

namespace {

constexpr uint64_t window_max = 1000;          // messages per window (DESIGN §3)
constexpr uint64_t window_bytes_max = 15 << 20;  // under the 16 MiB window body
constexpr uint64_t message_bytes_max = 1 << 20;  // a single body
constexpr int exit_stopped = 1;

// "10" is ten seconds; "500ms", "2s", "1m" are durations.
cli::Convert<std::chrono::milliseconds> seconds_or_duration() {
  return [](std::string_view text) -> cli::Parsed<std::chrono::milliseconds> {
    cli::Parsed<uint64_t> whole = cli::parse_count(text);
    if (whole) {
      if (*whole > 7 * 24 * 3600) return cli::CliError{"more than a week"};
      return std::chrono::milliseconds(*whole * 1000);
    }
    cli::Parsed<uint64_t> ms = cli::parse_duration_ms(text);
    if (!ms) return cli::CliError{"'" + std::string(text) + "' is not seconds or a duration (10, 500ms, 2m)"};
    return std::chrono::milliseconds(*ms);
  };
}

cli::Convert<double> exponent() {
  return [](std::string_view text) -> cli::Parsed<double> {
    const std::string copy(text);
    char* end = nullptr;
    const double value = std::strtod(copy.c_str(), &end);
    if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(value) ||
        value <= 0 || value > 10) {
      return cli::CliError{"'" + copy + "' is not a number in (0, 10]"};
    }
    return value;
  };
}

cli::Convert<std::string> nonempty() {
  return [](std::string_view text) -> cli::Parsed<std::string> {
    if (text.empty()) return cli::CliError{"must not be empty"};
    return std::string(text);
  };
}

uint64_t default_seed() {
  uint64_t state = static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count());
  return consensus::splitmix64(state) >> 16;  // short enough to retype
}

std::optional<cli::CliExit> parse(int argc, char** argv, BenchOptions* options) {
  cli::FlagSet flags{"coworker-bench",
                     "Load generator for a Coworker cluster: closed or open loop, real "
                     "connections and series, latency from an HDR-style histogram"};
  cli::ClientFlags client;
  cli::add_client_flags(flags, &client);
  flags.add("--duration", &options->duration, seconds_or_duration(),
            "Measured time after the warm-up: seconds, or 500ms, 2m")
      ->type_name("S")->default_str("10");
  flags.add("--warmup", &options->warmup, seconds_or_duration(),
            "Load before measuring (not counted in the figures)")
      ->type_name("S")->default_str("1");
  flags.add("--connections", &options->connections, cli::count_in<uint64_t>(1, 100000),
            "Client connections, each with one window in flight")
      ->type_name("C")->default_str("64");
  flags.add("--rate", &options->rate, cli::count_in<uint64_t>(1, 10000000),
            "Open loop: windows per second over all connections (latency from the "
            "intended send time); without it, closed loop")
      ->type_name("R");
  flags.add("--window", &options->window, cli::count_in<uint64_t>(1, window_max),
            "Messages per request: 1 sends POST /v1/log/{id}, more a window to /v1/append")
      ->type_name("N")->default_str("1");
  flags.add("--message-bytes", &options->message_bytes, cli::Convert<uint64_t>(cli::parse_size_bytes),
            "Bytes of each message body (printable ASCII)")
      ->type_name("SIZE")->default_str("100");
  flags.add("--identifiers", &options->identifiers, cli::count_in<uint64_t>(1, 10000000),
            "Distinct identifiers: PREFIX0 .. PREFIX(N-1); a window takes one")
      ->type_name("N")->default_str("1000");
  flags.add("--prefix", &options->prefix, nonempty(), "Identifier prefix")
      ->type_name("TEXT")->default_str("k");
  flags.add("--distribution", &options->distribution,
            cli::one_of<Distribution>({{"uniform", Distribution::uniform}, {"zipf", Distribution::zipf}}),
            "How windows pick identifiers")
      ->type_name("uniform|zipf")->default_str("uniform");
  flags.add("--zipf-exponent", &options->zipf_exponent, exponent(),
            "The zipf skew s: identifier i weighs 1/(i+1)^s")
      ->type_name("S")->default_str("0.99");
  flags.add("--route", &options->route,
            cli::one_of<Route>({{"leader", Route::leader}, {"spread", Route::spread}}),
            "Send each request to its bucket's leader (from /v1/cluster), or to the "
            "--server addresses in turn (they hop)")
      ->type_name("leader|spread")->default_str("leader");
  flags.add("--cores", &options->cores, cli::count_in<unsigned>(1, 256),
            "Reactor threads running the connections")
      ->type_name("N")->default_str("1");
  flags.add("--seed", &options->seed, cli::count_in<uint64_t>(0, UINT64_MAX),
            "Seed of the identifier draws (printed; default from the clock)")
      ->type_name("N");
  flags.add("--give-up-ms", &options->give_up, cli::Convert<std::chrono::milliseconds>(
                [](std::string_view text) -> cli::Parsed<std::chrono::milliseconds> {
                  cli::Parsed<uint64_t> ms = cli::parse_duration_ms(text);
                  if (!ms) return ms.error();
                  if (*ms < 100) return cli::CliError{"at least 100 ms"};
                  return std::chrono::milliseconds(*ms);
                }),
            "A window not answered 2xx this long after it was due is given up (indeterminate)")
      ->type_name("MS")->default_str("30000");
  flags.add("--plot", &options->plot, cli::Convert<std::optional<std::string>>(
                [](std::string_view text) -> cli::Parsed<std::optional<std::string>> {
                  if (text.empty()) return cli::CliError{"must not be empty"};
                  return std::optional<std::string>(std::string(text));
                }),
            "Write a latency-percentile plot (SVG) to FILE")
      ->type_name("FILE.svg");
  options->seed = default_seed();
  if (std::optional<cli::CliExit> exit = flags.parse(argc, argv)) return exit;
  options->servers = client.servers;
  options->output = client.output;
  if (options->connections < options->cores) {
    return flags.usage_error("--connections must be at least --cores (each core runs some)");
  }
  if (options->rate > 0 && options->rate < options->cores) {
    return flags.usage_error("--rate must be at least --cores (each core paces its share)");
  }
  if (options->message_bytes == 0 || options->message_bytes > message_bytes_max) {
    return flags.usage_error("--message-bytes: 1 byte .. 1MiB");
  }
  if (options->window * (options->message_bytes + 64) > window_bytes_max) {
    return flags.usage_error("--window x --message-bytes is over a window's 16 MiB body");
  }
  if (options->duration.count() == 0) return flags.usage_error("--duration must be above 0");
  return std::nullopt;
}

reactor::Task<void> core_main(const BenchOptions& options, const Identifiers& identifiers,
                              unsigned core, Tally* tally, std::atomic<unsigned>* running) {
  auto work = run_core(options, identifiers, core, tally);
  co_await work;
  // The last core to finish stops them all.
  if (running->fetch_sub(1) == 1) reactor::Smp::current().request_stop();
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions options;
  if (std::optional<cli::CliExit> exit = parse(argc, argv, &options)) return cli::emit(*exit);

  const Identifiers identifiers(options);
  std::vector<Tally> tallies(options.cores);
  std::atomic<unsigned> running{options.cores};
  std::atomic<bool> interrupted{false};
  reactor::Smp::Config config;
  config.cores = options.cores;
  config.pin = false;  // share the machine with the servers it measures
  reactor::Smp smp(config);
  smp.on_signal([&](int) {
    interrupted = true;
    smp.request_stop();
  });
  smp.run([&](unsigned core) {
    return core_main(options, identifiers, core, &tallies[core], &running);
  });

  Tally total;
  for (const Tally& tally : tallies) total.merge(tally);
  if (interrupted && total.fatal.empty()) total.fatal = "interrupted";
  const std::string report =
      options.output == cli::Output::json ? report_json(options, total) : report_text(options, total);
  std::fputs(report.c_str(), stdout);
  std::fflush(stdout);
  if (options.plot) {
    const std::string svg = latency_plot(options, total);
    std::FILE* file = std::fopen(options.plot->c_str(), "w");
    if (file == nullptr || std::fwrite(svg.data(), 1, svg.size(), file) != svg.size() ||
        std::fclose(file) != 0) {
      std::fprintf(stderr, "coworker-bench: cannot write %s\n", options.plot->c_str());
      return exit_stopped;
    }
  }
  return total.fatal.empty() ? 0 : exit_stopped;
}
