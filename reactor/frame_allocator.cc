#include "reactor/frame_allocator.h"

#include <array>
#include <new>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COWORKER_NO_FRAME_CACHE 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define COWORKER_NO_FRAME_CACHE 1
#endif

namespace coworker::reactor {
#ifndef COWORKER_NO_FRAME_CACHE
namespace {

constexpr std::size_t class_bytes = 64;
constexpr std::size_t class_count = 64;  // frames up to 4 KiB are cached
constexpr std::size_t cached_per_class_max = 4096;

struct FreeBlock {
  FreeBlock* next;
};

struct FrameCache {
  std::array<FreeBlock*, class_count> heads{};
  std::array<std::size_t, class_count> counts{};

  ~FrameCache() {
    for (FreeBlock*& head : heads) {
      while (head != nullptr) {
        FreeBlock* next = head->next;
        ::operator delete(head);
        head = next;
      }
    }
  }
};

thread_local FrameCache cache;

std::size_t class_of(std::size_t size) { return (size + class_bytes - 1) / class_bytes; }

}  // namespace
#endif

void* frame_allocate(std::size_t size) {
#ifndef COWORKER_NO_FRAME_CACHE
  const std::size_t c = class_of(size);
  if (c < class_count && cache.heads[c] != nullptr) {
    FreeBlock* block = cache.heads[c];
    cache.heads[c] = block->next;
    cache.counts[c]--;
    return block;
  }
  if (c < class_count) return ::operator new(c * class_bytes);
#endif
  return ::operator new(size);
}

void frame_deallocate(void* frame, std::size_t size) noexcept {
#ifndef COWORKER_NO_FRAME_CACHE
  const std::size_t c = class_of(size);
  if (c < class_count && cache.counts[c] < cached_per_class_max) {
    auto* block = static_cast<FreeBlock*>(frame);
    block->next = cache.heads[c];
    cache.heads[c] = block;
    cache.counts[c]++;
    return;
  }
#endif
  ::operator delete(frame);
}

}  // namespace coworker::reactor
