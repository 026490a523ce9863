// Event, TaskGroup, when_all and Smp::broadcast: wake-ups go through the
// ready queue, a set event stays set, stop ends the waits it should and only
// those, joins wait for every task, broadcasts answer from every core.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <vector>

#include "reactor/block_on.h"
#include "reactor/ops.h"
#include "reactor/smp.h"
#include "reactor/sync.h"

using namespace coworker;
using namespace coworker::reactor;
using namespace std::chrono_literals;

namespace {

// Coroutines parked on an Event with wait(): each records, once resumed, its
// id (the wake-up order) and what its wait returned.
struct Waiters {
  std::vector<int> woken;
  std::vector<Status> outcome;

  // Starts in the loop's next run phase, like any spawned task.
  void spawn(Event& event, int id) { Loop::current().spawn(park(&event, id, this)); }

  static Task<void> park(Event* event, int id, Waiters* self) {
    Status status = co_await event->wait();
    self->woken.push_back(id);
    self->outcome.push_back(status);
  }
};

// Yields a test grants a wake-up before it calls it lost, so that a waiter
// nobody wakes makes the test fail rather than hang: several turns' worth (a
// turn resumes at most 4096 coroutines, loop.cc).
constexpr int yields_max = 20000;

// Returns once the loop has begun to stop: stop cancels the timeout.
Task<void> until_stopping() {
  Status slept = co_await Timeout{std::chrono::minutes(5)};
  COWORKER_ASSERT(!slept.ok());
  COWORKER_ASSERT(Loop::current().stopping());
}

}  // namespace

TEST_CASE("sync: event: one set wakes every parked waiter, through the ready queue") {
  block_on([]() -> Task<void> {
    Event event;
    Waiters waiters;
    for (int id = 0; id < 5; id++) waiters.spawn(event, id);
    co_await Yield{};  // the spawned waiters run before us and park
    CHECK(event.waiters() == 5);
    CHECK(waiters.woken.empty());
    event.set();
    CHECK(event.waiters() == 0);
    CHECK(waiters.woken.empty());  // scheduled, not resumed inside set()
    co_await Yield{};
    CHECK(waiters.woken == std::vector<int>{0, 1, 2, 3, 4});  // in the order they parked
    for (const Status& s : waiters.outcome) CHECK(s.ok());
  }());
}

TEST_CASE("sync: event: a wait after set completes at once, until reset (manual reset)") {
  block_on([]() -> Task<void> {
    Event event;
    event.set();
    bool other_ran = false;
    Loop::current().spawn([](bool* ran) -> Task<void> {
      *ran = true;
      co_return;
    }(&other_ran));
    Status first = co_await event.wait();
    co_await event.wait_through_stop();
    CHECK(first.ok());
    CHECK(!other_ran);  // neither wait suspended: the spawned task did not get a turn
    CHECK(event.is_set());

    event.reset();
    Waiters waiters;
    waiters.spawn(event, 7);
    co_await Yield{};
    CHECK(other_ran);
    CHECK(event.waiters() == 1);  // reset: the new waiter parks
    CHECK(waiters.woken.empty());
    event.set();
    co_await Yield{};
    CHECK(waiters.woken == std::vector<int>{7});
  }());
}

TEST_CASE("sync: event: notify_all wakes the waiters parked now and latches nothing") {
  block_on([]() -> Task<void> {
    Event event;
    Waiters waiters;
    for (int id = 0; id < 2; id++) waiters.spawn(event, id);
    co_await Yield{};
    event.notify_all();
    CHECK(!event.is_set());
    waiters.spawn(event, 2);  // arrives after the notify
    co_await Yield{};
    CHECK(waiters.woken == std::vector<int>{0, 1});
    CHECK(event.waiters() == 1);
    event.notify_all();
    co_await Yield{};
    CHECK(waiters.woken == std::vector<int>{0, 1, 2});
  }());
}

TEST_CASE("sync: event: stop ends wait() with ECANCELED, wait_through_stop() waits on") {
  Event never;       // nobody sets it: only the stop can end its waits
  Event flushed;     // set by the drain after the stop
  Loop loop(Loop::Config{});
  Waiters waiters;
  bool flush_waiter_done = false;
  bool watchdog_fired = false;
  Status late = Status{};
  for (int id = 0; id < 3; id++) waiters.spawn(never, id);
  loop.spawn([](Event* flushed, bool* done) -> Task<void> {
    co_await flushed->wait_through_stop();
    *done = true;
  }(&flushed, &flush_waiter_done));
  loop.spawn([](Loop* loop, Event* never, Event* flushed, Waiters* waiters, bool* fired,
                Status* late) -> Task<void> {
    co_await Yield{};  // everybody has parked
    loop->request_stop(4);
    co_await until_stopping();
    for (int i = 0; i < yields_max && waiters->woken.size() < 3; i++) co_await Yield{};
    if (waiters->woken.size() < 3) {
      *fired = true;  // the stop did not end the waits: end them so the test can fail
      never->set();
    }
    *late = co_await never->wait();  // a wait that starts on a stopping loop
    COWORKER_ASSERT(flushed->waiters() == 1);  // stop left it parked
    flushed->set();
  }(&loop, &never, &flushed, &waiters, &watchdog_fired, &late));
  CHECK(loop.run() == 4);
  CHECK(!watchdog_fired);
  REQUIRE(waiters.outcome.size() == 3);
  for (const Status& s : waiters.outcome) {
    REQUIRE(!s.ok());
    CHECK(s.error().code == ECANCELED);
  }
  REQUIRE(!late.ok());
  CHECK(late.error().code == ECANCELED);
  CHECK(flush_waiter_done);
  CHECK(loop.spawned() == 0);
}

TEST_CASE("sync: event: a wait() is in the stop registry exactly while it is parked") {
  // A woken wait() leaves the registry at once, not when it resumes: a stop
  // beginning in between must not find it there (nor a stale node later).
  block_on([]() -> Task<void> {
    Loop& loop = Loop::current();
    Event event;
    const size_t before = loop.waiting();
    for (int round = 0; round < 3; round++) {
      Waiters waiters;
      for (int id = 0; id < 4; id++) waiters.spawn(event, id);
      loop.spawn([](Event* event) -> Task<void> {
        co_await event->wait_through_stop();  // not tracked: stop leaves it
      }(&event));
      co_await Yield{};
      CHECK(loop.waiting() == before + 4);
      event.notify_all();
      CHECK(loop.waiting() == before);
      co_await Yield{};
      CHECK(waiters.woken.size() == 4);
    }
  }());
}

TEST_CASE("sync: shutdown with parked waiters on every core does not hang") {
  const unsigned cores = 2;
  Smp smp(Smp::Config{cores, false});
  std::atomic<unsigned> cancelled{0};
  std::atomic<bool> watchdog_fired{false};
  int rc = smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned core, Smp* smp, std::atomic<unsigned>* cancelled,
              std::atomic<bool>* fired) -> Task<void> {
      Event never;
      TaskGroup parked;
      for (int i = 0; i < 8; i++) {
        parked.spawn([](Event* never, std::atomic<unsigned>* cancelled) -> Task<void> {
          Status s = co_await never->wait();
          if (!s.ok() && s.error().code == ECANCELED) (*cancelled)++;
        }(&never, cancelled));
      }
      co_await Yield{};
      if (core == 0) smp->request_stop(0);
      co_await until_stopping();
      for (int i = 0; i < yields_max && parked.running() > 0; i++) co_await Yield{};
      if (parked.running() > 0) {
        *fired = true;
        never.set();
      }
      co_await parked.join();
    }(core, &smp, &cancelled, &watchdog_fired);
  });
  CHECK(rc == 0);
  CHECK(!watchdog_fired.load());
  CHECK(cancelled.load() == 8 * cores);
}

TEST_CASE("sync: join waits for every task, some of which finish without suspending") {
  block_on([]() -> Task<void> {
    TaskGroup group;
    co_await group.join();  // empty: at once
    Event gate;
    int finished = 0;
    const int count = 1000;
    for (int i = 0; i < count; i++) {
      group.spawn([](int i, Event* gate, int* finished) -> Task<void> {
        if (i % 4 == 1) {
          for (int y = 0; y < i % 7; y++) co_await Yield{};
        } else if (i % 4 == 2) {
          Status slept = co_await Timeout{1ms};
          COWORKER_ASSERT(slept.ok());
        } else if (i % 4 == 3) {
          co_await gate->wait_through_stop();
        }
        (*finished)++;  // i % 4 == 0: done at its first run
      }(i, &gate, &finished));
    }
    CHECK(group.running() == count);
    Loop::current().spawn([](Event* gate) -> Task<void> {
      Status slept = co_await Timeout{5ms};
      COWORKER_ASSERT(slept.ok());
      gate->set();
    }(&gate));
    co_await group.join();
    CHECK(finished == count);
    CHECK(group.running() == 0);
    // The group is reusable once joined.
    group.spawn([](int* finished) -> Task<void> {
      (*finished)++;
      co_return;
    }(&finished));
    co_await group.join();
    CHECK(finished == count + 1);
  }());
}

TEST_CASE("sync: when_all returns every result in the order of its tasks") {
  block_on([]() -> Task<void> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 6; i++) {
      tasks.push_back([](int i) -> Task<int> {
        // Later tasks finish first: the order comes from the vector.
        if (i % 2 == 0) (void)co_await Timeout{std::chrono::milliseconds(6 - i)};
        co_return i * i;
      }(i));
    }
    std::vector<int> squares = co_await when_all(std::move(tasks));
    CHECK(squares == std::vector<int>{0, 1, 4, 9, 16, 25});
    CHECK((co_await when_all(std::vector<Task<int>>{})).empty());

    int ran = 0;
    std::vector<Task<void>> chores;
    for (int i = 0; i < 3; i++) {
      chores.push_back([](int* ran) -> Task<void> {
        co_await Yield{};
        (*ran)++;
      }(&ran));
    }
    co_await when_all(std::move(chores));
    CHECK(ran == 3);
  }());
}

TEST_CASE("sync: broadcast runs fn on every core and answers in core order") {
  const unsigned cores = 2;
  Smp smp(Smp::Config{cores, false});
  std::vector<std::vector<unsigned>> answers(cores);
  std::vector<std::vector<unsigned>> task_answers(cores);
  std::atomic<unsigned> visits{0};
  std::atomic<unsigned> done{0};
  smp.run([&](unsigned core) -> Task<void> {
    return [](unsigned origin, Smp* smp, std::vector<unsigned>* answer,
              std::vector<unsigned>* task_answer, std::atomic<unsigned>* visits,
              std::atomic<unsigned>* done) -> Task<void> {
      // Both cores broadcast at once; each answer names the core it ran on.
      *answer = co_await smp->broadcast([origin] { return Loop::current().core() * 100 + origin; });
      *task_answer = co_await smp->broadcast([]() -> Task<unsigned> {
        Status slept = co_await Timeout{1ms};
        COWORKER_ASSERT(slept.ok());
        co_return Loop::current().core();
      });
      co_await smp->broadcast([visits] { (*visits)++; });
      if (done->fetch_add(1) + 1 == smp->cores()) smp->request_stop(0);
    }(core, &smp, &answers[core], &task_answers[core], &visits, &done);
  });
  for (unsigned origin = 0; origin < cores; origin++) {
    CAPTURE(origin);
    CHECK(answers[origin] == std::vector<unsigned>{origin, 100 + origin});
    CHECK(task_answers[origin] == std::vector<unsigned>{0, 1});
  }
  CHECK(visits.load() == cores * cores);
}
