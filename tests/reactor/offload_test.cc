// Offload: a blocking function on a thread of its own, its end awaited
// from the loop — the loop runs meanwhile, a wait with a timeout says so,
// a stopping loop ends the wait, and the result is the function's.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "reactor/block_on.h"
#include "reactor/offload.h"
#include "reactor/ops.h"

using namespace coworker;
using namespace coworker::reactor;
using namespace std::chrono_literals;

namespace {

struct Seen {
  int timeouts = 0;       // waits that ended at their timeout
  bool slept = false;     // a timer of the loop fired while the function ran
  Status last;            // what the final wait said
  std::string result;     // what take() gave
};

Task<void> wait_for_release(std::shared_future<void> released, std::promise<void>* gate,
                            Seen* seen) {
  auto offload = Offload<std::string>::start([released] {
    released.wait();
    return std::string("replayed");
  });
  REQUIRE(offload.ok());
  // The function blocks until released: a wait with a timeout ends there.
  for (int i = 0; i < 3; i++) {
    Status early = co_await (*offload)->wait(Milliseconds{10});
    REQUIRE(!early.ok());
    CHECK(early.error().code == ETIMEDOUT);
    seen->timeouts++;
  }
  // The loop is not blocked meanwhile.
  Status slept = co_await Timeout(2ms);
  seen->slept = slept.ok();
  gate->set_value();
  seen->last = co_await (*offload)->wait();
  if (seen->last.ok()) seen->result = (*offload)->take();
}

Task<void> wait_until_stop(std::shared_future<void> released, std::promise<void>* gate,
                           Seen* seen) {
  auto offload = Offload<int>::start([released] {
    released.wait();
    return 7;
  });
  REQUIRE(offload.ok());
  seen->last = co_await (*offload)->wait();
  // Released only now: the destructor joins a function that returns.
  gate->set_value();
}

Task<void> stop_soon() {
  Status slept = co_await Timeout(5ms);
  CHECK(slept.ok());
  Loop::current().request_stop();
}

}  // namespace

TEST_CASE("an offloaded function's end is awaited while the loop goes on") {
  std::promise<void> gate;
  Seen seen;
  block_on(wait_for_release(gate.get_future().share(), &gate, &seen));
  CHECK(seen.timeouts == 3);
  CHECK(seen.slept);
  CHECK(seen.last.ok());
  CHECK(seen.result == "replayed");
}

TEST_CASE("a stopping loop ends the wait for an offloaded function; the thread is joined") {
  std::promise<void> gate;
  Seen seen;
  Loop loop(Loop::Config{});
  loop.spawn(wait_until_stop(gate.get_future().share(), &gate, &seen));
  loop.spawn(stop_soon());
  loop.run();
  REQUIRE(!seen.last.ok());
  CHECK(seen.last.error().code == ECANCELED);
}
