// Tally: what one core of coworker-bench counted, merged over the cores at
// the end. Windows are measured when their intended send time falls in the
// measured interval (after the warm-up, before the end); every answered
// window counts in the acknowledged totals, which a test compares with the
// entries found in the log.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "bench/histogram.h"

namespace coworker::bench {

struct Tally {
  Histogram latency;  // ns from the intended send time to the 2xx answer
  uint64_t latency_max_ns = 0;
  uint64_t measured_windows = 0;
  uint64_t measured_messages = 0;
  uint64_t acked_windows = 0;
  uint64_t acked_messages = 0;
  uint64_t resubmissions = 0;
  // Given up without a 2xx: maybe logged, maybe not.
  uint64_t indeterminate_windows = 0;
  uint64_t indeterminate_messages = 0;
  // Answered 409 on the first attempt: not logged.
  uint64_t refused_windows = 0;
  // Open loop: windows whose time came before the end but that no
  // connection was free to send by then (the load fell behind the rate).
  uint64_t unsent_windows = 0;
  // Failed attempts by kind: an HTTP status ("503"), "timeout", "connection".
  std::map<std::string, uint64_t> errors;
  std::string fatal;  // why the load stopped early; empty when it did not

  void merge(const Tally& other);
  uint64_t error_count() const;
};

}  // namespace coworker::bench
