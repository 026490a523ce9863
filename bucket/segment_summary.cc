#include "bucket/segment_summary.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "bucket/segment.h"
#include "consensus/assert.h"
#include "consensus/crc32c.h"

namespace coworker::bucket {

namespace {

// "CWSUMMRY", then version 1; all integers little-endian.
constexpr char summary_magic[8] = {'C', 'W', 'S', 'U', 'M', 'M', 'R', 'Y'};
constexpr uint32_t summary_version = 1;
// magic, version, core, segment, first_seq, seal_seq, rounds, events length.
constexpr size_t head_bytes = 8 + 4 + 4 + 8 + 8 + 8 + 4 + 8;
constexpr size_t crc_bytes = 4;
// Far above any real summary (a 4 GiB segment of minimal records).
constexpr uint64_t events_bytes_max = uint64_t{1} << 32;

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

template <typename T>
T get(const char* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

}  // namespace

std::string summary_path(const std::string& log_dir, unsigned core, uint64_t segment) {
  char name[40];
  std::snprintf(name, sizeof(name), "/%016" PRIx64 ".summary", segment);
  return core_dir(log_dir, core) + name;
}

std::string encode_summary(const SegmentSummary& summary) {
  COWORKER_ASSERT(summary.segment >= 1);
  COWORKER_ASSERT(summary.first_seq >= 1);
  COWORKER_ASSERT(summary.seal_seq > summary.first_seq);
  std::string out;
  out.reserve(head_bytes + summary.events.size() + crc_bytes);
  out.append(summary_magic, sizeof(summary_magic));
  put<uint32_t>(out, summary_version);
  put<uint32_t>(out, summary.core);
  put<uint64_t>(out, summary.segment);
  put<uint64_t>(out, summary.first_seq);
  put<uint64_t>(out, summary.seal_seq);
  put<uint32_t>(out, summary.rounds);
  put<uint64_t>(out, summary.events.size());
  out += summary.events;
  put<uint32_t>(out, consensus::crc32c(0, out.data(), out.size()));
  return out;
}

std::optional<SegmentSummary> decode_summary(std::span<const char> bytes, unsigned core,
                                             uint64_t segment) {
  if (bytes.size() < head_bytes + crc_bytes) return std::nullopt;
  const char* p = bytes.data();
  if (std::memcmp(p, summary_magic, sizeof(summary_magic)) != 0) return std::nullopt;
  if (get<uint32_t>(p + 8) != summary_version) return std::nullopt;
  SegmentSummary s;
  s.core = get<uint32_t>(p + 12);
  s.segment = get<uint64_t>(p + 16);
  s.first_seq = get<uint64_t>(p + 24);
  s.seal_seq = get<uint64_t>(p + 32);
  s.rounds = get<uint32_t>(p + 40);
  const uint64_t events = get<uint64_t>(p + 44);
  if (events > events_bytes_max || bytes.size() != head_bytes + events + crc_bytes) {
    return std::nullopt;
  }
  const size_t covered = bytes.size() - crc_bytes;
  if (get<uint32_t>(p + covered) != consensus::crc32c(0, p, covered)) return std::nullopt;
  if (s.core != core || s.segment != segment) return std::nullopt;
  if (s.first_seq == 0 || s.seal_seq <= s.first_seq) return std::nullopt;
  s.events.assign(p + head_bytes, static_cast<size_t>(events));
  return s;
}

Result<std::optional<SegmentSummary>> read_summary(const std::string& log_dir, unsigned core,
                                                   uint64_t segment) {
  const int fd = ::open(summary_path(log_dir, core, segment).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<SegmentSummary>();
    return Errno{errno};
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Errno{e};
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return Errno{e};
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);
  return decode_summary(bytes, core, segment);
}

namespace {
// Writes `bytes` as the whole file at `path` (not fsync'ed: segment_summary.h).
Status write_file(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno{errno};
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      ::close(fd);
      return Errno{e};
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return {};
}
}  // namespace

Status write_summary(const std::string& log_dir, const SegmentSummary& summary) {
  return write_file(summary_path(log_dir, summary.core, summary.segment), encode_summary(summary));
}

std::string round_path(const std::string& log_dir, unsigned core) {
  return core_dir(log_dir, core) + "/round";
}

namespace {
uint32_t round_crc(const RoundPlace& place) {
  uint32_t crc = consensus::crc32c_u64(0, place.segment);
  crc = consensus::crc32c_u64(crc, place.offset);
  return consensus::crc32c_u64(crc, place.seq);
}
}  // namespace

std::string round_text(const RoundPlace& place) {
  char text[80];
  std::snprintf(text, sizeof(text), "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %08" PRIx32 "\n",
                place.segment, place.offset, place.seq, round_crc(place));
  return text;
}

Status write_round(const std::string& log_dir, unsigned core, const RoundPlace& place) {
  // Aside, then renamed: a crash leaves the old name or the new one.
  const std::string path = round_path(log_dir, core);
  Status written = write_file(path + ".tmp", round_text(place));
  if (!written) return written;
  if (::rename((path + ".tmp").c_str(), path.c_str()) != 0) return Errno{errno};
  return {};
}

Result<std::optional<RoundPlace>> read_round(const std::string& log_dir, unsigned core) {
  const int fd = ::open(round_path(log_dir, core).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<RoundPlace>();
    return Errno{errno};
  }
  char text[128];
  const ssize_t n = ::pread(fd, text, sizeof(text) - 1, 0);
  const int e = errno;
  ::close(fd);
  if (n < 0) return Errno{e};
  text[n] = '\0';
  RoundPlace place;
  uint32_t crc = 0;
  const bool parsed = n == 60 && std::sscanf(text, "%16" SCNx64 " %16" SCNx64 " %16" SCNx64
                                                   " %8" SCNx32,
                                             &place.segment, &place.offset, &place.seq,
                                             &crc) == 4;
  if (!parsed || crc != round_crc(place) || round_text(place) != std::string(text, n)) {
    return std::optional<RoundPlace>();
  }
  return std::optional<RoundPlace>(place);
}

}  // namespace coworker::bucket
