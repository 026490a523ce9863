#include "reactor/sync.h"

namespace coworker::reactor {

namespace detail {

EventWaiter::~EventWaiter() {
  if (parked) event->unlink(this);
}

}  // namespace detail

void Event::park(detail::EventWaiter* waiter, std::coroutine_handle<> handle) {
  COWORKER_ASSERT(!waiter->parked);
  COWORKER_ASSERT(waiter->event == this);
  COWORKER_ASSERT(handle);
  waiter->handle = handle;
  waiter->parked = true;
  waiter->next = nullptr;
  waiter->prev = _tail;
  if (_tail != nullptr) {
    _tail->next = waiter;
  } else {
    _head = waiter;
  }
  _tail = waiter;
  _waiters++;
}

void Event::unlink(detail::EventWaiter* waiter) {
  COWORKER_ASSERT(waiter->parked);
  COWORKER_ASSERT(_waiters > 0);
  if (waiter->prev != nullptr) {
    waiter->prev->next = waiter->next;
  } else {
    _head = waiter->next;
  }
  if (waiter->next != nullptr) {
    waiter->next->prev = waiter->prev;
  } else {
    _tail = waiter->prev;
  }
  waiter->prev = waiter->next = nullptr;
  waiter->parked = false;
  _waiters--;
}

void Event::wake_all() {
  Loop& loop = Loop::current();
  // Take the whole list first: the waiters run later, from the ready queue,
  // and may park here again; those wait for the next set or notify.
  detail::EventWaiter* waiter = std::exchange(_head, nullptr);
  _tail = nullptr;
  _waiters = 0;
  while (waiter != nullptr) {
    detail::EventWaiter* next = waiter->next;
    COWORKER_ASSERT(waiter->parked);
    waiter->prev = waiter->next = nullptr;
    waiter->parked = false;
    if (waiter->stop != nullptr) loop.untrack(std::exchange(waiter->stop, nullptr));
    loop.schedule(waiter->handle);
    waiter = next;
  }
  COWORKER_ASSERT(_head == nullptr);
}

Event::Wait::~Wait() {
  // Untracked before the base leaves the event's list (~EventWaiter).
  if (stop != nullptr) Loop::current().untrack(std::exchange(stop, nullptr));
}

bool Event::Wait::await_ready() {
  if (event->is_set()) return true;
  if (Loop::current().stopping()) {
    _cancelled = true;
    return true;
  }
  return false;
}

void Event::Wait::await_suspend(std::coroutine_handle<> h) {
  COWORKER_ASSERT(stop == nullptr);
  event->park(this, h);
  Waiting::on_stop = &Wait::cancel_at_stop;
  stop = static_cast<Waiting*>(this);
  Loop::current().track(stop);
}

void Event::Wait::cancel_at_stop(Waiting* self) {
  auto* wait = static_cast<Wait*>(self);
  COWORKER_ASSERT(wait->stop == self);
  COWORKER_ASSERT(wait->parked);
  Loop& loop = Loop::current();
  loop.untrack(std::exchange(wait->stop, nullptr));
  wait->event->unlink(wait);
  wait->_cancelled = true;
  loop.schedule(wait->handle);
}

void TaskGroup::spawn(Task<void> task) {
  COWORKER_ASSERT(task.valid());
  _running++;
  _idle.reset();
  Loop::current().spawn(run_member(std::move(task), this));
}

Task<void> TaskGroup::run_member(Task<void> task, TaskGroup* group) {
  co_await std::move(task);
  COWORKER_ASSERT(group->_running > 0);
  group->_running--;
  if (group->_running == 0) group->_idle.set();
}

Task<void> when_all(std::vector<Task<void>> tasks) {
  TaskGroup group;
  for (Task<void>& task : tasks) group.spawn(std::move(task));
  co_await group.join();
}

}  // namespace coworker::reactor
