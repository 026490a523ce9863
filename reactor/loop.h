// Loop: one core's reactor — its io_uring, its ready queue, its spawned tasks.
//
// One Loop per core thread, created on that thread and living until it exits.
// Nothing in a Loop is touched by another thread except the cross-core
// channels (channel.h) and the atomic wake/stop flags below.
//
// Each turn is a fixed sequence (Seastar reactor::do_run, TigerBeetle run_for_ns):
//   1. inbox      pop cross-core requests and replies (channel.h)
//   2. reap       take a batch of CQEs; each completion queues its coroutine
//   3. run        resume ready coroutines (never from inside the CQE loop)
//   4. doorbells  tell sleeping cores that their inbox has work
//   5. submit     one io_uring_enter for every SQE of the turn; it waits for
//                 a completion only when nothing is ready to run
//
// Shutdown: request_stop() (any thread) makes the loop cancel every operation
// that waits on the outside world (accept, recv, timeouts, connect) and wake
// every Event::wait (sync.h); such an operation or wait started after the
// stop fails at once with ECANCELED. File I/O, sends and Event's
// wait_through_stop still complete, so tasks can flush. run() returns once
// no spawned task is left — on every core at once when the loop belongs to
// an Smp (smp.h).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "reactor/ring.h"
#include "reactor/task.h"

namespace coworker::reactor {

class Smp;

// What a CQE's user_data points at. user_data 0 means "ignore this CQE" (the
// linked timeouts and cancellations whose outcome is seen through their op).
struct Completion {
  using Callback = void (*)(Completion* self, int32_t res, uint32_t flags);
  Callback callback = nullptr;
};

// An operation that waits on the outside world: tracked so that stop can
// cancel it. Intrusive doubly linked list node.
struct Waiting {
  Waiting* prev = nullptr;
  Waiting* next = nullptr;
  uint64_t user_data = 0;  // what to cancel
  bool timeout = false;    // cancelled with TIMEOUT_REMOVE rather than ASYNC_CANCEL
  // A wait that is no io_uring op (Event::wait, sync.h) sets this: stop
  // calls it instead of submitting a cancel, and it untracks the wait and
  // schedules its coroutine.
  void (*on_stop)(Waiting* self) = nullptr;
};

class Loop {
 public:
  struct Config {
    unsigned core = 0;
    unsigned sq_entries = Ring::sq_entries_default;
    RingMode ring_mode = RingMode::best;
  };

  // Sets up the ring on the calling thread; aborts with a message naming what
  // the kernel lacks (the process cannot do anything useful without it).
  explicit Loop(Config config);
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop();

  static Loop& current() {
    COWORKER_ASSERT(_current != nullptr);
    return *_current;
  }
  static Loop* current_or_null() { return _current; }

  unsigned core() const { return _core; }
  Ring& ring() { return _ring; }
  io_uring_sqe* get_sqe() { return _ring.get_sqe(); }

  // Queue a coroutine to resume in this turn's run phase (or the next one).
  void schedule(std::coroutine_handle<> handle) { _ready.push_back(handle); }

  // Take ownership of a background task; it starts in the next run phase.
  void spawn(Task<void> task);
  size_t spawned() const { return _gate; }

  // Runs turns until stopped and drained. Returns 0, or the exit code given
  // to request_stop().
  int run();
  // Thread-safe. The first call decides the exit code.
  void request_stop(int exit_code = 0);
  bool stopping() const { return _stopping; }

  // Thread-safe wake-up of a loop blocked in io_uring_enter.
  void wake();

  // Waiting-operation registry (see Waiting): ops and Event waits call these.
  void track(Waiting* w);
  void untrack(Waiting* w);
  size_t waiting() const { return _waiting_count; }  // tracked now (tests)

  // Counters for tests and metrics.
  struct Stats {
    uint64_t turns = 0;
    uint64_t completions = 0;
    uint64_t resumed = 0;
    uint64_t sleeps = 0;
    uint64_t doorbells = 0;
  };
  const Stats& stats() const { return _stats; }

 private:
  friend class Smp;
  friend class ChannelSet;

  void reap();
  void run_ready();
  bool idle() const;
  void begin_stop();
  void arm_wake_read();
  static void on_wake(Completion* self, int32_t res, uint32_t flags);

  static thread_local Loop* _current;

  unsigned _core;
  Ring _ring;
  std::deque<std::coroutine_handle<>> _ready;
  size_t _gate = 0;
  Waiting _waiting;  // sentinel of the registry list
  size_t _waiting_count = 0;
  bool _stopping = false;
  std::atomic<bool> _stop_requested{false};
  std::atomic<int> _exit_code{0};

  // Wake-ups from other threads: an eventfd with one read always armed.
  int _wake_fd = -1;
  uint64_t _wake_buffer = 0;
  Completion _wake_completion;
  // Set while this loop may block in io_uring_enter; a producer that pushes
  // into our inbox and sees it set rings the doorbell.
  std::atomic<bool> _sleeping{false};
  // The doorbell target for MSG_RING: a CQE with this completion wakes us.
  Completion _doorbell_completion;

  Smp* _smp = nullptr;
  Stats _stats;
};

// Await to let other ready coroutines run (long loops yield now and then).
struct [[nodiscard]] Yield {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { Loop::current().schedule(h); }
  void await_resume() const noexcept {}
};

}  // namespace coworker::reactor
