// LogStore: one core's write-ahead log with group commit (DESIGN §6, bucket/).
//
// One LogStore per core, created by open() on that core's loop after
// recovery (recovery.h) has read the log, used only from that core's
// coroutines, and closed (co_await close()) before the loop stops. It keeps
// the phasers' registers, committed entries, promises/governments, dedup
// checkpoints and, on core 0, the membership acceptor state, as opaque
// payloads under a small header (record.h).
//
// Group commit. Records are staged into the filling batch buffer; at most one
// batch is being written + fdatasync'ed at a time; everything staged
// meanwhile forms the next batch. The flusher is woken by the first stage of
// a turn and runs after the coroutines already queued in that turn, so many
// phasers appending in one turn share one write and one fdatasync. A batch
// of Flush::with_next records only (record.h) waits for a record staged
// Flush::now, a waiter, or flush_lazy().
//
//   filling  ──(flusher takes it when the previous batch is durable)──▶ flushing
//   stage() copies each payload once, into `filling`; durable(seq) resumes
//   once the fdatasync covering seq completed.
//
// The hot-path interface has two stages (Redpanda replicate_stages):
//   auto seq = store.stage(meta, payload);      // synchronous, no allocation
//   if (!seq) ...                               // full: co_await store.room(n)
//   auto done = co_await store.durable(*seq);   // one fdatasync later
// `append()` is the one-call form of the same.
//
// Bounded memory: two buffers of batch_bytes_max; when the filling one is full
// stage() says `full` and room() waits until the flusher takes it.
//
// Segments (segment.h) are prepared one ahead of need by a background task
// on the same core, so an append never waits for allocation; a batch that
// does not fit in the current segment seals it and continues in the next.
// `Sync::none` skips fdatasync (benchmarks only; said loudly at open).
//
// Errors: a failed write or fdatasync fails the store for good (after a
// failed fdatasync the page cache no longer says what is on disk): every
// waiter and every later stage() gets `failed`; the process restarts and
// recovers.
//
// Every record returns its seq, and (segment, offset) is known at stage
// time (last_location()): the per-bucket index (bucket_index.h) keeps them.
//
// Retention (DESIGN §6, segment.h). The store deletes whole segments from
// the front, never the one being filled, when its owner asks (retire): the
// owner first makes a checkpoint round durable in or after the first
// segment it keeps, so nothing before that round is needed to recover
// (recovery.h); retention_target() says which segments the policy (bytes
// and/or age) would let go.
#pragma once

#include <chrono>
#include <functional>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bucket/recovery.h"
#include "bucket/record.h"
#include "bucket/segment.h"
#include "reactor/result.h"
#include "reactor/sync.h"
#include "reactor/task.h"

namespace coworker::bucket {

enum class Sync : uint8_t { always, none };
const char* sync_name(Sync sync);
// The command-line spellings (`--sync always|none`, `--prepare ...`).
std::optional<Sync> parse_sync(std::string_view text);
std::optional<Prepare> parse_prepare(std::string_view text);

enum class LogErrc : uint8_t {
  too_large,  // the payload can never fit a batch or a segment
  full,       // the filling batch has no room now: co_await room()
  failed,     // a write or fdatasync failed; the store accepts nothing more
  closed,     // close() was called
};
const char* log_errc_name(LogErrc errc);

class LogStore {
 public:
  struct Config {
    std::string dir;  // the log directory: <data-dir>/log
    unsigned core = 0;
    uint64_t segment_bytes = 64u << 20;
    size_t batch_bytes_max = 8u << 20;  // per buffer; a core holds two
    Sync sync = Sync::always;
    Prepare prepare = Prepare::recycle;  // measured: docs/ARCHITECTURE.md, "Log store"
    // Told how long each batch took to write and make durable (metrics);
    // called on the core's loop, must not block.
    std::function<void(std::chrono::steady_clock::duration)> flushed;
    // Told when a segment's seal is durable (its summary may be written,
    // segment_summary.h); on the core's loop, must not block. Not told of a
    // segment continued from an earlier run whose header recovery lost.
    std::function<void(const SealedSegment&)> sealed;
  };
  static constexpr uint64_t segment_bytes_min = 4096;
  static constexpr size_t batch_bytes_min = 4096;

  struct Stats {
    uint64_t batches = 0;
    uint64_t records = 0;
    uint64_t bytes_written = 0;
    uint64_t fdatasyncs = 0;
    uint64_t segments_prepared = 0;
    uint64_t segments_retired = 0;
    uint64_t segments_recycled = 0;  // retired ones made the next segment (Prepare::recycle)
    uint64_t full = 0;  // stage() calls that found the batch full
  };

  // Opens (or creates) this core's log on the calling core's loop and starts
  // its flusher and preparer. `resume` comes from recovery; a torn tail it
  // reports is erased here, durably, before anything is appended.
  static Result<std::unique_ptr<LogStore>> open(Config config, const Resume& resume);
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  size_t payload_bytes_max() const { return _payload_bytes_max; }

  // Copies a record into the filling batch and returns its seq.
  Result<uint64_t, LogErrc> stage(const RecordMeta& meta, std::span<const char> payload,
                                  Flush flush = Flush::now);
  // The same for a payload in several parts (gathered into one copy).
  Result<uint64_t, LogErrc> stage(const RecordMeta& meta,
                                  std::span<const std::span<const char>> parts,
                                  Flush flush = Flush::now);
  // Lets the flusher take a filling batch of Flush::with_next records only.
  void flush_lazy();
  // The seq of this life's boot record (RecordKind::boot), put at open.
  uint64_t boot_seq() const { return _boot_seq; }
  // Where the last staged record lies: (segment, offset).
  std::pair<uint64_t, uint64_t> last_location() const { return _last_location; }

  // Durable and Room park through an Event wait built in place inside them
  // (hence in the appender's frame): no allocation per wait.
  class [[nodiscard]] Durable {
   public:
    Durable(LogStore* store, uint64_t seq, Flush hurry)
        : _store(store), _seq(seq), _hurry(hurry) {}
    bool await_ready() const;
    void await_suspend(std::coroutine_handle<> handle);
    Result<void, LogErrc> await_resume() const;

   private:
    LogStore* _store;
    uint64_t _seq;
    Flush _hurry;
    std::optional<reactor::Event::WaitThroughStop> _wait;
  };
  // Completes once seq and every record before it is durable (or failed).
  // The wait makes a Flush::with_next batch go, unless `hurry` is with_next
  // too (a watcher that only passes durability on: Core::run_pump).
  Durable durable(uint64_t seq, Flush hurry = Flush::now) { return Durable(this, seq, hurry); }

  class [[nodiscard]] Room {
   public:
    Room(LogStore* store, size_t payload_bytes) : _store(store), _bytes(payload_bytes) {}
    bool await_ready() const;
    void await_suspend(std::coroutine_handle<> handle);
    void await_resume() const {}

   private:
    LogStore* _store;
    size_t _bytes;
    std::optional<reactor::Event::WaitThroughStop> _wait;
  };
  // Completes when a payload of this size may fit (stage() again to know).
  Room room(size_t payload_bytes) { return Room(this, payload_bytes); }

  // stage (waiting for room) + durable. `payload` must outlive the call.
  reactor::Task<Result<uint64_t, LogErrc>> append(RecordMeta meta,
                                                  std::span<const char> payload);

  // Flushes what is staged, stops the background tasks, closes the files.
  reactor::Task<void> close();

  // When the batch now being written started, if one is: the host stops
  // answering heartbeats when it is stuck for the departure timeout (DESIGN §4).
  std::optional<std::chrono::steady_clock::time_point> flush_started() const {
    if (!_flush_active) return std::nullopt;
    return _flush_started;
  }

  // ---- Retention ----
  // The oldest segment on disk, and the one the next record goes to.
  uint64_t first_segment() const { return _first_segment; }
  uint64_t segment() const { return _segment; }
  // Bytes the log's segments take on disk (the current one, those prepared
  // ahead and retired ones kept for reuse included).
  uint64_t disk_bytes() const;
  // The first segment the policy keeps: every sealed segment below it is
  // past retention — the sealed segments after it hold at least `bytes_max`
  // bytes, or it was sealed more than `age_ms_max` ago (`now_ms`: Unix
  // time). Never above the segment being filled.
  uint64_t retention_target(uint64_t bytes_max, uint64_t age_ms_max, int64_t now_ms) const;
  // Deletes every segment below `first_kept` (> first_segment(), <=
  // segment()): the marker first, durably, then the files. The caller
  // guarantees nothing below it is needed (a durable checkpoint round in
  // segment first_kept or later). One call at a time. With
  // Prepare::recycle, up to two of them are renamed `<index>.free` instead
  // (segment.h) and become the next segments the preparer needs.
  reactor::Task<Status> retire(uint64_t first_kept);

  uint64_t next_seq() const { return _next_seq; }
  uint64_t durable_seq() const { return _durable_seq; }
  bool failed() const { return _failed.has_value(); }
  const Stats& stats() const { return _stats; }
  const Config& config() const { return _config; }

 private:
  struct Extent {
    uint64_t segment = 0;
    uint64_t file_offset = 0;
    size_t buffer_offset = 0;
    size_t bytes = 0;
  };
  struct Batch {
    char* data = nullptr;
    size_t bytes = 0;
    std::vector<Extent> extents;
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    // The flusher may take it: a record staged Flush::now, someone waiting
    // for one of its records, no room left, or flush_lazy().
    bool wanted = false;
    reactor::Event flushed;  // notified when this batch is durable (or failed)
    bool empty() const { return bytes == 0; }
  };

  explicit LogStore(Config config);
  size_t bytes_needed(size_t record) const;
  void put(RecordKind kind, uint32_t bucket, uint64_t position, Promise promise,
           std::span<const std::span<const char>> parts, size_t payload);
  void make_place(size_t record);
  // The store's own records (record.h): a segment header or a seal, and
  // the boot record each open puts first.
  void put_internal(RecordKind kind);
  void put_boot(uint64_t names);
  void want_filling();
  Batch& batch_of(uint64_t seq);
  void fail(Errno error);
  void release_segments();
  reactor::Task<void> flush_loop();
  reactor::Task<Status> write_batch(Batch& batch);
  reactor::Task<void> prepare_loop();

  Config _config;
  size_t _payload_bytes_max = 0;
  std::unique_ptr<char[]> _buffers;
  Batch _batches[2];
  Batch* _filling = &_batches[0];
  Batch* _flushing = &_batches[1];
  bool _flush_active = false;
  std::chrono::steady_clock::time_point _flush_started{};

  uint64_t _segment = 1;  // where the next record is staged
  uint64_t _offset = 0;
  uint64_t _segment_limit = 0;  // the size of segment _segment
  uint64_t _next_seq = 1;
  uint64_t _durable_seq = 0;
  uint64_t _first_segment = 1;
  std::map<uint64_t, int64_t> _sealed_ms;  // sealed segments kept: when (Unix ms)
  bool _retiring = false;
  std::pair<uint64_t, uint64_t> _last_location{0, 0};
  uint64_t _header_seq = 0;  // the current segment's header record (0: unknown)
  std::deque<SealedSegment> _seals;  // staged, not yet durable

  uint64_t _boot_seq = 0;
  std::map<uint64_t, int> _fds;  // open segments: written, being written, prepared
  std::vector<uint64_t> _free;   // retired segments kept for reuse (Prepare::recycle)
  uint64_t _prepared_max = 0;
  int _dir_fd = -1;

  // Where the store's own coroutines and its appenders park. Each is used as
  // a condition (Event::notify_all, never set): a woken waiter re-checks the
  // store's state, so a notify with nobody parked is simply lost, as it
  // should be. All wait through the loop's stop: the store still flushes
  // while its core drains, until close().
  reactor::Event _flusher_idle;     // the flusher: something was staged
  reactor::Event _flusher_segment;  // the flusher: a segment was prepared
  reactor::Event _preparer_idle;    // the preparer: a segment is needed
  reactor::Event _close_waiter;     // close(): the flusher or preparer ended
  reactor::Event _room;             // room(): the filling buffer was taken
  bool _closing = false;
  bool _flusher_done = false;
  bool _preparer_done = false;
  std::optional<Errno> _failed;
  Stats _stats;
};

}  // namespace coworker::bucket
