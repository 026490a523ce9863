#include "tools/bench/tally.h"

#include <algorithm>

namespace coworker::bench {

void Tally::merge(const Tally& other) {
  latency.merge(other.latency);
  latency_max_ns = std::max(latency_max_ns, other.latency_max_ns);
  measured_windows += other.measured_windows;
  measured_messages += other.measured_messages;
  acked_windows += other.acked_windows;
  acked_messages += other.acked_messages;
  resubmissions += other.resubmissions;
  indeterminate_windows += other.indeterminate_windows;
  indeterminate_messages += other.indeterminate_messages;
  refused_windows += other.refused_windows;
  unsent_windows += other.unsent_windows;
  for (const auto& [kind, count] : other.errors) errors[kind] += count;
  if (fatal.empty()) fatal = other.fatal;
}

uint64_t Tally::error_count() const {
  uint64_t total = 0;
  for (const auto& [kind, count] : errors) total += count;
  return total;
}

}  // namespace coworker::bench
