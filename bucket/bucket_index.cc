// BucketIndex (bucket_index.h): PhaserDurable::apply's commit rule over
// record locations, fed by replay (checked, damage is a value) and by the
// live storage (asserted, a misfit is our bug).
#include "bucket/bucket_index.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <variant>

#include "consensus/assert.h"
#include "consensus/phaser_codec.h"

namespace coworker::bucket {

bool BucketIndex::register_fits(const Bucket& bucket, Position first) {
  // A register always starts at the committed end (PhaserDurable::apply).
  return !bucket.damaged && first == bucket.end;
}

// A commit of the candidate, or of something at or below the committed end
// (a leadership start's empty write, never persisted as a register):
// PhaserDurable::apply asserts one or the other.
bool BucketIndex::commit_fits(const Bucket& bucket, const consensus::CommitMark& mark) {
  const bool commits_candidate = bucket.candidate.has_value() &&
                                 bucket.candidate->write.end() == mark.end &&
                                 bucket.candidate->checksum == mark.checksum;
  return !bucket.damaged && (commits_candidate || mark.end <= bucket.end);
}

// The element a register record would become, or nothing when its place or
// size does not fit the element's fields (only a damaged log gets there).
std::optional<BucketIndex::Candidate> BucketIndex::candidate_of(const consensus::Write& write,
                                                                uint64_t segment,
                                                                uint64_t offset,
                                                                size_t payload_bytes) {
  if (segment == 0 || segment > UINT32_MAX) return std::nullopt;
  if (offset % record_align != 0 || offset / record_align > UINT32_MAX) return std::nullopt;
  // A segment header precedes every record of a segment.
  if (offset < record_header_bytes) return std::nullopt;
  if (payload_bytes == 0 || payload_bytes > record_payload_bytes_max) return std::nullopt;
  if (write.entries.size() > UINT32_MAX) return std::nullopt;
  Candidate candidate;
  candidate.write.first = write.first;
  candidate.write.entries = static_cast<uint32_t>(write.entries.size());
  candidate.write.payload_bytes = static_cast<uint32_t>(payload_bytes);
  candidate.write.segment = static_cast<uint32_t>(segment);
  candidate.write.location = static_cast<uint32_t>(offset / record_align);
  candidate.checksum = write.checksum;
  COWORKER_ASSERT(candidate.write.offset() == offset);
  COWORKER_ASSERT(candidate.write.end() == write.end());
  return candidate;
}

void BucketIndex::apply_register(Bucket& bucket, const Candidate& candidate) {
  COWORKER_ASSERT(register_fits(bucket, candidate.write.first));
  // A re-proposal (same positions, a new promise) or a replica's register
  // replaced by a higher promise's write: the newest record is the one a
  // commit can still commit.
  if (bucket.candidate) COWORKER_ASSERT(bucket.candidate->write.first == candidate.write.first);
  bucket.candidate = candidate;
}

void BucketIndex::apply_commit(Bucket& bucket, const consensus::CommitMark& mark) {
  COWORKER_ASSERT(commit_fits(bucket, mark));
  const bool commits_candidate = bucket.candidate.has_value() &&
                                 bucket.candidate->write.end() == mark.end &&
                                 bucket.candidate->checksum == mark.checksum;
  if (!commits_candidate) return;  // nothing of ours: no position changes
  const IndexedWrite& write = bucket.candidate->write;
  COWORKER_ASSERT(write.first == bucket.end);
  if (write.entries > 0) {
    if (!bucket.writes.empty()) {
      COWORKER_ASSERT(bucket.writes.back().end() == write.first);
      // Log order: retire() forgets a prefix of the writes.
      COWORKER_ASSERT(bucket.writes.back().segment <= write.segment);
    }
    bucket.writes.push_back(write);
    _writes_total++;
  }
  bucket.end = write.end();
  bucket.candidate.reset();
  if (!bucket.writes.empty()) COWORKER_ASSERT(bucket.writes.back().end() == bucket.end);
}

// A checkpoint's commit end is the index's end (live: the phaser's image of
// the records staged before it), or above it where the bucket starts in
// this log (replay after retention or a reset: nothing indexed yet).
void BucketIndex::apply_checkpoint(Bucket& bucket, Position commit_end) {
  COWORKER_ASSERT(!bucket.damaged);
  COWORKER_ASSERT(commit_end >= bucket.end);
  // At the end (a round) the candidate stays, as PhaserDurable::apply keeps
  // the register: replay may stop before the round's own record of it. (A
  // round that held none drops the image's register; the candidate stays,
  // harmless: it is used only by a commit record of that very write, and
  // the phaser stages one only for a register it holds, which a new
  // register record would have made the candidate first.)
  if (commit_end == bucket.end) return;
  bucket.candidate.reset();
  // Above the end: the bucket starts here (a retained log's round, or a
  // snapshot a newcomer took, phaser.h step 9b): nothing below is ours.
  COWORKER_ASSERT(_writes_total >= bucket.writes.size());
  _writes_total -= bucket.writes.size();
  bucket.writes.clear();
  bucket.writes.shrink_to_fit();
  bucket.start = commit_end;
  bucket.end = commit_end;
}

// ---- The journal's events (segment_summary.h), little-endian ----
//   register    1, bucket u32, first u64, entries u32, payload_bytes u32,
//               location u32, checksum u32 (its segment is the summary's)
//   commit      2, bucket u32, end u64, checksum u32
//   checkpoint  3, bucket u32, commit_end u64
//   reset       4, bucket u32
//   damaged     5, bucket u32 (a record replay could not take)
//   round       6
// Replay and live staging journal what they were given, before judging it;
// apply_summary judges the events by the same rules replay uses.
namespace {

enum Event : uint8_t {
  event_register = 1,
  event_commit = 2,
  event_checkpoint = 3,
  event_reset = 4,
  event_damaged = 5,
  event_round = 6,
};

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Reads the events one at a time; false once they end or do not parse.
class EventReader {
 public:
  explicit EventReader(std::string_view events) : _events(events) {}
  bool done() const { return _at == _events.size(); }
  template <typename T>
  bool get(T* value) {
    if (_events.size() - _at < sizeof(T)) return false;
    std::memcpy(value, _events.data() + _at, sizeof(T));
    _at += sizeof(T);
    return true;
  }

 private:
  std::string_view _events;
  size_t _at = 0;
};

}  // namespace

std::string& BucketIndex::journal(uint64_t segment) {
  COWORKER_ASSERT(segment >= 1);
  return _journals[segment].events;
}

void BucketIndex::journal_bucket(uint64_t segment, uint8_t event, uint32_t bucket) {
  std::string& out = journal(segment);
  put<uint8_t>(out, event);
  put<uint32_t>(out, bucket);
}

void BucketIndex::journal_register(uint32_t bucket, const Candidate& candidate) {
  std::string& out = journal(candidate.write.segment);
  put<uint8_t>(out, event_register);
  put<uint32_t>(out, bucket);
  put<uint64_t>(out, candidate.write.first);
  put<uint32_t>(out, candidate.write.entries);
  put<uint32_t>(out, candidate.write.payload_bytes);
  put<uint32_t>(out, candidate.write.location);
  put<uint32_t>(out, candidate.checksum);
}

void BucketIndex::journal_commit(uint64_t segment, uint32_t bucket,
                                 const consensus::CommitMark& mark) {
  std::string& out = journal(segment);
  put<uint8_t>(out, event_commit);
  put<uint32_t>(out, bucket);
  put<uint64_t>(out, mark.end);
  put<uint32_t>(out, mark.checksum);
}

void BucketIndex::journal_checkpoint(uint64_t segment, uint32_t bucket, Position commit_end) {
  std::string& out = journal(segment);
  put<uint8_t>(out, event_checkpoint);
  put<uint32_t>(out, bucket);
  put<uint64_t>(out, commit_end);
}

void BucketIndex::on_round(uint64_t segment) {
  put<uint8_t>(journal(segment), event_round);
  _journals[segment].rounds++;
}

BucketIndex::Journal BucketIndex::take_journal(uint64_t segment) {
  const auto at = _journals.find(segment);
  if (at == _journals.end()) return Journal{};
  Journal out = std::move(at->second);
  _journals.erase(at);
  return out;
}

SegmentSummary BucketIndex::take_summary(const SealedSegment& sealed) {
  COWORKER_ASSERT(sealed.core == _core);
  Journal journal = take_journal(sealed.segment);
  return SegmentSummary{_core, sealed.segment, sealed.first_seq, sealed.seal_seq, journal.rounds,
                        std::move(journal.events)};
}

void BucketIndex::drop_journals_below(uint64_t segment) {
  _journals.erase(_journals.begin(), _journals.lower_bound(segment));
}

// Judged as replay judges a record (replay_phaser): a misfit damages the bucket.
void BucketIndex::replay_register(uint32_t bucket, const Candidate& candidate) {
  Bucket& state = _buckets[bucket];
  if (state.damaged) return;
  if (!register_fits(state, candidate.write.first)) return mark_damaged(bucket);
  apply_register(state, candidate);
}

void BucketIndex::replay_commit(uint32_t bucket, const consensus::CommitMark& mark) {
  Bucket& state = _buckets[bucket];
  if (state.damaged) return;
  if (!commit_fits(state, mark)) return mark_damaged(bucket);
  apply_commit(state, mark);
}

void BucketIndex::replay_checkpoint(uint32_t bucket, Position commit_end) {
  Bucket& state = _buckets[bucket];
  if (state.damaged) return;
  // Never below the end: committed positions do not go back.
  if (commit_end < state.end) return mark_damaged(bucket);
  apply_checkpoint(state, commit_end);
}

bool BucketIndex::apply_summary(uint64_t segment, std::string_view events) {
  // Parse everything first: a summary that does not parse changes nothing.
  struct Parsed {
    uint8_t event = 0;
    uint32_t bucket = 0;
    uint64_t value = 0;  // first, end or commit_end
    uint32_t entries = 0, payload_bytes = 0, location = 0, checksum = 0;
  };
  std::vector<Parsed> parsed;
  EventReader reader(events);
  while (!reader.done()) {
    Parsed p;
    if (!reader.get(&p.event)) return false;
    if (p.event == event_round) {
      parsed.push_back(p);
      continue;
    }
    if (!reader.get(&p.bucket) || p.bucket >= participant_bucket) return false;
    bool ok = true;
    switch (p.event) {
      case event_register:
        ok = reader.get(&p.value) && reader.get(&p.entries) && reader.get(&p.payload_bytes) &&
             reader.get(&p.location) && reader.get(&p.checksum) &&
             p.value <= UINT64_MAX - p.entries &&  // positions never wrap
             p.payload_bytes > 0 && p.payload_bytes <= record_payload_bytes_max &&
             uint64_t{p.location} * record_align >= record_header_bytes;
        break;
      case event_commit: ok = reader.get(&p.value) && reader.get(&p.checksum); break;
      case event_checkpoint: ok = reader.get(&p.value); break;
      case event_reset:
      case event_damaged: break;
      default: ok = false;
    }
    if (!ok) return false;
    parsed.push_back(p);
  }
  if (segment == 0 || segment > UINT32_MAX) return false;
  for (const Parsed& p : parsed) {
    switch (p.event) {
      case event_register: {
        Candidate candidate;
        candidate.write = IndexedWrite{p.value, p.entries, p.payload_bytes,
                                       static_cast<uint32_t>(segment), p.location};
        candidate.checksum = p.checksum;
        replay_register(p.bucket, candidate);
        break;
      }
      case event_commit:
        replay_commit(p.bucket, consensus::CommitMark{.end = p.value, .checksum = p.checksum});
        break;
      case event_checkpoint: replay_checkpoint(p.bucket, p.value); break;
      case event_reset: reset(p.bucket); break;
      case event_damaged: mark_damaged(p.bucket); break;
      case event_round: break;  // nothing of the index's (recovery.h step 4)
    }
  }
  return true;
}

void BucketIndex::on_staged(uint32_t bucket, const consensus::PhaserRecord& record,
                            uint64_t segment, uint64_t offset, size_t payload_bytes) {
  COWORKER_ASSERT(bucket < participant_bucket);
  COWORKER_ASSERT(payload_bytes > 0);
  Bucket& state = _buckets[bucket];
  if (const auto* r = std::get_if<consensus::RegisterRecord>(&record)) {
    COWORKER_ASSERT(r->write != nullptr);
    COWORKER_ASSERT(r->write->bucket == bucket);
    const std::optional<Candidate> candidate =
        candidate_of(*r->write, segment, offset, payload_bytes);
    COWORKER_ASSERT(candidate.has_value());
    journal_register(bucket, *candidate);
    if (!state.damaged) apply_register(state, *candidate);
  } else if (const auto* c = std::get_if<consensus::CommitRecord>(&record)) {
    journal_commit(segment, bucket, c->mark);
    if (!state.damaged) apply_commit(state, c->mark);
  } else if (const auto* k = std::get_if<consensus::CheckpointRecord>(&record)) {
    journal_checkpoint(segment, bucket, k->state.commit_end);
    if (!state.damaged) apply_checkpoint(state, k->state.commit_end);
  }
  // A damaged bucket is never served from this log until repaired.
}

void BucketIndex::on_replayed(const ReplayedRecord& record) {
  const RecordHeader& header = record.header;
  COWORKER_ASSERT(record.core == _core);
  COWORKER_ASSERT(!record_kind_internal(header.kind));
  // Recovery verified the record's place and payload length.
  COWORKER_ASSERT(uint64_t{header.location} * record_align == record.offset);
  COWORKER_ASSERT(header.payload_bytes == record.payload.size());
  if (header.kind == RecordKind::checkpoint_round) return on_round(record.segment);
  if (header.bucket >= participant_bucket) return;  // not a bucket's: EngineImage judges it
  if (header.kind == RecordKind::bucket_reset) return reset(header.bucket, record.segment);
  if (header.kind != RecordKind::register_write && header.kind != RecordKind::commit &&
      header.kind != RecordKind::bucket_checkpoint) {
    return;
  }
  replay_phaser(header.bucket, record);
}

// A phaser record that decodes, agrees with its header and fits the state
// folded so far; anything else damages the bucket (EngineImage::apply_phaser
// judges the same records the same way).
void BucketIndex::replay_phaser(uint32_t bucket, const ReplayedRecord& record) {
  COWORKER_ASSERT(bucket < participant_bucket);
  COWORKER_ASSERT(record.header.bucket == bucket);
  if (_buckets[bucket].damaged) return;
  const RecordHeader& header = record.header;
  // The record as an event, or nothing when it cannot be one: the bucket is
  // damaged, and so journaled.
  auto damaged = [&] {
    journal_bucket(record.segment, event_damaged, bucket);
    mark_damaged(bucket);
  };
  // Replay hands over records whose payload checksum held.
  auto decoded = consensus::decode_phaser_record(
      std::string_view(record.payload.data(), record.payload.size()),
      consensus::WriteChecksum::covered);
  if (!decoded) return damaged();
  const consensus::PhaserRecord& phaser = *decoded.value;
  if (const auto* r = std::get_if<consensus::RegisterRecord>(&phaser)) {
    const consensus::Write& write = *r->write;
    const std::optional<Candidate> candidate =
        candidate_of(write, record.segment, record.offset, record.payload.size());
    const bool agrees = header.kind == RecordKind::register_write && write.bucket == bucket &&
                        header.position == write.first && header.promise == write.promise &&
                        candidate.has_value();
    if (!agrees) return damaged();
    journal_register(bucket, *candidate);
    replay_register(bucket, *candidate);
  } else if (const auto* c = std::get_if<consensus::CommitRecord>(&phaser)) {
    if (header.kind != RecordKind::commit || header.position != c->mark.end) return damaged();
    journal_commit(record.segment, bucket, c->mark);
    replay_commit(bucket, c->mark);
  } else if (const auto* k = std::get_if<consensus::CheckpointRecord>(&phaser)) {
    if (header.kind != RecordKind::bucket_checkpoint ||
        header.position != k->state.commit_end) {
      return damaged();
    }
    journal_checkpoint(record.segment, bucket, k->state.commit_end);
    replay_checkpoint(bucket, k->state.commit_end);
  } else {
    damaged();  // a promise record under another kind's header
  }
}

void BucketIndex::mark_damaged(uint32_t bucket) {
  reset(bucket);
  _buckets[bucket].damaged = true;
}

void BucketIndex::reset(uint32_t bucket, uint64_t segment) {
  journal_bucket(segment, event_reset, bucket);
  reset(bucket);
}

void BucketIndex::reset(uint32_t bucket) {
  COWORKER_ASSERT(bucket < participant_bucket);
  Bucket& state = _buckets[bucket];
  COWORKER_ASSERT(_writes_total >= state.writes.size());
  _writes_total -= state.writes.size();
  state.writes.clear();
  state.writes.shrink_to_fit();
  state.start = 0;
  state.end = 0;
  state.candidate.reset();
  state.damaged = false;
}

void BucketIndex::retire(uint64_t first_kept) {
  for (auto& [bucket, state] : _buckets) {
    if (state.candidate) COWORKER_ASSERT(state.candidate->write.segment >= first_kept);
    const auto kept = std::find_if(state.writes.begin(), state.writes.end(),
                                   [&](const IndexedWrite& w) { return w.segment >= first_kept; });
    const size_t gone = static_cast<size_t>(kept - state.writes.begin());
    if (gone == 0) continue;
    COWORKER_ASSERT(_writes_total >= gone);
    _writes_total -= gone;
    state.writes.erase(state.writes.begin(), kept);
    state.start = state.writes.empty() ? state.end : state.writes.front().first;
  }
}

Position BucketIndex::retained_start(uint32_t bucket) const {
  const auto at = _buckets.find(bucket);
  return at == _buckets.end() ? 0 : at->second.start;
}

bool BucketIndex::damaged(uint32_t bucket) const {
  const auto at = _buckets.find(bucket);
  return at != _buckets.end() && at->second.damaged;
}

std::vector<uint32_t> BucketIndex::damaged_buckets() const {
  std::vector<uint32_t> out;
  for (const auto& [bucket, state] : _buckets) {
    if (state.damaged) out.push_back(bucket);
  }
  return out;
}

Position BucketIndex::committed_end(uint32_t bucket) const {
  const auto at = _buckets.find(bucket);
  return at == _buckets.end() ? 0 : at->second.end;
}

size_t BucketIndex::writes(uint32_t bucket) const {
  const auto at = _buckets.find(bucket);
  return at == _buckets.end() ? 0 : at->second.writes.size();
}

std::optional<IndexedWrite> BucketIndex::find(uint32_t bucket, Position position) const {
  const auto at = _buckets.find(bucket);
  if (at == _buckets.end() || at->second.damaged) return std::nullopt;
  const std::vector<IndexedWrite>& writes = at->second.writes;
  if (position < retained_start(bucket) || position >= at->second.end) return std::nullopt;
  // The last write starting at or before `position`: positions are
  // contiguous, so it holds it.
  const auto after = std::upper_bound(
      writes.begin(), writes.end(), position,
      [](Position p, const IndexedWrite& write) { return p < write.first; });
  COWORKER_ASSERT(after != writes.begin());
  const IndexedWrite& write = *(after - 1);
  COWORKER_ASSERT(write.first <= position);
  COWORKER_ASSERT(position < write.end());
  return write;
}

size_t BucketIndex::memory_bytes() const {
  size_t bytes = 0;
  for (const auto& [bucket, state] : _buckets) {
    bytes += state.writes.capacity() * sizeof(IndexedWrite);
  }
  return bytes;
}

}  // namespace coworker::bucket
