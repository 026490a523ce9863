// The record header's encode/verify pair.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "consensus/crc32c.h"
#include "bucket/record.h"

using namespace coworker::bucket;
using coworker::consensus::crc32c;

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

TEST_CASE("record: kinds — which are known, internal, checkpoints (recovery's suspects)") {
  for (unsigned kind = 0; kind < 256; kind++) {
    const bool known = (kind >= 1 && kind <= 11) || kind == 64 || kind == 65 || kind == 66;
    CHECK(record_kind_known(static_cast<uint8_t>(kind)) == known);
    if (known) CHECK(std::string(record_kind_name(static_cast<RecordKind>(kind))) != "unknown");
  }
  CHECK(record_kind_internal(RecordKind::seal));
  CHECK(record_kind_internal(RecordKind::boot));
  CHECK(!record_kind_internal(RecordKind::bucket_reset));
  // A reset ends its bucket's dependence on earlier records, like a checkpoint.
  CHECK(record_kind_checkpoint(RecordKind::bucket_reset));
  CHECK(record_kind_checkpoint(RecordKind::membership_checkpoint));
  CHECK(!record_kind_checkpoint(RecordKind::register_write));
  // A round's marker holds no state; the checkpoints after it do.
  CHECK(!record_kind_checkpoint(RecordKind::checkpoint_round));
  CHECK(record_kind_checkpoint(RecordKind::bucket_checkpoint));
}
