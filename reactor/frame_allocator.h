// Per-thread recycling of coroutine frames.
//
// Every Task allocates its frame; on the hot path (an append crossing HTTP, the
// phaser and the log store) that is several frames per request. Frames are
// recycled through per-thread free lists by 64-byte size class, so steady state
// allocates nothing. A frame freed on another thread simply joins that
// thread's list: blocks come from ::operator new and are interchangeable.
// Under AddressSanitizer the cache is bypassed so use-after-free is reported.
#pragma once

#include <cstddef>

namespace coworker::reactor {

void* frame_allocate(std::size_t size);
void frame_deallocate(void* frame, std::size_t size) noexcept;

}  // namespace coworker::reactor
