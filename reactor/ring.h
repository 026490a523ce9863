// Ring: one io_uring instance, owned by one core's Loop for the process's life.
//
// Setup tries the best flags first and falls back cleanly (liburing
// examples/echo-server.c, Seastar try_create_uring):
//   1. SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL | CQSIZE
//   2. COOP_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL | CQSIZE
//   3. CQSIZE
// and then probes every opcode the reactor uses, failing with a message that
// names each missing one. The ring must be created on the thread that will
// submit to it (SINGLE_ISSUER).
#pragma once

#include <liburing.h>

#include <string>

#include "reactor/result.h"

namespace coworker::reactor {

// Which optional kernel features this ring has; decided once at setup.
struct RingFeatures {
  bool defer_taskrun = false;
  bool coop_taskrun = false;
  bool msg_ring = false;         // IORING_OP_MSG_RING: doorbells without a syscall
  bool recv_multishot = false;   // multishot recv with provided buffer rings
  bool accept_multishot = false;
};

// Where setup starts in the fallback chain. `best` in production; tests
// force the later steps to show that each works on its own.
enum class RingMode : uint8_t { best, coop_taskrun, plain };

class Ring {
 public:
  // Entries per submission queue; completions are sized 8x (multishot ops and
  // batched sends can post many completions per submission).
  static constexpr unsigned sq_entries_default = 1024;

  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // Errno on failure, with `why` naming the step or the missing opcodes.
  Status setup(unsigned sq_entries, std::string* why, RingMode mode = RingMode::best);

  io_uring* raw() { return &_ring; }
  int fd() const { return _ring.ring_fd; }
  const RingFeatures& features() const { return _features; }

  // Never returns null: when the submission queue is full it submits what is
  // queued and tries again.
  io_uring_sqe* get_sqe();
  // Submits queued SQEs; when `wait` is set, blocks until one completion.
  void submit(bool wait);

 private:
  Status probe(std::string* why);

  io_uring _ring{};
  bool _live = false;
  RingFeatures _features;
};

}  // namespace coworker::reactor
