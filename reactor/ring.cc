#include "reactor/ring.h"

#include <cerrno>
#include <cstring>
#include <iterator>

namespace coworker::reactor {

Ring::~Ring() {
  if (_live) io_uring_queue_exit(&_ring);
}

Status Ring::setup(unsigned sq_entries, std::string* why, RingMode mode) {
  COWORKER_ASSERT(!_live);
  struct Attempt {
    unsigned flags;
    bool defer;
    bool coop;
  };
  constexpr unsigned common = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
  const Attempt attempts[] = {
      {common | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
           IORING_SETUP_TASKRUN_FLAG,
       true, false},
      {common | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, false, true},
      {IORING_SETUP_CQSIZE, false, false},
  };
  int last = 0;
  for (size_t i = static_cast<size_t>(mode); i < std::size(attempts); i++) {
    const Attempt& attempt = attempts[i];
    io_uring_params params{};
    params.flags = attempt.flags;
    params.cq_entries = sq_entries * 8;
    last = io_uring_queue_init_params(sq_entries, &_ring, &params);
    if (last == 0) {
      _live = true;
      _features.defer_taskrun = attempt.defer;
      _features.coop_taskrun = attempt.coop;
      return probe(why);
    }
  }
  if (why) *why = std::string("io_uring_queue_init_params: ") + std::strerror(-last);
  return Errno{-last};
}

Status Ring::probe(std::string* why) {
  io_uring_probe* probe = io_uring_get_probe_ring(&_ring);
  if (probe == nullptr) {
    if (why) *why = "io_uring probe failed: kernel too old (need Linux 5.19 or newer)";
    return Errno{ENOSYS};
  }
  struct Needed {
    int op;
    const char* name;
  };
  const Needed needed[] = {
      {IORING_OP_NOP, "NOP"},         {IORING_OP_ACCEPT, "ACCEPT"},
      {IORING_OP_CONNECT, "CONNECT"}, {IORING_OP_RECV, "RECV"},
      {IORING_OP_SEND, "SEND"},       {IORING_OP_SENDMSG, "SENDMSG"},
      {IORING_OP_READ, "READ"},       {IORING_OP_WRITE, "WRITE"},
      {IORING_OP_FSYNC, "FSYNC"},     {IORING_OP_CLOSE, "CLOSE"},
      {IORING_OP_TIMEOUT, "TIMEOUT"}, {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
      {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
  };
  std::string missing;
  for (const Needed& n : needed) {
    if (!io_uring_opcode_supported(probe, n.op)) {
      missing += missing.empty() ? "" : ", ";
      missing += n.name;
    }
  }
  _features.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
  // Multishot recv and provided buffer rings arrived with Linux 6.0; the
  // SOCKET opcode (5.19) is the closest probe-able marker for multishot accept.
  _features.accept_multishot = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
  _features.recv_multishot = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
  io_uring_free_probe(probe);
  if (!missing.empty()) {
    if (why) *why = "io_uring lacks required opcodes: " + missing;
    return Errno{ENOSYS};
  }
  return {};
}

io_uring_sqe* Ring::get_sqe() {
  COWORKER_ASSERT(_live);
  io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
  if (sqe != nullptr) return sqe;
  submit(false);
  sqe = io_uring_get_sqe(&_ring);
  COWORKER_ASSERT(sqe != nullptr);
  return sqe;
}

void Ring::submit(bool wait) {
  for (;;) {
    const int res = wait ? io_uring_submit_and_wait(&_ring, 1) : io_uring_submit(&_ring);
    if (res >= 0) return;
    // EINTR: a signal arrived during the wait; EAGAIN/EBUSY: the completion
    // queue is full, and the caller reaps before it submits again.
    if (res == -EINTR) continue;
    if (res == -EAGAIN || res == -EBUSY) return;
    COWORKER_ASSERT(res != -EFAULT);
    COWORKER_ASSERT(res != -EBADF);
    COWORKER_ASSERT(false && "io_uring_enter failed");
  }
}

}  // namespace coworker::reactor
