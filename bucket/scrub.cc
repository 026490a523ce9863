#include "bucket/scrub.h"

#include "consensus/assert.h"

namespace coworker::bucket {

SegmentScrub::SegmentScrub(const SealedSegment& segment)
    : _segment(segment), _expected(segment.first_seq) {
  COWORKER_ASSERT(segment.segment >= 1);
  COWORKER_ASSERT(segment.first_seq >= 1);
  COWORKER_ASSERT(segment.seal_seq > segment.first_seq);
}

SegmentScrub::State SegmentScrub::damaged(Damage::What what, std::optional<uint32_t> bucket) {
  _found = Found{what, _offset, bucket};
  _state = State::damaged;
  return _state;
}

SegmentScrub::State SegmentScrub::feed(std::span<const char> bytes) {
  COWORKER_ASSERT(_state == State::more);
  if (bytes.size() < _want) return damaged(Damage::What::bad_header, std::nullopt);
  size_t at = 0;
  while (bytes.size() - at >= record_header_bytes) {
    RecordHeader h;
    if (decode_header(bytes.data() + at, _segment.segment, &h) != HeaderCheck::ok) {
      return damaged(Damage::What::bad_header, std::nullopt);
    }
    const bool first = _offset == 0;
    const bool placed = h.core == _segment.core && uint64_t{h.location} * record_align == _offset &&
                        first == (h.kind == RecordKind::segment_header) && h.seq == _expected &&
                        (first ? h.batch_first_seq <= h.seq
                               : h.batch_first_seq == _batch || h.batch_first_seq == h.seq);
    if (!placed) return damaged(Damage::What::misplaced, std::nullopt);
    const size_t whole = record_bytes(h.payload_bytes);
    if (bytes.size() - at < whole) {
      // The rest of this record is in the next read (at least `whole` bytes).
      _want = whole;
      return _state;
    }
    const std::span<const char> payload(bytes.data() + at + record_header_bytes, h.payload_bytes);
    if (!payload_intact(h, payload)) return damaged(Damage::What::bad_payload, h.bucket);
    _records++;
    _expected = h.seq + 1;
    _batch = h.batch_first_seq;
    at += whole;
    _offset += whole;
    if (h.kind == RecordKind::seal) {
      if (h.seq != _segment.seal_seq) return damaged(Damage::What::misplaced, std::nullopt);
      _state = State::done;
      return _state;
    }
  }
  _want = record_header_bytes;
  return _state;
}

}  // namespace coworker::bucket
