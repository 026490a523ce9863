// EntryReader (entry_reader.h): index lookups, one Read op per run of
// register records, verification, slicing; a counter of reads in flight and a small
// cache of read-only segment files.
#include "bucket/entry_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <variant>

#include "bucket/record.h"
#include "bucket/segment.h"
#include "consensus/assert.h"
#include "consensus/phaser_codec.h"
#include "reactor/ops.h"

namespace coworker::bucket {

using consensus::BucketEntry;
using reactor::Task;

const char* read_errc_name(ReadErrc errc) {
  switch (errc) {
    case ReadErrc::io: return "io";
    case ReadErrc::corrupt: return "corrupt";
    case ReadErrc::not_found: return "not_found";
  }
  return "?";
}

namespace {

// The decoded register is the write the index names.
bool holds(const consensus::Write& head, size_t entries, uint32_t bucket,
           const IndexedWrite& write) {
  return head.bucket == bucket && head.first == write.first && entries == write.entries;
}

}  // namespace

// One of the core's read slots, held for one run's Read op and the checks
// of its records (the buffers then live on in the caller's page).
class EntryReader::Slot {
 public:
  explicit Slot(EntryReader& reader) : _reader(reader) {
    COWORKER_ASSERT(_reader._in_flight < _reader._config.reads_in_flight_max);
    _reader._in_flight++;
    _reader._stats.in_flight_peak = std::max(_reader._stats.in_flight_peak, _reader._in_flight);
  }
  ~Slot() {
    COWORKER_ASSERT(_reader._in_flight > 0);
    _reader._in_flight--;
    _reader._slot_free.notify_all();
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  EntryReader& _reader;
};

// A use of an open segment file (taken by open_file), given back on every path.
class EntryReader::FileRef {
 public:
  FileRef(EntryReader& reader, uint64_t segment) : _reader(reader), _segment(segment) {}
  ~FileRef() { _reader.close_file(_segment); }
  FileRef(const FileRef&) = delete;
  FileRef& operator=(const FileRef&) = delete;

 private:
  EntryReader& _reader;
  uint64_t _segment;
};

EntryReader::EntryReader(Config config, const BucketIndex& index)
    : _config(std::move(config)), _index(index) {
  COWORKER_ASSERT(!_config.log_dir.empty());
  COWORKER_ASSERT(_config.reads_in_flight_max >= 1);
  COWORKER_ASSERT(_config.files_open_max >= 1);
}

EntryReader::~EntryReader() {
  // A read in flight holds this object; its owner waits for it first.
  COWORKER_ASSERT(_in_flight == 0);
  for (const auto& [segment, file] : _files) {
    COWORKER_ASSERT(file.users == 0);
    ::close(file.fd);
  }
}

Task<Result<EntryPage, ReadErrc>> EntryReader::read(uint32_t bucket, Position from, size_t limit,
                                                    size_t bytes_max) {
  COWORKER_ASSERT(limit > 0);
  COWORKER_ASSERT(bytes_max > 0);
  if (_index.damaged(bucket)) co_return ReadErrc::not_found;
  if (from < _index.retained_start(bucket)) co_return ReadErrc::not_found;
  EntryPage out;
  out.entries.reserve(std::min<size_t>(limit, 4096));
  Position at = from;
  size_t bytes = 0;
  while (out.size() < limit) {
    // Looked up again after each run: the index may have changed meanwhile
    // (grown; marked damaged; with retention, trimmed).
    if (_index.damaged(bucket)) co_return ReadErrc::not_found;
    const std::optional<IndexedWrite> write = _index.find(bucket, at);
    if (!write) break;  // the committed end (or, later, the retained start)
    if (bytes > 0 && bytes + record_header_bytes + write->payload_bytes > bytes_max) break;
    Run run = plan_run(bucket, *write, at, limit - out.size(),
                       bytes_max - std::min(bytes, bytes_max));
    bytes += run.bytes();
    const std::vector<IndexedWrite> writes = run.writes;
    auto got = co_await read_run(bucket, std::move(run));
    if (!got) co_return got.error();
    for (size_t i = 0; i < writes.size(); i++) {
      const IndexedWrite& w = writes[i];
      COWORKER_ASSERT(w.first <= at && at < w.end());
      // Decoded straight onto the page's end, then trimmed to the range:
      // the positions before `at` (the first write only) and past `limit`.
      std::vector<consensus::EntryView>& entries = out.entries;
      const size_t before = entries.size();
      consensus::Decoded<consensus::Write> head =
          consensus::decode_register_view(got->payloads[i], entries);
      if (!head || !holds(*head.value, entries.size() - before, bucket, w)) {
        _stats.corrupt++;
        co_return ReadErrc::corrupt;
      }
      const size_t skip = static_cast<size_t>(at - w.first);
      const size_t take = std::min<size_t>(w.entries - skip, limit - before);
      const auto first = entries.begin() + static_cast<std::ptrdiff_t>(before);
      entries.erase(first, first + static_cast<std::ptrdiff_t>(skip));
      entries.resize(before + take);
      at += take;
    }
    out.buffers.push_back(std::move(got->buffer));
  }
  COWORKER_ASSERT(out.size() <= limit);
  COWORKER_ASSERT(at == from + out.size());
  co_return out;
}

Task<Result<std::vector<consensus::WritePtr>, ReadErrc>> EntryReader::read_writes(
    uint32_t bucket, Position from, size_t bytes_max) {
  COWORKER_ASSERT(bytes_max > 0);
  if (_index.damaged(bucket)) co_return ReadErrc::not_found;
  if (from < _index.retained_start(bucket)) co_return ReadErrc::not_found;
  std::vector<consensus::WritePtr> out;
  Position at = from;
  size_t bytes = 0;
  for (;;) {
    if (_index.damaged(bucket)) co_return ReadErrc::not_found;
    const std::optional<IndexedWrite> write = _index.find(bucket, at);
    if (!write) break;
    if (bytes > 0 && bytes + record_header_bytes + write->payload_bytes > bytes_max) break;
    Run run = plan_run(bucket, *write, at, SIZE_MAX, bytes_max - std::min(bytes, bytes_max));
    bytes += run.bytes();
    const std::vector<IndexedWrite> writes = run.writes;
    auto got = co_await read_run(bucket, std::move(run));
    if (!got) co_return got.error();
    for (size_t i = 0; i < writes.size(); i++) {
      // WriteChecksum::covered: the payload checksum just checked covers
      // the Write's bytes, so its own checksum is not recomputed.
      auto decoded =
          consensus::decode_phaser_record(got->payloads[i], consensus::WriteChecksum::covered);
      const auto* r = decoded ? std::get_if<consensus::RegisterRecord>(&*decoded.value) : nullptr;
      if (r == nullptr || !holds(*r->write, r->write->entries.size(), bucket, writes[i])) {
        _stats.corrupt++;
        co_return ReadErrc::corrupt;
      }
      at = r->write->end();
      out.push_back(std::move(r->write));
    }
  }
  co_return out;
}

size_t EntryReader::Run::bytes() const {
  COWORKER_ASSERT(!writes.empty());
  const IndexedWrite& last = writes.back();
  return static_cast<size_t>(last.offset() - offset()) + record_header_bytes +
         last.payload_bytes;
}

// Step 2: `first` always; then each next write of the bucket while it
// follows in the same segment within span_gap_max, the entries wanted are
// not covered yet and the run, gaps included, fits what is left of the
// budget and span_bytes_max.
EntryReader::Run EntryReader::plan_run(uint32_t bucket, IndexedWrite first, Position at,
                                       size_t entries, size_t bytes_left) const {
  COWORKER_ASSERT(first.first <= at && at < first.end());
  COWORKER_ASSERT(entries > 0);
  Run run;
  run.writes.push_back(first);
  size_t covered = static_cast<size_t>(first.end() - at);
  while (covered < entries) {
    const IndexedWrite& last = run.writes.back();
    const std::optional<IndexedWrite> next = _index.find(bucket, last.end());
    if (!next || next->first != last.end() || next->segment != last.segment) break;
    const uint64_t last_end = last.offset() + record_header_bytes + last.payload_bytes;
    if (next->offset() < last_end || next->offset() - last_end > span_gap_max) break;
    // What the run would read: every byte from its first record's start.
    const size_t grown = static_cast<size_t>(next->offset() - run.offset()) +
                         record_header_bytes + next->payload_bytes;
    if (grown > bytes_left || grown > span_bytes_max) break;
    covered += next->entries;
    run.writes.push_back(*next);
  }
  return run;
}

Task<Result<EntryReader::RunRead, ReadErrc>> EntryReader::read_run(uint32_t bucket, Run run) {
  while (_in_flight >= _config.reads_in_flight_max) {
    _stats.slot_waits++;
    // Every slot holder finishes its Read (Read runs through the loop's
    // stop) and notifies: waiting through stop cannot hang a draining core.
    co_await _slot_free.wait_through_stop();
  }
  Slot slot(*this);
  const size_t bytes = run.bytes();
  RunRead out;
  out.buffer.reset(new char[bytes]);
  const uint64_t segment = run.writes.front().segment;
  Result<int, ReadErrc> fd = open_file(segment);
  if (!fd) co_return fd.error();
  FileRef file(*this, segment);
  Result<size_t> got =
      co_await reactor::Read(*fd, std::span<char>(out.buffer.get(), bytes), run.offset());
  _stats.reads++;
  if (!got) {
    _stats.io_errors++;
    co_return ReadErrc::io;
  }
  _stats.bytes_read += *got;
  out.payloads.reserve(run.writes.size());
  for (const IndexedWrite& write : run.writes) {
    const size_t at = static_cast<size_t>(write.offset() - run.offset());
    _stats.registers++;
    Result<std::string_view, ReadErrc> payload =
        *got < at + record_header_bytes + write.payload_bytes
            ? Result<std::string_view, ReadErrc>(ReadErrc::corrupt)
            : check_record(bucket, write, out.buffer.get() + at);
    if (!payload) {
      COWORKER_ASSERT(payload.error() == ReadErrc::corrupt);
      _stats.corrupt++;
      co_return payload.error();
    }
    out.payloads.push_back(*payload);
  }
  co_return out;
}

// Verifies a register record read whole: its header, that it is the record
// the index names, and its payload checksum.
Result<std::string_view, ReadErrc> EntryReader::check_record(uint32_t bucket,
                                                             const IndexedWrite& write,
                                                             const char* record) const {
  COWORKER_ASSERT(write.entries > 0);
  RecordHeader header;
  if (decode_header(record, write.segment, &header) != HeaderCheck::ok) {
    return ReadErrc::corrupt;
  }
  const bool placed = header.kind == RecordKind::register_write && header.bucket == bucket &&
                      header.core == _index.core() && header.location == write.location &&
                      header.payload_bytes == write.payload_bytes &&
                      header.position == write.first;
  if (!placed) return ReadErrc::corrupt;
  const std::span<const char> payload(record + record_header_bytes, write.payload_bytes);
  if (!payload_intact(header, payload)) return ReadErrc::corrupt;
  return std::string_view(payload.data(), payload.size());
}

// Takes a use of segment `segment`'s file, opening it (read-only) when it is
// not open; the caller gives it back with close_file (FileRef).
Result<int, ReadErrc> EntryReader::open_file(uint64_t segment) {
  COWORKER_ASSERT(segment > 0);
  auto at = _files.find(segment);
  if (at == _files.end()) {
    trim_files(_config.files_open_max - 1);  // room for this one
    const std::string path = segment_path(_config.log_dir, _index.core(), segment);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    // A segment the index names but the log no longer has is damage.
    if (fd < 0) return errno == ENOENT ? ReadErrc::corrupt : ReadErrc::io;
    _stats.files_opened++;
    at = _files.emplace(segment, File{fd, 0, 0}).first;
  }
  at->second.users++;
  at->second.used = ++_uses;
  // Files beyond the cache's size are only ever those reads still use.
  COWORKER_ASSERT(_files.size() <= _config.files_open_max + _config.reads_in_flight_max);
  return at->second.fd;
}

void EntryReader::close_file(uint64_t segment) {
  const auto at = _files.find(segment);
  COWORKER_ASSERT(at != _files.end());
  COWORKER_ASSERT(at->second.users > 0);
  at->second.users--;
  if (segment < _retired_below && at->second.users == 0) {
    ::close(at->second.fd);
    _files.erase(at);
    return;
  }
  trim_files(_config.files_open_max);
}

void EntryReader::forget_below(uint64_t segment) {
  _retired_below = std::max(_retired_below, segment);
  for (auto at = _files.begin(); at != _files.end() && at->first < segment;) {
    if (at->second.users > 0) {
      ++at;
      continue;
    }
    ::close(at->second.fd);
    at = _files.erase(at);
  }
}

// Closes the least recently used files nobody reads from until at most
// `keep` are open (or every file left is in use).
void EntryReader::trim_files(size_t keep) {
  COWORKER_ASSERT(keep + 1 >= _config.files_open_max);
  while (_files.size() > keep) {
    auto oldest = _files.end();
    for (auto at = _files.begin(); at != _files.end(); ++at) {
      if (at->second.users > 0) continue;
      if (oldest == _files.end() || at->second.used < oldest->second.used) oldest = at;
    }
    if (oldest == _files.end()) return;
    COWORKER_ASSERT(oldest->second.users == 0);  // never closed under a Read
    ::close(oldest->second.fd);
    _files.erase(oldest);
  }
}

}  // namespace coworker::bucket
