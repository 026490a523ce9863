// CRC32C against fixed vectors and the record header's encode/verify pair.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "bucket/crc32c.h"
#include "bucket/record.h"

using namespace coworker::bucket;

namespace {

using Crc = uint32_t (*)(uint32_t, const void*, size_t);

std::vector<Crc> implementations() {
  std::vector<Crc> out{&crc32c_portable, &crc32c};
  if (crc32c_hardware_available()) out.push_back(&crc32c_hardware);
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

TEST_CASE("crc32c: the three-lane hardware path equals the table for every length") {
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

TEST_CASE("record: header round-trips and every field is covered by the checksum") {
  RecordHeader h;
  h.payload_crc = 0xDEADBEEF;
  h.payload_bytes = 100;
  h.kind = RecordKind::promise;
  h.core = 3;
  h.bucket = 17;
  h.seq = 42;
  h.batch_first_seq = 40;
  h.location = 1234;
  h.position = 99;
  h.promise = Promise{57, 2};
  char out[record_header_bytes];
  encode_header(h, 7, out);
  RecordHeader back;
  REQUIRE(decode_header(out, 7, &back) == HeaderCheck::ok);
  CHECK(back.payload_crc == h.payload_crc);
  CHECK(back.payload_bytes == h.payload_bytes);
  CHECK(back.kind == h.kind);
  CHECK(back.core == h.core);
  CHECK(back.bucket == h.bucket);
  CHECK(back.seq == h.seq);
  CHECK(back.batch_first_seq == h.batch_first_seq);
  CHECK(back.location == h.location);
  CHECK(back.position == h.position);
  CHECK(back.promise == h.promise);
  // The same bytes in another segment (a misdirected write) do not verify.
  CHECK(decode_header(out, 8, &back) == HeaderCheck::bad_checksum);
  // Every single-bit flip is caught.
  for (size_t byte = 0; byte < record_header_bytes; byte++) {
    for (int bit = 0; bit < 8; bit++) {
      char flipped[record_header_bytes];
      std::memcpy(flipped, out, sizeof(flipped));
      flipped[byte] = static_cast<char>(flipped[byte] ^ (1 << bit));
      CHECK(decode_header(flipped, 7, &back) != HeaderCheck::ok);
    }
  }
  CHECK(decode_header(std::string(64, '\0').data(), 7, &back) == HeaderCheck::no_magic);
}

TEST_CASE("record: the payload checksum catches a flipped payload bit") {
  std::string payload(300, 'x');
  RecordHeader h;
  h.payload_bytes = static_cast<uint32_t>(payload.size());
  h.payload_crc = crc32c(0, payload.data(), payload.size());
  CHECK(payload_intact(h, payload));
  payload[123] ^= 0x10;
  CHECK(!payload_intact(h, payload));
  CHECK(record_bytes(0) == 64);
  CHECK(record_bytes(1) == 72);
  CHECK(record_bytes(100) == 168);
}
