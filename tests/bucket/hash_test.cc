// bucket_of is the contract external clients compute too (DESIGN §3).
#include <doctest/doctest.h>

#include <string>

#include "bucket/hash.h"

using namespace coworker::bucket;

TEST_CASE("hash: the DESIGN vectors") {
  CHECK(fnv1a64("") == 0xcbf29ce484222325ull);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a64("foobar") == 0x85944171f73967e8ull);
  CHECK(bucket_of("a", 64) == 12);
  CHECK(bucket_of("foobar", 64) == 40);
}

TEST_CASE("hash: bytes are hashed as unsigned, including NUL and high bytes") {
  const std::string with_nul("a\0b", 3);
  CHECK(fnv1a64(with_nul) != fnv1a64("ab"));
  // "\xff" must be treated as 255, not as a sign-extended -1.
  uint64_t expected = fnv1a64_offset;
  expected ^= 0xffu;
  expected *= fnv1a64_prime;
  CHECK(fnv1a64("\xff") == expected);
}

TEST_CASE("hash: bucket_of stays in range for every power of two") {
  for (uint32_t buckets = 1; buckets <= (1u << 16); buckets <<= 1) {
    CHECK(bucket_of("some identifier", buckets) < buckets);
  }
}
