// The engine's durable records in the log store, both ways: what
// BucketHost and MembershipHost stage (host.h) becomes a log-store record
// (record.h: a header the store checksums, a payload it does not read), and
// replay folds those records back into each state machine's durable image.
//
// Pure functions and plain data: any thread. The two directions live
// together so each mapping is checked against its inverse
// (tests/bucket/engine_records_test.cc).
//
//   engine record                   kind            bucket               header position / promise
//   phaser PromiseRecord            promise         the bucket           0 / the promise
//   phaser RegisterRecord           register_write  the bucket           write.first / write's promise
//   phaser CommitRecord             commit          the bucket           mark.end / -
//   promise counter                 counter         participant_bucket   - / counter
//   connection block                connection_block participant_bucket  block end / -
//   membership record (core 0)      membership      membership_bucket    - / -
//   membership state (core 0)       membership_checkpoint membership_bucket - / -
//     (an identity without id after repair, or the whole state periodically)
//   phaser CheckpointRecord         bucket_checkpoint the bucket         commit_end / the promise
//   reset of a bucket (repair)      bucket_reset    the bucket or participant_bucket - / -
//     (a one-byte payload: the format version)
//   phaser ResetRecord              bucket_reset    the bucket           0 / the promise
//     (a copy dropped at run time, phaser.h step 9f: the phaser codec's payload)
//   phaser RepairRecord             bucket_reset    the bucket           0 / the promise
//     (a copy damaged at rest made void at boot, phaser.h step 9g: likewise)
//   a checkpoint round begins       checkpoint_round participant_bucket  - / -
//
// Payloads are the consensus codecs' encodings (phaser_codec.h,
// membership_codec.h: a version byte, a tag, the fields); the counter's is a
// version byte and a varint. The header fields are for the store's readers
// (the per-bucket index, retention); replay trusts only the payload, and
// checks that the header agrees with it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bucket/record.h"
#include "consensus/membership_messages.h"
#include "consensus/phaser.h"

namespace coworker::bucket {

struct EngineRecord {
  RecordMeta meta;
  std::string payload;
  // A phaser record's value (the Write shared, not copied): what the
  // per-bucket index (bucket_index.h) learns once the record is staged.
  std::optional<consensus::PhaserRecord> phaser;
  Flush flush = Flush::now;  // when its fdatasync may start (record.h)
};

EngineRecord encode_phaser_record(uint32_t bucket, const consensus::PhaserRecord& record);
EngineRecord encode_counter_record(uint32_t counter);
// Connection ids (issuer, counter) with counter < end may be issued: a block
// is durable before any id from it is (DESIGN §3 "connection").
EngineRecord encode_connection_block(uint64_t end);
EngineRecord encode_membership_record(const consensus::MembershipRecord& record);
// Repair at boot (DESIGN §4): a participant whose state is damaged gives up
// its id — first, durably, an identity checkpoint (no id: the membership
// records before it count no more), then on each core a reset of every
// damaged bucket (its earlier records count no more; it grows back under
// the new id) and of participant_bucket where the promise counter was hit.
EngineRecord encode_bucket_reset(uint32_t bucket);
EngineRecord encode_identity_checkpoint(const consensus::Identity& identity);
// The first record of a checkpoint round (recovery.h).
EngineRecord encode_round_marker();
// The log store's periodic checkpoint of the membership state (core 0).
EngineRecord encode_membership_checkpoint(const consensus::MembershipDurable& durable);

// What replay recovers for the engine, folded record by record in log order
// (each core's log in order; cores one after another — a bucket's records
// are all in the log of the core that hosted it, and the membership's in
// core 0's, so the order across cores does not matter).
class EngineImage {
 public:
  // A record replay found intact (its checksums hold). A record whose
  // payload does not decode, or disagrees with its header, is not applied:
  // its bucket is marked damaged (repair, never serve: DESIGN §4), or the
  // membership state, or the counter.
  void apply(const RecordHeader& header, std::span<const char> payload);

  // Records the recovery report names as damaged (recovery.h suspects).
  void mark_damaged(uint32_t bucket);

  consensus::MembershipDurable membership;
  std::map<uint32_t, consensus::PhaserDurable> phasers;  // by bucket
  // The highest counter in any core's log: every core continues above it,
  // so a bucket that moved cores still gets a higher promise.
  uint32_t counter = 0;
  // The end of the highest connection block in any log: ids are issued
  // from here on after a restart, never twice.
  uint64_t connection_block_end = 0;

  std::vector<uint32_t> damaged_buckets;  // sorted, unique
  bool membership_damaged = false;
  // A counter record was lost to corruption: promises from the counter may
  // repeat one already used; the host must start above every promise any
  // bucket recorded (and the server should treat this like corrupt
  // membership state).
  bool counter_damaged = false;
  uint64_t records = 0;  // applied
  // A record whose checksums held but whose payload starts with another
  // format version than this build reads (a data dir written by another
  // build): not damage, and nothing to repair; the boot refuses to start,
  // saying which (docs/OPERATIONS.md, Formats). The first one found.
  std::optional<std::string> format_refused;

 private:
  // True (and format_refused set) when the payload's version byte is not
  // `version`: the record is left alone.
  bool foreign_format(std::span<const char> payload, uint8_t version, const char* what);
  void apply_phaser(const RecordHeader& header, std::span<const char> payload);
  void apply_reset(const RecordHeader& header, std::span<const char> payload);
  void apply_membership_checkpoint(const RecordHeader& header, std::span<const char> payload);
};

}  // namespace coworker::bucket
