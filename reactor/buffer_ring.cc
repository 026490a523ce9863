#include "reactor/buffer_ring.h"

#include <sys/mman.h>

#include "reactor/multishot.h"

namespace coworker::reactor {

namespace {
// Buffer group ids are per ring; one counter per core thread keeps them apart.
thread_local uint16_t next_group = 1;
}  // namespace

Result<std::unique_ptr<BufferRing>> BufferRing::create(uint16_t count, uint32_t size) {
  COWORKER_ASSERT(count > 0 && (count & (count - 1)) == 0);
  COWORKER_ASSERT(count <= 32768);
  COWORKER_ASSERT(size > 0);
  std::unique_ptr<BufferRing> self(new BufferRing());
  self->_loop = &Loop::current();
  self->_count = count;
  self->_size = size;
  self->_ring_bytes = sizeof(io_uring_buf) * count;
  void* mapped = ::mmap(nullptr, self->_ring_bytes, PROT_READ | PROT_WRITE,
                        MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mapped == MAP_FAILED) return Errno{errno};
  self->_ring = static_cast<io_uring_buf_ring*>(mapped);
  io_uring_buf_ring_init(self->_ring);
  self->_group = next_group++;
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(self->_ring);
  reg.ring_entries = count;
  reg.bgid = self->_group;
  const int registered = io_uring_register_buf_ring(self->_loop->ring().raw(), &reg, 0);
  if (registered < 0) {
    ::munmap(self->_ring, self->_ring_bytes);
    self->_ring = nullptr;
    return Errno{-registered};
  }
  self->_memory.reset(new char[size_t{count} * size]);
  const int mask = io_uring_buf_ring_mask(count);
  for (uint16_t id = 0; id < count; id++) {
    io_uring_buf_ring_add(self->_ring, self->_memory.get() + size_t{id} * size, size, id, mask,
                          id);
  }
  io_uring_buf_ring_advance(self->_ring, count);
  self->_available = count;
  return self;
}

BufferRing::~BufferRing() {
  COWORKER_ASSERT(_starved_head == nullptr);
  if (_ring == nullptr) return;
  COWORKER_ASSERT(&Loop::current() == _loop);
  io_uring_unregister_buf_ring(_loop->ring().raw(), _group);
  ::munmap(_ring, _ring_bytes);
}

std::span<const char> BufferRing::data(uint16_t id, uint32_t length) const {
  COWORKER_ASSERT(id < _count);
  COWORKER_ASSERT(length <= _size);
  return {_memory.get() + size_t{id} * _size, length};
}

void BufferRing::recycle(uint16_t id) {
  COWORKER_ASSERT(id < _count);
  COWORKER_ASSERT(_available < _count);
  io_uring_buf_ring_add(_ring, _memory.get() + size_t{id} * _size, _size, id,
                        io_uring_buf_ring_mask(_count), 0);
  io_uring_buf_ring_advance(_ring, 1);
  _available++;
  if (MultishotRecv* receiver = _starved_head) {
    unstarve(receiver);
    receiver->rearm();
  }
}

void BufferRing::starve(MultishotRecv* receiver) {
  COWORKER_ASSERT(receiver->_next_starved == nullptr);
  COWORKER_ASSERT(receiver != _starved_tail);
  if (_starved_tail != nullptr) {
    _starved_tail->_next_starved = receiver;
    receiver->_prev_starved = _starved_tail;
  } else {
    _starved_head = receiver;
  }
  _starved_tail = receiver;
}

void BufferRing::unstarve(MultishotRecv* receiver) {
  if (receiver->_prev_starved != nullptr) {
    receiver->_prev_starved->_next_starved = receiver->_next_starved;
  } else {
    COWORKER_ASSERT(_starved_head == receiver);
    _starved_head = receiver->_next_starved;
  }
  if (receiver->_next_starved != nullptr) {
    receiver->_next_starved->_prev_starved = receiver->_prev_starved;
  } else {
    COWORKER_ASSERT(_starved_tail == receiver);
    _starved_tail = receiver->_prev_starved;
  }
  receiver->_prev_starved = receiver->_next_starved = nullptr;
}

}  // namespace coworker::reactor
