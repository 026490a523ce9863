#include "bucket/engine_records.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "consensus/assert.h"
#include "consensus/codec.h"
#include "consensus/membership_codec.h"
#include "consensus/phaser_codec.h"

namespace coworker::bucket {

namespace {

constexpr uint8_t counter_format_version = 1;
constexpr uint8_t reset_format_version = 1;

std::string_view view(std::span<const char> payload) {
  return std::string_view(payload.data(), payload.size());
}

// What MembershipDurable::apply and Durable::apply assert, checked first:
// a log that passed its checksums can still be wrong (a bug, a resumed
// read after corruption), and disk bytes never get to fire an assertion.
bool membership_record_fits(const consensus::MembershipDurable& image,
                            const consensus::MembershipRecord& record) {
  if (const auto* identity = std::get_if<consensus::Identity>(&record)) {
    return identity->data_dir != 0 && identity->incarnation >= image.identity.incarnation;
  }
  const consensus::Durable& paxos = image.paxos;
  const auto& persist = std::get<consensus::PersistRecord>(record);
  if (const auto* boot = std::get_if<consensus::PersistBoot>(&persist)) {
    return boot->boots == paxos.boots + 1;
  }
  if (const auto* promise = std::get_if<consensus::PersistPromise>(&persist)) {
    return promise->ballot > paxos.promised;
  }
  if (const auto* accept = std::get_if<consensus::PersistAccept>(&persist)) {
    return accept->accepted.ballot == paxos.promised &&
           accept->accepted.slot > paxos.snapshot.slot;
  }
  return std::get<consensus::PersistSnapshot>(persist).snapshot.slot > paxos.snapshot.slot;
}

}  // namespace

EngineRecord encode_phaser_record(uint32_t bucket, const consensus::PhaserRecord& record) {
  COWORKER_ASSERT(bucket < participant_bucket);
  EngineRecord out;
  out.meta.bucket = bucket;
  if (const auto* p = std::get_if<consensus::PromiseRecord>(&record)) {
    out.meta.kind = RecordKind::promise;
    out.meta.promise = p->promise;
  } else if (const auto* r = std::get_if<consensus::RegisterRecord>(&record)) {
    COWORKER_ASSERT(r->write != nullptr);
    COWORKER_ASSERT(r->write->bucket == bucket);
    out.meta.kind = RecordKind::register_write;
    out.meta.position = r->write->first;
    out.meta.promise = r->write->promise;
  } else if (const auto* k = std::get_if<consensus::CheckpointRecord>(&record)) {
    out.meta.kind = RecordKind::bucket_checkpoint;
    out.meta.position = k->state.commit_end;
    out.meta.promise = k->state.promise;
  } else if (const auto* reset = std::get_if<consensus::ResetRecord>(&record)) {
    // A reset for the index, the summaries and recovery, like repair's.
    out.meta.kind = RecordKind::bucket_reset;
    out.meta.promise = reset->promise;
  } else if (const auto* repair = std::get_if<consensus::RepairRecord>(&record)) {
    out.meta.kind = RecordKind::bucket_reset;  // the same for every reader
    out.meta.promise = repair->promise;
  } else {
    const auto& c = std::get<consensus::CommitRecord>(record);
    out.meta.kind = RecordKind::commit;
    out.meta.position = c.mark.end;
  }
  out.payload = consensus::encode(record);
  out.phaser = record;
  return out;
}

EngineRecord encode_counter_record(uint32_t counter) {
  COWORKER_ASSERT(counter > 0);
  EngineRecord out;
  out.meta.kind = RecordKind::counter;
  out.meta.bucket = participant_bucket;
  out.meta.promise = consensus::Promise{0, counter};
  consensus::Writer writer;
  writer.u8(counter_format_version);
  writer.u64(counter);
  out.payload = writer.take();
  return out;
}

EngineRecord encode_connection_block(uint64_t end) {
  COWORKER_ASSERT(end > 0);
  EngineRecord out;
  out.meta.kind = RecordKind::connection_block;
  out.meta.bucket = participant_bucket;
  out.meta.position = end;
  consensus::Writer writer;
  writer.u8(counter_format_version);
  writer.u64(end);
  out.payload = writer.take();
  return out;
}

EngineRecord encode_membership_record(const consensus::MembershipRecord& record) {
  EngineRecord out;
  out.meta.kind = RecordKind::membership;
  out.meta.bucket = membership_bucket;
  out.payload = consensus::encode(record);
  return out;
}

EngineRecord encode_bucket_reset(uint32_t bucket) {
  COWORKER_ASSERT(bucket <= participant_bucket);  // a bucket, or the promise counter
  EngineRecord out;
  out.meta.kind = RecordKind::bucket_reset;
  out.meta.bucket = bucket;
  out.payload.push_back(static_cast<char>(reset_format_version));
  return out;
}

EngineRecord encode_round_marker() {
  EngineRecord out;
  out.meta.kind = RecordKind::checkpoint_round;
  out.meta.bucket = participant_bucket;
  out.payload.push_back(static_cast<char>(reset_format_version));
  return out;
}

EngineRecord encode_membership_checkpoint(const consensus::MembershipDurable& durable) {
  COWORKER_ASSERT(durable.identity.data_dir != 0);
  EngineRecord out;
  out.meta.kind = RecordKind::membership_checkpoint;
  out.meta.bucket = membership_bucket;
  out.payload = consensus::encode_membership_checkpoint(durable);
  return out;
}

EngineRecord encode_identity_checkpoint(const consensus::Identity& identity) {
  COWORKER_ASSERT(identity.id == consensus::no_participant);
  return bucket::encode_membership_checkpoint(consensus::MembershipDurable{identity, {}});
}

bool EngineImage::foreign_format(std::span<const char> payload, uint8_t version,
                                 const char* what) {
  if (payload.empty() || static_cast<uint8_t>(payload[0]) == version) return false;
  if (!format_refused) {
    format_refused = fmt::format("{} records of format {} (this build reads format {})", what,
                                 static_cast<uint8_t>(payload[0]), version);
  }
  return true;
}

void EngineImage::mark_damaged(uint32_t bucket) {
  if (bucket == membership_bucket) {
    membership_damaged = true;
    return;
  }
  if (bucket == participant_bucket) {
    counter_damaged = true;
    return;
  }
  const auto at = std::lower_bound(damaged_buckets.begin(), damaged_buckets.end(), bucket);
  if (at == damaged_buckets.end() || *at != bucket) damaged_buckets.insert(at, bucket);
  phasers.erase(bucket);  // never served from a damaged copy
}

void EngineImage::apply(const RecordHeader& header, std::span<const char> payload) {
  COWORKER_ASSERT(!record_kind_internal(header.kind));
  // These two count themselves (records++), when they apply.
  if (header.kind == RecordKind::bucket_reset) return apply_reset(header, payload);
  // A round's marker holds no state: the round's records after it do.
  if (header.kind == RecordKind::checkpoint_round) return;
  if (header.kind == RecordKind::membership_checkpoint) {
    return apply_membership_checkpoint(header, payload);
  }
  if (header.bucket == membership_bucket) {
    if (membership_damaged) return;
    if (foreign_format(payload, consensus::membership_record_version, "membership")) return;
    auto decoded = consensus::decode_membership_record(view(payload));
    if (!decoded || header.kind != RecordKind::membership ||
        !membership_record_fits(membership, *decoded.value)) {
      return mark_damaged(header.bucket);
    }
    membership.apply(*decoded.value);
  } else if (header.bucket == participant_bucket) {
    consensus::Reader reader(view(payload));
    const bool version_ok = reader.u8() == counter_format_version;
    const uint64_t value = reader.u64();
    if (!version_ok || !reader.done() || value == 0) return mark_damaged(header.bucket);
    if (header.kind == RecordKind::connection_block && header.position == value) {
      connection_block_end = std::max(connection_block_end, value);
    } else if (header.kind == RecordKind::counter && value <= UINT32_MAX &&
               header.promise.counter == value) {
      counter = std::max(counter, static_cast<uint32_t>(value));
    } else {
      return mark_damaged(header.bucket);
    }
  } else {
    if (foreign_format(payload, consensus::phaser_format_version, "phaser")) return;
    apply_phaser(header, payload);
  }
  records++;
}

// The participant gave up its id at boot (repair), a phaser dropped its
// copy (phaser.h step 9f), or a repair made it void (9g): the earlier
// records count no more, whatever their state. Damage after the reset
// still counts.
void EngineImage::apply_reset(const RecordHeader& header, std::span<const char> payload) {
  const uint32_t bucket = header.bucket;
  if (payload.size() > 1 && bucket < participant_bucket) {
    if (foreign_format(payload, consensus::phaser_format_version, "phaser")) return;
    auto decoded =
        consensus::decode_phaser_record(view(payload), consensus::WriteChecksum::covered);
    const auto* reset =
        decoded ? std::get_if<consensus::ResetRecord>(&*decoded.value) : nullptr;
    const auto* repair =
        decoded ? std::get_if<consensus::RepairRecord>(&*decoded.value) : nullptr;
    const bool fits = (reset != nullptr && header.promise == reset->promise) ||
                      (repair != nullptr && header.promise == repair->promise);
    if (!fits) return mark_damaged(bucket);
    std::erase(damaged_buckets, bucket);
    consensus::PhaserDurable& image = phasers[bucket];
    image.apply(*decoded.value);
    records++;
    return;
  }
  if (payload.size() != 1 || static_cast<uint8_t>(payload[0]) != reset_format_version ||
      bucket == membership_bucket || bucket == internal_bucket) {
    // An unknown reset cannot be followed safely: what it should discard
    // would be served.
    return mark_damaged(bucket == internal_bucket ? membership_bucket : bucket);
  }
  if (bucket == participant_bucket) {
    counter_damaged = false;  // promises of the id given up: a new id has its own slot
  } else {
    std::erase(damaged_buckets, bucket);
    phasers.erase(bucket);
  }
  records++;
}

// The whole membership state as of here: what came before counts no more
// (an identity without an id after repair, or a periodic checkpoint).
void EngineImage::apply_membership_checkpoint(const RecordHeader& header,
                                              std::span<const char> payload) {
  auto decoded = consensus::decode_membership_checkpoint(view(payload));
  if (!decoded) {
    // Before checkpoints had their own codec (2026-12-03), repair wrote an
    // identity without id as a membership record.
    auto record = consensus::decode_membership_record(view(payload));
    const auto* identity = record ? std::get_if<consensus::Identity>(&*record.value) : nullptr;
    if (identity != nullptr && identity->data_dir != 0 &&
        identity->id == consensus::no_participant) {
      decoded.value = consensus::MembershipDurable{*identity, {}};
    }
  }
  if (header.bucket != membership_bucket || !decoded.value ||
      decoded.value->identity.incarnation < membership.identity.incarnation) {
    return mark_damaged(membership_bucket);
  }
  membership = std::move(*decoded.value);
  membership_damaged = false;
  records++;
}

// A phaser record that decodes, agrees with its header and fits the state
// folded so far; anything else damages the bucket. (PhaserDurable::apply
// asserts what a correct log guarantees, so the checks come first: bytes
// from a disk are never trusted to keep an assertion.)
void EngineImage::apply_phaser(const RecordHeader& header, std::span<const char> payload) {
  const uint32_t bucket = header.bucket;
  if (std::binary_search(damaged_buckets.begin(), damaged_buckets.end(), bucket)) return;
  // apply() takes records whose payload checksum held.
  auto decoded = consensus::decode_phaser_record(view(payload), consensus::WriteChecksum::covered);
  if (!decoded) return mark_damaged(bucket);
  const consensus::PhaserRecord& record = *decoded.value;
  consensus::PhaserDurable& image = phasers[bucket];
  bool fits = false;
  if (const auto* p = std::get_if<consensus::PromiseRecord>(&record)) {
    fits = header.kind == RecordKind::promise && header.promise == p->promise;
  } else if (const auto* r = std::get_if<consensus::RegisterRecord>(&record)) {
    fits = header.kind == RecordKind::register_write && r->write->bucket == bucket &&
           header.position == r->write->first && header.promise == r->write->promise &&
           r->write->first == image.commit_end;
  } else if (const auto* k = std::get_if<consensus::CheckpointRecord>(&record)) {
    // The codec checked the mark against commit_end; promises only grow.
    fits = header.kind == RecordKind::bucket_checkpoint && header.position == k->state.commit_end &&
           header.promise == k->state.promise && k->state.promise >= image.promise &&
           k->state.commit_end >= image.commit_end;
  } else {
    const auto& c = std::get<consensus::CommitRecord>(record);
    const bool commits_register = image.register_ != nullptr &&
                                  image.register_->end() == c.mark.end &&
                                  image.register_->checksum == c.mark.checksum;
    fits = header.kind == RecordKind::commit && header.position == c.mark.end &&
           (commits_register || c.mark.end <= image.commit_end);
  }
  if (!fits) return mark_damaged(bucket);
  image.apply(record);
}

}  // namespace coworker::bucket
