// Latch: every core passes only once all have arrived; a stop ends the wait.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <vector>

#include "reactor/latch.h"
#include "reactor/ops.h"
#include "reactor/smp.h"

using namespace coworker;
using namespace coworker::reactor;
using namespace std::chrono_literals;

TEST_CASE("latch: no core passes before the last one arrives") {
  const unsigned cores = 3;
  Smp smp(Smp::Config{cores, false});
  Latch latch(cores, 0);
  std::atomic<unsigned> arrived{0};
  std::atomic<unsigned> passed_early{0};
  std::atomic<unsigned> passed{0};
  int rc = smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, Latch* latch, std::atomic<unsigned>* arrived,
              std::atomic<unsigned>* passed_early, std::atomic<unsigned>* passed,
              Smp* smp) -> Task<void> {
      // The last core arrives late: the others wait on the home core meanwhile.
      if (core == 2) {
        Status slept = co_await Timeout{20ms};
        COWORKER_ASSERT(slept.ok());
      }
      arrived->fetch_add(1);
      Status s = co_await latch->arrive_and_wait();
      COWORKER_ASSERT(s.ok());
      if (arrived->load() != 3) passed_early->fetch_add(1);
      if (passed->fetch_add(1) + 1 == 3) smp->request_stop(0);
    }(core, &latch, &arrived, &passed_early, &passed, &smp);
  });
  CHECK(rc == 0);
  CHECK(passed == 3);
  CHECK(passed_early == 0);
}

TEST_CASE("latch: a stop ends the waits of a latch that never opens") {
  Smp smp(Smp::Config{2, false});
  Latch latch(3, 0);  // one arrival never comes
  std::vector<int> errors(2, 0);  // slot c written by core c only
  int rc = smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, Latch* latch, std::vector<int>* errors, Smp* smp) -> Task<void> {
      if (core == 1) post_to(0, [smp] { smp->request_stop(4); });
      Status s = co_await latch->arrive_and_wait();
      (*errors)[core] = s.ok() ? 0 : s.error().code;
    }(core, &latch, &errors, &smp);
  });
  CHECK(rc == 4);
  CHECK(errors[0] == ECANCELED);
  CHECK(errors[1] == ECANCELED);
}
