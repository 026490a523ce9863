#include "reactor/ops.h"

namespace coworker::reactor {
namespace detail {

__kernel_timespec to_timespec(std::chrono::nanoseconds ns) {
  __kernel_timespec ts{};
  ts.tv_sec = ns.count() / 1000000000;
  ts.tv_nsec = ns.count() % 1000000000;
  return ts;
}

Errno translate_error(int32_t res, bool has_deadline) {
  COWORKER_ASSERT(res < 0);
  // A linked timeout that fired cancels its op; a stopping loop cancels too.
  if (res == -ECANCELED && has_deadline && !Loop::current().stopping()) return Errno{ETIMEDOUT};
  return Errno{-res};
}

}  // namespace detail

SendMsg::SendMsg(int fd, std::span<iovec> iov, Milliseconds timeout)
    : Op(timeout), _fd(fd), _iov(iov) {}

bool SendMsg::resubmit(int32_t res) {
  if (res <= 0) return false;
  size_t sent = static_cast<size_t>(res);
  _total += sent;
  // Drop the iovecs sent in full, then trim the first partial one.
  while (!_iov.empty() && sent >= _iov.front().iov_len) {
    sent -= _iov.front().iov_len;
    _iov = _iov.subspan(1);
  }
  if (_iov.empty()) {
    COWORKER_ASSERT(sent == 0);
    return false;
  }
  _iov.front().iov_base = static_cast<char*>(_iov.front().iov_base) + sent;
  _iov.front().iov_len -= sent;
  return true;
}

}  // namespace coworker::reactor
