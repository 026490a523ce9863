#include "tests/sim/log_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "bucket/recovery.h"
#include "bucket/scrub.h"
#include "bucket/segment.h"
#include "bucket/segment_summary.h"
#include "consensus/assert.h"
#include "consensus/crc32c.h"

namespace coworker::sim {

namespace {

using bucket::RecordKind;

// A simulator whose temporary files fail cannot go on: I/O errors assert.
void write_at(int fd, uint64_t offset, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(offset + done));
    COWORKER_ASSERT(n > 0);
    done += static_cast<size_t>(n);
  }
}

std::string read_at(int fd, uint64_t offset, size_t count) {
  std::string bytes(count, '\0');
  COWORKER_ASSERT(::pread(fd, bytes.data(), count, static_cast<off_t>(offset)) ==
                  static_cast<ssize_t>(count));
  return bytes;
}

// Up to `count` bytes: fewer past the end of the file.
std::string read_some(int fd, uint64_t offset, size_t count) {
  std::string bytes(count, '\0');
  const ssize_t n = ::pread(fd, bytes.data(), count, static_cast<off_t>(offset));
  COWORKER_ASSERT(n >= 0);
  bytes.resize(static_cast<size_t>(n));
  return bytes;
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  COWORKER_ASSERT(fd >= 0);
  struct stat st;
  COWORKER_ASSERT(::fstat(fd, &st) == 0);
  std::string bytes = read_at(fd, 0, static_cast<size_t>(st.st_size));
  ::close(fd);
  return bytes;
}

void remove_file(const std::string& path) {
  COWORKER_ASSERT(::unlink(path.c_str()) == 0 || errno == ENOENT);
}

// Written aside and renamed into place, as the server writes its markers.
void replace_file(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  COWORKER_ASSERT(fd >= 0);
  write_at(fd, 0, text);
  ::close(fd);
  COWORKER_ASSERT(::rename(tmp.c_str(), path.c_str()) == 0);
}

constexpr uint64_t sector_bytes = 512;
constexpr size_t seal_bytes = bucket::record_bytes(0);
constexpr size_t free_max = 2;  // retired segments kept for recycling
constexpr uint64_t sized_max = uint64_t{1} << 20;  // larger segments are never made full size

std::string temp_root() {
  if (::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

}  // namespace

LogFiles::LogFiles(uint64_t seed) : _prng(seed) {
  std::string pattern = temp_root() + "/coworker-sim.XXXXXX";
  COWORKER_ASSERT(::mkdtemp(pattern.data()) != nullptr);
  _dir = pattern;
  Status made = bucket::make_dirs(bucket::core_dir(_dir, 0));
  COWORKER_ASSERT(made.ok());
  static constexpr uint64_t sizes[] = {uint64_t{16} << 10, uint64_t{64} << 10, uint64_t{1} << 30};
  _segment_bytes = sizes[_prng.below(std::size(sizes))];
  _end.limit = _segment_bytes;
  prepare(1);
  prepare(2);
}

LogFiles::~LogFiles() {
  for (const auto& [index, fd] : _fds) ::close(fd);
  std::error_code ignored;
  std::filesystem::remove_all(_dir, ignored);
}

std::string LogFiles::segment_path(uint64_t index) const {
  return bucket::segment_path(_dir, 0, index);
}

int LogFiles::fd(uint64_t index) {
  if (const auto open = _fds.find(index); open != _fds.end()) return open->second;
  prepare(index);
  const int fd = ::open(segment_path(index).c_str(), O_RDWR | O_CLOEXEC);
  COWORKER_ASSERT(fd >= 0);
  _fds.emplace(index, fd);
  return fd;
}

void LogFiles::close_segment(uint64_t index) {
  if (const auto open = _fds.find(index); open != _fds.end()) {
    ::close(open->second);
    _fds.erase(open);
  }
}

void LogFiles::prepare(uint64_t index) {
  const std::string path = segment_path(index);
  if (::access(path.c_str(), F_OK) == 0) return;
  if (!_free.empty() && _prng.chance(1, 2)) {
    // Recycled: the retired segment's records stay behind the new ones.
    const uint64_t old = _free.front();
    _free.erase(_free.begin());
    COWORKER_ASSERT(::rename(bucket::free_path(_dir, 0, old).c_str(), path.c_str()) == 0);
    return;
  }
  // A new file: empty, each write extending it (Prepare::none), or of the
  // segment's size, reading as zeros (fallocate, zero_fill). A segment
  // never sealed stays empty: a copy (step 5) of a sized one would be
  // written whole.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  COWORKER_ASSERT(fd >= 0);
  if (_segment_bytes <= sized_max && _prng.chance(1, 2)) {
    COWORKER_ASSERT(::ftruncate(fd, static_cast<off_t>(_segment_bytes)) == 0);
  }
  ::close(fd);
}

LogFiles::Encoded LogFiles::encode(std::span<const bucket::EngineRecord> batch) const {
  Encoded out;
  Cursor c = _end;
  const uint64_t batch_first = c.next_seq;
  // LogStore::put: one record at the end of the batch, at the cursor.
  auto put = [&](bucket::RecordHeader h, std::span<const char> payload) {
    const size_t size = bucket::record_bytes(payload.size());
    COWORKER_ASSERT(c.offset + size <= c.limit);
    const size_t at = out.bytes.size();
    out.bytes.resize(at + size, '\0');
    if (!payload.empty()) {
      std::memcpy(out.bytes.data() + at + bucket::record_header_bytes, payload.data(),
                  payload.size());
    }
    h.payload_bytes = static_cast<uint32_t>(payload.size());
    h.payload_crc = consensus::crc32c(0, payload);
    h.core = 0;
    h.location = static_cast<uint32_t>(c.offset / bucket::record_align);
    h.seq = c.next_seq++;
    h.batch_first_seq = batch_first;
    bucket::encode_header(h, c.segment, out.bytes.data() + at);
    out.placed.push_back(Placed{at, c.segment, c.offset, h.seq,
                                bucket::record_header_bytes + payload.size(), size, h.bucket,
                                h.kind});
    c.offset += size;
  };
  auto header_of = [](RecordKind kind) {
    bucket::RecordHeader h;
    h.kind = kind;
    h.bucket = bucket::internal_bucket;
    return h;
  };
  auto segment_header = [&] {
    COWORKER_ASSERT(c.offset == 0);
    const auto payload = bucket::encode_segment_header_payload({_segment_bytes, c.segment});
    c.header_seq = c.next_seq;
    put(header_of(RecordKind::segment_header), std::span<const char>(payload));
  };
  // LogStore::make_place: the header a fresh segment opens with, or the
  // seal of a full one and the next one's header.
  auto make_place = [&](size_t record) {
    COWORKER_ASSERT(record + seal_bytes + bucket::record_bytes(bucket::segment_header_payload_bytes) <=
                    _segment_bytes);
    if (c.offset == 0) segment_header();
    if (c.offset + record + seal_bytes <= c.limit) return;
    out.seals.push_back(Sealed{c.segment, c.header_seq, c.next_seq});
    put(header_of(RecordKind::seal), {});
    c.segment++;
    c.offset = 0;
    c.limit = _segment_bytes;
    c.header_seq = 0;
    segment_header();
  };
  if (_boot_pending) {
    make_place(bucket::record_bytes(bucket::boot_payload_bytes));
    const auto payload = bucket::encode_boot_payload(bucket::boot_names(_resume, c.next_seq));
    put(header_of(RecordKind::boot), std::span<const char>(payload));
  }
  for (const bucket::EngineRecord& record : batch) {
    make_place(bucket::record_bytes(record.payload.size()));
    put(bucket::header_of(record.meta), record.payload);
  }
  return out;
}

LogFiles::Cursor LogFiles::advance(const Encoded& encoded, size_t count) const {
  COWORKER_ASSERT(count <= encoded.placed.size());
  Cursor c = _end;
  for (size_t i = 0; i < count; i++) {
    const Placed& p = encoded.placed[i];
    COWORKER_ASSERT(p.seq == c.next_seq);
    c.next_seq++;
    if (p.kind == RecordKind::seal) {
      c.segment = p.segment + 1;
      c.offset = 0;
      c.limit = _segment_bytes;
      c.header_seq = 0;
      continue;
    }
    if (p.kind == RecordKind::segment_header) {
      c.segment = p.segment;
      c.limit = _segment_bytes;
      c.header_seq = p.seq;
    }
    c.offset = p.offset + p.bytes;
  }
  return c;
}

void LogFiles::write(const Encoded& encoded, size_t from, size_t to) {
  // Runs of records in one segment, one pwrite each.
  size_t i = 0;
  const std::vector<Placed>& placed = encoded.placed;
  while (i < placed.size()) {
    size_t j = i + 1;
    while (j < placed.size() && placed[j].segment == placed[i].segment) j++;
    const size_t run_from = std::max(from, placed[i].at);
    const size_t run_to = std::min(to, placed[j - 1].at + placed[j - 1].bytes);
    if (run_from < run_to) {
      write_at(fd(placed[i].segment), placed[i].offset + (run_from - placed[i].at),
               std::string_view(encoded.bytes).substr(run_from, run_to - run_from));
    }
    i = j;
  }
}

void LogFiles::place(const Encoded& encoded, size_t count) {
  COWORKER_ASSERT(count <= encoded.placed.size());
  if (count == 0) return;
  _last_batch_seq = encoded.placed.front().seq;
  for (size_t i = 0; i < count; i++) {
    const Placed& p = encoded.placed[i];
    _records.push_back(Extent{p.segment, p.offset, p.needed, p.bytes, p.seq, p.bucket, p.kind});
  }
}

void LogFiles::append(std::span<const bucket::EngineRecord> batch, Synced synced) {
  if (batch.empty()) return;
  const Encoded encoded = encode(batch);
  write(encoded, 0, encoded.bytes.size());
  place(encoded, encoded.placed.size());
  _end = advance(encoded, encoded.placed.size());
  _boot_pending = false;
  prepare(_end.segment + 1);  // one ahead, as the store's preparer
  _sealed += encoded.seals.size();
  if (synced == Synced::no) return;
  // Once the batch is durable, as LogStore::Config::sealed and
  // Core::make_round hear of it.
  for (const Sealed& sealed : encoded.seals) summarize(sealed);
  for (auto p = encoded.placed.rbegin(); p != encoded.placed.rend(); ++p) {
    if (p->kind != RecordKind::checkpoint_round) continue;
    name_round(*p);
    break;
  }
}

void LogFiles::summarize(const Sealed& sealed) {
  if (sealed.first_seq == 0) return;  // continued past a header recovery lost
  if (!_prng.chance(7, 8)) return;    // lost: the next start reads the segment
  uint32_t rounds = 0;
  for (const Extent& e : _records) {
    rounds += e.segment == sealed.segment && e.kind == RecordKind::checkpoint_round;
  }
  Status written = bucket::write_summary(
      _dir, bucket::SegmentSummary{0, sealed.segment, sealed.first_seq, sealed.seal_seq, rounds, {}});
  COWORKER_ASSERT(written.ok());
}

void LogFiles::name_round(const Placed& marker) {
  if (!_prng.chance(7, 8)) return;  // the naming failed, or a crash came first
  const bucket::RoundPlace place{marker.segment, marker.offset, marker.seq};
  replace_file(bucket::round_path(_dir, 0), bucket::round_text(place));
  _named++;
  _named_seq = marker.seq;
  if (place.segment > _first && _prng.chance(1, 2)) {
    retire(_prng.between(_first + 1, place.segment));
  }
}

void LogFiles::retire(uint64_t first_kept) {
  COWORKER_ASSERT(first_kept > _first && first_kept <= _end.segment);
  replace_file(bucket::retained_path(_dir, 0), bucket::retained_text(first_kept));
  // A crash between the marker and the unlinks leaves the files below it
  // for recovery to name (Resume::retire).
  const bool left_behind = _prng.chance(1, 8);
  for (uint64_t index = _first; index < first_kept; index++) {
    close_segment(index);
    remove_file(bucket::summary_path(_dir, 0, index));
    _damaged_in.erase(index);
    _retired++;
    if (left_behind) continue;
    if (_free.size() < free_max && _prng.chance(1, 2)) {
      COWORKER_ASSERT(::rename(segment_path(index).c_str(),
                               bucket::free_path(_dir, 0, index).c_str()) == 0);
      _free.push_back(index);
    } else {
      remove_file(segment_path(index));
    }
  }
  std::erase_if(_records, [&](const Extent& e) { return e.segment < first_kept; });
  _first = first_kept;
}

size_t LogFiles::tear(std::span<const bucket::EngineRecord> batch, consensus::Prng& prng) {
  if (batch.empty()) return 0;
  const Encoded encoded = encode(batch);
  const size_t size = encoded.bytes.size();
  // What reached the files: [0, cut), but the sector [hole_from, hole_to).
  size_t cut = size;
  size_t hole_from = size;
  size_t hole_to = size;
  if (prng.chance_per_mille(500)) {
    // A prefix, cut anywhere.
    cut = prng.between(1, size - 1);
  } else {
    // Every sector but one, which keeps what it held (zeros, or a recycled
    // segment's old records): the sector of a byte of the batch, in that
    // byte's segment, as bytes of the batch (a segment's records are
    // contiguous in them).
    const size_t byte = prng.below(size);
    const Placed* p = &encoded.placed.front();
    for (const Placed& q : encoded.placed) {
      if (q.at <= byte) p = &q;
    }
    const uint64_t in_segment = p->offset + (byte - p->at);
    const uint64_t sector_at = in_segment / sector_bytes * sector_bytes;
    // Where the segment's offset 0 would be among the batch's bytes.
    const int64_t base = static_cast<int64_t>(p->at) - static_cast<int64_t>(p->offset);
    size_t run_from = p->at;
    size_t run_to = p->at + p->bytes;
    for (const Placed& q : encoded.placed) {
      if (q.segment != p->segment) continue;
      run_from = std::min(run_from, q.at);
      run_to = std::max(run_to, q.at + q.bytes);
    }
    const int64_t sector = static_cast<int64_t>(sector_at) + base;
    hole_from = std::max<int64_t>(static_cast<int64_t>(run_from), sector);
    hole_to = std::min<int64_t>(static_cast<int64_t>(run_to), sector + sector_bytes);
  }
  write(encoded, 0, std::min(cut, hole_from));
  if (hole_to < cut) write(encoded, hole_to, cut);
  // The records intact up to the first that is not, read back (a sector
  // left as it was may hold what the batch would have written there):
  // recovery keeps them, and the log ends after them (recover() checks).
  size_t intact = 0;
  size_t kept = 0;  // of the batch's own records
  for (const Placed& p : encoded.placed) {
    if (read_some(fd(p.segment), p.offset, p.needed) !=
        std::string_view(encoded.bytes).substr(p.at, p.needed)) {
      break;
    }
    intact++;
    kept += !bucket::record_kind_internal(p.kind);
  }
  place(encoded, intact);
  _end = advance(encoded, intact);
  return kept;
}

LogFiles::Replayed LogFiles::replay(const std::string& dir) {
  Replayed out;
  bucket::ReplayOptions options;
  // Every summary taken, as the server's boot takes them (its index takes
  // the events; this log has none).
  options.summaries = [](const bucket::SegmentSummary&) { return true; };
  Result<bucket::CoreReport> report = bucket::replay_core(
      dir, 0,
      [&](const bucket::ReplayedRecord& r) {
        if (r.feed == bucket::Feed::everything) out.image.apply(r.header, r.payload);
      },
      options);
  COWORKER_ASSERT(report.ok());  // the file system works; damage is in the report
  out.report = std::move(*report);
  // The core's scrub of what the start did not read (Core::scrub_segment).
  for (const bucket::SealedSegment& segment : out.report.unread) {
    const std::string bytes = read_file(bucket::segment_path(dir, 0, segment.segment));
    bucket::SegmentScrub scrub(segment);
    while (scrub.state() == bucket::SegmentScrub::State::more) {
      const uint64_t at = std::min<uint64_t>(scrub.offset(), bytes.size());
      (void)scrub.feed(std::span<const char>(bytes.data() + at, bytes.size() - at));
    }
    if (scrub.state() != bucket::SegmentScrub::State::damaged) continue;
    remove_file(bucket::summary_path(dir, 0, segment.segment));
    if (!out.scrubbed) {
      out.scrubbed = fmt::format("segment {} at offset {} ({})", segment.segment,
                                 scrub.found().offset, bucket::damage_name(scrub.found().what));
    }
  }
  return out;
}

// The rest of what recovery tells LogStore::open, against what these files
// know they did (an undamaged log only): the first segment kept, the
// segment files a retention left behind below it, the named round, and
// the seq of the header of the segment the log continues in, when it
// tells one.
std::optional<std::string> LogFiles::resume_differs(const bucket::Resume& resume) const {
  if (resume.first_segment != _first) {
    return fmt::format("recovery keeps segments from {}, retention kept them from {}",
                       resume.first_segment, _first);
  }
  std::vector<uint64_t> behind;
  for (uint64_t index = 1; index < _first; index++) {
    if (std::filesystem::exists(segment_path(index))) behind.push_back(index);
  }
  std::vector<uint64_t> retire = resume.retire;
  std::sort(retire.begin(), retire.end());
  if (retire != behind) {
    return fmt::format("recovery retires segments [{}], a retention left [{}] behind",
                       fmt::join(retire, " "), fmt::join(behind, " "));
  }
  if (resume.whole_round_seq != _named_seq) {
    return fmt::format("recovery finds the round at seq {} whole, the round file names seq {}",
                       resume.whole_round_seq, _named_seq);
  }
  // 0 is "unknown": the index did not see the whole segment (its records
  // before the first whole round), so its seal gets no summary.
  if (resume.offset > 0 && resume.header_seq != 0 && _end.header_seq != 0 &&
      resume.header_seq != _end.header_seq) {
    return fmt::format("recovery reads segment {}'s header as seq {}, it was written as {}",
                       resume.segment, resume.header_seq, _end.header_seq);
  }
  return std::nullopt;
}

LogFiles::Recovered LogFiles::recover() {
  Recovered out;
  Replayed replayed = replay(_dir);
  const bucket::CoreReport& report = replayed.report;
  const bucket::Resume& resume = report.resume;
  const bool found = report.corrupt() || replayed.scrubbed;
  if (found && !damaged()) {
    out.wrong = "recovery reports damage in a log nothing damaged: " +
                (replayed.scrubbed ? "the scrub of " + *replayed.scrubbed : report.describe());
  } else if (!found && damaged()) {
    out.wrong = "recovery finds no damage in a log damaged at rest";
  } else if (resume.segment != _end.segment || resume.offset != _end.offset ||
             resume.next_seq != _end.next_seq) {
    out.wrong = fmt::format(
        "recovery continues the log at segment {} offset {} seq {}, where the last whole batch "
        "ends at segment {} offset {} seq {}",
        resume.segment, resume.offset, resume.next_seq, _end.segment, _end.offset,
        _end.next_seq);
  } else if (auto why = found ? std::nullopt : resume_differs(resume)) {
    out.wrong = *why;
  }
  out.torn = report.torn.has_value();
  out.image = std::move(replayed.image);
  out.report = std::move(replayed.report);
  this->resume(out.report.resume);
  return out;
}

void LogFiles::resume(const bucket::Resume& resume) {
  auto drop = [&](uint64_t index) {
    close_segment(index);
    remove_file(segment_path(index));
    remove_file(bucket::summary_path(_dir, 0, index));
  };
  // What LogStore::open asserts of recovery's Resume.
  COWORKER_ASSERT(resume.first_segment >= 1 && resume.first_segment <= resume.segment);
  for (uint64_t index : resume.retire) {
    COWORKER_ASSERT(index < resume.first_segment);
    drop(index);
  }
  for (uint64_t index : resume.discard) {
    COWORKER_ASSERT(index > resume.segment);
    drop(index);
  }
  remove_file(bucket::summary_path(_dir, 0, resume.segment));
  if (resume.offset == 0) {
    drop(resume.segment);
    prepare(resume.segment);
  } else if (resume.erase_end > resume.offset) {
    write_at(fd(resume.segment), resume.offset,
             std::string(resume.erase_end - resume.offset, '\0'));
  }
  _end = Cursor{resume.segment, resume.offset,
                resume.offset > 0 ? resume.segment_bytes : _segment_bytes, resume.next_seq,
                resume.offset > 0 ? resume.header_seq : 0};
  _first = resume.first_segment;
  _resume = resume;
  std::erase_if(_records, [&](const Extent& e) {
    return e.seq >= resume.next_seq || e.segment < resume.first_segment;
  });
  std::erase_if(_damaged_in, [&](uint64_t index) { return index < resume.first_segment; });
  _boot_pending = true;  // the next life
  prepare(_end.segment + 1);
}

bool LogFiles::damaged() const { return !_damaged_in.empty(); }

size_t LogFiles::records_below_last_batch() const {
  size_t below = 0;
  while (below < _records.size() && _records[below].seq < _last_batch_seq) below++;
  return below;
}

namespace {

// Damage at rest: one bit of the byte at `at` flipped in place.
void flip_bit(int fd, uint64_t at, int bit) {
  std::string byte = read_at(fd, at, 1);
  byte[0] = static_cast<char>(byte[0] ^ (1 << bit));
  write_at(fd, at, byte);
}

int open_segment(const std::string& dir, uint64_t index) {
  const int fd = ::open(bucket::segment_path(dir, 0, index).c_str(), O_RDWR | O_CLOEXEC);
  COWORKER_ASSERT(fd >= 0);
  return fd;
}

}  // namespace

LogFiles::Fault LogFiles::damage_file(const std::string& dir, consensus::Prng& prng,
                                      size_t recent) const {
  const size_t below = records_below_last_batch();
  COWORKER_ASSERT(below > 0);
  const size_t from = recent == 0 ? 0 : below - std::min(below, recent);
  const Extent& victim = _records[from + prng.below(below - from)];
  const int fd = open_segment(dir, victim.segment);
  Fault fault{{}, {victim.segment}};
  if (prng.chance(1, 4)) {
    // A misdirected write: another record's bytes, whole, where this one was.
    const Extent* source = &_records[prng.below(_records.size())];
    if (source == &victim) source = &_records[(source - _records.data() + 1) % _records.size()];
    COWORKER_ASSERT(source != &victim);
    // Not into the last batch (step 5), nor past the segment's end.
    uint64_t room = _segment_bytes - victim.at;
    if (below < _records.size() && _records[below].segment == victim.segment) {
      room = _records[below].at - victim.at;
    }
    const size_t count = std::min<uint64_t>(source->bytes, room);
    const int source_fd = source->segment == victim.segment ? fd : open_segment(dir, source->segment);
    // (The padding after a torn batch's last intact record may be missing.)
    const std::string bytes = read_some(source_fd, source->at, count);
    if (source_fd != fd) ::close(source_fd);
    write_at(fd, victim.at, bytes);
    fault.what = fmt::format("record seq {} (segment {} at {}) overwritten by {} bytes of seq {}",
                             victim.seq, victim.segment, victim.at, bytes.size(), source->seq);
  } else {
    const uint64_t at = victim.at + prng.below(victim.needed);
    const int bit = static_cast<int>(prng.below(8));
    flip_bit(fd, at, bit);
    fault.what = fmt::format("record seq {} (segment {} at {}): bit {} of byte {} of {} flipped",
                             victim.seq, victim.segment, victim.at, bit, at - victim.at,
                             victim.needed);
  }
  ::close(fd);
  return fault;
}

std::optional<LogFiles::Fault> LogFiles::damage_bucket_payload(const std::string& dir,
                                                               consensus::Prng& prng,
                                                               size_t recent,
                                                               const Aimed& aim) const {
  const size_t below = records_below_last_batch();
  const size_t from = below - std::min(below, recent);
  std::vector<const Extent*> candidates;
  for (size_t i = from; i < below; i++) {
    const Extent& e = _records[i];
    if (e.bucket < bucket::participant_bucket && e.needed > bucket::record_header_bytes) {
      candidates.push_back(&e);
    }
  }
  // Aimed: the newest record of each preferred bucket, which no later
  // checkpoint of the bucket covers (an older one mostly is: the repair
  // would keep the copy).
  std::vector<const Extent*> preferred;
  std::set<uint32_t> seen;
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    if (aim.buckets.count((*it)->bucket) != 0 && seen.insert((*it)->bucket).second) {
      preferred.push_back(*it);
    }
  }
  if (!preferred.empty() || aim.only) candidates = std::move(preferred);
  if (candidates.empty()) return std::nullopt;
  const Extent& victim = *candidates[prng.below(candidates.size())];
  const size_t payload = victim.needed - bucket::record_header_bytes;
  const uint64_t at = victim.at + bucket::record_header_bytes + prng.below(payload);
  const int bit = static_cast<int>(prng.below(8));
  const int fd = open_segment(dir, victim.segment);
  flip_bit(fd, at, bit);
  ::close(fd);
  return Fault{fmt::format("record seq {} (segment {} at {}, bucket {}): bit {} of payload byte "
                           "{} of {} flipped",
                           victim.seq, victim.segment, victim.at, victim.bucket, bit,
                           at - victim.at - bucket::record_header_bytes, payload),
               {victim.segment}};
}

// A header bit of each of `victims` (bytes 8..63, which the header
// checksum covers: record.h): their seqs, in order, and their segments.
LogFiles::Fault LogFiles::flip_headers(const std::string& dir, consensus::Prng& prng,
                                       const std::vector<const Extent*>& victims) const {
  std::vector<uint64_t> seqs;
  Fault fault;
  for (const Extent* e : victims) {
    const uint64_t at = e->at + 8 + prng.below(bucket::record_header_bytes - 8);
    const int fd = open_segment(dir, e->segment);
    flip_bit(fd, at, static_cast<int>(prng.below(8)));
    ::close(fd);
    fault.segments.insert(e->segment);
    seqs.push_back(e->seq);
  }
  fault.what = fmt::format("{}", fmt::join(seqs, " "));
  return fault;
}

std::optional<LogFiles::Fault> LogFiles::damage_bucket_headers(const std::string& dir,
                                                               consensus::Prng& prng,
                                                               const Aimed& aim) const {
  const size_t below = records_below_last_batch();
  std::vector<const Extent*> victims;
  for (size_t i = 0; i < below; i++) {
    if (aim.buckets.count(_records[i].bucket) != 0) victims.push_back(&_records[i]);
  }
  if (victims.empty()) return std::nullopt;
  Fault fault = flip_headers(dir, prng, victims);
  fault.what = fmt::format("a header bit flipped in every record of buckets {} (seqs {})",
                           fmt::join(aim.buckets, " "), fault.what);
  return fault;
}

// Step 6's aimed case: a header bit of every round marker below the last
// batch, the named one among them, in a retained log (the front below them
// gone): no round is whole.
std::optional<LogFiles::Fault> LogFiles::damage_round_markers(const std::string& dir,
                                                              consensus::Prng& prng) const {
  if (_first <= 1 || _named_seq == 0) return std::nullopt;
  const size_t below = records_below_last_batch();
  std::vector<const Extent*> markers;
  bool named = false;
  for (size_t i = 0; i < below; i++) {
    const Extent& e = _records[i];
    if (e.kind != RecordKind::checkpoint_round) continue;
    markers.push_back(&e);
    named = named || e.seq == _named_seq;
  }
  if (!named) return std::nullopt;
  Fault fault = flip_headers(dir, prng, markers);
  fault.what = fmt::format("a header bit flipped in every round marker (seqs {}; the named "
                           "one {}; the log's first segment {})",
                           fault.what, _named_seq, _first);
  return fault;
}

std::optional<LogFiles::Damaged> LogFiles::damage_copy(consensus::Prng& prng) {
  if (records_below_last_batch() == 0) return std::nullopt;
  const std::string copy_dir = _dir + "/damaged";
  std::error_code ignored;
  std::filesystem::remove_all(copy_dir, ignored);
  const std::string core = bucket::core_dir(copy_dir, 0);
  Status made = bucket::make_dirs(core);
  COWORKER_ASSERT(made.ok());
  for (const auto& file : std::filesystem::directory_iterator(bucket::core_dir(_dir, 0))) {
    if (!file.is_regular_file()) continue;
    std::filesystem::copy_file(file.path(), core + "/" + file.path().filename().string());
  }
  Damaged out;
  out.fault = damage_file(copy_dir, prng, 0).what;
  Replayed replayed = replay(copy_dir);
  out.report = std::move(replayed.report);
  out.image = std::move(replayed.image);
  out.scrubbed = std::move(replayed.scrubbed);
  return out;
}

std::optional<std::string> LogFiles::damage(consensus::Prng& prng, DamageTarget target,
                                            const Aimed& aim) {
  if (records_below_last_batch() == 0) return std::nullopt;
  std::optional<Fault> fault;
  if (target == DamageTarget::bucket_payload) {
    fault = damage_bucket_payload(_dir, prng, 24, aim);
  } else if (target == DamageTarget::bucket_headers) {
    fault = damage_bucket_headers(_dir, prng, aim);
  } else {
    // In a retained log, half the time every round marker (step 6).
    if (prng.chance(1, 2)) fault = damage_round_markers(_dir, prng);
    // Half the time among the newest records, which no checkpoint round
    // covers yet, so the repair resets buckets (older damage is mostly
    // covered: the repair then keeps every bucket, resets only the counter).
    const size_t recent = prng.chance(1, 2) ? 24 : 0;
    if (!fault) fault = damage_file(_dir, prng, recent);
  }
  if (!fault) return std::nullopt;
  _damaged_in.insert(fault->segments.begin(), fault->segments.end());
  return std::move(fault->what);
}

}  // namespace coworker::sim
