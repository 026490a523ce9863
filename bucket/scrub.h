// SegmentScrub: verifies one sealed segment that a start did not read.
//
// Recovery takes the segments below the newest round from their summaries
// (recovery.h steps 4-5) and does not read them, so damage at rest there is
// not found at start. After the start, each core reads those segments in
// the background, slowly (Core::run_scrub: io_uring reads of about 1 MiB,
// paced), and this checker verifies every record as recovery would:
//   1. records follow one another from offset 0 (the segment header, seq
//      first_seq) to the seal (seq seal_seq), each with an intact header of
//      this core and segment at its own offset, the next seq, a batch mark
//      continuing the batch or starting one, and an intact payload;
//   2. anything else is damage: where, and the bucket when the header was
//      intact (a payload-only flip). The core then deletes the segment's
//      summary (segment_summary.h; the `round` file stays: the named round
//      may be what shows a retained log whole), so the next start reads
//      the segment, reports the damage and repairs (tools/coworker/
//      repair.h); meanwhile every read of a damaged record fails its
//      checksums, as it always does.
// Pure: the caller reads the bytes (any chunking) and feeds them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "bucket/recovery.h"

namespace coworker::bucket {

class SegmentScrub {
 public:
  enum class State : uint8_t { more, done, damaged };
  struct Found {
    Damage::What what = Damage::What::bad_header;
    uint64_t offset = 0;
    std::optional<uint32_t> bucket;  // the header was intact
  };

  explicit SegmentScrub(const SealedSegment& segment);

  // Where the next bytes must start, and how many at least.
  uint64_t offset() const { return _offset; }
  size_t want() const { return _want; }
  // Checks the records wholly inside `bytes` (read from offset()); fewer
  // bytes than want() — the end of the file — is damage (no seal).
  State feed(std::span<const char> bytes);
  State state() const { return _state; }
  const Found& found() const { return _found; }
  uint64_t records() const { return _records; }

 private:
  State damaged(Damage::What what, std::optional<uint32_t> bucket);

  SealedSegment _segment;
  uint64_t _offset = 0;
  size_t _want = record_header_bytes;
  uint64_t _expected = 0;
  uint64_t _batch = 0;
  uint64_t _records = 0;
  State _state = State::more;
  Found _found;
};

}  // namespace coworker::bucket
