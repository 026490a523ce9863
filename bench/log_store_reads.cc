// coworker-bench-log-store, question 4: reads of one bucket by position
// (bucket_index.h + entry_reader.h, what GET /v1/buckets/{b}/entries uses)
// against raw preads of the same register records (issue 12 point 7).
//
// The log: one bucket, committed writes of 16 entries with 1 KiB bodies
// (a register record of about 17 KiB each, then its commit record), about
// --read-mib MiB, written through LogStore without fdatasync (untimed) and
// indexed by replaying it, as a participant's start does.
//   a. sequential, cache-hot: the whole bucket from position 0, 4096
//      entries per call (at most 1 MiB of registers), vs a pread of each
//      register record in position order;
//   b. random, cache-cold: 1000 positions drawn once, one entry each, vs a
//      pread of the register record holding each; the page cache is
//      dropped before every run of either.
// Runs alternate (raw, store, raw, store, ...); medians; the ratio is the
// store's throughput over the raw loop's (target >= 0.8x each).
#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <map>
#include <memory>
#include <random>

#include "bench/log_store_bench.h"
#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/entry_reader.h"
#include "bucket/log_store.h"
#include "bucket/recovery.h"
#include "consensus/crc32c.h"
#include "reactor/block_on.h"

namespace coworker::bench {

using namespace coworker::bucket;
using reactor::Task;

namespace {

constexpr uint32_t bucket_id = 0;
constexpr uint32_t entries_per_write = 16;
constexpr size_t body_bytes = 1024;
constexpr int random_reads = 1000;

// Writes about `bytes` of committed writes of bucket 0; returns the commit end.
Position write_bucket(const std::string& log, uint64_t bytes) {
  Position end = 0;
  reactor::block_on([&]() -> Task<void> {
    LogStore::Config config;
    config.dir = log;
    config.sync = Sync::none;
    auto opened = LogStore::open(config, Resume{});
    if (!opened) die("LogStore::open");
    LogStore& store = **opened;
    auto stage = [&](const EngineRecord& record) -> Task<void> {
      Result<uint64_t, LogErrc> seq = store.stage(record.meta, record.payload);
      if (!seq && seq.error() == LogErrc::full) {
        co_await store.room(record.payload.size());
        seq = store.stage(record.meta, record.payload);
      }
      if (!seq) die("stage");
    };
    const consensus::Promise promise{1, 1};
    uint64_t written = 0;
    for (uint64_t number = 1; written < bytes; number++) {
      auto write = std::make_shared<consensus::Write>();
      write->bucket = bucket_id;
      write->promise = promise;
      write->number = number;
      write->first = end;
      for (uint32_t i = 0; i < entries_per_write; i++) {
        consensus::BucketEntry entry;
        entry.identifier = "id-" + std::to_string(end + i);
        entry.connection = consensus::ConnectionId{1, 1};
        entry.series = end + i + 1;
        entry.window = end + 1;
        entry.body = std::string(body_bytes, static_cast<char>('a' + (end + i) % 26));
        write->entries.push_back(std::move(entry));
      }
      write->checksum = consensus::checksum_of(*write);
      const EngineRecord held = encode_phaser_record(bucket_id, consensus::RegisterRecord{write});
      co_await stage(held);
      co_await stage(encode_phaser_record(
          bucket_id, consensus::CommitRecord{{write->end(), write->number, write->checksum},
                                             write->first}));
      written += record_bytes(held.payload.size());
      end = write->end();
    }
    if (!(co_await store.durable(store.next_seq() - 1))) die("durable");
    co_await store.close();
  }());
  ::sync();
  return end;
}

// The raw side: a pread of each record, files opened once.
class RawReader {
 public:
  RawReader(std::string log) : _log(std::move(log)) {}
  ~RawReader() {
    for (auto& [segment, fd] : _fds) ::close(fd);
  }
  RawReader(const RawReader&) = delete;
  RawReader& operator=(const RawReader&) = delete;

  // Reads the record; with `checksum`, also the CRC32C of its payload (what
  // the reader must verify at least, printed to show where time goes).
  size_t read(const IndexedWrite& write, bool checksum = false) {
    int& fd = _fds[write.segment];
    if (fd == 0) {
      fd = ::open(segment_path(_log, 0, write.segment).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) die("open segment");
    }
    const size_t bytes = record_bytes(write.payload_bytes);
    if (_buffer.size() < bytes) _buffer.resize(bytes);
    const ssize_t n = ::pread(fd, _buffer.data(), bytes, static_cast<off_t>(write.offset()));
    if (n != static_cast<ssize_t>(bytes)) die("pread");
    if (checksum) {
      _crc ^= consensus::crc32c(0, _buffer.data() + record_header_bytes, write.payload_bytes);
    }
    return bytes;
  }

 private:
  std::string _log;
  std::map<uint64_t, int> _fds;
  std::vector<char> _buffer;

 public:
  uint32_t _crc = 0;  // kept alive
};

// Sequential: every register in position order.
double raw_sequential(const std::string& log, const BucketIndex& index, Position end,
                      bool checksum) {
  RawReader raw(log);
  const auto start = Clock::now();
  for (Position p = 0; p < end;) {
    const std::optional<IndexedWrite> write = index.find(bucket_id, p);
    if (!write) die("index");
    raw.read(*write, checksum);
    p = write->end();
  }
  const double took = since(start);
  if (raw._crc == 0x12345678) std::printf(" ");
  return took;
}

double store_sequential(const std::string& log, const BucketIndex& index, Position end) {
  return reactor::block_on([&]() -> Task<double> {
    EntryReader reader(EntryReader::Config{.log_dir = log}, index);
    const auto start = Clock::now();
    for (Position p = 0; p < end;) {
      auto got = co_await reader.read(bucket_id, p, 4096, 1u << 20);
      if (!got || got->empty() || got->entries.front().series != p + 1 ||
          got->entries.back().series != p + got->size()) {
        die("EntryReader::read");
      }
      p += got->size();
    }
    co_return since(start);
  }());
}

double raw_random(const std::string& log, const BucketIndex& index,
                  const std::vector<Position>& positions) {
  RawReader raw(log);
  const auto start = Clock::now();
  for (Position p : positions) raw.read(*index.find(bucket_id, p));
  return since(start);
}

double store_random(const std::string& log, const BucketIndex& index,
                    const std::vector<Position>& positions) {
  return reactor::block_on([&]() -> Task<double> {
    EntryReader reader(EntryReader::Config{.log_dir = log}, index);
    const auto start = Clock::now();
    for (Position p : positions) {
      auto got = co_await reader.read(bucket_id, p, 1, 1);
      if (!got || got->size() != 1 || got->entries.front().series != p + 1) die("EntryReader::read");
    }
    co_return since(start);
  }());
}

}  // namespace

void question_reads(const std::string& dir, int runs, uint64_t mib) {
  const std::string log = dir + "/reads";
  std::filesystem::remove_all(log);
  const Position end = write_bucket(log, mib << 20);
  BucketIndex index(0);
  Result<CoreReport> replayed =
      replay_core(log, 0, [&](const ReplayedRecord& record) { index.on_replayed(record); });
  if (!replayed || replayed->corrupt() || index.committed_end(bucket_id) != end) die("replay");
  const std::vector<std::string> files = segment_files(log);
  std::mt19937_64 random(20261204);
  std::vector<Position> positions;
  for (int i = 0; i < random_reads; i++) positions.push_back(random() % end);

  std::vector<double> raw_seq, crc_seq, store_seq, raw_rand, store_rand;
  raw_sequential(log, index, end, false);  // warms the page cache
  for (int r = 0; r < runs; r++) {
    raw_seq.push_back(raw_sequential(log, index, end, false));
    crc_seq.push_back(raw_sequential(log, index, end, true));
    store_seq.push_back(store_sequential(log, index, end));
  }
  for (int r = 0; r < runs; r++) {
    drop_cache(files);
    raw_rand.push_back(raw_random(log, index, positions));
    drop_cache(files);
    store_rand.push_back(store_random(log, index, positions));
  }
  std::filesystem::remove_all(log);
  const double mb = static_cast<double>(end) * body_bytes / 1e6;
  std::printf("4. reads of one bucket: %" PRIu64 " entries of %zu bytes in writes of %u "
              "(%zu writes indexed, %zu bytes of index)\n",
              end, body_bytes, entries_per_write, index.writes(bucket_id), index.memory_bytes());
  std::printf("   a. sequential, cache-hot: raw pread %.3f s (%.0f MB/s of bodies), "
              "EntryReader %.3f s (%.0f MB/s)\n",
              median(raw_seq), mb / median(raw_seq), median(store_seq), mb / median(store_seq));
  std::printf("      RATIO reader / raw = %.2fx   (target >= 0.8x)\n",
              median(raw_seq) / median(store_seq));
  std::printf("      (raw pread + crc32c of each payload, the least a reader verifies: %.3f s, "
              "%.2fx of raw; the reader reaches %.2fx of that)\n",
              median(crc_seq), median(raw_seq) / median(crc_seq),
              median(crc_seq) / median(store_seq));
  std::printf("   b. %d random positions, cache-cold: raw pread %.3f s (%.0f us each), "
              "EntryReader %.3f s (%.0f us each)\n",
              random_reads, median(raw_rand), median(raw_rand) / random_reads * 1e6,
              median(store_rand), median(store_rand) / random_reads * 1e6);
  std::printf("      RATIO reader / raw = %.2fx   (target >= 0.8x)\n\n",
              median(raw_rand) / median(store_rand));
}

}  // namespace coworker::bench
