#include "consensus/dedup.h"

#include "consensus/assert.h"

namespace coworker::consensus {

DedupTable::Decision DedupTable::decide(const ConnectionId& connection, uint64_t series) const {
  COWORKER_ASSERT(connection.valid());
  auto it = _connections.find(connection);
  if (it == _connections.end()) return {};
  const Connection& c = it->second;
  // A window holds at most 1000 messages; a linear scan is wrap-safe.
  for (const auto& [s, position] : c.last_window_positions) {
    if (s == series) return {Verdict::duplicate, position};
  }
  if (c.highest_accepted && !series_after(series, *c.highest_accepted, c.wrap)) {
    return {Verdict::superseded, 0};
  }
  return {};
}

void DedupTable::accept(const ConnectionId& connection, uint64_t series) {
  COWORKER_ASSERT(connection.valid());
  Connection& c = _connections[connection];
  if (c.highest_accepted) COWORKER_ASSERT(series_after(series, *c.highest_accepted, c.wrap));
  c.highest_accepted = series;
}

void DedupTable::commit(const BucketEntry& entry, Position position) {
  if (!entry.connection.valid()) return;
  Connection& c = _connections[entry.connection];
  // Series increase along the log for one connection (DESIGN §7.4).
  if (c.highest_committed) COWORKER_ASSERT(series_after(entry.series, *c.highest_committed, c.wrap));
  c.highest_committed = entry.series;
  if (!c.highest_accepted || series_after(entry.series, *c.highest_accepted, c.wrap)) {
    c.highest_accepted = entry.series;
  }
  if (c.last_window_positions.empty() || entry.window != c.last_window) {
    c.last_window = entry.window;
    c.last_window_positions.clear();
  }
  if (!c.last_window_positions.empty()) {
    COWORKER_ASSERT(series_after(entry.series, c.last_window_positions.back().first, c.wrap));
  }
  c.last_window_positions.emplace_back(entry.series, position);
}

void DedupTable::forget_accepted() {
  for (auto& [id, c] : _connections) c.highest_accepted = c.highest_committed;
}

}  // namespace coworker::consensus
