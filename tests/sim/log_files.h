// LogFiles: a simulated participant's durable records as the server's log
// files, so a restart runs the server's recovery over them (issue 19 points
// 3 and 4).
//
// Owned by a Disk (disk.h) that writes files (DiskOptions::files), for the
// whole run. The log is core 0's (a simulated participant has one core),
// `<dir>/core-0/<index>.seg`, laid out byte for byte as bucket/log_store.cc
// lays it out: each segment opens with a header record, every record
// starts at the next 8-byte boundary, seqs run 1, 2, 3, ... across
// segments, each batch's records name the first seq of their batch, each
// life's first batch opens with a boot record naming the round the last
// recovery found whole (record.h), and a record that does not fit what is
// left of a segment seals it (a seal record) and goes on in the next
// (LogStore::make_place). Segments are small (drawn per disk from the
// files' own stream, 16 or 64 KiB, or 1 GiB: never sealed), so a run
// seals many.
//
//   1. A batch the disk completes is written whole (one pwrite per segment
//      it touches). The next segment is always prepared before it is
//      needed, as the store's preparer does: a retired segment renamed
//      into place (recycled: its old records stay behind the new ones), or
//      a new file, of the segment's size (zeros; never for 1 GiB) or empty
//      (each write extends it).
//   2. At a crash, the batch that was being written may have reached the
//      files in part: a prefix of it cut anywhere (in a header, in a
//      payload, at a seal), or all of it but one 512-byte sector left as
//      it was (zeros, or a recycled segment's old bytes). Its fdatasync
//      never returned, so nothing that waited for it was sent. Recovery
//      keeps its records up to the first one damaged and cuts the rest as
//      a torn tail: a batch cut at a record boundary looks whole, so the
//      records before the cut are recovered like a batch kept whole
//      (disk.h), and the disk folds them too. tear() says how many that is.
//   3. Rounds (recovery.h steps 4-5). A batch whose fdatasync returned
//      (Synced::yes) and that holds a checkpoint round's marker (the
//      simulated participant writes a round in one tick, so in one batch:
//      phaser_host.h) names it in the `round` file, 7 times in 8 (else the
//      naming failed or a crash came first: the round stays whole only by
//      recovery's other rules). Then, half the time, retention: `retained`
//      names a segment above the first and at or below the named round's,
//      and the segments below it go (renamed `.free` for recycling, or
//      deleted; 1 time in 8 left behind, as a crash between the marker
//      and the unlinks leaves them, for recovery to name). A seal in any
//      synced batch gets its segment's summary, 7 times in 8 (its index
//      events empty: the simulator keeps no index, and takes every
//      summary). Not simulated: the summaries a server's boot writes for
//      the sealed segments it read whole (ReplayOptions::sealed), and a
//      boot record in a batch of its own.
//   4. recover() runs bucket::replay_core over the directory, taking
//      summaries as the server's boot does, and folds what it hands over
//      for the image (Feed::everything) with the server's EngineImage;
//      then the segments it took from summaries are scrubbed, as each core
//      does after its start (bucket/scrub.h; damage found deletes the
//      summary). Damage reported or scrubbed in a log nothing damaged is a
//      violation, and so is none found in a damaged one, and a log that
//      does not continue exactly after the records step 2 kept. The files
//      are then what LogStore::open leaves: the segments recovery discards
//      or retires deleted, a torn tail zeroed, a segment to begin anew
//      prepared, and the log continues where recovery says.
//   5. Damage at rest, probed on a copy (damage_copy; the run goes on from
//      the intact files): one record of a live segment, below the last
//      batch (damage there cannot be told from a torn tail: docs/
//      ARCHITECTURE.md, recovery's "Limitation"), gets one bit flipped
//      anywhere in its header or payload, or another record's bytes
//      written over it (a misdirected write). Recovery reads the copy; the
//      disk checks what it found and what a repair would keep (disk.h).
//   6. Damage at rest in the log itself (damage): as step 5, on the files
//      the participant restarts from; its boot repairs (disk.h,
//      repair_at_boot). Retention that deletes the damaged segment ends
//      the damage. In a retained log, 1 time in 2 a bit is flipped in the
//      header of every round marker below the last batch instead: no round
//      is whole, recovery folds nothing, and the life after it is folded
//      from its boot record (recovery.h step 4b; phaser-repair seed
//      1777382951).
// Files live under /dev/shm when it is writable (no disk I/O), else
// $TMPDIR or /tmp, and are removed with the object.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "bucket/engine_records.h"
#include "bucket/recovery.h"
#include "consensus/prng.h"

namespace coworker::sim {

// Aimed damage (issue 19 point 6), with DamageTarget::bucket_payload: the
// newest record of a bucket in `buckets` when one has a record among the
// newest; otherwise any bucket's, or with `only`, nothing.
struct Aimed {
  std::set<uint32_t> buckets;
  bool only = false;
};

class LogFiles {
 public:
  // Where one record of an encoded batch lies.
  struct Placed {
    size_t at = 0;        // from the start of the batch's bytes
    uint64_t segment = 0;
    uint64_t offset = 0;  // in its segment
    uint64_t seq = 0;
    size_t needed = 0;    // header and payload: what recovery reads of it
    size_t bytes = 0;     // with the padding
    uint32_t bucket = 0;  // the header's
    bucket::RecordKind kind = bucket::RecordKind::entry;
  };
  // What step 6 damages.
  enum class DamageTarget : uint8_t {
    any,             // any record below the last batch, header or payload
    bucket_payload,  // the payload of a bucket's record among the newest: the
                     // damage names its bucket, and only it is repaired
    bucket_headers,  // the header of every record of the aimed buckets below
                     // the last batch: the damage names no bucket
                     // (recovery.h), so the id is given up, and a bucket
                     // left without a readable record is forgotten
  };
  // Whether the fdatasync of a batch returned (step 3): a batch kept whole
  // at a crash reached the files without it.
  enum class Synced : uint8_t { yes, no };

  // `seed`: the files' own stream (segment size, naming, retention,
  // recycling), apart from every other.
  explicit LogFiles(uint64_t seed);
  ~LogFiles();
  LogFiles(const LogFiles&) = delete;
  LogFiles& operator=(const LogFiles&) = delete;

  // Steps 1 and 3.
  void append(std::span<const bucket::EngineRecord> batch, Synced synced);
  // Step 2: the partial write of `batch`, drawn from `prng`; returns how
  // many of its records, from the first, reached the files intact.
  size_t tear(std::span<const bucket::EngineRecord> batch, consensus::Prng& prng);

  struct Recovered {
    bucket::EngineImage image;
    bucket::CoreReport report;
    bool torn = false;                 // recovery cut a torn tail
    std::optional<std::string> wrong;  // step 4's violation, if any
  };
  // Step 4.
  Recovered recover();

  // Step 5: nothing when the log holds no record below its last batch.
  struct Damaged {
    bucket::CoreReport report;
    bucket::EngineImage image;  // recovery's fold of the damaged copy
    std::string fault;          // what was done to which record
    // Found by the scrub of a segment recovery took from its summary (the
    // report then shows no damage: the next start reads it and repairs).
    std::optional<std::string> scrubbed;
  };
  std::optional<Damaged> damage_copy(consensus::Prng& prng);
  // Step 6: the same damage done to the log itself (a participant down,
  // its disk damaged at rest before it starts again): what was done, or
  // nothing when no record lies below the last batch. From then on every
  // recovery must find damage (the record stays damaged in the file; the
  // repair's resets make it harmless, recovery.h), until retention deletes
  // its segment.
  // Aimed damage (issue 19 point 6), with bucket_payload: see Aimed.
  std::optional<std::string> damage(consensus::Prng& prng,
                                    DamageTarget target = DamageTarget::any,
                                    const Aimed& aim = {});
  bool damaged() const;
  // Whether the last recovery folded nothing (recovery.h step 4b): the
  // life it starts is folded from its boot record at the next one.
  bool image_from_boot() const { return _resume.image_from_boot; }

  // For the run's statistics.
  uint64_t segments_sealed() const { return _sealed; }
  uint64_t rounds_named() const { return _named; }
  uint64_t segments_retired() const { return _retired; }

 private:
  // Where the log ends, and what LogStore knows of the segment it is in.
  struct Cursor {
    uint64_t segment = 1;
    uint64_t offset = 0;      // 0: the segment's header comes next
    uint64_t limit = 0;       // the segment's size
    uint64_t next_seq = 1;
    uint64_t header_seq = 0;  // the seq of the segment's header (0: unknown)
  };
  struct Sealed {
    uint64_t segment = 0;
    uint64_t first_seq = 0;  // 0: its header's seq is unknown (no summary)
    uint64_t seal_seq = 0;
  };
  // A batch as the log store would write it at the end of the log: the
  // boot record first in a new life, segment headers and seals where
  // LogStore::make_place puts them.
  struct Encoded {
    std::string bytes;
    std::vector<Placed> placed;
    std::vector<Sealed> seals;
  };
  Encoded encode(std::span<const bucket::EngineRecord> batch) const;
  // The cursor after the first `count` records of `encoded`.
  Cursor advance(const Encoded& encoded, size_t count) const;
  // Writes encoded.bytes[from, to) where they belong.
  void write(const Encoded& encoded, size_t from, size_t to);
  // Keeps where the first `count` records lie (steps 1-2), for step 5.
  void place(const Encoded& encoded, size_t count);

  std::string segment_path(uint64_t index) const;
  int fd(uint64_t index);  // opened on first use, kept until deleted
  void close_segment(uint64_t index);
  // The store's preparer: segment `index` as a recycled or a new file.
  void prepare(uint64_t index);
  // Step 3: the newest round of a synced batch named, then retention.
  void name_round(const Placed& marker);
  void retire(uint64_t first_kept);
  void summarize(const Sealed& sealed);
  std::optional<std::string> resume_differs(const bucket::Resume& resume) const;
  // Step 4 for a directory: recovery's report, its fold, and what the
  // scrub of the segments it did not read found (nothing: intact).
  struct Replayed {
    bucket::CoreReport report;
    bucket::EngineImage image;
    std::optional<std::string> scrubbed;
  };
  static Replayed replay(const std::string& dir);
  // LogStore::open's part of step 4.
  void resume(const bucket::Resume& resume);

  size_t records_below_last_batch() const;
  // What step 5 or 6 did, and to which segment.
  struct Fault {
    std::string what;
    std::set<uint64_t> segments;  // that hold the damage
  };
  // `recent` > 0: the victim among the newest `recent` records only.
  Fault damage_file(const std::string& dir, consensus::Prng& prng, size_t recent) const;
  // A bit of the payload of a bucket's record among the newest `recent`
  // (nothing when there is none), aimed as `aim` says.
  std::optional<Fault> damage_bucket_payload(const std::string& dir, consensus::Prng& prng,
                                                   size_t recent, const Aimed& aim) const;
  // A bit of the header of every record of `aim`'s buckets below the last
  // batch (nothing when there is none).
  std::optional<Fault> damage_bucket_headers(const std::string& dir, consensus::Prng& prng,
                                             const Aimed& aim) const;
  // The same of every round marker below the last batch of a retained log,
  // when the named one is among them (step 6).
  std::optional<Fault> damage_round_markers(const std::string& dir, consensus::Prng& prng) const;
  struct Extent;
  Fault flip_headers(const std::string& dir, consensus::Prng& prng,
                     const std::vector<const Extent*>& victims) const;

  struct Extent {
    uint64_t segment = 0;
    uint64_t at = 0;  // in the segment
    size_t needed = 0;
    size_t bytes = 0;
    uint64_t seq = 0;
    uint32_t bucket = 0;
    bucket::RecordKind kind = bucket::RecordKind::entry;
  };

  consensus::Prng _prng;
  std::string _dir;
  uint64_t _segment_bytes = 0;
  Cursor _end;
  uint64_t _first = 1;  // the first segment kept
  std::map<uint64_t, int> _fds;
  std::vector<uint64_t> _free;  // retired segments kept as `<index>.free`
  // A life of the log began (the run, a restart): its first batch opens
  // with a boot record naming the round recovery found whole, or itself
  // (bucket::boot_names).
  bool _boot_pending = true;
  bucket::Resume _resume;  // what the last recovery told the open
  uint64_t _named_seq = 0;  // the marker the `round` file names (0: none)
  std::vector<Extent> _records;     // every record in the live segments, in order
  uint64_t _last_batch_seq = 0;     // the first seq of the newest batch
  std::set<uint64_t> _damaged_in;   // live segments that hold a damaged record
  uint64_t _sealed = 0;
  uint64_t _named = 0;
  uint64_t _retired = 0;
};

}  // namespace coworker::sim
