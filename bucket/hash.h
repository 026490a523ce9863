// Identifier → bucket. Pure, pinned by the DESIGN §3 test vectors.
//
//   bucket = fnv1a64(identifier bytes) mod B, B a power of two (default 64).
#pragma once

#include <cstdint>
#include <string_view>

#include "consensus/assert.h"

namespace coworker::bucket {

constexpr uint64_t fnv1a64_offset = 14695981039346656037ull;
constexpr uint64_t fnv1a64_prime = 1099511628211ull;

constexpr uint64_t fnv1a64(std::string_view bytes) {
  uint64_t hash = fnv1a64_offset;
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= fnv1a64_prime;
  }
  return hash;
}

constexpr bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

inline uint32_t bucket_of(std::string_view identifier, uint32_t buckets) {
  COWORKER_ASSERT(is_power_of_two(buckets));
  return static_cast<uint32_t>(fnv1a64(identifier) & (buckets - 1));
}

static_assert(fnv1a64("") == 0xcbf29ce484222325ull);
static_assert(fnv1a64("a") == 0xaf63dc4c8601ec8cull);
static_assert(fnv1a64("foobar") == 0x85944171f73967e8ull);

}  // namespace coworker::bucket
