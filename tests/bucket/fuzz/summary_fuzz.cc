// libFuzzer target for what a start reads from disk beside the log: segment
// summaries (bucket/segment_summary.h), the index events they carry
// (BucketIndex::apply_summary) and the scrub's record checker (scrub.h).
// Bytes from a disk never fire an assertion (bucket_index.h, recovery.h).
//
// Input: byte 0 = options, the rest = the bytes.
//   - decode_summary of the bytes: when it decodes, encode_summary of the
//     value is exactly the input (one encoding per value);
//   - the bytes as the events of segments 1, 2, 3 (cut in three by the
//     options), applied in order to one index: either taken whole or
//     refused whole, and
//     the index answers every question after it consistently;
//   - the bytes as a segment's file to the scrub, in reads of a size drawn
//     from the options: it ends in done or damaged, never loops or reads
//     outside what it was given.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "bucket/bucket_index.h"
#include "bucket/scrub.h"
#include "bucket/segment_summary.h"
#include "consensus/assert.h"

using namespace coworker;
using namespace coworker::bucket;

namespace {

void summary_round_trip(std::span<const char> bytes) {
  const std::optional<SegmentSummary> decoded = decode_summary(bytes, 0, 1);
  if (!decoded) return;
  const std::string again = encode_summary(*decoded);
  COWORKER_ASSERT(again == std::string(bytes.data(), bytes.size()));
}

void events(std::string_view bytes, uint8_t options) {
  BucketIndex index(0);
  const size_t a = bytes.size() * ((options >> 1) & 7) / 8;
  const size_t b = a + (bytes.size() - a) * ((options >> 4) & 7) / 8;
  const std::string_view parts[3] = {bytes.substr(0, a), bytes.substr(a, b - a), bytes.substr(b)};
  for (uint64_t segment = 1; segment <= 3; segment++) {
    (void)index.apply_summary(segment, parts[segment - 1]);
  }
  // Whatever was taken, the index is whole: every committed position it
  // names lies in a write that holds it.
  for (uint32_t bucket = 0; bucket < 4; bucket++) {
    const Position end = index.committed_end(bucket);
    const Position start = index.retained_start(bucket);
    if (end - start > 4096 || index.damaged(bucket)) continue;
    for (Position p = start; p < end; p++) {
      const std::optional<IndexedWrite> write = index.find(bucket, p);
      if (write) COWORKER_ASSERT(write->first <= p && p < write->end());
    }
  }
}

void scrub(std::span<const char> bytes, uint8_t options) {
  const uint64_t first_seq = 1 + (options & 3u);
  const uint64_t seal_seq = first_seq + 1 + (options >> 2);
  SegmentScrub checker(SealedSegment{0, 1, first_seq, seal_seq, true, true});
  const size_t chunk = 8 + (size_t{options} << 3);
  uint64_t steps = 0;
  while (checker.state() == SegmentScrub::State::more) {
    COWORKER_ASSERT(++steps <= bytes.size() + 2);  // each read makes progress or ends it
    const uint64_t at = std::min<uint64_t>(checker.offset(), bytes.size());
    const size_t n = std::min<size_t>(std::max(chunk, checker.want()), bytes.size() - at);
    (void)checker.feed(bytes.subspan(static_cast<size_t>(at), n));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  const std::span<const char> bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  summary_round_trip(bytes);
  events(std::string_view(bytes.data(), bytes.size()), options);
  scrub(bytes, options);
  return 0;
}
