// BucketIndex: where each bucket's committed entries lie in one core's log.
//
// Committed entries are not kept in memory: they sit in the core's log, in
// the register records (RecordKind::register_write) that commit records
// committed. The index keeps, per bucket, one element per committed write —
// its first position, entry count, segment, location and payload bytes — in
// a vector ordered by position. Positions are contiguous from 0, so the
// write holding a position is a binary search away; EntryReader
// (entry_reader.h) reads it back.
//
// Memory: 24 bytes per committed write (IndexedWrite, static_assert'ed), plus
// the vector's growth slack (at most as much again), plus a small state per
// bucket (the candidate register and the map node, about 100 bytes). A write
// holds 1 to 4096 entries (DESIGN §3): 10^8 entries written 10 at a time
// cost 240 MB of index, written 100 at a time 24 MB.
//
// The rule is PhaserDurable::apply's (consensus/phaser.h): a register record
// makes its write the bucket's candidate; a later register record (a
// re-proposal under a new promise, the same positions) replaces it; a commit
// record whose mark.end and mark.checksum match the candidate commits it; a
// commit of something else (a leadership start's empty write never
// persisted as a register, an older write) changes nothing. A committed
// write without entries (a leadership start's empty write) adds no element.
//
// Two feeds, in log order:
//   - replay: on_replayed() is a ReplayVisitor (recovery.h) for this core's
//     log. It decodes register and commit payloads (phaser_codec.h) and never
//     trusts disk bytes to keep an assertion: a record that does not decode
//     or does not fit marks its bucket damaged, like EngineImage does;
//   - live: StoreStorage (store_storage.h) calls on_staged() right after it
//     staged a phaser record, with LogStore::last_location(). A record that
//     does not fit there is our bug and asserts.
//
// What is readable. A write counts as committed here once its commit record
// is *staged*; the entries themselves are read from the register record,
// which was durable before the commit could happen (the leader commits with
// its own copy durable and every replica's ack; a replica acks only once its
// copy is durable) and lies before the commit record in the log. The caller
// must bound every read by the commit end it knows committed on this replica
// (the phaser's commit end, DESIGN §3 `local=1`), never by committed_end()
// alone: a write indexed here is committed, but the caller decides what it
// may show.
//
// One BucketIndex per core, owned by the core's participant code next to its
// LogStore, StoreStorage and EntryReader, used only on that core (replay may
// fill it on the startup thread before the core runs). It assumes, like
// EngineImage, that a bucket's records all lie in this one core's log.
//
// Checkpoints and retention (DESIGN §6). A bucket checkpoint record
// (consensus::CheckpointRecord) at the committed end changes nothing: the
// candidate (the register, if any) stays, though the round stages it again
// right after, because replay may stop between the two (PhaserDurable::
// apply keeps the register the same way); above it — the first record of a bucket in a log whose front
// was retired, or a snapshot a newcomer took (phaser.h step 9b) — it starts
// the bucket there: positions below it are not in this log. retire(first_kept) forgets the writes in segments
// the store is deleting; retained_start() is the first position still
// indexed (positions [retained_start, committed_end) are readable).
//
// Summaries (segment_summary.h). Every event either feed applies — a
// register, a commit, a checkpoint, a reset, a bucket found damaged — and
// every round marker (on_round) is also journaled under the segment of its
// record, compactly; take_journal(segment) hands a sealed segment's journal
// to its summary. apply_summary() replays a summary's events through the
// same rules as on_replayed (a misfit damages the bucket, never asserts),
// so recovery need not read the segments below the newest round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bucket/recovery.h"
#include "consensus/phaser_messages.h"

namespace coworker::bucket {

using consensus::Position;

// One committed write of a bucket: where its register record lies.
struct IndexedWrite {
  Position first = 0;         // position of its first entry
  uint32_t entries = 0;       // its entry count (> 0)
  uint32_t payload_bytes = 0; // the register record's payload length
  uint32_t segment = 0;       // the segment index (2^32 segments: 256 PiB of 64 MiB ones)
  uint32_t location = 0;      // the record's offset in the segment / record_align

  Position end() const { return first + entries; }
  uint64_t offset() const { return uint64_t{location} * record_align; }
  friend bool operator==(const IndexedWrite&, const IndexedWrite&) = default;
};
static_assert(sizeof(IndexedWrite) == 24, "the index costs 24 bytes per committed write");

class BucketIndex {
 public:
  // `core`: the core whose log feeds this index (replay and live).
  explicit BucketIndex(unsigned core) : _core(core) {}
  BucketIndex(const BucketIndex&) = delete;
  BucketIndex& operator=(const BucketIndex&) = delete;

  // Replay: a record of this core's log, in log order (replay_core, or a
  // replay_log visitor that dispatches on ReplayedRecord::core).
  void on_replayed(const ReplayedRecord& record);
  // Live: a phaser record of `bucket` just staged at (segment, offset) with
  // a payload of `payload_bytes` (StoreStorage::try_stage).
  void on_staged(uint32_t bucket, const consensus::PhaserRecord& record, uint64_t segment,
                 uint64_t offset, size_t payload_bytes);
  // Never serve this bucket from the log (recovery's suspects, EngineImage's
  // damaged buckets): it forgets the bucket and ignores its later records.
  void mark_damaged(uint32_t bucket);
  // Forget the bucket: its earlier records count no more, its later ones
  // are indexed from position 0 again (a bucket_reset record, repair).
  // With `segment`: the reset record lies there (journaled for its summary).
  void reset(uint32_t bucket);
  void reset(uint32_t bucket, uint64_t segment);
  // The log store deletes every segment below `first_kept` (after a
  // checkpoint round that began at or after its start, so no candidate
  // lies there): their writes are forgotten, retained starts move up.
  void retire(uint64_t first_kept);

  // ---- Summaries ----
  // A checkpoint round's marker was staged or replayed in `segment`.
  void on_round(uint64_t segment);
  struct Journal {
    std::string events;
    uint32_t rounds = 0;  // round markers among them
  };
  // The journal of `segment` (empty when nothing was journaled there), forgotten here.
  Journal take_journal(uint64_t segment);
  // The summary of a sealed segment (segment_summary.h): its journal, taken.
  SegmentSummary take_summary(const SealedSegment& sealed);
  // Forgets the journals of segments below `segment` (nothing will summarize them).
  void drop_journals_below(uint64_t segment);
  // Applies a summary's events of `segment`. false: the events do not
  // parse (nothing applied).
  bool apply_summary(uint64_t segment, std::string_view events);

  bool damaged(uint32_t bucket) const;
  // Every bucket damaged here, sorted: a committed write of theirs this log
  // cannot serve (a register lost before its commit), so the copy must be
  // repaired, whatever checkpoints came after (they hold no entries).
  std::vector<uint32_t> damaged_buckets() const;
  // The end of the committed positions indexed for `bucket` (0: none).
  Position committed_end(uint32_t bucket) const;
  // The first position still in the log (0 until retention moved it).
  Position retained_start(uint32_t bucket) const;
  // The committed write holding `position`, if indexed.
  std::optional<IndexedWrite> find(uint32_t bucket, Position position) const;

  unsigned core() const { return _core; }
  size_t writes(uint32_t bucket) const;
  size_t writes_total() const { return _writes_total; }
  // Bytes the elements' vectors hold (capacity, slack included).
  size_t memory_bytes() const;

 private:
  // The bucket's register not yet committed, as the log holds it.
  struct Candidate {
    IndexedWrite write;
    uint32_t checksum = 0;  // the write's (Write::checksum), matched by commit marks
  };
  struct Bucket {
    std::vector<IndexedWrite> writes;  // committed, by position, contiguous from start
    Position start = 0;                // retained start
    Position end = 0;                  // committed end (also past empty writes)
    std::optional<Candidate> candidate;
    bool damaged = false;
  };
  // Whether a register record fits the bucket's state; the replay checks
  // decode first, live the phaser's invariants.
  static bool register_fits(const Bucket& bucket, Position first);
  static bool commit_fits(const Bucket& bucket, const consensus::CommitMark& mark);
  static std::optional<Candidate> candidate_of(const consensus::Write& write, uint64_t segment,
                                               uint64_t offset, size_t payload_bytes);
  void apply_register(Bucket& bucket, const Candidate& candidate);
  void apply_commit(Bucket& bucket, const consensus::CommitMark& mark);
  void apply_checkpoint(Bucket& bucket, Position commit_end);
  void replay_phaser(uint32_t bucket, const ReplayedRecord& record);
  // The rules replay judges a record by: a misfit damages the bucket.
  void replay_register(uint32_t bucket, const Candidate& candidate);
  void replay_commit(uint32_t bucket, const consensus::CommitMark& mark);
  void replay_checkpoint(uint32_t bucket, Position commit_end);
  // Journals one event of `segment` (its encoding: bucket_index.cc).
  std::string& journal(uint64_t segment);
  void journal_bucket(uint64_t segment, uint8_t event, uint32_t bucket);
  void journal_register(uint32_t bucket, const Candidate& candidate);
  void journal_commit(uint64_t segment, uint32_t bucket, const consensus::CommitMark& mark);
  void journal_checkpoint(uint64_t segment, uint32_t bucket, Position commit_end);

  unsigned _core;
  std::map<uint32_t, Bucket> _buckets;
  size_t _writes_total = 0;
  std::map<uint64_t, Journal> _journals;
};

}  // namespace coworker::bucket
