// LogFiles: a simulated participant's durable records as the server's log
// files, so a restart runs the server's recovery over them (issue 19 points
// 3 and 4).
//
// Owned by a Disk (disk.h) that writes files (DiskOptions::files), for the
// whole run. The log is core 0's (a simulated participant has one core) in
// one segment, `<dir>/core-0/0000000000000001.seg`, laid out byte for byte
// as bucket/log_store.cc lays it out: a segment header record, then every
// record at the next 8-byte boundary, seqs 1, 2, 3, ..., each batch's
// records naming the first seq of their batch, and each life's first batch
// opening with a boot record (record.h). The segment is large enough
// never to fill in a run, so it never seals.
//
//   1. A batch the disk completes is written whole (one pwrite).
//   2. At a crash, the batch that was being written may have reached the
//      file in part: a prefix of it cut anywhere (in a header, in a
//      payload), or all of it but one 512-byte sector left as it was
//      (zeros: past the end of the log). Its fdatasync never returned, so
//      nothing that waited for it was sent. Recovery keeps its records up
//      to the first one damaged and cuts the rest as a torn tail: a batch
//      cut at a record boundary looks whole, so the records before the cut
//      are recovered like a batch kept whole (disk.h), and the disk folds
//      them too. tear() says how many that is.
//   3. recover() runs bucket::replay_core over the directory and folds what
//      it hands over with the server's EngineImage. A report of damage is a
//      violation (nothing here damages a record at rest), and so is a log
//      that does not end exactly after the records step 2 kept. The file is
//      then cut where recovery says the log ends, as LogStore::open erases
//      a torn tail, and the log continues from there.
//   4. Damage at rest, probed on a copy (damage_copy; the run goes on from
//      the intact files): one record, below the last batch (damage there
//      cannot be told from a torn tail: docs/ARCHITECTURE.md, recovery's
//      "Limitation"), gets one bit flipped anywhere in its header or
//      payload, or another record's bytes written over it (a misdirected
//      write). Recovery reads the copy; the disk checks what it found and
//      what a repair would keep (disk.h).
//   5. Damage at rest in the log itself (damage): as step 4, on the file the
//      participant restarts from; its boot repairs (disk.h, repair_at_boot).
// Files live under /dev/shm when it is writable (no disk I/O), else
// $TMPDIR or /tmp, and are removed with the object.
#pragma once

#include <cstdint>
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
  // Where one record of an encoded batch lies in it.
  struct Placed {
    size_t at = 0;      // from the start of the batch
    size_t needed = 0;  // header and payload: what recovery reads of it
    size_t bytes = 0;   // with the padding
    uint32_t bucket = 0;  // the header's
  };
  // What step 5 damages.
  enum class DamageTarget : uint8_t {
    any,             // any record below the last batch, header or payload
    bucket_payload,  // the payload of a bucket's record among the newest: the
                     // damage names its bucket, and only it is repaired
  };

  LogFiles();
  ~LogFiles();
  LogFiles(const LogFiles&) = delete;
  LogFiles& operator=(const LogFiles&) = delete;

  // Step 1.
  void append(std::span<const bucket::EngineRecord> batch);
  // Step 2: the partial write of `batch`, drawn from `prng`; returns how
  // many of its records, from the first, reached the file intact.
  size_t tear(std::span<const bucket::EngineRecord> batch, consensus::Prng& prng);

  struct Recovered {
    bucket::EngineImage image;
    bucket::CoreReport report;
    bool torn = false;                 // recovery cut a torn tail
    std::optional<std::string> wrong;  // step 3's violation, if any
  };
  // Step 3.
  Recovered recover();

  // Step 4: nothing when the log holds no record below its last batch.
  struct Damaged {
    bucket::CoreReport report;
    bucket::EngineImage image;  // recovery's fold of the damaged copy
    std::string fault;          // what was done to which record
  };
  std::optional<Damaged> damage_copy(consensus::Prng& prng);
  // Step 5: the same damage done to the log itself (a participant down,
  // its disk damaged at rest before it starts again): what was done, or
  // nothing when no record lies below the last batch. From then on every
  // recovery must report damage (the record stays damaged in the file;
  // the repair's resets make it harmless, recovery.h).
  // Aimed damage (issue 19 point 6), with bucket_payload: see Aimed.
  std::optional<std::string> damage(consensus::Prng& prng,
                                    DamageTarget target = DamageTarget::any,
                                    const Aimed& aim = {});
  bool damaged() const { return _damaged; }

  uint64_t bytes() const { return _offset; }

 private:
  // The bytes of `batch` as the log store would write them at the end of
  // the log (the segment header first, when the log is empty), and where
  // each record lies in them.
  std::string encode(std::span<const bucket::EngineRecord> batch,
                     std::vector<Placed>* placed) const;
  // Where each record written lies in the segment (steps 1-2), for step 4.
  void place(uint64_t batch_at, const std::vector<Placed>& placed, size_t count);
  size_t records_below_last_batch() const;
  // `recent` > 0: the victim among the newest `recent` records only.
  std::string damage_file(int fd, consensus::Prng& prng, size_t recent) const;
  // A bit of the payload of a bucket's record among the newest `recent`
  // (nothing when there is none), aimed as `aim` says.
  std::optional<std::string> damage_bucket_payload(int fd, consensus::Prng& prng, size_t recent,
                                                   const Aimed& aim) const;

  struct Extent {
    uint64_t at = 0;  // in the segment
    size_t needed = 0;
    size_t bytes = 0;
    uint64_t seq = 0;
    uint32_t bucket = 0;
  };

  std::string _dir;
  std::string _segment;  // the one segment file
  int _fd = -1;
  uint64_t _offset = 0;    // where the log ends: the next batch goes here
  uint64_t _next_seq = 1;  // the seq of the next record
  // A life of the log began (the run, a restart): its first batch opens
  // with a boot record, as LogStore::open puts one.
  bool _boot_pending = true;
  std::vector<Extent> _records;      // every record in the file, in order
  uint64_t _last_batch_at = 0;       // where the newest batch begins
  bool _damaged = false;             // step 5 happened
};

}  // namespace coworker::sim
