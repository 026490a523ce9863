// Latency histogram for benchmarks: log-linear buckets (HdrHistogram-like,
// 1/64 relative precision) over nanoseconds, mergeable across threads.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace coworker::bench {

class Histogram {
 public:
  static constexpr unsigned sub_bits = 6;  // 64 sub-buckets per power of two
  static constexpr unsigned sub_count = 1u << sub_bits;

  void record(uint64_t ns) {
    _counts[index_of(ns)]++;
    _total++;
  }
  void merge(const Histogram& other) {
    for (size_t i = 0; i < _counts.size(); i++) _counts[i] += other._counts[i];
    _total += other._total;
  }
  uint64_t count() const { return _total; }

  // The value at quantile q in [0, 1], as the upper edge of its bucket.
  uint64_t quantile(double q) const {
    if (_total == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(_total - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < _counts.size(); i++) {
      seen += _counts[i];
      if (seen >= rank) return upper_of(i);
    }
    return upper_of(_counts.size() - 1);
  }

 private:
  static size_t index_of(uint64_t v) {
    if (v < sub_count) return static_cast<size_t>(v);
    const unsigned msb = 63 - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - sub_bits;
    const uint64_t sub = (v >> shift) & (sub_count - 1);
    return (shift + 1) * sub_count + sub;
  }
  static uint64_t upper_of(size_t index) {
    if (index < sub_count) return index;
    const unsigned shift = static_cast<unsigned>(index / sub_count) - 1;
    const uint64_t sub = index % sub_count;
    return ((sub_count + sub + 1) << shift) - 1;
  }

  std::array<uint64_t, (64 - sub_bits + 1) * sub_count> _counts{};
  uint64_t _total = 0;
};

}  // namespace coworker::bench
