// Task lifetime, results, error propagation and stack use.
#include <doctest/doctest.h>

#include <string>

#include "reactor/block_on.h"
#include "reactor/result.h"
#include "reactor/task.h"

using namespace coworker;
using namespace coworker::reactor;

namespace {

Task<int> answer() { co_return 42; }

Task<int> add(int a, int b) {
  const int x = co_await answer();
  co_return x + a + b;
}

enum class Errc { too_big };

Task<Result<int, Errc>> checked(int v) {
  if (v > 10) co_return Errc::too_big;
  co_return v * 2;
}

Task<Result<int, Errc>> chain(int v) {
  Result<int, Errc> first = co_await checked(v);
  if (!first) co_return first.error();
  co_return co_await checked(*first);
}

struct Counted {
  static inline int alive = 0;
  Counted() { alive++; }
  Counted(const Counted&) { alive++; }
  ~Counted() { alive--; }
};

Task<int> holds(Counted c) {
  (void)c;
  co_return 1;
}

Task<void> count_up(int* n) {
  (*n)++;
  co_return;
}

Task<int> deep_loop(int iterations) {
  int n = 0;
  for (int i = 0; i < iterations; i++) co_await count_up(&n);
  co_return n;
}

}  // namespace

TEST_CASE("task: a value travels to the awaiter") {
  CHECK(run_synchronously(add(1, 2)) == 45);
}

TEST_CASE("task: errors travel as values through a chain") {
  Result<int, Errc> ok = run_synchronously(chain(3));
  REQUIRE(ok.ok());
  CHECK(*ok == 12);
  Result<int, Errc> inner = run_synchronously(chain(20));
  REQUIRE(!inner.ok());
  CHECK(inner.error() == Errc::too_big);
  Result<int, Errc> outer = run_synchronously(chain(6));  // 12 fails the second step
  REQUIRE(!outer.ok());
}

TEST_CASE("task: destroying an unstarted task frees its frame and arguments") {
  {
    Task<int> task = holds(Counted{});
    CHECK(Counted::alive == 1);  // the argument lives in the frame
    CHECK(!task.done());
  }
  CHECK(Counted::alive == 0);
}

TEST_CASE("task: a moved-from task owns nothing") {
  Task<int> a = answer();
  Task<int> b = std::move(a);
  CHECK(!a.valid());
  CHECK(b.valid());
  CHECK(run_synchronously(std::move(b)) == 42);
}

TEST_CASE("task: a million synchronous co_awaits do not grow the stack") {
  // Symmetric transfer turns each resume into a tail call; without it this
  // overflows an 8 MiB stack long before the end.
  CHECK(run_synchronously(deep_loop(1000000)) == 1000000);
}

TEST_CASE("task: block_on runs a task on a loop") {
  CHECK(block_on(add(2, 3)) == 47);
}
