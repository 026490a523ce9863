#include "consensus/dedup.h"

#include <algorithm>

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
  std::erase_if(_connections, [](const auto& item) { return !item.second.highest_committed; });
  for (auto& [id, c] : _connections) c.highest_accepted = c.highest_committed;
}

void DedupTable::encode(Writer& out) const {
  std::vector<const std::pair<const ConnectionId, Connection>*> sorted;
  sorted.reserve(_connections.size());
  for (const auto& item : _connections) sorted.push_back(&item);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  out.u64(sorted.size());
  for (const auto* item : sorted) {
    const Connection& c = item->second;
    COWORKER_ASSERT(c.highest_committed.has_value());
    COWORKER_ASSERT(c.highest_accepted == c.highest_committed);
    out.u64(item->first.issuer);
    out.u64(item->first.counter);
    out.u64(c.wrap);
    out.u64(*c.highest_committed);
    out.u64(c.last_window);
    out.u64(c.last_window_positions.size());
    for (const auto& [series, position] : c.last_window_positions) {
      out.u64(series);
      out.u64(position);
    }
  }
}

DedupTable DedupTable::decode(Reader& in) {
  DedupTable table;
  constexpr size_t connection_bytes_min = 7;  // seven varints
  const uint64_t n = in.count(connection_bytes_min);
  table._connections.reserve(n);
  std::optional<ConnectionId> previous;
  for (uint64_t i = 0; i < n && in.ok(); i++) {
    ConnectionId id;
    id.issuer = in.u64();
    id.counter = in.u64();
    if (!id.valid()) in.fail("bad value");
    if (previous && !(*previous < id)) in.fail("unsorted keys");
    previous = id;
    Connection c;
    c.wrap = in.u64();
    if (c.wrap != series_wrap_default) in.fail("bad value");  // the only wrap in use
    c.highest_committed = in.u64();
    c.highest_accepted = c.highest_committed;
    c.last_window = in.u64();
    const uint64_t m = in.count(2);
    c.last_window_positions.reserve(m);
    for (uint64_t j = 0; j < m && in.ok(); j++) {
      const uint64_t series = in.u64();
      const Position position = in.u64();
      if (!c.last_window_positions.empty() &&
          !series_after(series, c.last_window_positions.back().first, c.wrap)) {
        in.fail("unsorted keys");
      }
      c.last_window_positions.emplace_back(series, position);
    }
    if (in.ok()) table._connections.emplace(id, std::move(c));
  }
  if (!in.ok()) return {};
  return table;
}

bool operator==(const DedupTable& a, const DedupTable& b) { return a._connections == b._connections; }

}  // namespace coworker::consensus
