// Segment summaries: what the per-bucket index (bucket_index.h) took from
// one sealed segment, kept beside it so recovery need not read it again.
//
//   <log dir>/core-<C>/<index, 16 hex digits>.summary
//
// Why. Recovery folds the engine's state from the newest checkpoint round
// (DESIGN §6, recovery.h), but the index of committed entries needs every
// register and commit record still retained. A summary holds, for one
// segment, the index's events in log order — a register's place and
// checksum, a commit mark, a checkpoint's commit end, a reset, a bucket
// found damaged, a round marker — about 46 bytes per committed write
// against its whole register record. Recovery feeds the summaries of the
// segments below the newest round to the index and reads the log itself
// only from that round's segment on (recovery.h, "Summaries").
//
// Protocol:
//   1. The index journals each event under the segment of its record, live
//      (StoreStorage staging) and in replay alike.
//   2. Once a segment's seal is durable (LogStore::Config::sealed), its
//      journal is written as the summary: header, events, CRC32C over both.
//      The file is not fsync'ed and not renamed into place: a summary that
//      is missing, torn or fails its checksum is simply not used, and
//      recovery reads that segment instead. Only the segment's own data is
//      ever the truth.
//   3. A summary names its core, its segment, the seq of the segment's
//      header record and the seq of its seal. Recovery uses it only when the
//      segment's header on disk has that seq and the next segment's header
//      the seal's seq + 1, so a summary left from another life of the same
//      index can never be taken for this one.
//   4. Retention deletes a segment's summary with the segment.
//
// The newest round. A summary exists only once its segment is sealed, and
// a round is staged when a segment begins, so the newest round usually lies
// in the segment being filled. The core names it, once durable whole, in
//   <log dir>/core-<C>/round     segment, offset, seq of the round's marker
// (hex, with a CRC32C; written as round.tmp, fdatasync'ed, renamed, the
// directory fsync'ed: Core::name_round). The named round is whole, and the
// image folds from it; the segments below its segment are taken from their
// summaries where they have them (recovery.h steps 4-5), once the record at
// that place is a checkpoint_round marker with that seq.
//
// Invariant: applying a segment's summary to an index leaves the index as
// replaying the segment's records would (tests/bucket/bucket_index_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "reactor/result.h"

namespace coworker::bucket {

struct SegmentSummary {
  unsigned core = 0;
  uint64_t segment = 0;
  uint64_t first_seq = 0;  // the segment header record's seq
  uint64_t seal_seq = 0;   // the seal record's seq
  uint32_t rounds = 0;     // checkpoint round markers in the segment
  std::string events;      // BucketIndex's journal of the segment (opaque here)
};

std::string summary_path(const std::string& log_dir, unsigned core, uint64_t segment);
std::string encode_summary(const SegmentSummary& summary);
// nullopt: not a whole, intact summary of that core's segment.
std::optional<SegmentSummary> decode_summary(std::span<const char> bytes, unsigned core,
                                             uint64_t segment);
// Reads one (synchronously: recovery and tools). nullopt: missing or not
// intact; the error is for the file system failing otherwise.
Result<std::optional<SegmentSummary>> read_summary(const std::string& log_dir, unsigned core,
                                                   uint64_t segment);
// Writes one synchronously (startup, tools, tests): not fsync'ed (step 2).
Status write_summary(const std::string& log_dir, const SegmentSummary& summary);

// Where a checkpoint round's marker record lies.
struct RoundPlace {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t seq = 0;
  friend bool operator==(const RoundPlace&, const RoundPlace&) = default;
};
std::string round_path(const std::string& log_dir, unsigned core);
std::string round_text(const RoundPlace& place);
// Writes it synchronously, aside and renamed into place, not durably
// (tests, tools; the core writes it durably with io_uring, Core::name_round).
Status write_round(const std::string& log_dir, unsigned core, const RoundPlace& place);
// nullopt: no `round` file, or not an intact one.
Result<std::optional<RoundPlace>> read_round(const std::string& log_dir, unsigned core);

}  // namespace coworker::bucket
