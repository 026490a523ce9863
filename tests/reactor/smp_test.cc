// Cross-core calls under contention, back-pressure, and shutdown.
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "reactor/ops.h"
#include "reactor/smp.h"
#include "reactor/sync.h"

using namespace coworker;
using namespace coworker::reactor;
using namespace std::chrono_literals;

namespace {

// Per target core: the last sequence number seen from each origin, touched
// only on the target core, so no synchronisation is needed.
struct Ledger {
  std::vector<std::vector<uint64_t>> last;  // [target][origin]
  std::vector<std::vector<uint64_t>> count;
  std::atomic<uint64_t> order_violations{0};
};

Task<void> hammer(unsigned origin, unsigned cores, uint64_t per_pair, unsigned depth,
                  Ledger* ledger, std::atomic<unsigned>* done, Smp* smp) {
  // `depth` concurrent senders per target keep many calls in flight, which
  // exercises the full-ring path (depth > channel_capacity).
  struct Sender {
    static Task<void> run(unsigned origin, unsigned target, uint64_t first, uint64_t stride,
                          uint64_t count, Ledger* ledger, uint64_t* acked) {
      for (uint64_t i = 0; i < count; i++) {
        const uint64_t seq = first + i * stride;
        uint64_t echoed = co_await submit_to(target, [=]() -> uint64_t {
          ledger->count[target][origin]++;
          return seq;
        });
        COWORKER_ASSERT(echoed == seq);
        (*acked)++;
      }
    }
  };
  std::vector<uint64_t> acked(cores, 0);
  TaskGroup senders;
  for (unsigned target = 0; target < cores; target++) {
    for (unsigned d = 0; d < depth; d++) {
      senders.spawn(Sender::run(origin, target, d, depth, per_pair / depth, ledger,
                                &acked[target]));
    }
  }
  co_await senders.join();
  for (uint64_t a : acked) COWORKER_ASSERT(a == (per_pair / depth) * depth);
  if (done->fetch_add(1) + 1 == cores) smp->request_stop(0);
}

// A single sender per pair keeps strict order: check it on the target.
Task<void> ordered(unsigned origin, unsigned cores, uint64_t count, Ledger* ledger,
                   std::atomic<unsigned>* done, Smp* smp) {
  for (uint64_t i = 1; i <= count; i++) {
    const unsigned target = static_cast<unsigned>(i % cores);
    // Fire without waiting for earlier ones, via a spawned call per message,
    // so several calls of one origin are queued in the ring at once.
    Loop::current().spawn([](unsigned origin, unsigned target, uint64_t seq,
                             Ledger* ledger) -> Task<void> {
      co_await submit_to(target, [=] {
        uint64_t& last = ledger->last[target][origin];
        if (seq <= last) ledger->order_violations++;
        last = seq;
      });
    }(origin, target, i, ledger));
    if (i % 512 == 0) co_await Yield{};
  }
  if (done->fetch_add(1) + 1 == cores) smp->request_stop(0);
}

}  // namespace

TEST_CASE("smp: millions of calls between all core pairs, none lost") {
  const unsigned cores = 4;  // more cores than CPUs still works, unpinned
  Smp smp(Smp::Config{cores, false});
  Ledger ledger;
  ledger.last.assign(cores, std::vector<uint64_t>(cores, 0));
  ledger.count.assign(cores, std::vector<uint64_t>(cores, 0));
  std::atomic<unsigned> done{0};
  const uint64_t per_pair = 1 << 17;  // 4*4*131072 = 2.1 million calls
  const unsigned depth = 512;         // twice the ring: forces queueing
  int rc = smp.run([&](unsigned core) {
    return hammer(core, cores, per_pair, depth, &ledger, &done, &smp);
  });
  CHECK(rc == 0);
  for (unsigned t = 0; t < cores; t++) {
    for (unsigned o = 0; o < cores; o++) CHECK(ledger.count[t][o] == per_pair);
  }
  uint64_t queued = 0;
  for (unsigned c = 0; c < cores; c++) queued += smp.stats(c).calls_queued;
  CHECK(queued > 0);  // back-pressure was exercised
}

TEST_CASE("smp: calls from one origin arrive in order") {
  const unsigned cores = 3;
  Smp smp(Smp::Config{cores, false});
  Ledger ledger;
  ledger.last.assign(cores, std::vector<uint64_t>(cores, 0));
  ledger.count.assign(cores, std::vector<uint64_t>(cores, 0));
  std::atomic<unsigned> done{0};
  int rc = smp.run([&](unsigned core) { return ordered(core, cores, 200000, &ledger, &done, &smp); });
  CHECK(rc == 0);
  CHECK(ledger.order_violations == 0);
  for (unsigned t = 0; t < cores; t++) {
    for (unsigned o = 0; o < cores; o++) CHECK(ledger.last[t][o] > 200000 - cores);
  }
}

TEST_CASE("smp: a call may run a task on the target core") {
  Smp smp(Smp::Config{2, false});
  std::atomic<int> result{0};
  smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, std::atomic<int>* result, Smp* smp) -> Task<void> {
      if (core != 0) co_return;
      int v = co_await submit_to(1, []() -> Task<int> {
        COWORKER_ASSERT(Loop::current().core() == 1);
        Status slept = co_await Timeout{1ms};
        COWORKER_ASSERT(slept.ok());
        co_return 7;
      });
      *result = v;
      smp->request_stop(0);
    }(core, &result, &smp);
  });
  CHECK(result == 7);
}

TEST_CASE("smp: posted calls run on their core, in the order posted") {
  Smp smp(Smp::Config{2, false});
  std::vector<int> seen;  // written on core 1 only, read after run()
  bool wrong_core = false;
  const int posts = 10000;
  smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, std::vector<int>* seen, bool* wrong_core, Smp* smp) -> Task<void> {
      if (core != 0) co_return;
      for (int i = 0; i < posts; i++) {
        post_to(1, [seen, wrong_core, i, smp] {
          if (Loop::current().core() != 1) *wrong_core = true;
          seen->push_back(i);
          if (i == posts - 1) smp->request_stop(0);
        });
      }
    }(core, &seen, &wrong_core, &smp);
  });
  CHECK(!wrong_core);
  REQUIRE(seen.size() == static_cast<size_t>(posts));
  for (int i = 0; i < posts; i++) CHECK(seen[i] == i);
}

TEST_CASE("smp: shutdown with work in flight drains every core") {
  // Each core keeps calls to the others going and sleeps in between; a stop
  // from core 0 must end every loop, with every spawned task finished and no
  // call left unanswered.
  const unsigned cores = 3;
  Smp smp(Smp::Config{cores, false});
  std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> started{0};
  int rc = smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, unsigned cores, std::atomic<uint64_t>* started,
              std::atomic<uint64_t>* answered, Smp* smp) -> Task<void> {
      for (uint64_t i = 0;; i++) {
        for (unsigned t = 0; t < cores; t++) {
          Loop::current().spawn([](unsigned t, std::atomic<uint64_t>* started,
                                   std::atomic<uint64_t>* answered) -> Task<void> {
            (*started)++;
            co_await submit_to(t, []() -> Task<void> { co_await Yield{}; });
            (*answered)++;
          }(t, started, answered));
        }
        if (core == 0 && i == 2000) smp->request_stop(5);
        if (!(co_await Timeout{0ms}).ok()) co_return;  // cancelled: stopping
      }
    }(core, cores, &started, &answered, &smp);
  });
  CHECK(rc == 5);
  CHECK(started.load() > 0);
  CHECK(answered.load() == started.load());
}

TEST_CASE("smp: SIGTERM through the signalfd stops every core") {
  // The signal is blocked in every thread and read by core 0's loop; the
  // handler sees it and stops the cores, which then drain and return.
  Smp smp(Smp::Config{2, false});
  std::atomic<int> seen{0};
  smp.on_signal([&](int signo) {
    seen = signo;
    smp.request_stop(9);
  });
  std::atomic<bool> cancelled{false};
  int rc = smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, std::atomic<bool>* cancelled) -> Task<void> {
      if (core == 0) ::kill(::getpid(), SIGTERM);
      // Both cores wait "forever"; only the stop can end this.
      Status slept = co_await Timeout{std::chrono::hours(1)};
      if (!slept.ok() && slept.error().code == ECANCELED) *cancelled = true;
    }(core, &cancelled);
  });
  CHECK(seen == SIGTERM);
  CHECK(rc == 9);
  CHECK(cancelled);
}

TEST_CASE("smp: pinning only with one core per allowed CPU") {
  // The production shape: as many cores as CPUs, each core on one.
  CHECK(Smp::pinning(2, {0, 1}) == std::vector<int>{0, 1});
  // taskset/CPUAffinity= chose CPUs 2 and 5: the cores follow that choice.
  CHECK(Smp::pinning(2, {2, 5}) == std::vector<int>{2, 5});
  // Fewer cores than CPUs (several participants on one machine) or more:
  // unpinned, so the kernel spreads them.
  CHECK(Smp::pinning(1, {0, 1}).empty());
  CHECK(Smp::pinning(4, {0, 1}).empty());
  CHECK(Smp::pinning(1, {}).empty());
  CHECK(Smp::pinning(1, {3}) == std::vector<int>{3});
}
