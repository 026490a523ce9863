// EntryReader: reads a bucket's committed entries back from the core's log,
// by position, through io_uring (DESIGN §3: GET /v1/buckets/{b}/entries).
//
// One per core, owned by the core's participant code next to its LogStore
// and BucketIndex (which must outlive it), used only by that core's
// coroutines; destroyed once no read is in flight (it closes its files).
//
// A read of [from, from + limit):
//   1. the index (bucket_index.h) names the committed write holding `from`,
//      then the next one, and so on: one register record each;
//   2. a run of them is read with one `Read` op from their segment file
//      (<log dir>/core-<C>/<index>.seg, opened read-only; a few stay open):
//      the registers that follow one another in one segment, each starting
//      at most span_gap_max bytes after the previous one ends (what lies
//      between — commit records, other buckets' records — is read and
//      skipped), within the call's bounds. A bucket written in
//      uninterrupted writes reads back in few ops (one per MiB, not one per
//      write); one interleaved with the other buckets of its core reads as
//      before, an op per register;
//   3. its header is verified (decode_header with the segment index: magic,
//      checksum, fields), then its payload checksum (payload_intact), then
//      what it holds: a register_write of this bucket, this core, this
//      location, decoding (phaser_codec.h; WriteChecksum::covered: the
//      payload checksum just checked covers the Write's bytes, so its own
//      checksum is not recomputed) to a write at the indexed first position
//      with the indexed entry count;
//   4. the entries in range are answered in place: views into the run's
//      buffer, which the answer owns (EntryPage). No entry is copied, nor
//      allocated one by one (what cost most once runs made ops few).
// Any disagreement is `corrupt`, a value: bytes from a disk never fire an
// assertion, and a damaged record never yields entries.
//
// What the caller must bound. Only committed entries may be asked for: the
// caller bounds [from, from + limit) by the commit end it knows committed on
// this replica (the phaser's), and the reader also stops at the index's
// committed end. A register is durable before it can be committed (the
// leader commits with its own copy durable and every replica's ack, given
// once the replica's copy is durable), so the record read is in the file; a
// record staged but not yet written would read as zeros or stale bytes and
// fail as `corrupt`, never as wrong entries.
//
// Bounds: at most `reads_in_flight_max` Read ops in flight per core (later
// reads wait on an Event), one run read at a time per call, and per call at
// most `bytes_max` bytes read — records and what lies between them, every
// byte of the buffers the page keeps — except the first register, always
// read so that every call makes progress. A run reads at most
// span_bytes_max, or its first register alone when that is bigger. A page
// keeps its buffers (the views point into them) until it is dropped: the
// memory of reads in progress is their pages', at most bytes_max each plus
// one register (the server: 4 MiB a page, Core::read). 1 MiB runs: per-op
// costs were measured to matter more than cache misses once entries were
// views (64 KiB runs 0.71x of raw, 256 KiB 0.75x, 1 MiB 0.79x;
// docs/PERFORMANCE.md). A call answers
// fewer than `limit` entries when it stops at a bound or at the committed
// end; the next position is `from` + the entries answered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bucket/bucket_index.h"
#include "consensus/phaser_messages.h"
#include "reactor/result.h"
#include "reactor/sync.h"
#include "reactor/task.h"

namespace coworker::bucket {

enum class ReadErrc : uint8_t {
  io,         // the file system failed (open, read)
  corrupt,    // the record is not what the index says (damage, a lost segment)
  not_found,  // below the retained start, or the bucket is damaged here
};
const char* read_errc_name(ReadErrc errc);

// What EntryReader::read answers: entries whose bytes are views into
// `buffers`, which the page owns (moving it keeps them valid).
struct EntryPage {
  std::vector<consensus::EntryView> entries;
  std::vector<std::unique_ptr<char[]>> buffers;

  size_t size() const { return entries.size(); }
  bool empty() const { return entries.empty(); }
};

class EntryReader {
 public:
  struct Config {
    std::string log_dir;  // the log directory, as LogStore::Config::dir
    size_t reads_in_flight_max = 16;
    size_t files_open_max = 8;  // open segment files kept (more while reads need them)
  };
  // Step 2: the most bytes between two registers read in one op, and the
  // most a run reads unless its first register alone is bigger.
  static constexpr size_t span_gap_max = 4096;
  static constexpr size_t span_bytes_max = 1024 * 1024;
  struct Stats {
    uint64_t reads = 0;         // Read ops (one run of registers each)
    uint64_t registers = 0;     // register records read
    uint64_t bytes_read = 0;
    uint64_t corrupt = 0;
    uint64_t io_errors = 0;
    uint64_t files_opened = 0;
    uint64_t slot_waits = 0;    // reads that waited for a slot
    size_t in_flight_peak = 0;
  };

  EntryReader(Config config, const BucketIndex& index);
  ~EntryReader();
  EntryReader(const EntryReader&) = delete;
  EntryReader& operator=(const EntryReader&) = delete;

  // The committed entries of `bucket` from position `from`, at most `limit`
  // (> 0) of them, reading at most `bytes_max` (> 0) bytes beyond the first
  // register. Empty when nothing is committed at `from` yet.
  reactor::Task<Result<EntryPage, ReadErrc>> read(uint32_t bucket, Position from, size_t limit,
                                                  size_t bytes_max);

  // Whole committed writes (with entries) from the one holding `from`, by
  // the same bounds: a newcomer's acclimation (phaser.h step 9b).
  reactor::Task<Result<std::vector<consensus::WritePtr>, ReadErrc>> read_writes(
      uint32_t bucket, Position from, size_t bytes_max);

  size_t in_flight() const { return _in_flight; }
  size_t files_open() const { return _files.size(); }
  // Retention deletes the segments below `segment`: their files are closed
  // now, or as soon as the reads using them end, so the space comes back.
  void forget_below(uint64_t segment);
  const Stats& stats() const { return _stats; }

 private:
  struct File {
    int fd = -1;
    uint32_t users = 0;  // reads in flight on it: never closed under them
    uint64_t used = 0;   // when last taken (_uses), for eviction
  };
  class Slot;
  class FileRef;

  // Step 2: the registers read with one op, from the write holding `at`
  // (which the caller found), until `entries` entries are covered, the
  // budget `bytes_left` is spent (the first is always taken) or the run
  // breaks.
  struct Run {
    std::vector<IndexedWrite> writes;
    uint64_t offset() const { return writes.front().offset(); }
    size_t bytes() const;  // from the first record's start to the last's end
  };
  Run plan_run(uint32_t bucket, IndexedWrite first, Position at, size_t entries,
               size_t bytes_left) const;
  // A run read, each of its records verified: the payloads of its
  // registers, in order, views into `buffer`.
  struct RunRead {
    std::unique_ptr<char[]> buffer;
    std::vector<std::string_view> payloads;
  };
  reactor::Task<Result<RunRead, ReadErrc>> read_run(uint32_t bucket, Run run);
  // A register record's payload, once its header, its place and its
  // checksum hold.
  Result<std::string_view, ReadErrc> check_record(uint32_t bucket, const IndexedWrite& write,
                                                  const char* record) const;
  Result<int, ReadErrc> open_file(uint64_t segment);
  void close_file(uint64_t segment);
  void trim_files(size_t keep);

  Config _config;
  const BucketIndex& _index;
  std::map<uint64_t, File> _files;  // by segment index
  uint64_t _retired_below = 0;      // forget_below
  uint64_t _uses = 0;
  size_t _in_flight = 0;
  reactor::Event _slot_free;  // a condition: a read finished (notify_all, never set)
  Stats _stats;
};

}  // namespace coworker::bucket
