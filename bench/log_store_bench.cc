// coworker-bench-log-store: does the per-core log store reach the bars of issue 7?
//
//   build/bin/coworker-bench-log-store [--dir DIR] [--runs N] [--seconds S]
//                             [--recovery-mib M] [--prepare zero_fill|fallocate|none|all]
//                             [--only small|large|recovery|reads|checkpoint]
//                             [--appenders N (large)] [--read-mib M] [--checkpoint-mib M]
//
// Each question is measured side by side with its raw reference in the same
// run, alternating (reference, store, reference, store, ...), and reported as
// the median of --runs runs and as a ratio:
//   1. 64 concurrent appenders of 100-byte records vs one write + fdatasync
//      per record (the ceiling without group commit): target >= 20x.
//   2. 1 MiB records vs sequential write + fdatasync of 1 MiB: target >= 0.8x.
//   3. recovery of --recovery-mib (1 GiB) with a cold page cache vs reading
//      and checksumming the same files: target <= 2x the time.
//   4. reads of one bucket by position through the index and EntryReader
//      (1 KiB entries, --read-mib of them) vs raw preads of the same
//      register records: sequential and cache-hot, random and cache-cold;
//      target >= 0.8x each (log_store_reads.cc).
//   5. recovery from the newest checkpoint round, the segments below it
//      taken from their summaries, vs replaying the whole log, --checkpoint-mib
//      (1 GiB), cache-cold: target <= 0.1x the time (log_store_checkpoint.cc).
// The raw loops write sequentially through a file prepared like the store's
// segments (same --prepare; preparation untimed, page cache dropped); the
// other preparations and O_DIRECT are printed alongside, one run each, to
// back the choices in docs/ARCHITECTURE.md.
// The machine is shared and noisy: read ratios, not absolute numbers.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "bench/log_store_bench.h"
#include "consensus/crc32c.h"
#include "bucket/log_store.h"
#include "reactor/block_on.h"
#include "reactor/sync.h"

using namespace coworker;
using namespace coworker::bucket;
using namespace coworker::consensus;
using coworker::reactor::Task;
using namespace coworker::bench;

namespace {

struct Options {
  std::string dir = "/tmp";
  int runs = 3;
  double seconds = 2.0;
  uint64_t recovery_mib = 1024;
  std::vector<Prepare> prepares{Prepare::fallocate};
  std::string only;  // small, large, recovery, reads, checkpoint; empty: all
  uint64_t read_mib = 256;
  uint64_t checkpoint_mib = 1024;
  std::vector<int> large_appenders{1, 4};
};

struct Scratch {
  std::string path;
  explicit Scratch(const std::string& base) {
    path = base + "/log_store_bench." + std::to_string(::getpid());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~Scratch() { std::filesystem::remove_all(path); }
};

// Raw reference: write `record` bytes + fdatasync, in a loop, for `seconds`,
// sequentially through a file prepared like the store's segments (`prepare`;
// zero-filled files are dropped from the page cache first, like a segment
// prepared long ago). `direct`: O_DIRECT, writes rounded up to 4 KiB.
// Returns operations per second.
double raw_loop(const std::string& dir, size_t record, double seconds, Prepare prepare,
                bool direct = false) {
  const std::string path = dir + "/raw";
  ::unlink(path.c_str());
  const size_t block = 4096;
  const size_t write_bytes = direct ? (record + block - 1) / block * block : record;
  // Large enough to run the whole duration at any speed this disk reaches,
  // so the reference samples the disk as long as the store does (zero-fill
  // writes every byte first: it keeps to 256 MiB).
  const uint64_t file_bytes = prepare == Prepare::zero_fill ? 256ull << 20 : 16ull << 30;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("open raw");
  if (prepare == Prepare::zero_fill) {
    std::vector<char> zeros(1 << 20, 0);
    for (uint64_t at = 0; at < file_bytes; at += zeros.size()) {
      if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(at)) < 0) die("zero");
    }
  } else if (prepare == Prepare::fallocate) {
    if (::fallocate(fd, 0, 0, static_cast<off_t>(file_bytes)) != 0) die("fallocate");
  }
  if (::fdatasync(fd) != 0) die("fdatasync");
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  if (direct) {
    ::close(fd);
    fd = ::open(path.c_str(), O_RDWR | O_DIRECT);
    if (fd < 0) die("open O_DIRECT");
  }
  void* buffer = nullptr;
  if (::posix_memalign(&buffer, block, write_bytes) != 0) die("posix_memalign");
  std::memset(buffer, 'r', write_bytes);
  uint64_t ops = 0, offset = 0;
  const auto start = Clock::now();
  while (since(start) < seconds && offset + write_bytes <= file_bytes) {
    if (::pwrite(fd, buffer, write_bytes, static_cast<off_t>(offset)) !=
        static_cast<ssize_t>(write_bytes)) die("pwrite");
    if (::fdatasync(fd) != 0) die("fdatasync");
    offset += write_bytes;
    ops++;
  }
  const double rate = static_cast<double>(ops) / since(start);
  ::free(buffer);
  ::close(fd);
  ::unlink(path.c_str());
  return rate;
}

struct StoreRun {
  double appends_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double records_per_batch = 0;
};

// The store: `appenders` coroutines append `record`-byte payloads for `seconds`.
StoreRun store_loop(const std::string& dir, size_t record, int appenders, double seconds,
                    Prepare prepare) {
  std::filesystem::remove_all(dir + "/log");
  LogStore::Config config;
  config.dir = dir + "/log";
  config.prepare = prepare;
  StoreRun out;
  reactor::block_on([&]() -> Task<void> {
    auto opened = LogStore::open(config, Resume{});
    if (!opened) die("LogStore::open");
    LogStore& store = **opened;
    const std::string payload(record, 'p');
    std::vector<std::vector<double>> latencies(static_cast<size_t>(appenders));
    const auto start = Clock::now();
    auto one = [&](int a) -> Task<void> {
      RecordMeta meta{RecordKind::entry, static_cast<uint32_t>(a), 0, {}};
      while (since(start) < seconds) {
        const auto t0 = Clock::now();
        Result<uint64_t, LogErrc> seq = co_await store.append(meta, payload);
        if (!seq) die("append");
        latencies[static_cast<size_t>(a)].push_back(since(t0) * 1e6);
      }
    };
    reactor::TaskGroup group;
    for (int a = 0; a < appenders; a++) group.spawn(one(a));
    co_await group.join();
    const double elapsed = since(start);
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    out.appends_per_s = static_cast<double>(all.size()) / elapsed;
    out.p50_us = all[all.size() / 2];
    out.p99_us = all[all.size() * 99 / 100];
    out.records_per_batch =
        static_cast<double>(store.stats().records) / static_cast<double>(store.stats().batches);
    co_await store.close();
  }());
  std::filesystem::remove_all(dir + "/log");
  return out;
}

// The other raw variants, one run each, for the choices in docs/.
std::string raw_variants(const Options& o, const std::string& dir, size_t record, double unit) {
  char line[256];
  std::snprintf(line, sizeof(line),
                "zero-filled %.0f, fallocated %.0f, appending %.0f, O_DIRECT zero-filled %.0f",
                raw_loop(dir, record, o.seconds, Prepare::zero_fill) * unit,
                raw_loop(dir, record, o.seconds, Prepare::fallocate) * unit,
                raw_loop(dir, record, o.seconds, Prepare::none) * unit,
                raw_loop(dir, record, o.seconds, Prepare::zero_fill, true) * unit);
  return line;
}

void question_small(const Options& o, const std::string& dir, Prepare prepare) {
  std::vector<double> raw, store, p50, p99, batch;
  for (int r = 0; r < o.runs; r++) {
    raw.push_back(raw_loop(dir, 100, o.seconds, prepare));
    const StoreRun s = store_loop(dir, 100, 64, o.seconds, prepare);
    store.push_back(s.appends_per_s);
    p50.push_back(s.p50_us);
    p99.push_back(s.p99_us);
    batch.push_back(s.records_per_batch);
  }
  std::printf("1. 100-byte records, 64 appenders, prepare=%s, sync=always\n", prepare_name(prepare));
  std::printf("   raw write+fdatasync per record, file prepared alike: %10.0f /s\n", median(raw));
  std::printf("     (one run each, /s: %s)\n", raw_variants(o, dir, 100, 1).c_str());
  std::printf("   log store appends:                                   %10.0f /s  "
              "(%.1f records per batch)\n", median(store), median(batch));
  std::printf("   append latency p50 %.0f us, p99 %.0f us\n", median(p50), median(p99));
  std::printf("   RATIO store / raw = %.1fx   (target >= 20x)\n\n", median(store) / median(raw));
}

void question_large(const Options& o, const std::string& dir, Prepare prepare) {
  const size_t mib = 1 << 20;
  for (int appenders : o.large_appenders) {
    std::vector<double> raw, store, p50, p99;
    for (int r = 0; r < o.runs; r++) {
      raw.push_back(raw_loop(dir, mib, o.seconds, prepare));
      const StoreRun s = store_loop(dir, mib, appenders, o.seconds, prepare);
      store.push_back(s.appends_per_s);
      p50.push_back(s.p50_us);
      p99.push_back(s.p99_us);
    }
    std::printf("2. 1 MiB records, %d appender(s), prepare=%s, sync=always\n", appenders,
                prepare_name(prepare));
    std::printf("   raw write+fdatasync 1 MiB, file prepared alike: %8.1f MB/s\n",
                median(raw) * mib / 1e6);
    if (appenders == o.large_appenders.front()) {
      std::printf("     (one run each, MB/s: %s)\n", raw_variants(o, dir, mib, mib / 1e6).c_str());
    }
    std::printf("   log store:                                      %8.1f MB/s\n",
                median(store) * mib / 1e6);
    std::printf("   append latency p50 %.0f us, p99 %.0f us\n", median(p50), median(p99));
    std::printf("   RATIO store / raw = %.2fx   (target >= 0.8x)\n\n", median(store) / median(raw));
  }
}

// Writes about `bytes` of log with 1000-byte records (no fdatasync: quick).
void write_log(const std::string& dir, uint64_t bytes) {
  LogStore::Config config;
  config.dir = dir;
  config.sync = Sync::none;
  reactor::block_on([&]() -> Task<void> {
    auto opened = LogStore::open(config, Resume{});
    if (!opened) die("LogStore::open");
    LogStore& store = **opened;
    std::string payload(1000, '\0');
    for (size_t i = 0; i < payload.size(); i++) payload[i] = static_cast<char>(i * 31);
    const uint64_t count = bytes / record_bytes(payload.size());
    uint64_t last = 0;
    for (uint64_t i = 0; i < count; i++) {
      RecordMeta meta{RecordKind::entry, static_cast<uint32_t>(i % 64), i, {}};
      Result<uint64_t, LogErrc> seq = store.stage(meta, payload);
      if (!seq && seq.error() == LogErrc::full) {
        co_await store.room(payload.size());
        seq = store.stage(meta, payload);
      }
      if (!seq) die("stage");
      last = *seq;
    }
    if (!(co_await store.durable(last))) die("durable");
    co_await store.close();
  }());
  ::sync();
}

// Reference: read every file in 4 MiB chunks and checksum every byte.
double read_and_checksum(const std::vector<std::string>& files, uint64_t* bytes) {
  std::vector<char> buffer(4 << 20);
  uint32_t crc = 0;
  *bytes = 0;
  const auto start = Clock::now();
  for (const std::string& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n <= 0) break;
      crc = crc32c(crc, buffer.data(), static_cast<size_t>(n));
      *bytes += static_cast<uint64_t>(n);
    }
    ::close(fd);
  }
  const double t = since(start);
  if (crc == 0x12345678) std::printf(" ");  // keep the checksum alive
  return t;
}

void question_recovery(const Options& o, const std::string& dir) {
  const std::string log = dir + "/log";
  std::filesystem::remove_all(log);
  write_log(log, o.recovery_mib << 20);
  const std::vector<std::string> files = segment_files(log);
  std::vector<double> reference, recovery;
  uint64_t bytes = 0, records = 0;
  for (int r = 0; r < o.runs; r++) {
    drop_cache(files);
    reference.push_back(read_and_checksum(files, &bytes));
    drop_cache(files);
    records = 0;
    const auto start = Clock::now();
    Result<Recovery> replayed =
        replay_log(log, [&](const ReplayedRecord& record) { records += record.payload.size() > 0; });
    recovery.push_back(since(start));
    if (!replayed || replayed->cores.at(0).corrupt()) die("replay");
  }
  std::filesystem::remove_all(log);
  std::printf("3. recovery, cold page cache (fdatasync + POSIX_FADV_DONTNEED per file)\n");
  std::printf("   %.0f MiB in %zu files, %llu records of 1000 bytes\n", bytes / 1048576.0,
              files.size(), static_cast<unsigned long long>(records));
  std::printf("   read + crc32c of the files: %.3f s (%.0f MB/s)\n", median(reference),
              bytes / median(reference) / 1e6);
  std::printf("   replay_log:                 %.3f s (%.0f MB/s)\n", median(recovery),
              bytes / median(recovery) / 1e6);
  std::printf("   RATIO recovery / reference = %.2fx   (target <= 2x)\n\n",
              median(recovery) / median(reference));
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--dir") o.dir = v, i++;
    else if (a == "--runs") o.runs = std::atoi(v), i++;
    else if (a == "--seconds") o.seconds = std::atof(v), i++;
    else if (a == "--only") o.only = v, i++;
    else if (a == "--appenders") o.large_appenders = {std::atoi(v)}, i++;
    else if (a == "--recovery-mib") o.recovery_mib = std::strtoull(v, nullptr, 10), i++;
    else if (a == "--read-mib") o.read_mib = std::strtoull(v, nullptr, 10), i++;
    else if (a == "--checkpoint-mib") o.checkpoint_mib = std::strtoull(v, nullptr, 10), i++;
    else if (a == "--prepare") {
      const std::string p = v;
      i++;
      if (p == "all") o.prepares = {Prepare::zero_fill, Prepare::fallocate, Prepare::none};
      else if (p == "zero_fill") o.prepares = {Prepare::zero_fill};
      else if (p == "none") o.prepares = {Prepare::none};
      else o.prepares = {Prepare::fallocate};
    } else {
      std::fprintf(a == "--help" ? stdout : stderr,
                   "usage: %s [--dir DIR] [--runs N] [--seconds S] [--recovery-mib M] "
                   "[--read-mib M] [--checkpoint-mib M] [--prepare zero_fill|fallocate|none|all] "
                   "[--only small|large|recovery|reads|checkpoint] [--appenders N]\n", argv[0]);
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  Scratch scratch(o.dir);
  std::printf("coworker-bench-log-store: dir %s, %d runs of %.1f s each (medians), crc32c %s, %u CPUs\n",
              scratch.path.c_str(), o.runs, o.seconds,
              crc32c_wide_available()       ? "AVX-512 folding"
              : crc32c_hardware_available() ? "SSE4.2"
                                            : "portable",
              std::thread::hardware_concurrency());
  std::printf("segments 64 MiB, batch buffer 8 MiB x 2; the machine is shared and noisy\n\n");
  for (Prepare prepare : o.prepares) {
    if (o.only.empty() || o.only == "small") question_small(o, scratch.path, prepare);
    if (o.only.empty() || o.only == "large") question_large(o, scratch.path, prepare);
  }
  if (o.only.empty() || o.only == "recovery") question_recovery(o, scratch.path);
  if (o.only.empty() || o.only == "reads") question_reads(scratch.path, o.runs, o.read_mib);
  if (o.only.empty() || o.only == "checkpoint") {
    question_checkpoint(scratch.path, o.runs, o.checkpoint_mib);
  }
  return 0;
}
