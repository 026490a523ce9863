#include "tests/bucket/log_test_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "consensus/assert.h"

namespace coworker::bucket::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/coworker-log-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  COWORKER_ASSERT(::mkdtemp(buffer.data()) != nullptr);
  _path = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(_path, ignored);
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string make_payload(uint64_t key, size_t length) {
  COWORKER_ASSERT(length >= 12);
  std::string out(length, '\0');
  std::memcpy(out.data(), &key, 8);
  const uint32_t n = static_cast<uint32_t>(length);
  std::memcpy(out.data() + 8, &n, 4);
  uint64_t state = key;
  for (size_t at = 12; at < length; at += 8) {
    const uint64_t v = splitmix64(state);
    std::memcpy(out.data() + at, &v, std::min<size_t>(8, length - at));
  }
  return out;
}

uint64_t payload_key(const std::string& payload) {
  COWORKER_ASSERT(payload.size() >= 8);
  uint64_t key;
  std::memcpy(&key, payload.data(), 8);
  return key;
}

bool payload_self_consistent(const std::string& payload) {
  if (payload.size() < 12) return false;
  uint32_t n;
  std::memcpy(&n, payload.data() + 8, 4);
  if (n != payload.size()) return false;
  return make_payload(payload_key(payload), payload.size()) == payload;
}

ReplayResult replay_all(const std::string& log_dir) {
  ReplayResult out;
  Result<Recovery> recovery = replay_log(log_dir, [&](const ReplayedRecord& r) {
    out.records.push_back(Replayed{r.core, r.header.seq, r.header.batch_first_seq, r.segment, r.offset, r.header.kind,
                                   r.header.bucket, r.header.position,
                                   std::string(r.payload.data(), r.payload.size())});
  });
  COWORKER_ASSERT(recovery.ok());
  out.recovery = std::move(*recovery);
  return out;
}

namespace {
int open_rw(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  COWORKER_ASSERT(fd >= 0);
  return fd;
}
void write_at(int fd, const std::string& bytes, uint64_t offset) {
  COWORKER_ASSERT(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
                  static_cast<ssize_t>(bytes.size()));
}
}  // namespace

std::string read_range(const std::string& path, uint64_t offset, uint64_t bytes) {
  const int fd = open_rw(path);
  std::string out(bytes, '\0');
  COWORKER_ASSERT(::pread(fd, out.data(), bytes, static_cast<off_t>(offset)) ==
                  static_cast<ssize_t>(bytes));
  ::close(fd);
  return out;
}

void flip_bit(const std::string& path, uint64_t offset, int bit) {
  std::string byte = read_range(path, offset, 1);
  byte[0] = static_cast<char>(byte[0] ^ (1 << bit));
  const int fd = open_rw(path);
  write_at(fd, byte, offset);
  ::close(fd);
}

void zero_range(const std::string& path, uint64_t offset, uint64_t bytes) {
  const int fd = open_rw(path);
  write_at(fd, std::string(bytes, '\0'), offset);
  ::close(fd);
}

void copy_range(const std::string& path, uint64_t from, uint64_t to, uint64_t bytes) {
  copy_between(path, from, path, to, bytes);
}

void copy_between(const std::string& from_path, uint64_t from, const std::string& to_path,
                  uint64_t to, uint64_t bytes) {
  const std::string data = read_range(from_path, from, bytes);
  const int fd = open_rw(to_path);
  write_at(fd, data, to);
  ::close(fd);
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

bool write_file(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool written = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  return ::close(fd) == 0 && written;
}

}  // namespace coworker::bucket::testing
