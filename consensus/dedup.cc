#include "consensus/dedup.h"

#include <algorithm>

#include "consensus/assert.h"

namespace coworker::consensus {

namespace {
constexpr size_t slots_min = 16;
}  // namespace

DedupTable::DedupTable() : _slots(slots_min, none) {}

// ---- the index ----------------------------------------------------------------------

bool DedupTable::below_watermark(const ConnectionId& id) const {
  const uint32_t issuer = issuer_index(id.issuer);
  return issuer != none && id.counter < _issuers[issuer].watermark;
}

uint32_t DedupTable::issuer_index(ParticipantId id) const {
  for (uint32_t i = 0; i < _issuers.size(); i++) {
    if (_issuers[i].id == id) return i;
  }
  return none;
}

uint32_t DedupTable::add_issuer(ParticipantId id) {
  COWORKER_ASSERT(issuer_index(id) == none);
  _issuers.push_back(Issuer{id, 0});
  return static_cast<uint32_t>(_issuers.size() - 1);
}

uint32_t DedupTable::find(const ConnectionId& id) const {
  const size_t mask = _slots.size() - 1;
  for (size_t at = hash(id.issuer, id.counter) & mask;; at = (at + 1) & mask) {
    const uint32_t index = _slots[at];
    if (index == none) return none;
    const Node& node = _nodes[index];
    if (node.counter == id.counter && _issuers[node.issuer].id == id.issuer &&
        wrap_of(index) == id.wrap) {
      return index;
    }
  }
}

void DedupTable::insert_slot(uint32_t index) {
  const Node& node = _nodes[index];
  const size_t mask = _slots.size() - 1;
  size_t at = hash(_issuers[node.issuer].id, node.counter) & mask;
  while (_slots[at] != none) at = (at + 1) & mask;
  _slots[at] = index;
}

// Linear probing's deletion by backward shift: no tombstones, so a lookup
// never walks past slots that once held something.
void DedupTable::erase_slot(uint32_t index) {
  const Node& node = _nodes[index];
  const size_t mask = _slots.size() - 1;
  size_t hole = hash(_issuers[node.issuer].id, node.counter) & mask;
  while (_slots[hole] != index) {
    COWORKER_ASSERT(_slots[hole] != none);
    hole = (hole + 1) & mask;
  }
  for (size_t at = (hole + 1) & mask; _slots[at] != none; at = (at + 1) & mask) {
    const Node& other = _nodes[_slots[at]];
    const size_t home = hash(_issuers[other.issuer].id, other.counter) & mask;
    // Move it into the hole unless its home lies cyclically in (hole, at].
    const bool stays = hole <= at ? (hole < home && home <= at) : (hole < home || home <= at);
    if (!stays) {
      _slots[hole] = _slots[at];
      hole = at;
    }
  }
  _slots[hole] = none;
}

void DedupTable::grow_slots() {
  _slots.assign(_slots.size() * 2, none);
  for (uint32_t i = 0; i < _nodes.size(); i++) {
    if (_nodes[i].issuer != none) insert_slot(i);
  }
}

uint32_t DedupTable::add_node(const ConnectionId& id) {
  COWORKER_ASSERT(id.valid());
  COWORKER_ASSERT(find(id) == none);
  uint32_t issuer = issuer_index(id.issuer);
  if (issuer == none) issuer = add_issuer(id.issuer);
  uint32_t index = _free;
  if (index != none) {
    _free = _nodes[index].next;
  } else {
    COWORKER_ASSERT(_nodes.size() < none);
    index = static_cast<uint32_t>(_nodes.size());
    _nodes.emplace_back();
  }
  _nodes[index] = Node{};
  _nodes[index].counter = id.counter;
  _nodes[index].issuer = issuer;
  if (id.wrap != series_wrap_default) {
    _nodes[index].wrapped = true;
    _wraps[index] = id.wrap;
  }
  _live++;
  if ((_live + 1) * 4 > _slots.size() * 3) {
    grow_slots();  // inserts every live node, this one included
  } else {
    insert_slot(index);
  }
  return index;
}

void DedupTable::remove_node(uint32_t index) {
  Node& node = _nodes[index];
  COWORKER_ASSERT(node.issuer != none);
  erase_slot(index);
  unlink(index);
  if (node.extra) _extra.erase(index);
  if (node.wrapped) _wraps.erase(index);
  node = Node{};
  node.next = _free;
  _free = index;
  _live--;
}

void DedupTable::link_last(uint32_t index) {
  Node& node = _nodes[index];
  node.prev = _newest;
  node.next = none;
  if (_newest != none) {
    COWORKER_ASSERT(_nodes[_newest].last_seen <= node.last_seen);
    _nodes[_newest].next = index;
  } else {
    _oldest = index;
  }
  _newest = index;
}

void DedupTable::unlink(uint32_t index) {
  Node& node = _nodes[index];
  if (node.prev != none) {
    _nodes[node.prev].next = node.next;
  } else {
    COWORKER_ASSERT(_oldest == index);
    _oldest = node.next;
  }
  if (node.next != none) {
    _nodes[node.next].prev = node.prev;
  } else {
    COWORKER_ASSERT(_newest == index);
    _newest = node.prev;
  }
  node.prev = node.next = none;
}

ConnectionId DedupTable::id_of(uint32_t index) const {
  const Node& node = _nodes[index];
  return ConnectionId{_issuers[node.issuer].id, node.counter, wrap_of(index)};
}

uint64_t DedupTable::window_of(uint32_t index) const {
  const Node& node = _nodes[index];
  return node.extra ? _extra.at(index).window : node.series;
}

// ---- the rule ------------------------------------------------------------------------

DedupTable::Decision DedupTable::decide(const ConnectionId& connection, uint64_t series) const {
  COWORKER_ASSERT(connection.valid());
  const uint32_t index = find(connection);
  auto accepted = _accepted.find(connection);
  if (index != none) {
    const Node& node = _nodes[index];
    // A window holds at most 1000 messages; a linear scan is wrap-safe.
    if (node.series == series) return {Verdict::duplicate, node.position};
    if (node.extra) {
      for (const auto& [s, position] : _extra.at(index).earlier) {
        if (s == series) return {Verdict::duplicate, position};
      }
    }
    if (!series_after(series, node.series, connection.wrap)) {
      // Below the watermark the connection may have expired here and come
      // back (a series accepted before it expired, then committed): what it
      // committed before is not known, so not "a straggler": expired.
      return {below_watermark(connection) ? Verdict::expired : Verdict::superseded, 0};
    }
    if (accepted != _accepted.end() && !series_after(series, accepted->second, connection.wrap)) {
      return {Verdict::superseded, 0};
    }
    return {};
  }
  const bool after_accepted =
      accepted != _accepted.end() && series_after(series, accepted->second, connection.wrap);
  if (below_watermark(connection)) {
    // Expired here. A series after one still accepted is new (it is after
    // everything the connection ever committed here); any other may have
    // been committed before the state expired: not known, so expired.
    return after_accepted ? Decision{} : Decision{Verdict::expired, 0};
  }
  if (accepted != _accepted.end() && !after_accepted) return {Verdict::superseded, 0};
  return {};
}

// Not the rule's verdict: a re-proposed register's messages are accepted
// again even where the committed state expired their connection meanwhile
// (they were new when first accepted, and are after all it committed here).
void DedupTable::accept(const ConnectionId& connection, uint64_t series) {
  COWORKER_ASSERT(connection.valid());
  const uint32_t index = find(connection);
  if (index != none) COWORKER_ASSERT(series_after(series, _nodes[index].series, connection.wrap));
  auto [it, inserted] = _accepted.try_emplace(connection, series);
  if (!inserted) {
    COWORKER_ASSERT(series_after(series, it->second, connection.wrap));
    it->second = series;
  }
}

void DedupTable::forget_accepted() { _accepted.clear(); }

void DedupTable::commit_write(const Write& write) {
  // Times never go back along a bucket's log (Phaser::stamp); a write
  // without entries changes nothing here.
  COWORKER_ASSERT(write.time >= _time);
  COWORKER_ASSERT(write.expire_before >= _expired_before);
  COWORKER_ASSERT(write.expire_before <= write.time);
  if (write.entries.empty()) {
    COWORKER_ASSERT(write.time == _time && write.expire_before == _expired_before);
    return;
  }
  _time = write.time;
  _expired_before = write.expire_before;
  for (size_t i = 0; i < write.entries.size(); i++) {
    commit_entry(write.entries[i], write.first + i, write.time);
  }
  expire(write.expire_before);
}

void DedupTable::commit_entry(const BucketEntry& entry, Position position, uint64_t time) {
  if (!entry.connection.valid()) return;
  uint32_t index = find(entry.connection);
  bool new_window = true;
  if (index == none) {
    index = add_node(entry.connection);
  } else {
    Node& node = _nodes[index];
    // Series increase along the log for one connection (DESIGN §7.4).
    COWORKER_ASSERT(series_after(entry.series, node.series, entry.connection.wrap));
    new_window = entry.window != window_of(index);
    if (new_window) {
      if (node.extra) _extra.erase(index);
      node.extra = false;
    } else {
      // One more series of the window: the one before joins its earlier.
      Extra& extra = _extra[index];
      if (!node.extra) extra.window = node.series;
      extra.earlier.emplace_back(node.series, node.position);
      node.extra = true;
    }
    unlink(index);
  }
  Node& node = _nodes[index];
  if (new_window && entry.window != entry.series) {
    _extra[index] = Extra{entry.window, {}};  // a window that began in another bucket
    node.extra = true;
  }
  node.series = entry.series;
  node.position = position;
  node.last_seen = time;
  link_last(index);
  auto accepted = _accepted.find(entry.connection);
  if (accepted != _accepted.end() &&
      !series_after(accepted->second, entry.series, entry.connection.wrap)) {
    _accepted.erase(accepted);
  }
}

void DedupTable::expire(uint64_t before) {
  while (_oldest != none && _nodes[_oldest].last_seen < before) {
    const uint32_t index = _oldest;
    Issuer& issuer = _issuers[_nodes[index].issuer];
    issuer.watermark = std::max(issuer.watermark, _nodes[index].counter + 1);
    remove_node(index);
  }
}

// ---- export, encoding ---------------------------------------------------------------

DedupTable::ConnectionState DedupTable::state_of(uint32_t index) const {
  const Node& node = _nodes[index];
  ConnectionState state;
  state.id = id_of(index);
  state.last_seen = node.last_seen;
  state.window = window_of(index);
  if (node.extra) state.window_positions = _extra.at(index).earlier;
  state.window_positions.emplace_back(node.series, node.position);
  return state;
}

std::vector<DedupTable::ConnectionState> DedupTable::tracked() const {
  std::vector<ConnectionState> out;
  out.reserve(_live);
  for (uint32_t i = 0; i < _nodes.size(); i++) {
    if (_nodes[i].issuer != none) out.push_back(state_of(i));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

std::vector<std::pair<ParticipantId, uint64_t>> DedupTable::watermarks() const {
  std::vector<std::pair<ParticipantId, uint64_t>> out;
  for (const Issuer& issuer : _issuers) {
    if (issuer.watermark > 0) out.emplace_back(issuer.id, issuer.watermark);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t DedupTable::memory_bytes() const {
  // A hash node of _accepted: key, value, the next link and the cached hash,
  // plus its bucket slot.
  constexpr size_t accepted_node = sizeof(ConnectionId) + sizeof(uint64_t) + 3 * sizeof(void*);
  constexpr size_t extra_node = sizeof(uint32_t) + sizeof(Extra) + 3 * sizeof(void*);
  constexpr size_t wrap_node = sizeof(uint32_t) + sizeof(uint64_t) + 3 * sizeof(void*);
  size_t bytes = _nodes.capacity() * sizeof(Node) + _slots.capacity() * sizeof(uint32_t) +
                 _issuers.capacity() * sizeof(Issuer) + _accepted.size() * accepted_node +
                 _extra.size() * extra_node + _wraps.size() * wrap_node;
  for (const auto& [index, extra] : _extra) bytes += extra.earlier.capacity() * sizeof(extra.earlier[0]);
  return bytes;
}

void DedupTable::encode(Writer& out) const {
  COWORKER_ASSERT(_accepted.empty());
  const std::vector<std::pair<ParticipantId, uint64_t>> marks = watermarks();
  const std::vector<ConnectionState> states = tracked();
  out.u64(_time);
  out.u64(_expired_before);
  out.u64(marks.size());
  for (const auto& [issuer, watermark] : marks) {
    out.u64(issuer);
    out.u64(watermark);
  }
  out.u64(states.size());
  for (const ConnectionState& c : states) {
    out.u64(c.id.issuer);
    out.u64(c.id.counter);
    out.u64(c.id.wrap);
    out.u64(c.last_seen);
    out.u64(c.window);
    out.u64(c.window_positions.size());
    for (const auto& [series, position] : c.window_positions) {
      out.u64(series);
      out.u64(position);
    }
  }
}

DedupTable DedupTable::decode(Reader& in) {
  DedupTable table;
  table._time = in.u64();
  table._expired_before = in.u64();
  if (table._expired_before > table._time) in.fail("bad value");
  const uint64_t issuers = in.count(2);
  for (uint64_t i = 0; i < issuers && in.ok(); i++) {
    const ParticipantId id = in.u64();
    const uint64_t watermark = in.u64();
    if (id == no_participant || watermark == 0) in.fail("bad value");
    if (!table._issuers.empty() && !(table._issuers.back().id < id)) in.fail("unsorted keys");
    if (in.ok()) table._issuers.push_back(Issuer{id, watermark});
  }
  constexpr size_t connection_bytes_min = 8;  // eight varints
  const uint64_t n = in.count(connection_bytes_min);
  std::vector<ConnectionState> states;
  states.reserve(n);
  for (uint64_t i = 0; i < n && in.ok(); i++) {
    ConnectionState c;
    c.id.issuer = in.u64();
    c.id.counter = in.u64();
    c.id.wrap = in.u64();
    if (!c.id.valid() || c.id.wrap < series_wrap_min || c.id.wrap > series_wrap_default) {
      in.fail("bad value");
    }
    if (!states.empty() && !(states.back().id < c.id)) in.fail("unsorted keys");
    c.last_seen = in.u64();
    // Not after the newest write, and not expired.
    if (c.last_seen > table._time || c.last_seen < table._expired_before) in.fail("bad value");
    c.window = in.u64();
    const uint64_t k = in.count(2);
    if (in.ok() && k == 0) in.fail("bad value");  // tracked: something committed
    c.window_positions.reserve(k);
    for (uint64_t j = 0; j < k && in.ok(); j++) {
      const uint64_t series = in.u64();
      const Position position = in.u64();
      if (in.ok() && series >= c.id.wrap) in.fail("bad value");
      if (!c.window_positions.empty() &&
          !series_after(series, c.window_positions.back().first, c.id.wrap)) {
        in.fail("unsorted keys");
      }
      c.window_positions.emplace_back(series, position);
    }
    // An untracked connection below its issuer's watermark has expired; a
    // tracked one may be below it too (it came back with a message accepted
    // before it expired).
    if (in.ok()) states.push_back(std::move(c));
  }
  if (!in.ok()) return {};
  // The last-seen order, rebuilt: by time, then id (any order of equal
  // times expires alike).
  std::stable_sort(states.begin(), states.end(),
                   [](const auto& a, const auto& b) { return a.last_seen < b.last_seen; });
  for (const ConnectionState& c : states) {
    const uint32_t index = table.add_node(c.id);
    Node& node = table._nodes[index];
    node.last_seen = c.last_seen;
    node.series = c.window_positions.back().first;
    node.position = c.window_positions.back().second;
    if (c.window_positions.size() > 1 || c.window != node.series) {
      table._extra[index] = Extra{c.window, {c.window_positions.begin(), c.window_positions.end() - 1}};
      node.extra = true;
    }
    table.link_last(index);
  }
  return table;
}

bool operator==(const DedupTable& a, const DedupTable& b) {
  if (a._time != b._time || a._expired_before != b._expired_before || a._live != b._live || a._accepted != b._accepted) return false;
  if (a.watermarks() != b.watermarks()) return false;
  for (uint32_t i = 0; i < a._nodes.size(); i++) {
    if (a._nodes[i].issuer == DedupTable::none) continue;
    const uint32_t other = b.find(a.id_of(i));
    if (other == DedupTable::none || a.state_of(i) != b.state_of(other)) return false;
  }
  return true;
}

}  // namespace coworker::consensus
