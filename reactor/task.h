// Task<T>: the lazy coroutine every reactor operation is written in.
//
// A Task owns its frame: it starts only when awaited, resumes its awaiter by
// symmetric transfer when it finishes (so a chain of a million synchronous
// completions does not grow the stack, at -O2 under g++ and always under
// clang), and destroys its frame when the Task object dies — including a Task
// that was never started. Errors travel as values inside T (Result<...>); an
// exception escaping a task is a bug and terminates the process with a message.
//
// Background work is never a dropped Task: Loop::spawn() takes ownership,
// counts it in the loop's gate, and the loop drains the gate on shutdown.
//
// Threading: a Task runs on the core that awaits it and never migrates.
//
// g++ 12 (Debian's) and co_await: a temporary with a destructor inside a
// co_await full-expression may be destroyed twice (GCC PR 99576, fixed in
// later releases): `co_await submit_to(core, [v = std::move(vec)] {...})`
// corrupted the heap in the server. Keep such lambdas and awaitables in
// named variables: `auto call = submit_to(core, fn); co_await call;`.
#pragma once

#include <coroutine>
#include <cstddef>
#include <optional>
#include <utility>

#include "consensus/assert.h"
#include "reactor/frame_allocator.h"

namespace coworker::reactor {

[[noreturn]] void terminate_on_exception() noexcept;

template <typename T = void>
class Task;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation;

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      std::coroutine_handle<> next = self.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() const noexcept { terminate_on_exception(); }

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    frame_deallocate(frame, size);
  }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;

  Task<T> get_return_object() noexcept;
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    COWORKER_ASSERT(value.has_value());
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void take() const noexcept {}
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() = default;
  explicit Task(Handle handle) : _handle(handle) {}
  Task(Task&& other) noexcept : _handle(std::exchange(other._handle, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (_handle) _handle.destroy();
      _handle = std::exchange(other._handle, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (_handle) _handle.destroy();
  }

  bool valid() const { return static_cast<bool>(_handle); }
  bool done() const { return _handle && _handle.done(); }

  // Awaiting starts the task; its result is moved out when it finishes.
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    COWORKER_ASSERT(_handle);
    COWORKER_ASSERT(!_handle.done());
    _handle.promise().continuation = awaiter;
    return _handle;
  }
  T await_resume() {
    COWORKER_ASSERT(_handle.done());
    return _handle.promise().take();
  }

  // For the loop and tests: release ownership of the frame.
  Handle release() { return std::exchange(_handle, {}); }

 private:
  Handle _handle;
};

namespace detail {
template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<Promise<T>>::from_promise(*this)};
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<Promise<void>>::from_promise(*this)};
}
}  // namespace detail

// Runs a task to completion on the calling thread without a loop. Only for
// tasks that complete synchronously (tests, and the pure parts of tools).
template <typename T>
T run_synchronously(Task<T> task) {
  auto handle = task.release();
  handle.resume();
  COWORKER_ASSERT(handle.done());
  if constexpr (std::is_void_v<T>) {
    handle.destroy();
  } else {
    T value = handle.promise().take();
    handle.destroy();
    return value;
  }
}

}  // namespace coworker::reactor
