// Helpers shared by the parts of coworker-bench-log-store (log_store_bench.cc,
// log_store_reads.cc): timing, medians, scratch files and the page cache.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace coworker::bench {

using Clock = std::chrono::steady_clock;

inline double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

[[noreturn]] inline void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

// Every regular file under `dir`, sorted.
inline std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Drops the files from the page cache (written back first: dirty pages stay).
inline void drop_cache(const std::vector<std::string>& files) {
  for (const std::string& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) die("open");
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// Question 4 (log_store_reads.cc): reads by position vs raw preads.
void question_reads(const std::string& dir, int runs, uint64_t mib);
// Question 5 (log_store_checkpoint.cc): recovery from the newest round vs the whole log.
void question_checkpoint(const std::string& dir, int runs, uint64_t mib);

}  // namespace coworker::bench
