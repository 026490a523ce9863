// Latch: a one-shot meeting point of the cores (after std::latch's
// arrive_and_wait). It expects `count` arrivals, from any cores; each
// arrival counts it down once and waits until the count reaches zero.
//
// It lives on its `home` core: its count and its Event are touched only
// there, and an arrival from another core travels there through on_core
// (its call record in the arriving frame, like submit_to's). Construct it
// on the home core, or on the thread that becomes it before Smp::run.
//
//   Latch loaded(cores, 0);
//   Status s = co_await loaded.arrive_and_wait();  // every core, once
//
// A stopping home core ends the waits that have not passed yet: ECANCELED,
// unless the latch opened first (a set Event answers ok even then). An
// arrival past the count is a bug (asserted).
#pragma once

#include "reactor/result.h"
#include "reactor/smp.h"
#include "reactor/sync.h"

namespace coworker::reactor {

class Latch {
 public:
  Latch(unsigned count, unsigned home) : _home(home), _left(count) {
    COWORKER_ASSERT(count > 0);
  }
  Latch(const Latch&) = delete;
  Latch& operator=(const Latch&) = delete;

  Task<Status> arrive_and_wait() {
    Latch* self = this;
    auto arrived = on_core(_home, [self] { return self->arrive_home(); });
    co_return co_await arrived;
  }

  // On the home core: whether every arrival came.
  bool open() const {
    COWORKER_ASSERT(Loop::current().core() == _home);
    return _open.is_set();
  }

 private:
  Task<Status> arrive_home() {
    COWORKER_ASSERT(Loop::current().core() == _home);
    COWORKER_ASSERT(_left > 0);
    if (--_left == 0) _open.set();
    co_return co_await _open.wait();
  }

  const unsigned _home;
  unsigned _left;  // home core only
  Event _open;     // the home core's
};

}  // namespace coworker::reactor
