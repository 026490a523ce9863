#include "tests/sim/log_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/core.h>

#include "bucket/recovery.h"
#include "bucket/segment.h"
#include "consensus/assert.h"
#include "consensus/crc32c.h"

namespace coworker::sim {

namespace {

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

// Never filled in a run: the segment never seals (bucket/log_store.cc would
// seal it and open the next).
constexpr uint64_t segment_bytes = uint64_t{1} << 30;
constexpr uint64_t segment_index = 1;
constexpr uint64_t sector_bytes = 512;

std::string temp_root() {
  if (::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// One record as LogStore::put encodes it, at `offset` of the segment.
LogFiles::Placed put(std::string& out, uint64_t offset, bucket::RecordHeader header,
                     std::span<const char> payload) {
  const size_t size = bucket::record_bytes(payload.size());
  const size_t at = out.size();
  out.resize(at + size, '\0');
  if (!payload.empty()) {
    std::memcpy(out.data() + at + bucket::record_header_bytes, payload.data(), payload.size());
  }
  header.payload_bytes = static_cast<uint32_t>(payload.size());
  header.payload_crc = consensus::crc32c(0, payload);
  header.core = 0;
  header.location = static_cast<uint32_t>(offset / bucket::record_align);
  bucket::encode_header(header, segment_index, out.data() + at);
  return LogFiles::Placed{at, bucket::record_header_bytes + payload.size(), size, header.bucket};
}

}  // namespace

LogFiles::LogFiles() {
  std::string pattern = temp_root() + "/coworker-sim.XXXXXX";
  COWORKER_ASSERT(::mkdtemp(pattern.data()) != nullptr);
  _dir = pattern;
  Status made = bucket::make_dirs(bucket::core_dir(_dir, 0));
  COWORKER_ASSERT(made.ok());
  _segment = bucket::segment_path(_dir, 0, segment_index);
  _fd = ::open(_segment.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  COWORKER_ASSERT(_fd >= 0);
}

LogFiles::~LogFiles() {
  if (_fd >= 0) ::close(_fd);
  std::error_code ignored;
  std::filesystem::remove_all(_dir, ignored);
}

std::string LogFiles::encode(std::span<const bucket::EngineRecord> batch,
                             std::vector<Placed>* placed) const {
  std::string out;
  uint64_t seq = _next_seq;
  const uint64_t batch_first = seq;
  auto header_for = [&](const bucket::RecordMeta& meta) {
    bucket::RecordHeader h = bucket::header_of(meta);
    h.seq = seq++;
    h.batch_first_seq = batch_first;
    return h;
  };
  auto header = [&](bucket::RecordKind kind, uint32_t bucket) {
    return header_for(bucket::RecordMeta{kind, bucket, 0, {}});
  };
  if (_offset == 0) {
    // The segment's header opens the first batch, as put_internal does.
    const auto payload = bucket::encode_segment_header_payload({segment_bytes, segment_index});
    placed->push_back(put(out, 0,
                          header(bucket::RecordKind::segment_header, bucket::internal_bucket),
                          std::span<const char>(payload)));
  }
  if (_boot_pending) {
    // Names no whole round: these logs have none (log_files.h).
    const auto payload = bucket::encode_boot_payload(0);
    placed->push_back(put(out, _offset + out.size(),
                          header(bucket::RecordKind::boot, bucket::internal_bucket),
                          std::span<const char>(payload)));
  }
  for (const bucket::EngineRecord& record : batch) {
    placed->push_back(put(out, _offset + out.size(), header_for(record.meta), record.payload));
  }
  COWORKER_ASSERT(_offset + out.size() + bucket::record_bytes(0) <= segment_bytes);
  return out;
}

void LogFiles::place(uint64_t batch_at, const std::vector<Placed>& placed, size_t count) {
  COWORKER_ASSERT(count <= placed.size());
  if (count == 0) return;
  _last_batch_at = batch_at;
  for (size_t i = 0; i < count; i++) {
    _records.push_back(Extent{batch_at + placed[i].at, placed[i].needed, placed[i].bytes,
                              _next_seq + i, placed[i].bucket});
  }
}

void LogFiles::append(std::span<const bucket::EngineRecord> batch) {
  if (batch.empty()) return;
  std::vector<Placed> placed;
  const std::string bytes = encode(batch, &placed);
  write_at(_fd, _offset, bytes);
  place(_offset, placed, placed.size());
  _offset += bytes.size();
  _next_seq += placed.size();
  _boot_pending = false;
}

size_t LogFiles::tear(std::span<const bucket::EngineRecord> batch, consensus::Prng& prng) {
  if (batch.empty()) return 0;
  std::vector<Placed> placed;
  const std::string whole = encode(batch, &placed);
  std::string bytes = whole;
  if (prng.chance_per_mille(500)) {
    // A prefix, cut anywhere.
    bytes.resize(prng.between(1, bytes.size() - 1));
  } else {
    // Every sector but one: the one left unwritten reads as zeros.
    const uint64_t first = _offset / sector_bytes;
    const uint64_t last = (_offset + bytes.size() - 1) / sector_bytes;
    const uint64_t sector = prng.between(first, last);
    const uint64_t from = std::max(_offset, sector * sector_bytes);
    const uint64_t to = std::min(_offset + bytes.size(), (sector + 1) * sector_bytes);
    std::memset(bytes.data() + (from - _offset), 0, to - from);
  }
  write_at(_fd, _offset, bytes);
  // The records intact up to the first that is not: recovery keeps them,
  // and the log ends after them (recover() checks that it finds so).
  size_t intact = 0;
  size_t end = 0;
  for (const Placed& p : placed) {
    if (p.at + p.needed > bytes.size() ||
        std::memcmp(bytes.data() + p.at, whole.data() + p.at, p.needed) != 0) {
      break;
    }
    intact++;
    end = p.at + p.bytes;
  }
  // The segment header and the boot record, if it opened with them.
  const size_t opened = placed.size() - batch.size();
  place(_offset, placed, intact);
  _offset += end;
  _next_seq += intact;
  return intact > opened ? intact - opened : 0;
}

LogFiles::Recovered LogFiles::recover() {
  Recovered out;
  Result<bucket::CoreReport> report = bucket::replay_core(
      _dir, 0, [&](const bucket::ReplayedRecord& r) { out.image.apply(r.header, r.payload); });
  COWORKER_ASSERT(report.ok());  // the file system works; damage is in the report
  const bucket::Resume& resume = report->resume;
  if (report->corrupt() && !_damaged) {
    out.wrong = "recovery reports damage in a log nothing damaged: " + report->describe();
  } else if (!report->corrupt() && _damaged) {
    out.wrong = "recovery finds no damage in a log damaged at rest";
  } else if (resume.segment != segment_index || resume.offset != _offset ||
             resume.next_seq != _next_seq) {
    out.wrong = fmt::format(
        "recovery continues the log at segment {} offset {} seq {}, where the last whole batch "
        "ends at segment {} offset {} seq {}",
        resume.segment, resume.offset, resume.next_seq, segment_index, _offset, _next_seq);
  }
  out.torn = report->torn.has_value();
  COWORKER_ASSERT(_records.empty() || _records.back().at + _records.back().bytes <= _offset);
  out.report = std::move(*report);
  _boot_pending = true;  // the next life
  // What LogStore::open does to a torn tail: the log ends where it says.
  COWORKER_ASSERT(::ftruncate(_fd, static_cast<off_t>(_offset)) == 0);
  return out;
}

size_t LogFiles::records_below_last_batch() const {
  size_t below = 0;
  while (below < _records.size() && _records[below].at < _last_batch_at) below++;
  return below;
}

// One record below the last batch of the segment open as `fd` damaged:
// returns what was done.
namespace {

// Damage at rest: one bit of the byte at `at` flipped in place.
void flip_bit(int fd, uint64_t at, int bit) {
  std::string byte = read_at(fd, at, 1);
  byte[0] = static_cast<char>(byte[0] ^ (1 << bit));
  write_at(fd, at, byte);
}

}  // namespace

std::string LogFiles::damage_file(int fd, consensus::Prng& prng, size_t recent) const {
  const size_t below = records_below_last_batch();
  COWORKER_ASSERT(below > 0);
  const size_t from = recent == 0 ? 0 : below - std::min(below, recent);
  const Extent& victim = _records[from + prng.below(below - from)];
  if (prng.chance(1, 4)) {
    // A misdirected write: another record's bytes, whole, where this one was.
    const Extent* source = &_records[prng.below(_records.size())];
    if (source == &victim) source = &_records[(source - _records.data() + 1) % _records.size()];
    COWORKER_ASSERT(source != &victim);
    // Not into the last batch (step 4): the write is cut to end before it.
    const size_t count = std::min<uint64_t>(source->bytes, _last_batch_at - victim.at);
    write_at(fd, victim.at, read_at(fd, source->at, count));
    return fmt::format("record seq {} (at {}) overwritten by {} bytes of seq {}", victim.seq,
                       victim.at, count, source->seq);
  }
  const uint64_t at = victim.at + prng.below(victim.needed);
  const int bit = static_cast<int>(prng.below(8));
  flip_bit(fd, at, bit);
  return fmt::format("record seq {} (at {}): bit {} of byte {} of {} flipped", victim.seq,
                     victim.at, bit, at - victim.at, victim.needed);
}

std::optional<std::string> LogFiles::damage_bucket_payload(
    int fd, consensus::Prng& prng, size_t recent, const Aimed& aim) const {
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
  flip_bit(fd, at, bit);
  return fmt::format("record seq {} (at {}, bucket {}): bit {} of payload byte {} of {} flipped",
                     victim.seq, victim.at, victim.bucket, bit,
                     at - victim.at - bucket::record_header_bytes, payload);
}

std::optional<LogFiles::Damaged> LogFiles::damage_copy(consensus::Prng& prng) {
  if (records_below_last_batch() == 0) return std::nullopt;
  const std::string copy_dir = _dir + "/damaged";
  Status made = bucket::make_dirs(bucket::core_dir(copy_dir, 0));
  COWORKER_ASSERT(made.ok());
  const std::string copy = bucket::segment_path(copy_dir, 0, segment_index);
  std::filesystem::copy_file(_segment, copy, std::filesystem::copy_options::overwrite_existing);
  const int fd = ::open(copy.c_str(), O_RDWR | O_CLOEXEC);
  COWORKER_ASSERT(fd >= 0);
  Damaged out;
  out.fault = damage_file(fd, prng, 0);
  ::close(fd);
  Result<bucket::CoreReport> report = bucket::replay_core(
      copy_dir, 0, [&](const bucket::ReplayedRecord& r) { out.image.apply(r.header, r.payload); });
  COWORKER_ASSERT(report.ok());  // the file system works; damage is in the report
  out.report = std::move(*report);
  return out;
}

std::optional<std::string> LogFiles::damage(consensus::Prng& prng, DamageTarget target,
                                            const Aimed& aim) {
  if (records_below_last_batch() == 0) return std::nullopt;
  if (target == DamageTarget::bucket_payload) {
    std::optional<std::string> fault = damage_bucket_payload(_fd, prng, 24, aim);
    if (fault) _damaged = true;
    return fault;
  }
  // Half the time among the newest records, which no checkpoint round
  // covers yet, so the repair resets buckets (older damage is mostly
  // covered: the repair then keeps every bucket, resets only the counter).
  const size_t recent = prng.chance(1, 2) ? 24 : 0;
  std::string fault = damage_file(_fd, prng, recent);
  _damaged = true;
  return fault;
}

}  // namespace coworker::sim
