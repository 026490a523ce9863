// The on-disk record of the log store: a 64-byte header and an opaque payload.
//
// Every record of a core's write-ahead log (log_store.h) has this shape; the
// byte layout is documented in docs/ARCHITECTURE.md ("Log store") and pinned
// here by static_asserts. All integers are little-endian.
//
//   off size field
//    0  4   magic            "CWLG"
//    4  4   header_crc       CRC32C of bytes 8..63, seeded with the segment index
//    8  4   payload_crc      CRC32C of the payload
//   12  4   payload_bytes
//   16  1   version          1
//   17  1   kind             RecordKind
//   18  2   core             the core whose log holds the record
//   20  4   bucket           bucket id, membership_bucket, or internal_bucket
//   24  8   seq              per-core sequence number, 1, 2, 3, ... without gaps
//   32  8   batch_first_seq  seq of the first record of the group-commit batch
//   40  4   location         byte offset of the record in its segment / 8
//   44  4   promise_counter  (consensus layers' meaning)
//   48  8   promise_slot     (consensus layers' meaning)
//   56  8   position         (consensus layers' meaning)
//   64  ..  payload, then zero padding to a multiple of 8 bytes
//
// Two checksums make one chain: the header checksum covers the payload
// checksum, so together they cover header and payload, and a damaged payload
// under an intact header still tells which bucket lost a record and where the
// next record starts. Seeding the header checksum with the segment index and
// storing the record's own offset (`location`) make a misdirected write (a
// valid record copied to another place, in this segment or another) fail
// verification. `batch_first_seq` marks batch boundaries: recovery uses it to
// tell a torn last batch from damage in an earlier, acknowledged batch.
//
// Pure functions and plain data: any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "consensus/ids.h"

namespace coworker::bucket {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the record format is little-endian");

enum class RecordKind : uint8_t {
  // Written by the consensus layers; the store treats their payloads as bytes.
  entry = 1,                  // committed entries of a bucket
  register_write = 2,         // a replica's register (the write it holds)
  promise = 3,                // promises and governments of a bucket
  bucket_checkpoint = 4,      // a bucket's checkpoint of non-entry state
  membership = 5,             // membership Paxos acceptor state (core 0 only)
  membership_checkpoint = 6,  // checkpoint of the membership state (core 0 only)
  commit = 7,                 // a bucket's commit mark: its register is committed
  counter = 8,                // the core's promise counter (bucket: participant_bucket)
  connection_block = 9,       // connection ids issued below this end (participant_bucket)
  // This replica discarded its copy: the bucket's earlier records in this
  // log count no more (repair, DESIGN §4; the bucket, or participant_bucket
  // for the promise counter after the participant gave up its id).
  bucket_reset = 10,
  // The first record of a checkpoint round (participant_bucket): in a log
  // whose front was retired, replay folds state from the first one on
  // (recovery.h; the round after it holds everything before it).
  checkpoint_round = 11,
  // Written by the store itself; never handed to replay visitors.
  segment_header = 64,  // first record of every segment
  seal = 65,            // last record of a full segment: the log goes on in the next one
  // The first record each LogStore::open puts (a life of the log): what
  // follows was written after a restart, so a round marker before it is
  // not shown whole by a marker after it (recovery.h step 4). Its payload,
  // 8 bytes: the seq of the round marker recovery found whole at that
  // start (the named one; 0: none), which it shows whole; or its own seq
  // when that recovery could fold nothing, so the image starts here
  // (recovery.h step 4b).
  boot = 66,
};

// The payloads of the store's own records (log_store.cc writes them,
// recovery reads them; the simulator's log files write them too), each
// little-endian:
//   segment_header  16 bytes: the segment's size when it was made, its index
//   boot             8 bytes: the round marker's seq recovery found whole (0: none),
//                    or the boot record's own seq (the image starts here)
//   seal             none
constexpr size_t segment_header_payload_bytes = 16;
constexpr size_t boot_payload_bytes = 8;
struct SegmentHeaderPayload {
  uint64_t segment_bytes = 0;
  uint64_t segment = 0;
};
std::array<char, segment_header_payload_bytes> encode_segment_header_payload(
    const SegmentHeaderPayload& header);
// Nothing when the payload is not a segment header's.
std::optional<SegmentHeaderPayload> decode_segment_header_payload(std::span<const char> payload);
std::array<char, boot_payload_bytes> encode_boot_payload(uint64_t whole_round_seq);
std::optional<uint64_t> decode_boot_payload(std::span<const char> payload);

bool record_kind_known(uint8_t kind);
bool record_kind_internal(RecordKind kind);
// A checkpoint ends the dependence of its bucket (or of the membership state)
// on earlier records of the same log (DESIGN §4, recovery.h).
bool record_kind_checkpoint(RecordKind kind);
const char* record_kind_name(RecordKind kind);

// The bucket field of membership records, and of the store's own records.
constexpr uint32_t membership_bucket = 0xFFFFFFFFu;
constexpr uint32_t internal_bucket = 0xFFFFFFFEu;
// The bucket field of records about the participant rather than a bucket
// (the promise counter), on any core.
constexpr uint32_t participant_bucket = 0xFFFFFFFDu;

// The consensus layers' promise (consensus/ids.h), stored in the header.
using Promise = consensus::Promise;

// What a caller says about a record; the store adds the rest of the header.
struct RecordMeta {
  RecordKind kind = RecordKind::entry;
  uint32_t bucket = 0;
  uint64_t position = 0;
  Promise promise{};
};

// When a staged record's fdatasync starts (LogStore group commit):
//   now        the flusher takes it at once (someone acts once it is durable);
//   with_next  nobody waits for it: it rides with the next record staged
//              `now`, or goes when its owner calls LogStore::flush_lazy()
//              (each tick), or when someone waits for it after all. A crash
//              may lose it like any record not yet durable. (The leader's
//              own commit record: before, it took an fdatasync of its own
//              just as the next append's register arrived, which then
//              waited for it: one client measured 0.48 ms p50.)
enum class Flush : uint8_t { now, with_next };

// The decoded header.
struct RecordHeader {
  uint32_t payload_crc = 0;
  uint32_t payload_bytes = 0;
  RecordKind kind = RecordKind::entry;
  uint16_t core = 0;
  uint32_t bucket = 0;
  uint64_t seq = 0;
  uint64_t batch_first_seq = 0;
  uint32_t location = 0;
  uint64_t position = 0;
  Promise promise{};

  RecordMeta meta() const { return {kind, bucket, position, promise}; }
};

// A header carrying `meta`; the rest (seqs, sizes, checksum, place) is the
// writer's to fill.
inline RecordHeader header_of(const RecordMeta& meta) {
  RecordHeader h;
  h.kind = meta.kind;
  h.bucket = meta.bucket;
  h.position = meta.position;
  h.promise = meta.promise;
  return h;
}

constexpr uint32_t record_magic = 0x474C5743u;  // "CWLG" in file byte order
constexpr uint8_t record_version = 1;
constexpr size_t record_header_bytes = 64;
constexpr size_t record_align = 8;
// The largest payload the format allows; a store's own limit may be lower.
constexpr size_t record_payload_bytes_max = 64u << 20;
static_assert(record_header_bytes % record_align == 0);

constexpr size_t record_align_up(size_t n) { return (n + record_align - 1) & ~(record_align - 1); }
// Bytes a record with this payload occupies in a segment, padding included.
constexpr size_t record_bytes(size_t payload_bytes) {
  return record_align_up(record_header_bytes + payload_bytes);
}

// Writes the header (with both checksums' slot filled: the caller computed
// payload_crc) for a record stored in segment `segment`.
void encode_header(const RecordHeader& header, uint64_t segment, char* out);

enum class HeaderCheck : uint8_t {
  ok,
  no_magic,      // not the start of a record (zeros, garbage, the inside of a payload)
  bad_checksum,  // magic present, checksum wrong: damaged or misdirected
  bad_fields,    // checksum right but impossible values (a bug, or a foreign writer)
};

// Decodes and verifies a header read from segment `segment`. Checks magic,
// version, checksum and the fields' own consistency; the caller checks the
// context (core, location, seq).
HeaderCheck decode_header(const char* in, uint64_t segment, RecordHeader* out);

// Whether a decoded header's payload matches its checksum.
bool payload_intact(const RecordHeader& header, std::span<const char> payload);

}  // namespace coworker::bucket
