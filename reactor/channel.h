// Cross-core channels: bounded lock-free SPSC rings and the CrossCall record.
//
// Every ordered pair of cores (origin, target) has two rings: requests go
// origin → target, replies target → origin (Seastar smp_message_queue keeps
// the pair apart the same way). The origin allocates a CrossCall (usually
// inside the awaiting coroutine's frame), the target runs it, the reply hands
// the very same record back, and the origin resumes its waiter and owns the
// record again: memory never changes hands for good.
//
// Back-pressure without deadlock: an origin keeps at most `channel_capacity`
// calls in flight per target, so a reply ring can never be full and a target
// never blocks when it answers. Calls beyond that wait, in order, on the
// origin, and go out as replies free slots. Replies are drained on every turn,
// and a call's work may itself await calls to other cores, so the remaining
// rule is: nested cross-core calls must form a DAG of cores per request path
// (Seastar smp_service_group); a cycle that fills both directions of a pair
// with calls waiting on each other would stall.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "consensus/assert.h"

namespace coworker::reactor {

// A bounded single-producer single-consumer ring of pointers. The producer
// and the consumer each cache the other side's index to touch the shared
// cache line only when the cached value says full or empty.
template <typename T, uint32_t Capacity>
class SpscRing {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0,
                "capacity must be a power of two");

 public:
  static constexpr uint32_t capacity = Capacity;

  // Producer side. False when full.
  bool push(T value) {
    const uint32_t tail = _tail.load(std::memory_order_relaxed);
    if (tail - _head_cached == Capacity) {
      _head_cached = _head.load(std::memory_order_acquire);
      if (tail - _head_cached == Capacity) return false;
    }
    _slots[tail & (Capacity - 1)] = value;
    _tail.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. False when empty.
  bool pop(T& value) {
    const uint32_t head = _head.load(std::memory_order_relaxed);
    if (head == _tail_cached) {
      _tail_cached = _tail.load(std::memory_order_acquire);
      if (head == _tail_cached) return false;
    }
    value = _slots[head & (Capacity - 1)];
    _head.store(head + 1, std::memory_order_release);
    return true;
  }

  // Either side, as a hint: whether anything is queued.
  bool empty() const {
    return _head.load(std::memory_order_acquire) == _tail.load(std::memory_order_acquire);
  }

 private:
  alignas(64) std::atomic<uint32_t> _head{0};  // written by the consumer
  uint32_t _tail_cached = 0;                   // consumer's view of _tail
  alignas(64) std::atomic<uint32_t> _tail{0};  // written by the producer
  uint32_t _head_cached = 0;                   // producer's view of _head
  alignas(64) T _slots[Capacity];
};

// One cross-core call. `run` executes on the target core and must end with
// Smp::reply(call) (at once, or later from a spawned task); `complete` runs on
// the origin core once the reply is back.
struct CrossCall {
  using Step = void (*)(CrossCall* call);
  Step run = nullptr;
  Step complete = nullptr;
  unsigned origin = 0;
  unsigned target = 0;
  CrossCall* next_waiting = nullptr;  // origin's queue when the pair is full
};

constexpr uint32_t channel_capacity = 256;
using ChannelRing = SpscRing<CrossCall*, channel_capacity>;

// The two rings of one ordered pair (origin → target).
struct ChannelPair {
  ChannelRing requests;  // produced by origin, consumed by target
  ChannelRing replies;   // produced by target, consumed by origin
};

}  // namespace coworker::reactor
