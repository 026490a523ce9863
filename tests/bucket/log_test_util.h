// Helpers shared by the log-store tests and the crash child: temporary
// directories, deterministic payloads, replay into memory, and the fault
// injections (bit flips, zeroed sectors, copies, deleted segments).
// Test-only code; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bucket/recovery.h"

namespace coworker::bucket::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return _path; }

 private:
  std::string _path;
};

uint64_t splitmix64(uint64_t& state);

// A payload whose bytes follow from `key`; the first 8 bytes are the key and
// the next 4 the length, so a payload can be checked without knowing its key.
std::string make_payload(uint64_t key, size_t length);
bool payload_self_consistent(const std::string& payload);
uint64_t payload_key(const std::string& payload);

struct Replayed {
  unsigned core = 0;
  uint64_t seq = 0;
  uint64_t batch_first_seq = 0;
  uint64_t segment = 0;
  uint64_t offset = 0;
  RecordKind kind = RecordKind::entry;
  uint32_t bucket = 0;
  uint64_t position = 0;
  std::string payload;
};

struct ReplayResult {
  Recovery recovery;
  std::vector<Replayed> records;
};
// Replays the whole log into memory; asserts the file system works.
ReplayResult replay_all(const std::string& log_dir);

// Fault injection on segment files (plain file I/O).
void flip_bit(const std::string& path, uint64_t offset, int bit);
void zero_range(const std::string& path, uint64_t offset, uint64_t bytes);
void copy_range(const std::string& path, uint64_t from, uint64_t to, uint64_t bytes);
void copy_between(const std::string& from_path, uint64_t from, const std::string& to_path,
                  uint64_t to, uint64_t bytes);
std::string read_range(const std::string& path, uint64_t offset, uint64_t bytes);
bool file_exists(const std::string& path);
// Replaces the file's contents (creating it); false when that fails.
bool write_file(const std::string& path, const std::string& bytes);

}  // namespace coworker::bucket::testing
