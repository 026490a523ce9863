// Event, TaskGroup and when_all: how one core's coroutines wait for each other.
//
// Every object here belongs to the core that created it and is used only by
// that core's coroutines (a cross-core wait goes through submit_to or
// Smp::broadcast, smp.h). Its owner keeps it alive while anything waits on
// it: an Event asserts at destruction that nobody is parked on it, a
// TaskGroup that none of its tasks still runs.
//
// Event (after cppcoro's async_manual_reset_event and Seastar's
// condition_variable): a manual-reset event.
//   - set() latches it and wakes every parked waiter; a wait that starts
//     while it is set completes at once, until reset() clears it. Use it for
//     something that happens once or stays true ("ready", "group empty").
//   - notify_all() wakes every parked waiter without latching: the waiters
//     re-check their own condition in a loop (a condition variable).
// Woken waiters are scheduled on the loop's ready queue, in the order they
// parked, never resumed inside set(): the notifier runs on to its next
// co_await first. No wait allocates: the waiter's list node lives in the
// awaitable, hence in the waiting coroutine's frame (like submit_to's call).
//
// Two waits, for the two answers to "what does the loop's stop do to me?":
//   Status s = co_await event.wait();      // stop wakes it: ECANCELED
//   co_await event.wait_through_stop();    // stop leaves it parked
// `wait()` is for work that stop ends (a queue's consumer, "until ready"): it
// is tracked with the ops that wait on the outside world (Loop::track), so a
// forgotten wait cannot keep a stopping loop from draining; started on a
// stopping loop it fails at once (like Recv), unless the event is set: a
// set event answers ok even then. `wait_through_stop()` is for
// work the stopping core still finishes (a flush, a join): its owner must
// set or notify it while draining, or run() never returns.
//
// TaskGroup (after Seastar's gate and parallel_for_each): tasks started
// together on this core, and a join that waits for all of them. Each task is
// spawned with Loop::spawn, so it is counted in the loop's gate as well.
//   TaskGroup group;
//   for (auto& t : tasks) group.spawn(std::move(t));
//   co_await group.join();
// when_all(vector<Task<T>>) is the same for results, returned in order.
#pragma once

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "reactor/loop.h"
#include "reactor/result.h"
#include "reactor/task.h"

namespace coworker::reactor {

class Event;

namespace detail {

// A coroutine parked on an Event: a node of the event's doubly linked list,
// kept inside the awaitable. `stop` is the loop's registry node of a wait
// that stop ends (Event::Wait), null for one it does not.
struct EventWaiter {
  explicit EventWaiter(Event& e) : event(&e) {}
  EventWaiter(const EventWaiter&) = delete;
  EventWaiter& operator=(const EventWaiter&) = delete;
  // A frame destroyed while parked (its task dropped) leaves the list.
  ~EventWaiter();

  Event* event;
  EventWaiter* prev = nullptr;
  EventWaiter* next = nullptr;
  std::coroutine_handle<> handle;
  Waiting* stop = nullptr;
  bool parked = false;
};

}  // namespace detail

class Event {
 public:
  class Wait;
  class WaitThroughStop;

  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { COWORKER_ASSERT(_head == nullptr); }

  bool is_set() const { return _set; }
  size_t waiters() const { return _waiters; }

  // Latches the event and wakes every parked waiter.
  void set() {
    _set = true;
    if (_head != nullptr) wake_all();
  }
  // Clears the latch; waiters parked now stay parked.
  void reset() { _set = false; }
  // Wakes every parked waiter and leaves the latch as it is: unset, a wait
  // that starts afterwards parks.
  void notify_all() {
    if (_head != nullptr) wake_all();
  }

  // Completes when set or notified (ok), or when the loop stops (ECANCELED).
  Wait wait();
  // Completes when set or notified; the loop's stop does not end it.
  WaitThroughStop wait_through_stop();

 private:
  friend struct detail::EventWaiter;

  void park(detail::EventWaiter* waiter, std::coroutine_handle<> handle);
  void unlink(detail::EventWaiter* waiter);
  void wake_all();

  detail::EventWaiter* _head = nullptr;
  detail::EventWaiter* _tail = nullptr;
  size_t _waiters = 0;
  bool _set = false;
};

class [[nodiscard]] Event::Wait : private detail::EventWaiter, private Waiting {
 public:
  explicit Wait(Event& e) : EventWaiter(e) {}
  ~Wait();
  bool await_ready();
  void await_suspend(std::coroutine_handle<> h);
  Status await_resume() const {
    if (_cancelled) return Errno{ECANCELED};
    return {};
  }

 private:
  static void cancel_at_stop(Waiting* self);

  bool _cancelled = false;
};

// Public so that an awaitable of its own can hold one (a std::optional built
// in place in its await_suspend) and park through it: LogStore::Durable.
class [[nodiscard]] Event::WaitThroughStop : private detail::EventWaiter {
 public:
  explicit WaitThroughStop(Event& e) : EventWaiter(e) {}
  bool await_ready() const noexcept { return event->is_set(); }
  void await_suspend(std::coroutine_handle<> h) { event->park(this, h); }
  void await_resume() const noexcept {}
};

inline Event::Wait Event::wait() { return Wait(*this); }
inline Event::WaitThroughStop Event::wait_through_stop() { return WaitThroughStop(*this); }

class TaskGroup {
 public:
  TaskGroup() { _idle.set(); }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  // The running tasks point at their group.
  ~TaskGroup() { COWORKER_ASSERT(_running == 0); }

  // Starts `task` on this core in the loop's next run phase (Loop::spawn).
  void spawn(Task<void> task);
  // Completes once no task of the group runs (at once if none does). The
  // loop's stop does not end it: the tasks are in the loop's gate, which
  // stop drains, and they may write into the joining frame (when_all).
  Event::WaitThroughStop join() { return _idle.wait_through_stop(); }
  size_t running() const { return _running; }

 private:
  static Task<void> run_member(Task<void> task, TaskGroup* group);

  size_t _running = 0;
  Event _idle;  // set while _running == 0
};

namespace detail {
template <typename T>
Task<void> store_result(Task<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}
}  // namespace detail

// Runs every task concurrently on this core and waits for all of them.
Task<void> when_all(std::vector<Task<void>> tasks);

// The same, returning the results in the order of `tasks`.
template <typename T>
  requires(!std::is_void_v<T>)
Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
  // The results live in this frame, which join() keeps alive (through stop)
  // until the last task has written its own.
  std::vector<std::optional<T>> results(tasks.size());
  TaskGroup group;
  for (size_t i = 0; i < tasks.size(); i++) {
    group.spawn(detail::store_result(std::move(tasks[i]), &results[i]));
  }
  co_await group.join();
  std::vector<T> out;
  out.reserve(results.size());
  for (std::optional<T>& result : results) {
    COWORKER_ASSERT(result.has_value());
    out.push_back(std::move(*result));
  }
  co_return out;
}

}  // namespace coworker::reactor
