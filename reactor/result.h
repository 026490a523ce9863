// Result<T, E>: a value or an operating error, never an exception.
//
// I/O layers return errors as values (DESIGN §6); a module names its errors in
// its own `enum class Errc` and uses Result<T, Errc>. System calls and io_uring
// completions use Errno. A Result must be looked at ([[nodiscard]]).
#pragma once

#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "consensus/assert.h"

namespace coworker {

// An errno value from a system call or an io_uring completion (positive).
struct Errno {
  int code = 0;
  const char* message() const { return std::strerror(code); }
  friend bool operator==(Errno, Errno) = default;
};

template <typename T, typename E = Errno>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, std::decay_t<E>>,
                "a Result's value and error types must differ");

 public:
  Result(T value) : _v(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(E error) : _v(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return _v.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    COWORKER_ASSERT(ok());
    return *std::get_if<0>(&_v);
  }
  const T& value() const& {
    COWORKER_ASSERT(ok());
    return *std::get_if<0>(&_v);
  }
  T&& value() && {
    COWORKER_ASSERT(ok());
    return std::move(*std::get_if<0>(&_v));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const {
    COWORKER_ASSERT(!ok());
    return *std::get_if<1>(&_v);
  }

 private:
  std::variant<T, E> _v;
};

// Result<void, E>: success, or an error.
template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(E error) : _error(std::move(error)) {}  // NOLINT

  bool ok() const { return !_error.has_value(); }
  explicit operator bool() const { return ok(); }
  const E& error() const {
    COWORKER_ASSERT(!ok());
    return *_error;
  }

 private:
  std::optional<E> _error;
};

using Status = Result<void, Errno>;

}  // namespace coworker
