// coworker-bench-smp: how fast are cross-core calls?
//
// Two cores (pinned to CPUs 0 and 1). Core 0 keeps B calls in flight to core 1
// (B concurrent tasks, each looping `co_await submit_to(1, fn)`), so about B
// requests share each doorbell; fn is trivial. Reported per batch size:
// calls per second and the round-trip latency of submit_to (p50/p99).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/histogram.h"
#include "reactor/ops.h"
#include "reactor/smp.h"

using namespace coworker;
using namespace coworker::reactor;
using Clock = std::chrono::steady_clock;

namespace {

struct Outcome {
  double calls_per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
  double doorbells_per_call = 0;
};

Outcome measure(unsigned batch, double seconds) {
  Smp smp(Smp::Config{2, true});
  bench::Histogram latency;
  uint64_t calls = 0;
  double elapsed = 0;
  smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, unsigned batch, double seconds, bench::Histogram* latency,
              uint64_t* calls, double* elapsed, Smp* smp) -> Task<void> {
      if (core != 0) co_return;
      bool stop = false;
      unsigned running = batch;
      const auto start = Clock::now();
      for (unsigned i = 0; i < batch; i++) {
        Loop::current().spawn([](bool* stop, unsigned* running, bench::Histogram* latency,
                                 uint64_t* calls) -> Task<void> {
          uint64_t token = 0;
          while (!*stop) {
            const auto t0 = Clock::now();
            uint64_t back = co_await submit_to(1, [token] { return token + 1; });
            COWORKER_ASSERT(back == token + 1);
            token = back;
            latency->record(static_cast<uint64_t>((Clock::now() - t0).count()));
            (*calls)++;
          }
          (*running)--;
        }(&stop, &running, latency, calls));
      }
      (void)co_await Timeout{Milliseconds{static_cast<int64_t>(seconds * 1000)}};
      stop = true;
      while (running > 0) co_await Yield{};
      *elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      smp->request_stop(0);
    }(core, batch, seconds, &latency, &calls, &elapsed, &smp);
  });
  Outcome out;
  out.calls_per_second = static_cast<double>(calls) / elapsed;
  out.p50_us = static_cast<double>(latency.quantile(0.5)) / 1000.0;
  out.p99_us = static_cast<double>(latency.quantile(0.99)) / 1000.0;
  const uint64_t doorbells = smp.stats(0).doorbells + smp.stats(1).doorbells;
  out.doorbells_per_call = static_cast<double>(doorbells) / static_cast<double>(calls);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2;
  unsigned runs = 3;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: coworker-bench-smp [--seconds S] [--runs N]\n\n"
          "Cross-core calls between two pinned cores with 1, 16 and 256 calls in\n"
          "flight: calls/s and submit_to round-trip latency (medians over runs).\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "coworker-bench-smp: %s needs a value (try --help)\n", arg.c_str());
      return 2;
    }
    if (arg == "--seconds") {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--runs") {
      runs = static_cast<unsigned>(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "coworker-bench-smp: unknown argument %s (try --help)\n", arg.c_str());
      return 2;
    }
  }
  if (seconds <= 0 || runs == 0) {
    std::fprintf(stderr, "coworker-bench-smp: --seconds and --runs must be positive\n");
    return 2;
  }
  std::printf("smp: core 0 -> core 1 (CPUs 0 and 1), trivial call, %.1f s x %u runs\n", seconds,
              runs);
  for (unsigned batch : {1u, 16u, 256u}) {
    std::vector<Outcome> outcomes;
    for (unsigned r = 0; r < runs; r++) outcomes.push_back(measure(batch, seconds));
    std::sort(outcomes.begin(), outcomes.end(),
              [](const Outcome& a, const Outcome& b) { return a.calls_per_second < b.calls_per_second; });
    const Outcome& m = outcomes[outcomes.size() / 2];
    std::printf("in flight %3u: %10.0f calls/s  round trip p50 %7.1f us  p99 %7.1f us  "
                "doorbells/call %.3f\n",
                batch, m.calls_per_second, m.p50_us, m.p99_us, m.doorbells_per_call);
  }
  return 0;
}
