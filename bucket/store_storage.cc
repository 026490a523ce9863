#include "bucket/store_storage.h"

#include <algorithm>
#include <span>

#include "consensus/assert.h"

namespace coworker::bucket {

StoreStorage::StoreStorage(LogStore& store, const EngineImage& image, BucketIndex* index)
    : _store(store), _image(image), _index(index) {
  if (_index != nullptr) COWORKER_ASSERT(_index->core() == _store.config().core);
}

HostStorage::Ticket StoreStorage::stage_membership(
    std::vector<consensus::MembershipRecord> records) {
  COWORKER_ASSERT(!records.empty());
  std::vector<EngineRecord> encoded;
  encoded.reserve(records.size());
  for (const auto& record : records) encoded.push_back(encode_membership_record(record));
  return stage(std::move(encoded));
}

HostStorage::Ticket StoreStorage::stage_phaser(uint32_t bucket,
                                               std::vector<consensus::PhaserRecord> records,
                                               Flush flush) {
  COWORKER_ASSERT(!records.empty());
  std::vector<EngineRecord> encoded;
  encoded.reserve(records.size());
  for (const auto& record : records) {
    encoded.push_back(encode_phaser_record(bucket, record));
    encoded.back().flush = flush;
  }
  return stage(std::move(encoded));
}

HostStorage::Ticket StoreStorage::stage_checkpoint(std::vector<EngineRecord> records) {
  COWORKER_ASSERT(!records.empty());
  // A bucket's checkpoint (and its register), or the RepairRecord of a
  // void copy (phaser.h step 9g), which a round writes again as it is.
  const RecordKind first = records.front().meta.kind;
  COWORKER_ASSERT(first == RecordKind::bucket_checkpoint ||
                  (first == RecordKind::bucket_reset && records.size() == 1));
  for (const EngineRecord& record : records) {
    COWORKER_ASSERT(record.phaser.has_value());  // the index learns it
    COWORKER_ASSERT(record.meta.bucket == records.front().meta.bucket);
  }
  return stage(std::move(records));
}

HostStorage::Ticket StoreStorage::stage_counter(uint32_t counter) {
  std::vector<EngineRecord> encoded;
  encoded.push_back(encode_counter_record(counter));
  return stage(std::move(encoded));
}

HostStorage::Ticket StoreStorage::stage_connection_block(uint64_t end) {
  std::vector<EngineRecord> encoded;
  encoded.push_back(encode_connection_block(end));
  return stage(std::move(encoded));
}

HostStorage::Ticket StoreStorage::stage_repair(std::vector<EngineRecord> records) {
  for (const EngineRecord& record : records) {
    const RecordKind kind = record.meta.kind;
    COWORKER_ASSERT(kind == RecordKind::bucket_reset || kind == RecordKind::membership_checkpoint);
  }
  return stage(std::move(records));
}

HostStorage::Ticket StoreStorage::stage(std::vector<EngineRecord> records) {
  COWORKER_ASSERT(!records.empty());
  const Ticket ticket = ++_issued;
  for (size_t i = 0; i < records.size(); i++) {
    const bool last = i + 1 == records.size();
    if (_overflow.empty() && try_stage(ticket, records[i], last)) continue;
    _overflow.push_back(Waiting{ticket, std::move(records[i]), last});
  }
  return ticket;
}

bool StoreStorage::try_stage(Ticket ticket, const EngineRecord& record, bool last) {
  if (_failed) return true;  // dropped: nothing becomes durable again
  const std::span<const char> payload(record.payload.data(), record.payload.size());
  Result<uint64_t, LogErrc> seq = _store.stage(record.meta, payload, record.flush);
  if (!seq) {
    // The engine's records are bounded far below a batch (a write is at
    // most 1 MiB of messages): too_large is our bug.
    COWORKER_ASSERT(seq.error() != LogErrc::too_large);
    if (seq.error() == LogErrc::full) return false;
    _failed = true;  // failed or closed
    return true;
  }
  COWORKER_ASSERT(*seq > _last_seq);
  _last_seq = *seq;
  if (last) _staged.emplace_back(ticket, *seq);
  const auto [segment, offset] = _store.last_location();
  if (record.meta.kind == RecordKind::checkpoint_round) {
    _round = RoundPlace{segment, offset, *seq};
    if (_index != nullptr) _index->on_round(segment);
  }
  if (_index != nullptr && record.meta.kind == RecordKind::bucket_reset &&
      record.meta.bucket < participant_bucket) {
    _index->reset(record.meta.bucket, segment);  // as replay will, at this place in the log
  }
  if (_index != nullptr && record.phaser.has_value()) index_staged(record);
  return true;
}

// The record just staged is the store's last: its (segment, offset) is
// where the record starts (a segment header precedes it in its segment).
void StoreStorage::index_staged(const EngineRecord& record) {
  const auto [segment, offset] = _store.last_location();
  COWORKER_ASSERT(segment > 0);
  COWORKER_ASSERT(offset >= record_header_bytes);
  COWORKER_ASSERT(offset % record_align == 0);
  _index->on_staged(record.meta.bucket, *record.phaser, segment, offset, record.payload.size());
}

reactor::Task<void> StoreStorage::drain_overflow() {
  while (!_overflow.empty() && !_failed) {
    Waiting& front = _overflow.front();
    if (!try_stage(front.ticket, front.record, front.last)) {
      co_await _store.room(front.record.payload.size());
      continue;
    }
    _overflow.pop_front();
  }
  if (_failed) _overflow.clear();
}

HostStorage::Ticket StoreStorage::durable() const {
  const uint64_t durable_seq = _store.durable_seq();
  while (!_staged.empty() && _staged.front().second <= durable_seq) {
    COWORKER_ASSERT(_staged.front().first > _durable);
    _durable = _staged.front().first;
    _staged.pop_front();
  }
  return _durable;
}

void StoreStorage::fetch(uint32_t bucket, consensus::ParticipantId to, consensus::Position from,
                         size_t bytes_max) {
  COWORKER_ASSERT(_fetcher != nullptr);
  _fetcher(bucket, to, from, bytes_max);
}

const consensus::PhaserDurable* StoreStorage::recovered(uint32_t bucket) const {
  if (const auto it = _replaced.find(bucket); it != _replaced.end()) return &it->second;
  const auto image = _image.phasers.find(bucket);
  return image == _image.phasers.end() ? nullptr : &image->second;
}

HostStorage::Ticket StoreStorage::stage_round_marker() { return stage({encode_round_marker()}); }

HostStorage::Ticket StoreStorage::stage_membership_checkpoint(
    const consensus::MembershipDurable& durable) {
  return stage({encode_membership_checkpoint(durable)});
}

std::vector<uint32_t> StoreStorage::recovered_buckets() const {
  std::vector<uint32_t> buckets;
  for (const auto& [bucket, image] : _image.phasers) buckets.push_back(bucket);
  for (const auto& [bucket, image] : _replaced) buckets.push_back(bucket);
  if (_hosts) std::erase_if(buckets, [this](uint32_t bucket) { return !_hosts(bucket); });
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return buckets;
}

}  // namespace coworker::bucket
