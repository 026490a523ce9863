// BufferRing: a ring of provided buffers (IORING_REGISTER_PBUF_RING) that
// multishot recv picks from, so a connection holds no receive buffer while it
// is idle.
//
// Owned by one core (its Loop's ring) and by whoever created it (the HTTP
// server keeps one per core), for as long as any MultishotRecv uses it.
// liburing 2.3 has no io_uring_setup_buf_ring: the ring is mmap'd here and
// registered with io_uring_register_buf_ring. `count` buffers of `size`
// bytes live in one allocation; buffer ids are their indices.
//
// Buffers go to the kernel at creation; the kernel hands one out per recv
// completion (flags carry its id); the reader gives it back with recycle() as
// soon as it has copied what it needs. When the kernel finds the ring empty a
// multishot recv ends with ENOBUFS: such receivers wait in `starved` and are
// re-armed, oldest first, as buffers come back.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <span>

#include "reactor/loop.h"
#include "reactor/result.h"

namespace coworker::reactor {

class MultishotRecv;

class BufferRing {
 public:
  // Registers `count` (a power of two, ≤ 32768) buffers of `size` bytes on
  // the current loop's ring. EINVAL/ENOSYS when the kernel lacks the feature.
  static Result<std::unique_ptr<BufferRing>> create(uint16_t count, uint32_t size);
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  ~BufferRing();

  uint16_t group() const { return _group; }
  uint32_t buffer_size() const { return _size; }
  uint16_t count() const { return _count; }
  // Buffers currently owned by the kernel (ready to be filled).
  uint32_t available() const { return _available; }

  std::span<const char> data(uint16_t id, uint32_t length) const;
  // Gives a buffer back to the kernel and re-arms a starved receiver.
  void recycle(uint16_t id);
  // A buffer the kernel handed out (called on each recv completion).
  void taken() {
    COWORKER_ASSERT(_available > 0);
    _available--;
  }

  // Receivers whose multishot recv ended with ENOBUFS (intrusive FIFO).
  void starve(MultishotRecv* receiver);
  void unstarve(MultishotRecv* receiver);

 private:
  BufferRing() = default;

  Loop* _loop = nullptr;
  io_uring_buf_ring* _ring = nullptr;
  size_t _ring_bytes = 0;
  std::unique_ptr<char[]> _memory;
  uint16_t _group = 0;
  uint16_t _count = 0;
  uint32_t _size = 0;
  uint32_t _available = 0;
  MultishotRecv* _starved_head = nullptr;
  MultishotRecv* _starved_tail = nullptr;
};

}  // namespace coworker::reactor
