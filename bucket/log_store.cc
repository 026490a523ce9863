#include "bucket/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "consensus/crc32c.h"
#include "reactor/loop.h"
#include "reactor/ops.h"

namespace coworker::bucket {

using consensus::crc32c;

using reactor::Loop;
using reactor::Task;

namespace {

// The store's own records: a segment header (payload: segment bytes and
// index, for tools) and an empty seal.
constexpr size_t segment_header_bytes = record_bytes(segment_header_payload_bytes);
constexpr size_t seal_bytes = record_bytes(0);
// Segments prepared ahead of the one being filled.
constexpr uint64_t prepare_ahead = 1;
// Retired segments kept for reuse (Prepare::recycle): what the preparer
// takes before the next retirement, at most; more are deleted.
constexpr size_t free_segments_max = prepare_ahead + 1;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Status erase_range(int fd, uint64_t from, uint64_t to) {
  static const char zeros[64 * 1024] = {};
  for (uint64_t at = from; at < to;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof(zeros), to - at));
    const ssize_t w = ::pwrite(fd, zeros, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Errno{w < 0 ? errno : ENOSPC};
    at += static_cast<uint64_t>(w);
  }
  if (::fdatasync(fd) != 0) return Errno{errno};
  return {};
}

}  // namespace

const char* sync_name(Sync sync) { return sync == Sync::always ? "always" : "none"; }

std::optional<Sync> parse_sync(std::string_view text) {
  if (text == "always") return Sync::always;
  if (text == "none") return Sync::none;
  return std::nullopt;
}

std::optional<Prepare> parse_prepare(std::string_view text) {
  for (Prepare p : {Prepare::zero_fill, Prepare::fallocate, Prepare::none, Prepare::recycle}) {
    if (text == prepare_name(p)) return p;
  }
  return std::nullopt;
}

const char* log_errc_name(LogErrc errc) {
  switch (errc) {
    case LogErrc::too_large: return "too_large";
    case LogErrc::full: return "full";
    case LogErrc::failed: return "failed";
    case LogErrc::closed: return "closed";
  }
  return "?";
}

LogStore::LogStore(Config config) : _config(std::move(config)) {
  _segment_limit = _config.segment_bytes;
  const size_t by_segment = static_cast<size_t>(_config.segment_bytes) - segment_header_bytes -
                            seal_bytes - record_header_bytes;
  const size_t by_batch =
      _config.batch_bytes_max - 2 * segment_header_bytes - seal_bytes - record_header_bytes;
  _payload_bytes_max =
      std::min({by_segment, by_batch, record_payload_bytes_max}) & ~(record_align - 1);
  _buffers.reset(new char[2 * _config.batch_bytes_max]);
  _batches[0].data = _buffers.get();
  _batches[1].data = _buffers.get() + _config.batch_bytes_max;
}

LogStore::~LogStore() {
  COWORKER_ASSERT(_flusher_done);
  COWORKER_ASSERT(_preparer_done);
}

// The segment being continued (`fd`) and the ones before it that the last
// batch may have spanned (a batch holds at most batch_bytes_max bytes).
static Status sync_tail(const LogStore::Config& config, const Resume& resume, int fd) {
  if (::fdatasync(fd) != 0) return Errno{errno};
  const uint64_t span = config.batch_bytes_max / config.segment_bytes + 1;
  const uint64_t from = resume.segment > resume.first_segment + span
                            ? resume.segment - span
                            : resume.first_segment;
  for (uint64_t index = from; index < resume.segment; index++) {
    const int before = ::open(segment_path(config.dir, config.core, index).c_str(),
                              O_RDWR | O_CLOEXEC);
    if (before < 0) continue;  // retired meanwhile: nothing of it is read
    const int synced = ::fdatasync(before);
    const int e = errno;
    ::close(before);
    if (synced != 0) return Errno{e};
  }
  return {};
}

Result<std::unique_ptr<LogStore>> LogStore::open(Config config, const Resume& resume) {
  COWORKER_ASSERT(config.segment_bytes >= segment_bytes_min);
  COWORKER_ASSERT(config.batch_bytes_max >= batch_bytes_min);
  COWORKER_ASSERT(config.segment_bytes % 4096 == 0);  // O_DIRECT zero-fill (segment.cc)
  COWORKER_ASSERT(config.segment_bytes / record_align <= UINT32_MAX);
  const std::string dir = core_dir(config.dir, config.core);
  if (Status made = make_dirs(dir); !made) return made.error();
  std::unique_ptr<LogStore> store(new LogStore(config));
  store->_dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (store->_dir_fd < 0) return Errno{errno};
  // Cut the torn tail for good before anything new is written after it;
  // finish a retirement a crash interrupted.
  for (uint64_t index : resume.discard) {
    COWORKER_ASSERT(index > resume.segment);
    if (::unlink(segment_path(config.dir, config.core, index).c_str()) != 0) return Errno{errno};
  }
  for (uint64_t index : resume.retire) {
    COWORKER_ASSERT(index < resume.first_segment);
    if (::unlink(segment_path(config.dir, config.core, index).c_str()) != 0 && errno != ENOENT) {
      return Errno{errno};
    }
  }
  // Summaries of segments no longer in the log, or being written anew
  // (segment_summary.h: never trusted without their seqs, deleted anyway).
  std::vector<uint64_t> unsummarized = resume.discard;
  unsummarized.insert(unsummarized.end(), resume.retire.begin(), resume.retire.end());
  unsummarized.push_back(resume.segment);
  for (uint64_t index : unsummarized) {
    if (::unlink(summary_path(config.dir, config.core, index).c_str()) != 0 && errno != ENOENT) {
      return Errno{errno};
    }
  }
  // Retired segments a run before kept for reuse: adopted when recycling,
  // deleted otherwise (or when too many, or of another size).
  Result<std::vector<uint64_t>> free = list_free(config.dir, config.core);
  if (!free) return free.error();
  for (uint64_t index : *free) {
    const std::string path = free_path(config.dir, config.core, index);
    struct stat st;
    const bool reuse = config.prepare == Prepare::recycle &&
                       store->_free.size() < free_segments_max && ::stat(path.c_str(), &st) == 0 &&
                       static_cast<uint64_t>(st.st_size) == config.segment_bytes;
    if (reuse) {
      store->_free.push_back(index);
    } else if (::unlink(path.c_str()) != 0) {
      return Errno{errno};
    }
  }
  COWORKER_ASSERT(resume.first_segment >= 1 && resume.first_segment <= resume.segment);
  store->_first_segment = resume.first_segment;
  for (uint64_t index = resume.first_segment; index < resume.segment; index++) {
    // Sealed in an earlier run: its last write is the file's mtime.
    struct stat st;
    if (::stat(segment_path(config.dir, config.core, index).c_str(), &st) == 0) {
      store->_sealed_ms[index] =
          int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000;
    }
  }
  int fd = -1;
  if (resume.offset == 0) {
    Result<int> prepared = prepare_segment_sync(config.dir, config.core, resume.segment,
                                                config.segment_bytes, config.prepare);
    if (!prepared) return prepared.error();
    fd = *prepared;
  } else {
    fd = ::open(segment_path(config.dir, config.core, resume.segment).c_str(),
                O_RDWR | O_CLOEXEC);
    if (fd < 0) return Errno{errno};
    if (resume.erase_end > resume.offset) {
      Status erased = erase_range(fd, resume.offset, resume.erase_end);
      if (!erased) {
        ::close(fd);
        return erased.error();
      }
    }
  }
  // What recovery read may have reached only the page cache: the last
  // batch's fdatasync may not have returned before a process crash, and
  // recovery keeps what it finds whole. It counts as durable from here on
  // (_durable_seq below), so make it so, in every segment that batch may
  // have touched — the ones before a fresh segment too (a batch that ended
  // at a seal), before this life's first batch can be durable after them.
  if (config.sync != Sync::none) {
    if (Status synced = sync_tail(config, resume, fd); !synced) {
      ::close(fd);
      return synced.error();
    }
  }
  if (!resume.discard.empty() || !resume.retire.empty()) {
    if (Status synced = fsync_dir(dir); !synced) return synced.error();
  }
  store->_fds[resume.segment] = fd;
  store->_prepared_max = resume.segment;
  store->_segment = resume.segment;
  store->_offset = resume.offset;
  // A segment continued from an earlier run keeps the size it was made with.
  if (resume.offset > 0) store->_segment_limit = resume.segment_bytes;
  COWORKER_ASSERT(store->_offset + seal_bytes <= store->_segment_limit);
  store->_next_seq = resume.next_seq;
  if (resume.offset > 0) store->_header_seq = resume.header_seq;
  store->_durable_seq = resume.next_seq - 1;
  // This life's first record (record.h): recovery tells by it that a round
  // marker before it may have lost the rest of its round to a crash, unless
  // it names that marker as the whole round recovery found.
  store->make_place(record_bytes(boot_payload_bytes));
  // (Or it names itself: the image starts there, recovery.h step 4b.)
  const uint64_t boot_seq = store->_next_seq;
  store->put_boot(boot_names(resume, boot_seq));
  store->_boot_seq = store->_filling->last_seq;
  store->_filling->wanted = true;  // this life's first batch goes at once
  COWORKER_ASSERT(store->_boot_seq == boot_seq);
  if (config.sync == Sync::none) {
    std::fprintf(stderr,
                 "WARNING: log store core %u opened with --sync none: appends are "
                 "acknowledged WITHOUT fdatasync, so a power loss or kernel crash loses "
                 "acknowledged data. For benchmarks only.\n",
                 config.core);
  }
  Loop& loop = Loop::current();
  loop.spawn(store->flush_loop());
  loop.spawn(store->prepare_loop());
  return store;
}

// Bytes a record of `record` bytes takes in the filling batch, counting the
// segment header it may open with and the seal + next header it may cause.
size_t LogStore::bytes_needed(size_t record) const {
  size_t bytes = record;
  uint64_t offset = _offset;
  if (offset == 0) {
    bytes += segment_header_bytes;
    offset = segment_header_bytes;
  }
  if (offset + record + seal_bytes > _segment_limit) {
    bytes += seal_bytes + segment_header_bytes;
  }
  return bytes;
}

Result<uint64_t, LogErrc> LogStore::stage(const RecordMeta& meta, std::span<const char> payload,
                                          Flush flush) {
  const std::span<const char> parts[1] = {payload};
  return stage(meta, std::span<const std::span<const char>>(parts, 1), flush);
}

Result<uint64_t, LogErrc> LogStore::stage(const RecordMeta& meta,
                                          std::span<const std::span<const char>> parts,
                                          Flush flush) {
  COWORKER_ASSERT(!record_kind_internal(meta.kind));
  COWORKER_ASSERT(record_kind_known(static_cast<uint8_t>(meta.kind)));
  const bool membership =
      meta.kind == RecordKind::membership || meta.kind == RecordKind::membership_checkpoint;
  if (membership) COWORKER_ASSERT(meta.bucket == membership_bucket);
  if (membership) COWORKER_ASSERT(_config.core == 0);
  if (!membership) COWORKER_ASSERT(meta.bucket < internal_bucket);
  if (_failed) return LogErrc::failed;
  if (_closing) return LogErrc::closed;
  size_t payload = 0;
  for (auto part : parts) payload += part.size();
  if (payload > _payload_bytes_max) return LogErrc::too_large;
  const size_t record = record_bytes(payload);
  if (_filling->bytes + bytes_needed(record) > _config.batch_bytes_max) {
    _stats.full++;
    return LogErrc::full;
  }
  make_place(record);
  put(meta.kind, meta.bucket, meta.position, meta.promise, parts, payload);
  COWORKER_ASSERT(_offset + seal_bytes <= _segment_limit);
  COWORKER_ASSERT(_filling->bytes <= _config.batch_bytes_max);
  if (flush == Flush::now) want_filling();
  return _filling->last_seq;
}

// The flusher may take the filling batch (record.h, Flush).
void LogStore::want_filling() {
  if (_filling->empty() || _filling->wanted) return;
  _filling->wanted = true;
  _flusher_idle.notify_all();
}

void LogStore::flush_lazy() { want_filling(); }

// Before a record of `record` bytes: the header a fresh segment opens
// with, or the seal of a full one and the next one's header.
void LogStore::make_place(size_t record) {
  if (_offset == 0) put_internal(RecordKind::segment_header);
  if (_offset + record + seal_bytes <= _segment_limit) return;
  put_internal(RecordKind::seal);
  _sealed_ms[_segment] = now_ms();
  if (_header_seq != 0) {
    _seals.push_back(SealedSegment{_config.core, _segment, _header_seq, _filling->last_seq,
                                   true, false});
  }
  _segment++;
  _offset = 0;
  _segment_limit = _config.segment_bytes;
  _preparer_idle.notify_all();
  put_internal(RecordKind::segment_header);
}

void LogStore::put_internal(RecordKind kind) {
  COWORKER_ASSERT(kind == RecordKind::segment_header || kind == RecordKind::seal);
  if (kind == RecordKind::seal) {
    put(kind, internal_bucket, 0, Promise{}, {}, 0);
    return;
  }
  COWORKER_ASSERT(_offset == 0);
  const auto payload = encode_segment_header_payload({_config.segment_bytes, _segment});
  const std::span<const char> part(payload);
  put(kind, internal_bucket, 0, Promise{}, std::span<const std::span<const char>>(&part, 1),
      payload.size());
  _header_seq = _filling->last_seq;
}

void LogStore::put_boot(uint64_t names) {
  const auto payload = encode_boot_payload(names);
  const std::span<const char> part(payload);
  put(RecordKind::boot, internal_bucket, 0, Promise{},
      std::span<const std::span<const char>>(&part, 1), payload.size());
}

// Encodes one record at the end of the filling batch, at the current place
// in the current segment: the one copy of its payload.
void LogStore::put(RecordKind kind, uint32_t bucket, uint64_t position, Promise promise,
                   std::span<const std::span<const char>> parts, size_t payload) {
  Batch& batch = *_filling;
  const size_t size = record_bytes(payload);
  COWORKER_ASSERT(batch.bytes + size <= _config.batch_bytes_max);
  COWORKER_ASSERT(_offset + size <= _segment_limit);
  char* out = batch.data + batch.bytes;
  size_t at = record_header_bytes;
  for (auto part : parts) {
    const size_t n = std::min(part.size(), payload - (at - record_header_bytes));
    std::memcpy(out + at, part.data(), n);
    at += n;
  }
  std::memset(out + at, 0, size - at);
  RecordHeader h;
  h.payload_bytes = static_cast<uint32_t>(payload);
  h.payload_crc = crc32c(0, out + record_header_bytes, payload);
  h.kind = kind;
  h.core = static_cast<uint16_t>(_config.core);
  h.bucket = bucket;
  h.seq = _next_seq++;
  h.batch_first_seq = batch.empty() ? h.seq : batch.first_seq;
  h.location = static_cast<uint32_t>(_offset / record_align);
  h.position = position;
  h.promise = promise;
  encode_header(h, _segment, out);
  if (batch.empty()) batch.first_seq = h.seq;
  batch.last_seq = h.seq;
  Extent* last = batch.extents.empty() ? nullptr : &batch.extents.back();
  if (last && last->segment == _segment && last->file_offset + last->bytes == _offset) {
    last->bytes += size;
  } else {
    batch.extents.push_back(Extent{_segment, _offset, batch.bytes, size});
  }
  _last_location = {_segment, _offset};
  batch.bytes += size;
  _offset += size;
  _stats.records++;
}

LogStore::Batch& LogStore::batch_of(uint64_t seq) {
  if (_flush_active && seq <= _flushing->last_seq) {
    COWORKER_ASSERT(seq >= _flushing->first_seq);
    return *_flushing;
  }
  COWORKER_ASSERT(!_filling->empty());
  COWORKER_ASSERT(seq >= _filling->first_seq);
  COWORKER_ASSERT(seq <= _filling->last_seq);
  return *_filling;
}

bool LogStore::Durable::await_ready() const {
  COWORKER_ASSERT(_seq < _store->_next_seq);
  return _store->_failed.has_value() || _seq <= _store->_durable_seq;
}

void LogStore::Durable::await_suspend(std::coroutine_handle<> handle) {
  // The batch holding seq stays the same object until it is durable.
  Batch& batch = _store->batch_of(_seq);
  if (&batch == _store->_filling && _hurry == Flush::now) _store->want_filling();
  _wait.emplace(batch.flushed);
  _wait->await_suspend(handle);
}

Result<void, LogErrc> LogStore::Durable::await_resume() const {
  if (_seq <= _store->_durable_seq) return {};
  COWORKER_ASSERT(_store->_failed.has_value());
  return LogErrc::failed;
}

bool LogStore::Room::await_ready() const {
  if (_store->_failed || _store->_closing) return true;
  if (_bytes > _store->_payload_bytes_max) return true;
  return _store->_filling->bytes + _store->bytes_needed(record_bytes(_bytes)) <=
         _store->_config.batch_bytes_max;
}

void LogStore::Room::await_suspend(std::coroutine_handle<> handle) {
  _store->want_filling();  // full: it must go for room to come
  _wait.emplace(_store->_room);
  _wait->await_suspend(handle);
}

Task<Result<uint64_t, LogErrc>> LogStore::append(RecordMeta meta, std::span<const char> payload) {
  for (;;) {
    Result<uint64_t, LogErrc> seq = stage(meta, payload);
    if (seq) {
      Result<void, LogErrc> done = co_await durable(*seq);
      if (!done) co_return done.error();
      co_return *seq;
    }
    if (seq.error() != LogErrc::full) co_return seq.error();
    co_await room(payload.size());
  }
}

void LogStore::fail(Errno error) {
  if (!_failed) {
    std::fprintf(stderr, "log store core %u: write or fdatasync failed (%s); failing the store\n",
                 _config.core, error.message());
  }
  _failed = error;
  _flushing->flushed.notify_all();
  _filling->flushed.notify_all();
  _room.notify_all();
  _flusher_idle.notify_all();
  _flusher_segment.notify_all();
  _preparer_idle.notify_all();
}

// Closes the files of segments that no staged record still needs.
void LogStore::release_segments() {
  const uint64_t needed = _filling->empty() ? _segment : _filling->extents.front().segment;
  while (!_fds.empty() && _fds.begin()->first < needed) {
    ::close(_fds.begin()->second);
    _fds.erase(_fds.begin());
  }
}

Task<void> LogStore::flush_loop() {
  for (;;) {
    if (_failed) break;
    if (_filling->empty() || !(_filling->wanted || _closing)) {
      if (_filling->empty() && _closing) break;
      co_await _flusher_idle.wait_through_stop();
      continue;
    }
    std::swap(_filling, _flushing);
    COWORKER_ASSERT(_filling->empty());
    _filling->wanted = false;
    _flush_active = true;
    _flush_started = std::chrono::steady_clock::now();
    _room.notify_all();
    Status written = co_await write_batch(*_flushing);
    if (!written) {
      fail(written.error());
      break;
    }
    COWORKER_ASSERT(_flushing->last_seq > _durable_seq);
    _durable_seq = _flushing->last_seq;
    _stats.batches++;
    if (_config.flushed) _config.flushed(std::chrono::steady_clock::now() - _flush_started);
    while (!_seals.empty() && _seals.front().seal_seq <= _durable_seq) {
      if (_config.sealed) _config.sealed(_seals.front());
      _seals.pop_front();
    }
    _flushing->flushed.notify_all();
    _flushing->bytes = 0;
    _flushing->extents.clear();
    _flush_active = false;
    release_segments();
  }
  _flush_active = false;
  _flusher_done = true;
  _preparer_idle.notify_all();
  _close_waiter.notify_all();
}

Task<Status> LogStore::write_batch(Batch& batch) {
  COWORKER_ASSERT(!batch.extents.empty());
  // Every segment the batch touches must be prepared (published, directory
  // synced) before any of it is written: a seal must never be durable
  // without the segment it points to (recovery.h, "missing segment").
  for (const Extent& e : batch.extents) {
    while (!_fds.contains(e.segment)) {
      if (_failed) co_return *_failed;
      co_await _flusher_segment.wait_through_stop();
    }
  }
  // The common batch is one extent in one segment: one write that carries
  // its own fdatasync (RWF_DSYNC) costs one trip through the kernel's worker
  // instead of two (measured: bench/log_store_bench, 1 MiB records).
  const bool one_trip = batch.extents.size() == 1 && _config.sync == Sync::always;
  for (const Extent& e : batch.extents) {
    const int fd = _fds[e.segment];
    Result<size_t> w = co_await reactor::Write{
        fd, std::span<const char>(batch.data + e.buffer_offset, e.bytes), e.file_offset,
        one_trip ? reactor::WriteSync::data : reactor::WriteSync::no};
    if (!w) co_return w.error();
    _stats.bytes_written += e.bytes;
  }
  if (one_trip) {
    _stats.fdatasyncs++;
    co_return Status{};
  }
  if (_config.sync == Sync::none) co_return Status{};
  uint64_t synced = 0;
  for (const Extent& e : batch.extents) {
    if (e.segment == synced) continue;
    synced = e.segment;
    Status s = co_await reactor::Fsync{_fds[e.segment]};
    if (!s) co_return s.error();
    _stats.fdatasyncs++;
  }
  co_return Status{};
}

Task<void> LogStore::prepare_loop() {
  for (;;) {
    if (_failed) break;
    if (_closing && _flusher_done) break;
    // While closing, prepare only what staged records still need.
    const uint64_t target = _closing ? _segment : _segment + prepare_ahead;
    if (_prepared_max >= target) {
      co_await _preparer_idle.wait_through_stop();
      continue;
    }
    const uint64_t index = _prepared_max + 1;
    Result<int> fd = Errno{0};
    if (!_free.empty()) {
      COWORKER_ASSERT(_config.prepare == Prepare::recycle);
      const uint64_t reused = _free.front();
      _free.erase(_free.begin());
      COWORKER_ASSERT(reused < _first_segment);
      fd = co_await recycle_segment(_config.dir, _config.core, reused, index, _dir_fd);
      if (fd) _stats.segments_recycled++;
    } else {
      fd = co_await prepare_segment(_config.dir, _config.core, index, _config.segment_bytes,
                                    _config.prepare, _dir_fd);
    }
    if (!fd) {
      fail(fd.error());
      break;
    }
    _fds[index] = *fd;
    _prepared_max = index;
    _stats.segments_prepared++;
    _flusher_segment.notify_all();
  }
  _preparer_done = true;
  _close_waiter.notify_all();
}

uint64_t LogStore::disk_bytes() const {
  const uint64_t segments = std::max(_prepared_max, _segment) - _first_segment + 1 + _free.size();
  return segments * _config.segment_bytes;
}

uint64_t LogStore::retention_target(uint64_t bytes_max, uint64_t age_ms_max,
                                    int64_t now_ms) const {
  uint64_t first_kept = _first_segment;
  while (first_kept < _segment) {
    // Segments after it, the one being filled included, hold this much.
    const uint64_t after = (_segment - first_kept) * _config.segment_bytes;
    const auto sealed = _sealed_ms.find(first_kept);
    const bool by_bytes = bytes_max != UINT64_MAX && after >= bytes_max;
    const bool by_age = age_ms_max != UINT64_MAX && sealed != _sealed_ms.end() &&
                        now_ms - sealed->second >= static_cast<int64_t>(age_ms_max);
    if (!by_bytes && !by_age) break;
    first_kept++;
  }
  return first_kept;
}

Task<Status> LogStore::retire(uint64_t first_kept) {
  COWORKER_ASSERT(!_retiring);
  COWORKER_ASSERT(first_kept > _first_segment);
  COWORKER_ASSERT(first_kept <= _segment);
  // Nothing staged or being written lies there (release_segments closed them).
  COWORKER_ASSERT(_fds.empty() || _fds.begin()->first >= first_kept);
  if (_failed) co_return *_failed;
  _retiring = true;
  const std::string dir = core_dir(_config.dir, _config.core);
  const std::string tmp = dir + "/retained.tmp";
  const std::string text = retained_text(first_kept);
  Status status;
  // The marker first: once it is durable the segments below are gone for
  // recovery, whether or not their files are.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) status = Errno{errno};
  if (status && ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    status = Errno{errno != 0 ? errno : EIO};
  }
  if (status) status = co_await reactor::Fsync{fd};
  if (fd >= 0) ::close(fd);
  if (status && ::rename(tmp.c_str(), retained_path(_config.dir, _config.core).c_str()) != 0) {
    status = Errno{errno};
  }
  if (status) status = co_await reactor::Fsync{_dir_fd, reactor::SyncData::all};
  if (status) {
    const uint64_t first = _first_segment;
    _first_segment = first_kept;
    // The newest retired ones are kept for reuse: a crash leaves `.free`
    // files, which the next open adopts or deletes (never read as log).
    const uint64_t keep_from =
        _config.prepare == Prepare::recycle
            ? std::max(first, first_kept - std::min<uint64_t>(first_kept - first,
                                                              free_segments_max - _free.size()))
            : first_kept;
    for (uint64_t index = first; index < first_kept; index++) {
      _sealed_ms.erase(index);
      ::unlink(summary_path(_config.dir, _config.core, index).c_str());  // ENOENT: none written
      const std::string path = segment_path(_config.dir, _config.core, index);
      struct stat st;
      const bool reuse = index >= keep_from && ::stat(path.c_str(), &st) == 0 &&
                         static_cast<uint64_t>(st.st_size) == _config.segment_bytes;
      if (reuse && ::rename(path.c_str(), free_path(_config.dir, _config.core, index).c_str()) == 0) {
        _free.push_back(index);
        _stats.segments_retired++;
      } else if (::unlink(path.c_str()) == 0) {
        _stats.segments_retired++;
      } else if (errno != ENOENT) {
        status = Errno{errno};  // recovery deletes it (below the marker)
      }
    }
    Status synced = co_await reactor::Fsync{_dir_fd, reactor::SyncData::all};
    if (status) status = synced;
  }
  _retiring = false;
  co_return status;
}

Task<void> LogStore::close() {
  _closing = true;
  _flusher_idle.notify_all();
  _preparer_idle.notify_all();
  _room.notify_all();
  while (!_flusher_done || !_preparer_done) co_await _close_waiter.wait_through_stop();
  for (auto& [index, fd] : _fds) ::close(fd);
  _fds.clear();
  if (_dir_fd >= 0) ::close(_dir_fd);
  _dir_fd = -1;
}

}  // namespace coworker::bucket
