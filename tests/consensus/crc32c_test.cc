// CRC32C against fixed vectors, every implementation the CPU has.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "consensus/crc32c.h"

using namespace coworker::consensus;

namespace {

using Crc = uint32_t (*)(uint32_t, const void*, size_t);

std::vector<Crc> implementations() {
  std::vector<Crc> out{&crc32c_portable, &crc32c};
  if (crc32c_hardware_available()) out.push_back(&crc32c_hardware);
  if (crc32c_wide_available()) out.push_back(&crc32c_wide);
  return out;
}

}  // namespace

TEST_CASE("crc32c: RFC 3720 and check vectors, every implementation") {
  std::string ascending(32, '\0'), descending(32, '\0');
  for (int i = 0; i < 32; i++) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  for (Crc crc : implementations()) {
    CHECK(crc(0, "123456789", 9) == 0xE3069283u);
    CHECK(crc(0, std::string(32, '\0').data(), 32) == 0x8A9136AAu);
    CHECK(crc(0, std::string(32, '\xff').data(), 32) == 0x62A8AB43u);
    CHECK(crc(0, ascending.data(), 32) == 0x46DD794Eu);
    CHECK(crc(0, descending.data(), 32) == 0x113FDB5Cu);
    CHECK(crc(0, "", 0) == 0u);
  }
}

TEST_CASE("crc32c: chaining and unaligned starts agree with one pass") {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7 + 3);
  const uint32_t whole = crc32c_portable(0, data.data(), data.size());
  for (Crc crc : implementations()) {
    for (size_t split : {0, 1, 3, 7, 8, 13, 500, 999, 1000}) {
      const uint32_t first = crc(0, data.data(), split);
      CHECK(crc(first, data.data() + split, data.size() - split) == whole);
    }
    for (size_t start = 0; start < 9; start++) {
      CHECK(crc(0, data.data() + start, 100) == crc32c_portable(0, data.data() + start, 100));
    }
  }
}

TEST_CASE("crc32c: the hardware paths equal the table for every length") {
  std::string data(100000, '\0');
  uint64_t state = 12345;
  for (char& c : data) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    c = static_cast<char>(state >> 56);
  }
  for (Crc crc : implementations()) {
    for (size_t length : {0, 1, 767, 768, 769, 24575, 24576, 24577, 50000, 73728, 99990}) {
      for (size_t start : {0, 3, 8}) {
        CHECK(crc(0, data.data() + start, length) ==
              crc32c_portable(0, data.data() + start, length));
        CHECK(crc(0x1234567, data.data() + start, length) ==
              crc32c_portable(0x1234567, data.data() + start, length));
      }
    }
  }
}

TEST_CASE("crc32c: the folding path equals the table around each of its boundaries") {
  if (!crc32c_wide_available()) {
    MESSAGE("skipped: this CPU has no AVX-512 VPCLMULQDQ (crc32c_wide is never chosen here)");
    return;
  }
  std::string data(5000, '\0');
  uint64_t state = 777;
  for (char& c : data) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    c = static_cast<char>(state >> 56);
  }
  // Below and above the minimum, each round of 256 bytes and each tail.
  for (size_t length = wide_bytes_min - 3; length < 4200; length += 13) {
    for (size_t start : {0, 1, 5, 64}) {
      for (uint32_t crc : {0u, 0xFFFFFFFFu, 0x89ABCDEFu}) {
        REQUIRE(crc32c_wide(crc, data.data() + start, length) ==
                crc32c_portable(crc, data.data() + start, length));
      }
    }
  }
  // One bit anywhere changes it.
  const uint32_t whole = crc32c_wide(0, data.data(), 4096);
  for (size_t bit = 0; bit < 4096 * 8; bit += 97) {
    data[bit / 8] = static_cast<char>(data[bit / 8] ^ (1 << (bit % 8)));
    CHECK(crc32c_wide(0, data.data(), 4096) != whole);
    data[bit / 8] = static_cast<char>(data[bit / 8] ^ (1 << (bit % 8)));
  }
}

TEST_CASE("crc32c: integers are hashed as their little-endian bytes") {
  const unsigned char bytes[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
  CHECK(crc32c_u64(0, 0x0102030405060708ull) == crc32c(0, bytes, sizeof(bytes)));
}
