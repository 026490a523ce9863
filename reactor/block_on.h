// block_on: run one task on a fresh single-core Loop on the calling thread
// and return its result. For tests and one-shot tools (the CLI); a server
// uses Smp.
#pragma once

#include <optional>

#include "reactor/loop.h"

namespace coworker::reactor {

namespace detail {
template <typename T>
Task<void> block_on_body(Task<T> task, std::optional<T>* out, Loop* loop) {
  out->emplace(co_await std::move(task));
  loop->request_stop();
}
inline Task<void> block_on_body_void(Task<void> task, Loop* loop) {
  co_await std::move(task);
  loop->request_stop();
}
}  // namespace detail

template <typename T>
T block_on(Task<T> task, Loop::Config config = {}) {
  Loop loop(config);
  if constexpr (std::is_void_v<T>) {
    loop.spawn(detail::block_on_body_void(std::move(task), &loop));
    loop.run();
  } else {
    std::optional<T> out;
    loop.spawn(detail::block_on_body(std::move(task), &out, &loop));
    loop.run();
    COWORKER_ASSERT(out.has_value());
    return std::move(*out);
  }
}

}  // namespace coworker::reactor
