#include "reactor/loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "reactor/smp.h"

namespace coworker::reactor {

thread_local Loop* Loop::_current = nullptr;

namespace {

// How many ready coroutines one turn resumes before it reaps again: bounds
// the time I/O completions wait behind a burst of CPU work.
constexpr size_t ready_per_turn_max = 4096;

// A spawned task's owner: starts it, waits for it, releases the gate slot,
// and frees its own frame at the end (final_suspend never suspends).
struct Detached {
  struct promise_type {
    Detached get_return_object() {
      return Detached{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { terminate_on_exception(); }
    static void* operator new(std::size_t size) { return frame_allocate(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
      frame_deallocate(frame, size);
    }
  };
  std::coroutine_handle<promise_type> handle;
};

Detached run_detached(Task<void> task, size_t* gate) {
  co_await std::move(task);
  COWORKER_ASSERT(*gate > 0);
  (*gate)--;
}

}  // namespace

void terminate_on_exception() noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fatal: exception escaped a task: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "fatal: unknown exception escaped a task\n");
  }
  std::fflush(stderr);
  std::abort();
}

Loop::Loop(Config config) : _core(config.core) {
  COWORKER_ASSERT(_current == nullptr);
  std::string why;
  if (!_ring.setup(config.sq_entries, &why, config.ring_mode)) {
    std::fprintf(stderr, "coworker: core %u: cannot set up io_uring: %s\n", _core, why.c_str());
    std::exit(1);
  }
  _wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  COWORKER_ASSERT(_wake_fd >= 0);
  _waiting.prev = _waiting.next = &_waiting;
  _wake_completion.callback = &Loop::on_wake;
  _doorbell_completion.callback = [](Completion*, int32_t, uint32_t) {};
  _current = this;
  arm_wake_read();
}

Loop::~Loop() {
  COWORKER_ASSERT(_current == this);
  _current = nullptr;
  // The ring is torn down by ~Ring after this body, cancelling the wake read;
  // the eventfd may close first: the read then fails, and nobody looks.
  ::close(_wake_fd);
}

void Loop::arm_wake_read() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, _wake_fd, &_wake_buffer, sizeof(_wake_buffer), 0);
  io_uring_sqe_set_data(sqe, &_wake_completion);
}

void Loop::on_wake(Completion* self, int32_t res, uint32_t) {
  Loop& loop = current();
  COWORKER_ASSERT(self == &loop._wake_completion);
  // A nonblocking eventfd read fails with EAGAIN when io_uring polls it first;
  // either way the loop is awake now, so re-arm and carry on.
  COWORKER_ASSERT(res > 0 || res == -EAGAIN || res == -ECANCELED);
  loop.arm_wake_read();
}

void Loop::wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the loop is being woken anyway.
  [[maybe_unused]] ssize_t n = ::write(_wake_fd, &one, sizeof(one));
}

void Loop::spawn(Task<void> task) {
  COWORKER_ASSERT(task.valid());
  _gate++;
  Detached detached = run_detached(std::move(task), &_gate);
  schedule(detached.handle);
}

void Loop::track(Waiting* w) {
  COWORKER_ASSERT(w->next == nullptr);
  w->next = &_waiting;
  w->prev = _waiting.prev;
  _waiting.prev->next = w;
  _waiting.prev = w;
  _waiting_count++;
}

void Loop::untrack(Waiting* w) {
  COWORKER_ASSERT(w->next != nullptr);
  COWORKER_ASSERT(_waiting_count > 0);
  w->prev->next = w->next;
  w->next->prev = w->prev;
  w->prev = w->next = nullptr;
  _waiting_count--;
}

void Loop::request_stop(int exit_code) {
  bool expected = false;
  if (_stop_requested.compare_exchange_strong(expected, true)) {
    _exit_code.store(exit_code);
  }
  if (_current != this) wake();
}

void Loop::begin_stop() {
  COWORKER_ASSERT(!_stopping);
  _stopping = true;
  // Cancel everything that waits on the outside world; each op untracks
  // itself when its CQE arrives. An Event's wait untracks itself at once, in
  // on_stop, so read the next node first.
  Waiting* w = _waiting.next;
  while (w != &_waiting) {
    Waiting* next = w->next;
    if (w->on_stop != nullptr) {
      w->on_stop(w);
    } else {
      io_uring_sqe* sqe = get_sqe();
      if (w->timeout) {
        io_uring_prep_timeout_remove(sqe, w->user_data, 0);
      } else {
        io_uring_prep_cancel64(sqe, w->user_data, 0);
      }
      io_uring_sqe_set_data(sqe, nullptr);
    }
    w = next;
  }
}

void Loop::reap() {
  io_uring* ring = _ring.raw();
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring, head, cqe) {
    auto* completion = static_cast<Completion*>(io_uring_cqe_get_data(cqe));
    if (completion != nullptr) completion->callback(completion, cqe->res, cqe->flags);
    count++;
  }
  io_uring_cq_advance(ring, count);
  _stats.completions += count;
}

void Loop::run_ready() {
  size_t resumed = 0;
  while (!_ready.empty() && resumed < ready_per_turn_max) {
    std::coroutine_handle<> handle = _ready.front();
    _ready.pop_front();
    handle.resume();
    resumed++;
  }
  _stats.resumed += resumed;
}

bool Loop::idle() const { return _stopping && _gate == 0 && _ready.empty(); }

int Loop::run() {
  COWORKER_ASSERT(_current == this);
  for (;;) {
    _stats.turns++;
    if (!_stopping && _stop_requested.load(std::memory_order_acquire)) begin_stop();
    if (_smp != nullptr) _smp->drain_inbox(*this);
    reap();
    run_ready();
    if (_smp != nullptr) _smp->ring_doorbells(*this);
    if (_smp != nullptr ? _smp->finished(*this, idle()) : idle()) break;

    bool wait = _ready.empty() && io_uring_cq_ready(_ring.raw()) == 0;
    if (wait) {
      // Dekker with the producers in Smp::ring_doorbells: publish that we may
      // sleep, then look at the inbox once more.
      _sleeping.store(true, std::memory_order_seq_cst);
      if ((_smp != nullptr && _smp->inbox_pending(*this)) ||
          (!_stopping && _stop_requested.load(std::memory_order_seq_cst))) {
        wait = false;
      }
    }
    if (wait) _stats.sleeps++;
    _ring.submit(wait);
    _sleeping.store(false, std::memory_order_relaxed);
  }
  return _exit_code.load();
}

}  // namespace coworker::reactor
