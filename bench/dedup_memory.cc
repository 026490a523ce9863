// One question (issue 13 point 4): how many bytes does a bucket's dedup table
// hold per tracked connection, with a million connections spread over the
// buckets? Counted two ways: what the tables say they hold
// (DedupTable::memory_bytes) and what the heap grew by (mallinfo2), each
// divided by the connections tracked.
//
//   coworker-bench-dedup [--connections N] [--buckets B] [--window W]
//
// Each connection commits one window of W series (W = 1: single appends) in
// the bucket its counter hashes to; the aim is 64 bytes or fewer.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <vector>

#include "consensus/dedup.h"

using namespace coworker::consensus;

int main(int argc, char** argv) {
  CLI::App app{"Bytes per tracked connection in the dedup tables (issue 13 point 4)"};
  uint64_t connections = 1000000;
  uint32_t buckets = 64;
  uint32_t window = 1;
  app.add_option("--connections", connections, "Connections tracked")->check(CLI::Range(1, 100000000));
  app.add_option("--buckets", buckets, "Buckets they spread over")->check(CLI::Range(1, 65536));
  app.add_option("--window", window, "Series per connection's window")->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);

  // In use: small chunks plus the mmapped ones (large vectors).
  auto heap_in_use = [] {
    const struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
  };
  const size_t heap_before = heap_in_use();
  std::vector<DedupTable> tables(buckets);
  std::vector<Write> writes(buckets);
  for (uint64_t i = 1; i <= connections; i++) {
    const uint32_t b = static_cast<uint32_t>((i * 0x9e3779b97f4a7c15ull >> 32) % buckets);
    Write& w = writes[b];
    w.entries.clear();
    for (uint32_t s = 1; s <= window; s++) {
      w.entries.push_back(BucketEntry{"", ConnectionId{1 + i % 5, i}, s, 1, ""});
    }
    w.time = i / 1000;
    tables[b].commit_write(w);
    w.first += window;
  }
  writes.clear();
  writes.shrink_to_fit();
  const size_t heap = heap_in_use() - heap_before;
  size_t counted = 0;
  uint64_t tracked = 0;
  for (const DedupTable& t : tables) {
    counted += t.memory_bytes();
    tracked += t.connections();
  }
  std::printf("%llu connections over %u buckets, windows of %u\n",
              static_cast<unsigned long long>(tracked), buckets, window);
  std::printf("  counted by the tables: %.1f bytes per tracked connection\n",
              static_cast<double>(counted) / static_cast<double>(tracked));
  std::printf("  heap growth (mallinfo2): %.1f bytes per tracked connection (aim: 64)\n",
              static_cast<double>(heap) / static_cast<double>(tracked));
  return tracked == connections ? 0 : 1;
}
