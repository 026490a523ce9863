// Offload: one blocking function run on a thread of its own, its end
// awaited from a core's loop without blocking that loop.
//
// For work that is synchronous by nature and long, during which the core
// must go on serving: a participant's log replay at start, while core 0
// heartbeats (tools/coworker/boot.h). The function runs on the new thread
// and must not touch any Loop or anything a core owns; it ends by writing
// one byte into a socket pair, which the core's wait() receives through
// io_uring like any other wait (a recv, cancelled when the loop stops).
// Its result is taken on the core once wait() said it is there: the
// socket's write and read order the thread's writes before the core's
// reads.
//
// The destructor joins the thread: an Offload abandoned when its loop
// stops still waits for its function to return.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <optional>
#include <span>
#include <thread>
#include <utility>

#include "consensus/assert.h"
#include "reactor/ops.h"
#include "reactor/result.h"
#include "reactor/task.h"

namespace coworker::reactor {

template <typename T>
class Offload {
 public:
  // Starts `fn` on its thread; an error when no socket pair could be made
  // (then nothing runs).
  static Result<std::unique_ptr<Offload>> start(std::function<T()> fn) {
    auto offload = std::unique_ptr<Offload>(new Offload());
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, offload->_fds) < 0) {
      return Errno{errno};
    }
    Offload* self = offload.get();
    offload->_thread = std::thread([self, fn = std::move(fn)] {
      self->_result.emplace(fn());
      const char byte = 1;
      // A full buffer cannot happen (one byte, once); a failure would leave
      // wait() waiting, so it is a bug.
      COWORKER_ASSERT(::write(self->_fds[1], &byte, 1) == 1);
    });
    return offload;
  }

  Offload(const Offload&) = delete;
  Offload& operator=(const Offload&) = delete;
  ~Offload() {
    if (_thread.joinable()) _thread.join();
    for (int fd : _fds) {
      if (fd >= 0) ::close(fd);
    }
  }

  // Ok once the function returned (take() has its result); ETIMEDOUT when
  // `timeout` passed first (0: none), ECANCELED when the loop stops.
  Task<Status> wait(Milliseconds timeout = Milliseconds{0}) {
    if (_done) co_return Status{};
    char byte = 0;
    Result<size_t> got = co_await Recv{_fds[0], std::span<char>(&byte, 1), timeout};
    if (!got) co_return got.error();
    COWORKER_ASSERT(*got == 1);  // our end of the pair is never shut down
    _done = true;
    co_return Status{};
  }

  // Once wait() said it is done; once.
  T take() {
    COWORKER_ASSERT(_done && _result.has_value());
    T out = std::move(*_result);
    _result.reset();
    return out;
  }

 private:
  Offload() = default;

  int _fds[2] = {-1, -1};
  std::thread _thread;
  std::optional<T> _result;
  bool _done = false;
};

}  // namespace coworker::reactor
