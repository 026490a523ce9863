#include "bucket/record.h"

#include <cstring>

#include "consensus/crc32c.h"
#include "consensus/assert.h"

namespace coworker::bucket {

using consensus::crc32c;

namespace {

template <typename T>
void put(char* out, size_t offset, T value) {
  std::memcpy(out + offset, &value, sizeof(T));
}
template <typename T>
T get(const char* in, size_t offset) {
  T value;
  std::memcpy(&value, in + offset, sizeof(T));
  return value;
}

uint32_t header_checksum(const char* header, uint64_t segment) {
  const uint32_t seed = crc32c(0, &segment, sizeof(segment));
  return crc32c(seed, header + 8, record_header_bytes - 8);
}

}  // namespace

bool record_kind_known(uint8_t kind) {
  return (kind >= 1 && kind <= 11) || (kind >= 64 && kind <= 66);
}

bool record_kind_internal(RecordKind kind) {
  return kind == RecordKind::segment_header || kind == RecordKind::seal ||
         kind == RecordKind::boot;
}

bool record_kind_checkpoint(RecordKind kind) {
  return kind == RecordKind::bucket_checkpoint || kind == RecordKind::membership_checkpoint ||
         kind == RecordKind::bucket_reset;
}

const char* record_kind_name(RecordKind kind) {
  switch (kind) {
    case RecordKind::entry: return "entry";
    case RecordKind::register_write: return "register";
    case RecordKind::promise: return "promise";
    case RecordKind::bucket_checkpoint: return "bucket_checkpoint";
    case RecordKind::membership: return "membership";
    case RecordKind::membership_checkpoint: return "membership_checkpoint";
    case RecordKind::commit: return "commit";
    case RecordKind::counter: return "counter";
    case RecordKind::connection_block: return "connection_block";
    case RecordKind::bucket_reset: return "bucket_reset";
    case RecordKind::checkpoint_round: return "checkpoint_round";
    case RecordKind::segment_header: return "segment_header";
    case RecordKind::seal: return "seal";
    case RecordKind::boot: return "boot";
  }
  return "unknown";
}

void encode_header(const RecordHeader& header, uint64_t segment, char* out) {
  COWORKER_ASSERT(header.seq >= 1);
  COWORKER_ASSERT(header.batch_first_seq >= 1);
  COWORKER_ASSERT(header.batch_first_seq <= header.seq);
  COWORKER_ASSERT(header.payload_bytes <= record_payload_bytes_max);
  put<uint32_t>(out, 0, record_magic);
  put<uint32_t>(out, 8, header.payload_crc);
  put<uint32_t>(out, 12, header.payload_bytes);
  put<uint8_t>(out, 16, record_version);
  put<uint8_t>(out, 17, static_cast<uint8_t>(header.kind));
  put<uint16_t>(out, 18, header.core);
  put<uint32_t>(out, 20, header.bucket);
  put<uint64_t>(out, 24, header.seq);
  put<uint64_t>(out, 32, header.batch_first_seq);
  put<uint32_t>(out, 40, header.location);
  put<uint32_t>(out, 44, header.promise.counter);
  put<uint64_t>(out, 48, header.promise.slot);
  put<uint64_t>(out, 56, header.position);
  put<uint32_t>(out, 4, header_checksum(out, segment));
}

HeaderCheck decode_header(const char* in, uint64_t segment, RecordHeader* out) {
  if (get<uint32_t>(in, 0) != record_magic) return HeaderCheck::no_magic;
  if (get<uint32_t>(in, 4) != header_checksum(in, segment)) return HeaderCheck::bad_checksum;
  const uint8_t kind = get<uint8_t>(in, 17);
  RecordHeader h;
  h.payload_crc = get<uint32_t>(in, 8);
  h.payload_bytes = get<uint32_t>(in, 12);
  h.kind = static_cast<RecordKind>(kind);
  h.core = get<uint16_t>(in, 18);
  h.bucket = get<uint32_t>(in, 20);
  h.seq = get<uint64_t>(in, 24);
  h.batch_first_seq = get<uint64_t>(in, 32);
  h.location = get<uint32_t>(in, 40);
  h.promise.counter = get<uint32_t>(in, 44);
  h.promise.slot = get<uint64_t>(in, 48);
  h.position = get<uint64_t>(in, 56);
  const bool sane = get<uint8_t>(in, 16) == record_version && record_kind_known(kind) &&
                    h.payload_bytes <= record_payload_bytes_max && h.seq >= 1 &&
                    h.batch_first_seq >= 1 && h.batch_first_seq <= h.seq;
  if (!sane) return HeaderCheck::bad_fields;
  *out = h;
  return HeaderCheck::ok;
}

bool payload_intact(const RecordHeader& header, std::span<const char> payload) {
  COWORKER_ASSERT(payload.size() == header.payload_bytes);
  return crc32c(0, payload) == header.payload_crc;
}

std::array<char, segment_header_payload_bytes> encode_segment_header_payload(
    const SegmentHeaderPayload& header) {
  std::array<char, segment_header_payload_bytes> out{};
  std::memcpy(out.data(), &header.segment_bytes, 8);
  std::memcpy(out.data() + 8, &header.segment, 8);
  return out;
}

std::optional<SegmentHeaderPayload> decode_segment_header_payload(std::span<const char> payload) {
  if (payload.size() != segment_header_payload_bytes) return std::nullopt;
  SegmentHeaderPayload header;
  std::memcpy(&header.segment_bytes, payload.data(), 8);
  std::memcpy(&header.segment, payload.data() + 8, 8);
  return header;
}

std::array<char, boot_payload_bytes> encode_boot_payload(uint64_t whole_round_seq) {
  std::array<char, boot_payload_bytes> out{};
  std::memcpy(out.data(), &whole_round_seq, boot_payload_bytes);
  return out;
}

std::optional<uint64_t> decode_boot_payload(std::span<const char> payload) {
  if (payload.size() != boot_payload_bytes) return std::nullopt;
  uint64_t whole_round_seq = 0;
  std::memcpy(&whole_round_seq, payload.data(), boot_payload_bytes);
  return whole_round_seq;
}

}  // namespace coworker::bucket
