// One awaitable per io_uring operation.
//
// Each op holds its own completion record, so no op allocates (liburing4cpp
// sqe_awaitable.hpp). The SQE is prepared in await_suspend, never at
// construction: an op that nobody awaits never reaches the kernel.
//
//   auto received = co_await Recv{fd, buffer};   // Result<size_t>
//   if (!received) co_return received.error();   // an operating error, a value
//
// Results: the kernel's -errno becomes an Errno value; EINTR is retried inside
// the op; short sends and file writes continue from where they stopped;
// EFAULT and EBADF are our own bugs and assert.
//
// Deadlines: any op constructed with a timeout gets a linked LINK_TIMEOUT; when
// it fires the op fails with ETIMEDOUT. Ops that wait on the outside world
// (Accept, Connect, Recv, Timeout) are cancelled by Loop::request_stop and fail
// with ECANCELED; Send, Read, Write, Fsync and Close run to completion so that
// a stopping task can still flush.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <span>

#include "reactor/loop.h"

namespace coworker::reactor {

using Milliseconds = std::chrono::milliseconds;

// Whether an op waits on the outside world (and is cancelled by stop).
enum class Waits : bool { no, yes };

namespace detail {

__kernel_timespec to_timespec(std::chrono::nanoseconds ns);
Errno translate_error(int32_t res, bool has_deadline);

// CRTP base: Derived provides prepare(sqe), and optionally
// `bool resubmit(int32_t res)` to continue a short transfer.
template <typename Derived, Waits waits>
class Op : protected Completion {
 public:
  bool await_ready() noexcept {
    if constexpr (waits == Waits::yes) {
      if (Loop::current().stopping()) {
        _res = -ECANCELED;
        return true;
      }
    }
    return false;
  }
  void await_suspend(std::coroutine_handle<> waiter) {
    _waiter = waiter;
    issue();
  }

 protected:
  explicit Op(Milliseconds timeout = Milliseconds{0}) : _timeout(timeout) {
    callback = &Op::on_complete;
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  bool has_deadline() const { return _timeout.count() > 0; }

  void issue() {
    Loop& loop = Loop::current();
    io_uring* ring = loop.ring().raw();
    // A linked chain (prelude, op, timeout) must reach the kernel in one
    // submission, so make room for all of it first.
    const unsigned needed = 1u + (Derived::has_prelude ? 1u : 0u) + (has_deadline() ? 1u : 0u);
    if (io_uring_sq_space_left(ring) < needed) loop.ring().submit(false);
    if constexpr (Derived::has_prelude) {
      io_uring_sqe* first = loop.get_sqe();
      static_cast<Derived*>(this)->prelude(first);
      io_uring_sqe_set_data(first, nullptr);
    }
    io_uring_sqe* sqe = loop.get_sqe();
    static_cast<Derived*>(this)->prepare(sqe);
    io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
    if (has_deadline()) {
      sqe->flags |= IOSQE_IO_LINK;
      _timespec = to_timespec(_timeout);
      io_uring_sqe* link = loop.get_sqe();
      io_uring_prep_link_timeout(link, &_timespec, 0);
      io_uring_sqe_set_data(link, nullptr);
    }
    if constexpr (waits == Waits::yes) {
      _waiting.user_data = reinterpret_cast<uint64_t>(static_cast<Completion*>(this));
      _waiting.timeout = Derived::is_timeout;
      loop.track(&_waiting);
    }
  }

  static void on_complete(Completion* completion, int32_t res, uint32_t flags) {
    auto* self = static_cast<Derived*>(completion);
    if constexpr (waits == Waits::yes) Loop::current().untrack(&self->_waiting);
    COWORKER_ASSERT(res != -EFAULT);
    COWORKER_ASSERT(res != -EBADF);
    if (res == -EINTR || self->resubmit(res)) {
      self->issue();
      return;
    }
    self->_res = res;
    self->_flags = flags;
    Loop::current().schedule(self->_waiter);
  }

  bool resubmit(int32_t) { return false; }
  static constexpr bool is_timeout = false;
  static constexpr bool has_prelude = false;  // an SQE linked before the op

  std::coroutine_handle<> _waiter;
  int32_t _res = 0;
  uint32_t _flags = 0;
  Milliseconds _timeout;
  __kernel_timespec _timespec{};
  Waiting _waiting;
};

}  // namespace detail

// accept4 on a listening socket; the new fd is nonblocking and close-on-exec.
class [[nodiscard]] Accept : public detail::Op<Accept, Waits::yes> {
 public:
  explicit Accept(int fd, Milliseconds timeout = Milliseconds{0}) : Op(timeout), _fd(fd) {}
  void prepare(io_uring_sqe* sqe) {
    io_uring_prep_accept(sqe, _fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  }
  Result<int> await_resume() {
    if (_res < 0) return detail::translate_error(_res, has_deadline());
    return _res;
  }

 private:
  int _fd;
};

class [[nodiscard]] Connect : public detail::Op<Connect, Waits::yes> {
 public:
  Connect(int fd, const sockaddr_in& address, Milliseconds timeout = Milliseconds{0})
      : Op(timeout), _fd(fd), _address(address) {}
  void prepare(io_uring_sqe* sqe) {
    io_uring_prep_connect(sqe, _fd, reinterpret_cast<const sockaddr*>(&_address),
                          sizeof(_address));
  }
  Status await_resume() {
    if (_res < 0) return detail::translate_error(_res, has_deadline());
    return {};
  }

 private:
  int _fd;
  sockaddr_in _address;
};

// One recv into the caller's buffer; 0 bytes means the peer closed.
class [[nodiscard]] Recv : public detail::Op<Recv, Waits::yes> {
 public:
  Recv(int fd, std::span<char> buffer, Milliseconds timeout = Milliseconds{0})
      : Op(timeout), _fd(fd), _buffer(buffer) {}
  void prepare(io_uring_sqe* sqe) {
    io_uring_prep_recv(sqe, _fd, _buffer.data(), _buffer.size(), 0);
  }
  Result<size_t> await_resume() {
    if (_res < 0) return detail::translate_error(_res, has_deadline());
    return static_cast<size_t>(_res);
  }

 private:
  int _fd;
  std::span<char> _buffer;
};

// Sends the whole buffer, continuing after short sends.
class [[nodiscard]] Send : public detail::Op<Send, Waits::no> {
 public:
  Send(int fd, std::span<const char> buffer, Milliseconds timeout = Milliseconds{0})
      : Op(timeout), _fd(fd), _buffer(buffer) {}
  void prepare(io_uring_sqe* sqe) {
    io_uring_prep_send(sqe, _fd, _buffer.data() + _sent, _buffer.size() - _sent,
                       MSG_NOSIGNAL);
  }
  bool resubmit(int32_t res) {
    if (res <= 0) return false;
    _sent += static_cast<size_t>(res);
    return _sent < _buffer.size();
  }
  Result<size_t> await_resume() {
    if (_res < 0) return detail::translate_error(_res, has_deadline());
    return _buffer.size();
  }

 private:
  int _fd;
  std::span<const char> _buffer;
  size_t _sent = 0;
};

// sendmsg over an iovec array, continuing after short sends. The array is
// advanced in place as bytes go out: the caller's iovecs are consumed.
class [[nodiscard]] SendMsg : public detail::Op<SendMsg, Waits::no> {
 public:
  SendMsg(int fd, std::span<iovec> iov, Milliseconds timeout = Milliseconds{0});
  void prepare(io_uring_sqe* sqe) {
    _msg.msg_iov = _iov.data();
    _msg.msg_iovlen = _iov.size();
    io_uring_prep_sendmsg(sqe, _fd, &_msg, MSG_NOSIGNAL);
  }
  bool resubmit(int32_t res);
  Result<size_t> await_resume() {
    if (_res < 0) return detail::translate_error(_res, has_deadline());
    return _total;
  }

 private:
  int _fd;
  std::span<iovec> _iov;
  msghdr _msg{};
  size_t _total = 0;
};

// pread; a short count only at end of file.
class [[nodiscard]] Read : public detail::Op<Read, Waits::no> {
 public:
  Read(int fd, std::span<char> buffer, uint64_t offset)
      : _fd(fd), _buffer(buffer), _offset(offset) {}
  void prepare(io_uring_sqe* sqe) {
    io_uring_prep_read(sqe, _fd, _buffer.data() + _done, _buffer.size() - _done,
                       _offset + _done);
  }
  bool resubmit(int32_t res) {
    if (res <= 0) return false;  // 0: end of file
    _done += static_cast<size_t>(res);
    return _done < _buffer.size();
  }
  Result<size_t> await_resume() {
    if (_res < 0) return detail::translate_error(_res, false);
    return _done;
  }

 private:
  int _fd;
  std::span<char> _buffer;
  uint64_t _offset;
  size_t _done = 0;
};

// Whether a write is durable when it completes: RWF_DSYNC makes the write
// carry its own fdatasync (data plus the metadata needed to read it back).
enum class WriteSync : bool { no, data };

// pwrite of the whole buffer, continuing after short writes.
class [[nodiscard]] Write : public detail::Op<Write, Waits::no> {
 public:
  Write(int fd, std::span<const char> buffer, uint64_t offset, WriteSync sync = WriteSync::no)
      : _fd(fd), _buffer(buffer), _offset(offset), _sync(sync) {}
  void prepare(io_uring_sqe* sqe) {
    io_uring_prep_write(sqe, _fd, _buffer.data() + _done, _buffer.size() - _done,
                        _offset + _done);
    if (_sync == WriteSync::data) sqe->rw_flags = RWF_DSYNC;
  }
  bool resubmit(int32_t res) {
    if (res <= 0) return false;
    _done += static_cast<size_t>(res);
    return _done < _buffer.size();
  }
  Result<size_t> await_resume() {
    if (_res < 0) return detail::translate_error(_res, false);
    if (_done < _buffer.size()) return Errno{ENOSPC};  // a write of 0 bytes
    return _done;
  }

 private:
  int _fd;
  std::span<const char> _buffer;
  uint64_t _offset;
  WriteSync _sync;
  size_t _done = 0;
};

enum class SyncData : bool { all, data_only };

// fsync, or fdatasync with SyncData::data_only.
class [[nodiscard]] Fsync : public detail::Op<Fsync, Waits::no> {
 public:
  explicit Fsync(int fd, SyncData what = SyncData::data_only) : _fd(fd), _what(what) {}
  void prepare(io_uring_sqe* sqe) {
    io_uring_prep_fsync(sqe, _fd, _what == SyncData::data_only ? IORING_FSYNC_DATASYNC : 0);
  }
  Status await_resume() {
    if (_res < 0) return detail::translate_error(_res, false);
    return {};
  }

 private:
  int _fd;
  SyncData _what;
};

// Cancels every pending op on the fd (hard-linked, so the close runs even when
// there was nothing to cancel), then closes it.
class [[nodiscard]] Close : public detail::Op<Close, Waits::no> {
 public:
  explicit Close(int fd) : _fd(fd) {}
  static constexpr bool has_prelude = true;
  void prelude(io_uring_sqe* sqe) {
    io_uring_prep_cancel_fd(sqe, _fd, IORING_ASYNC_CANCEL_ALL);
    sqe->flags |= IOSQE_IO_HARDLINK;
  }
  void prepare(io_uring_sqe* sqe) { io_uring_prep_close(sqe, _fd); }
  Status await_resume() {
    if (_res < 0) return detail::translate_error(_res, false);
    return {};
  }

 private:
  int _fd;
};

// Sleeps for a duration (to the nanosecond: the load generator's open loop
// paces sends finer than a millisecond). Fails with ECANCELED when the loop
// stops.
class [[nodiscard]] Timeout : public detail::Op<Timeout, Waits::yes> {
 public:
  explicit Timeout(std::chrono::nanoseconds duration) : _duration(duration) {}
  void prepare(io_uring_sqe* sqe) {
    _when = detail::to_timespec(_duration);
    io_uring_prep_timeout(sqe, &_when, 0, 0);
  }
  Status await_resume() {
    if (_res == -ETIME || _res == 0) return {};
    return detail::translate_error(_res, false);
  }
  static constexpr bool is_timeout = true;

 private:
  std::chrono::nanoseconds _duration;
  __kernel_timespec _when{};
};

}  // namespace coworker::reactor
