// Recovery: replays every core's write-ahead log at start, in order, and
// says what it found — a clean end, a torn tail, or corruption.
//
// Runs synchronously on the calling thread before the cores start appending
// (plain preads, large sequential reads); LogStore::open then takes the
// `Resume` of its core. It reads every `core-*` directory under the log
// directory, whatever the core count is now.
//
// How a core's log is read (record format: record.h):
//   1. Segments in index order; within one, records one after another from
//      offset 0 (a segment header) to a seal, which sends the reader on to the
//      next segment. A record is good when its header and payload checksums
//      hold, it names this core and its own offset, its seq is the next one,
//      and its batch_first_seq continues the batch or starts a new one.
//   2. At the first record that is not good (bad checksum, zeros, a valid
//      record that does not belong there, or the end of a file), look ahead
//      through the rest of the log for a good record whose batch started
//      after the missing seq. Batches are written one at a time, each only
//      after the previous one's fdatasync, so such a record proves that the
//      bad spot was in an acknowledged batch:
//        - none: the bad spot is in the last, unacknowledged batch — a torn
//          tail (or simply the end). Everything from it on is cut: never
//          served, zeroed or deleted by LogStore::open before it appends.
//        - some: corruption. It is reported, and reading resumes at the first
//          good record with seq >= the missing one. Damaged records are never
//          served; the records after them are, and the report names the
//          buckets that must be repaired rather than served (DESIGN §4).
//   3. A seal whose next segment is missing (deleted) is corruption too, and
//      so is a first segment other than the one the `retained` marker names
//      (segment.h; 1 without one). Segments below the marker (a crash
//      between writing it and unlinking them) are not read, and LogStore
//      deletes them. Reading a retained log starts at the seq of its first
//      segment's header, and its records are handed to the visitor only
//      from its first whole round's marker on (step 4): retention retires
//      segments only below a durable round, whose records hold all the
//      state the records before it held (DESIGN §6). A retained log without
//      a whole round is corruption at its front (everything suspect).
//      LogStore resumes after a gap in a new segment, so the gap stays
//      visible to every later recovery.
//
// Whole rounds, and where the image folds from:
//   4. A checkpoint round (RecordKind::checkpoint_round, then the round's
//      records) is whole when the `round` file names its marker
//      (segment_summary.h: the core names a round only once it is durable
//      whole, and the record at the named place must be that marker with
//      that seq), or when the next marker after it comes before any boot
//      record (each LogStore::open puts one, RecordKind::boot; within one
//      life a round is staged only once the one before it was durable
//      whole, Core::make_round), or when the first boot record after it
//      names it (the open's recovery found it whole: Resume::
//      whole_round_seq). Without the boot rule a round a crash cut short
//      would pass for whole once the next life made a round in the same
//      segment; without the names, the round a retention relied on would
//      stop being whole after a restart that named a later one. The visitor takes a log from segment 1 from its start,
//      a retained one from its first whole round. The image (Feed::
//      everything) folds from the named round when the caller takes
//      summaries (ReplayOptions::summaries: main does, tools and the re-map
//      do not), else from where the visitor starts; the records before it
//      go to the visitor as Feed::index_only (the index must see them).
//   4b. A retained log in which no round is whole (the named marker
//      damaged, say) leaves the image nothing to fold: everything is
//      suspect, the host gives up its id and starts from the repair's
//      records alone (repair.h). That life's state is then its own records,
//      from its boot record on, so the open's boot record names itself
//      (Resume::image_from_boot), and a later recovery that reaches it
//      without a whole round before it starts the visitor and the image
//      there. Without it every record of that life, the repair's own
//      included, was dropped at the next restart until a round was named
//      (phaser-repair seed 1777382951: the arrival anew's identity lost).
//      Suspects still go by the damage before it (the resets after it
//      clear what the repair reset).
// Summaries (segment_summary.h), when the caller takes them:
//   5. A segment below the named round's, reached once the visitor takes
//      records and before the image does, is not read when it has an
//      intact summary of its core and index whose first_seq is the next
//      seq expected and the seq of the segment's header on disk, and whose
//      seal_seq + 1 is the next segment's header's: its summary goes to the
//      caller instead (a summary the caller cannot take: the segment is
//      read). Once damage is found every segment after it is read, so the
//      suspects below see every checkpoint after it. Summaries are not
//      fsync'ed; one lost only means reading its segment.
// The segments taken from summaries are not verified at start
// (CoreReport::unread lists them): each core scrubs them right after
// (scrub.h), and every read checks its record's checksums meanwhile, so
// their damage is never served. Their consensus state is in the round
// (DESIGN §6), so nothing there can change what this participant promised
// or committed.
//
// Which buckets are suspect after corruption: a bucket is suspect when the
// damage lies after its last good checkpoint in that log (a bucket
// checkpoint counts once a batch two after its own began in the same life
// of the log: its round's register record follows it, and a crash may
// have torn the life's last batch; CoreScanner::count_batch) and either the
// damaged header still names it (a payload-only flip) or the damage is
// unattributed (header unreadable, zeros, misdirected write, missing segment)
// and the bucket has records in that log. `unattributed` tells the host that
// buckets without surviving records may be hit too; the promise counter's
// bucket (`participant_bucket`) is then suspect whether or not it has
// records, until a reset of it follows, so the host gives up its id
// (repair.h). The membership state (core 0) counts as the bucket
// `membership_bucket`.
//
// Limitation: damage to the very last batch of a log is indistinguishable
// from a torn write and is cut; the replicas hold that data (DESIGN §4).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bucket/record.h"
#include "bucket/segment_summary.h"
#include "reactor/result.h"

namespace coworker::bucket {

// Who a replayed record is for (step 4).
enum class Feed : uint8_t {
  everything,  // the engine's image and the index
  index_only,  // before the round recovery folds the image from (step 4)
};

// A record handed to the replay visitor; `payload` is valid during the call only.
struct ReplayedRecord {
  unsigned core = 0;
  uint64_t segment = 0;
  uint64_t offset = 0;
  RecordHeader header;
  std::span<const char> payload;
  Feed feed = Feed::everything;
};
using ReplayVisitor = std::function<void(const ReplayedRecord&)>;

// Takes a summary's events (step 5); false: they could not be taken
// (nothing was).
using SummaryVisitor = std::function<bool(const SegmentSummary& summary)>;

// A segment read to its seal.
struct SealedSegment {
  unsigned core = 0;
  uint64_t segment = 0;
  uint64_t first_seq = 0;  // its header's
  uint64_t seal_seq = 0;
  bool whole = false;       // every record of it went to the visitor, none was damaged
  bool summarized = false;  // it has an intact summary already
};
using SealedVisitor = std::function<void(const SealedSegment&)>;

struct ReplayOptions {
  SummaryVisitor summaries;  // empty: read every segment
  SealedVisitor sealed;      // empty: nobody asks
  // Set by another thread: the replay ends at its next record, failing
  // with ECANCELED (a participant stopped while it replays: boot.h).
  const std::atomic<bool>* stop = nullptr;
};

struct Damage {
  enum class What : uint8_t {
    bad_header,       // no valid header where a record must start (flip, zeros, torn)
    bad_payload,      // intact header, payload checksum wrong: attributed to its bucket
    misplaced,        // a valid record with the wrong seq or batch (misdirected, stale)
    missing_segment,  // a segment file is gone
  };
  What what = What::bad_header;
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t first_missing_seq = 0;
  uint64_t next_good_seq = 0;    // where reading resumed; 0: nothing good after it
  std::optional<uint32_t> bucket;  // set for bad_payload only
};
const char* damage_name(Damage::What what);

struct TornTail {
  uint64_t segment = 0;
  uint64_t offset = 0;       // where the log now ends
  uint64_t bytes = 0;        // non-zero bytes cut after that point (in that segment)
  uint64_t records = 0;      // intact but unacknowledged records cut
  uint64_t segments = 0;     // later segment files discarded
};

// Where LogStore::open continues a core's log.
struct Resume {
  uint64_t segment = 1;
  uint64_t offset = 0;     // 0: (re)prepare the segment and write its header
  uint64_t next_seq = 1;
  uint64_t segment_bytes = 0;  // when offset > 0: the size `segment` was made with
  uint64_t erase_end = 0;  // zero [offset, erase_end) of `segment` first (torn leftovers)
  std::vector<uint64_t> discard;  // later segment files that hold nothing good
  uint64_t header_seq = 0;  // when offset > 0: the seq of `segment`'s header (0: unknown)
  // The round marker found whole (step 4: the named one; 0: none): the
  // boot record of the next life names it, so it stays whole after it.
  uint64_t whole_round_seq = 0;
  // Nothing could be folded (step 4b): the next life's image starts at its
  // boot record, which names itself.
  bool image_from_boot = false;
  uint64_t first_segment = 1;     // the oldest segment kept (retention)
  std::vector<uint64_t> retire;   // segment files below it, left by a crash: deleted
};

// What the boot record an open puts at `boot_seq` names (record.h): the
// whole round recovery found, or the record itself when the image starts
// there (step 4b).
uint64_t boot_names(const Resume& resume, uint64_t boot_seq);

struct CoreReport {
  unsigned core = 0;
  uint64_t records = 0;  // records visited (store-internal ones excluded)
  uint64_t bytes = 0;    // bytes of the log read as good records
  uint64_t segments = 0;
  uint64_t summarized = 0;  // segments taken from their summaries, not read (step 5)
  std::vector<SealedSegment> unread;  // those segments, for the scrub (scrub.h)
  uint64_t last_seq = 0;
  std::vector<Damage> damages;
  std::optional<TornTail> torn;
  std::vector<uint32_t> suspect_buckets;  // sorted; never membership_bucket
  bool unattributed = false;
  bool membership_suspect = false;
  Resume resume;

  bool corrupt() const { return !damages.empty(); }
  bool suspect(uint32_t bucket) const;
  std::string describe() const;
};

struct Recovery {
  std::vector<CoreReport> cores;  // sorted by core
  // The report of a core, or an empty one (fresh log) when it has no directory.
  CoreReport core(unsigned core) const;
};

// Replays one core's log. Damage is a value in the report; the error is for
// the file system failing (permissions, I/O errors).
Result<CoreReport> replay_core(const std::string& log_dir, unsigned core,
                               const ReplayVisitor& visit, const ReplayOptions& options = {});
// Replays every core's log, core by core, and logs torn tails and corruption
// to stderr.
Result<Recovery> replay_log(const std::string& log_dir, const ReplayVisitor& visit,
                            const ReplayOptions& options = {});

}  // namespace coworker::bucket
