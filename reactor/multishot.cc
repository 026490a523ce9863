#include "reactor/multishot.h"

#include <unistd.h>

namespace coworker::reactor {

namespace detail {

void Multishot::cancel() {
  COWORKER_ASSERT(_armed);
  if (_cancelling) return;
  _cancelling = true;
  io_uring_sqe* sqe = Loop::current().get_sqe();
  io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(static_cast<Completion*>(this)), 0);
  io_uring_sqe_set_data(sqe, nullptr);
}

bool Multishot::settle(int32_t res, uint32_t flags) {
  COWORKER_ASSERT(_armed);
  COWORKER_ASSERT(res != -EFAULT && res != -EBADF);
  // A cancel we asked for is not an error; one from a stopping loop is.
  if (res < 0 && res != -ENOBUFS && _error == 0 &&
      !(res == -ECANCELED && _cancelling && !Loop::current().stopping())) {
    _error = -res;
  }
  if (flags & IORING_CQE_F_MORE) return false;
  _armed = false;
  _cancelling = false;
  Loop::current().untrack(&_waiting);
  if (_closer) Loop::current().schedule(std::exchange(_closer, {}));
  return true;
}

}  // namespace detail

// ---- accept ---------------------------------------------------------------

MultishotAccept::MultishotAccept(int listen_fd)
    : _fd(listen_fd), _multishot(Loop::current().ring().features().accept_multishot) {
  callback = &MultishotAccept::on_cqe;
}

MultishotAccept::~MultishotAccept() { COWORKER_ASSERT(_ready.empty()); }

void MultishotAccept::on_cqe(Completion* completion, int32_t res, uint32_t flags) {
  auto* self = static_cast<MultishotAccept*>(completion);
  if (res >= 0) {
    if (self->_closing) {
      ::close(res);
    } else {
      self->_ready.push_back(res);
    }
  }
  const bool last = self->settle(res, flags);
  const bool news = Next{self}.await_ready();
  // Ended without news (F_MORE clear after an fd): arm again at once.
  if (last && !news && self->_reader) self->arm_accept();
  if (news) self->wake_reader();
}

bool MultishotAccept::Next::await_ready() const noexcept {
  return !self->_ready.empty() || self->_error != 0 || self->_closing ||
         (!self->_armed && Loop::current().stopping());
}

void MultishotAccept::Next::await_suspend(std::coroutine_handle<> h) {
  COWORKER_ASSERT(!self->_reader);
  self->_reader = h;
  if (!self->_armed) self->arm_accept();
}

void MultishotAccept::arm_accept() {
  const int fd = _fd;
  arm([fd](io_uring_sqe* sqe) {
    io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  });
}

Result<int> MultishotAccept::Next::await_resume() {
  if (!self->_ready.empty()) {
    const int fd = self->_ready.front();
    self->_ready.pop_front();
    return fd;
  }
  if (self->_error != 0) return Errno{std::exchange(self->_error, 0)};
  return Errno{ECANCELED};  // closing or stopping
}

Task<Result<int>> MultishotAccept::next() {
  if (!_multishot) co_return co_await Accept{_fd};
  co_return co_await Next{this};
}

Task<void> MultishotAccept::close() {
  _closing = true;
  if (_armed) {
    cancel();
    co_await Disarmed{this};
  }
  while (!_ready.empty()) {
    ::close(_ready.front());
    _ready.pop_front();
  }
  wake_reader();
}

// ---- recv -----------------------------------------------------------------

MultishotRecv::MultishotRecv(int fd, BufferRing* buffers, size_t queued_max)
    : _fd(fd), _buffers(buffers), _queued_max(queued_max) {
  COWORKER_ASSERT(buffers != nullptr);
  COWORKER_ASSERT(queued_max > 0);
  callback = &MultishotRecv::on_cqe;
}

MultishotRecv::~MultishotRecv() {
  COWORKER_ASSERT(_queue.empty());
  COWORKER_ASSERT(!_starving);
}

void MultishotRecv::arm_recv() {
  const int fd = _fd;
  const uint16_t group = _buffers->group();
  arm([fd, group](io_uring_sqe* sqe) {
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
  });
}

void MultishotRecv::rearm() {
  COWORKER_ASSERT(_starving);
  _starving = false;
  if (!_armed && !_closing && !_eof && _error == 0 && !Loop::current().stopping()) arm_recv();
  wake_reader();  // a stopping loop: the reader learns it from next()
}

void MultishotRecv::on_cqe(Completion* completion, int32_t res, uint32_t flags) {
  auto* self = static_cast<MultishotRecv*>(completion);
  if (flags & IORING_CQE_F_BUFFER) {
    COWORKER_ASSERT(res > 0);
    const auto id = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    self->_buffers->taken();
    if (self->_closing) {
      self->_buffers->recycle(id);
    } else {
      self->_queue.push_back(Chunk{id, static_cast<uint32_t>(res)});
    }
  } else if (res == 0) {
    self->_eof = true;
  }
  const bool last = self->settle(res, flags);
  if (last && res == -ENOBUFS && !self->_closing && !self->_starving) {
    // Wait for a buffer to come back; re-armed from BufferRing::recycle.
    self->_starving = true;
    self->_buffers->starve(self);
  }
  if (!last && self->_queue.size() >= self->_queued_max) self->cancel();  // pause
  const bool news = Next{self}.await_ready();
  // Ended without news (F_MORE clear, or a pause with nothing queued): re-arm
  // for a waiting reader.
  if (last && !news && self->_reader && !self->_starving) self->arm_recv();
  if (news) self->wake_reader();
}

bool MultishotRecv::Next::await_ready() const noexcept {
  return !self->_queue.empty() || self->_eof || self->_error != 0 || self->_closing ||
         (!self->_armed && Loop::current().stopping());
}

void MultishotRecv::Next::await_suspend(std::coroutine_handle<> h) {
  COWORKER_ASSERT(!self->_reader);
  self->_reader = h;
  if (!self->_armed && !self->_starving) self->arm_recv();
}

Result<MultishotRecv::Chunk> MultishotRecv::Next::await_resume() {
  if (!self->_queue.empty()) {
    const Chunk chunk = self->_queue.front();
    self->_queue.pop_front();
    return chunk;
  }
  if (self->_error != 0) return Errno{self->_error};
  if (self->_eof) return Chunk{};
  return Errno{ECANCELED};  // closing or stopping
}

Task<void> MultishotRecv::close() {
  _closing = true;
  if (_starving) {
    _buffers->unstarve(this);
    _starving = false;
  }
  if (_armed) {
    cancel();
    co_await Disarmed{this};
  }
  while (!_queue.empty()) {
    _buffers->recycle(_queue.front().id);
    _queue.pop_front();
  }
  wake_reader();
}

}  // namespace coworker::reactor
