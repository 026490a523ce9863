#include "tests/sim/phaser_checker.h"

#include <fmt/core.h>

#include "consensus/dedup.h"
#include "consensus/assert.h"

namespace coworker::sim {

using consensus::BucketEntry;
using consensus::Position;

namespace {

// What a disk proves about a bucket, by the checkers' own fold: the code
// under test's image (PhaserDurable) is only compared with it, never read.
const ReplicaReference* reference_of(const DurableImage& image, uint32_t bucket) {
  const auto it = image.references.find(bucket);
  return it == image.references.end() ? nullptr : &it->second;
}

}  // namespace

PhaserChecker::PhaserChecker(uint32_t buckets) : _buckets(buckets) {}

void PhaserChecker::fail(std::string why) {
  if (!_violation) _violation = std::move(why);
}

void PhaserChecker::submitted(uint32_t bucket, const BucketEntry& entry) {
  COWORKER_ASSERT(bucket < _buckets.size());
  const bool fresh = _submitted.emplace(entry.body, Submitted{bucket, entry}).second;
  COWORKER_ASSERT(fresh);  // the workload makes every body unique
}

void PhaserChecker::acked(uint32_t bucket, const BucketEntry& entry, Position position) {
  auto sent = _submitted.find(entry.body);
  if (sent == _submitted.end() || sent->second.bucket != bucket) {
    fail(fmt::format("bucket {}: '{}' answered 2xx but never submitted there", bucket, entry.body));
    return;
  }
  if (auto it = _acked_at.find(entry.body); it != _acked_at.end()) {
    if (it->second != position) {
      fail(fmt::format("bucket {}: '{}' answered at positions {} and {}", bucket, entry.body,
                       it->second, position));
    }
    return;
  }
  Bucket& b = _buckets[bucket];
  if (auto it = b.acked.find(position); it != b.acked.end() && it->second != entry.body) {
    fail(fmt::format("bucket {}: position {} answered for '{}' and '{}'", bucket, position,
                     it->second, entry.body));
    return;
  }
  if (position < b.truth.size() && b.truth[position].body != entry.body) {
    fail(fmt::format("bucket {}: '{}' answered at {}, but {} holds '{}'", bucket, entry.body,
                     position, position, b.truth[position].body));
    return;
  }
  _acked_at[entry.body] = position;
  b.acked[position] = entry.body;
  if (!b.acked_max || position > *b.acked_max) b.acked_max = position;
  _acked_count++;
}

void PhaserChecker::refused(uint32_t bucket, const BucketEntry& entry) {
  Bucket& b = _buckets[bucket];
  if (auto it = b.where.find(entry.body); it != b.where.end()) {
    fail(fmt::format("bucket {}: '{}' was answered 409 connection_expired by every attempt, "
                     "but is committed at {}",
                     bucket, entry.body, it->second));
    return;
  }
  b.refused.insert(entry.body);
}

void PhaserChecker::extend_truth(uint32_t bucket, const BucketEntry& entry) {
  Bucket& b = _buckets[bucket];
  const Position position = b.truth.size();
  if (b.refused.count(entry.body) != 0) {
    fail(fmt::format("bucket {} position {}: '{}' committed, but every attempt of it was "
                     "answered 409 connection_expired",
                     bucket, position, entry.body));
    return;
  }
  auto sent = _submitted.find(entry.body);
  if (sent == _submitted.end()) {
    fail(fmt::format("bucket {} position {}: phantom entry '{}'", bucket, position, entry.body));
    return;
  }
  if (sent->second.bucket != bucket || !(sent->second.entry == entry)) {
    fail(fmt::format("bucket {} position {}: '{}' differs from what was submitted", bucket,
                     position, entry.body));
    return;
  }
  if (b.where.count(entry.body) != 0) {
    fail(fmt::format("bucket {}: '{}' committed twice, at {} and {}", bucket, entry.body,
                     b.where[entry.body], position));
    return;
  }
  if (entry.connection.valid()) {
    auto last = b.last_series.find(entry.connection);
    if (last != b.last_series.end() &&
        !consensus::series_after(entry.series, last->second, entry.connection.wrap)) {
      fail(fmt::format("bucket {} position {}: connection {} series {} after {}", bucket,
                       position, entry.connection.to_string(), entry.series, last->second));
      return;
    }
    b.last_series[entry.connection] = entry.series;
  }
  if (auto it = b.acked.find(position); it != b.acked.end() && it->second != entry.body) {
    fail(fmt::format("bucket {} position {}: '{}' was answered there, '{}' committed", bucket,
                     position, it->second, entry.body));
    return;
  }
  b.where[entry.body] = position;
  b.truth.push_back(entry);
}

void PhaserChecker::check_logs(const PhaserWorld& world) {
  for (ParticipantId id : world.participants()) {
    const DurableImage& image = world.host_image(id);
    if (image.fold_violation) {
      fail(fmt::format("participant {} {}", id, *image.fold_violation));
      return;
    }
    for (const auto& [bucket, reference] : image.references) {
      auto& [verified, resets] = _verified[{id, bucket}];
      const auto reset = image.resets.find(bucket);
      const uint64_t now_resets = reset == image.resets.end() ? 0 : reset->second;
      if (now_resets != resets) {
        // Discarded by a repair (disk.h) and grown back since: its new
        // copy is compared from its start.
        COWORKER_ASSERT(now_resets > resets);
        resets = now_resets;
        verified = 0;
      }
      // A replica acclimated from a snapshot holds positions from its start.
      const std::vector<BucketEntry>& log = reference.log();
      const size_t start = reference.start();
      size_t end = reference.end();
      if (still_planted(world, id, bucket, reference, now_resets)) {
        if (violated()) return;
        end = std::min<size_t>(end, _planted.at({id, bucket}).first);
      }
      if (end < verified) {
        fail(fmt::format("participant {} bucket {}: committed log shrank from {} to {}", id,
                         bucket, verified, end));
        return;
      }
      Bucket& b = _buckets[bucket];
      size_t i = std::max(verified, start);
      for (; i < end && !violated(); i++) {
        const BucketEntry& entry = log[i - start];
        if (i < b.truth.size()) {
          if (!(entry == b.truth[i])) {
            fail(fmt::format("participant {} bucket {} position {}: '{}' where others have '{}'",
                             id, bucket, i, entry.body, b.truth[i].body));
          }
        } else if (i == b.truth.size()) {
          extend_truth(bucket, entry);
        } else {
          break;  // above the truth's end: compared once another replica extends it
        }
      }
      verified = i;
      if (violated()) return;
    }
  }
}

void PhaserChecker::planted(ParticipantId host, uint32_t bucket, Position at, uint64_t resets) {
  _planted[{host, bucket}] = {at, resets};
}

// Whether `host`'s copy of `bucket` still holds its planted write (not
// dropped by a reset, not replaced by a snapshot above it); while it does,
// its host must not serve in the bucket's government.
bool PhaserChecker::still_planted(const PhaserWorld& world, ParticipantId host, uint32_t bucket,
                                  const ReplicaReference& reference, uint64_t resets) {
  const auto found = _planted.find({host, bucket});
  if (found == _planted.end()) return false;
  const auto [at, resets_then] = found->second;
  if (resets != resets_then || reference.start() > at) {
    _planted.erase(found);
    return false;
  }
  for (ParticipantId member : world.government(bucket).replicas) {
    if (world.host_of_id(member) == host) {
      fail(fmt::format("participant {} bucket {}: a copy holding a write no client sent (planted "
                       "at {}) serves in the government as {}",
                       host, bucket, at, member));
      break;
    }
  }
  return true;
}

void PhaserChecker::check_acked_durable(const PhaserWorld& world) {
  for (uint32_t bucket = 0; bucket < _buckets.size(); bucket++) {
    const Bucket& b = _buckets[bucket];
    if (!b.acked_max) continue;
    const Position top = *b.acked_max;
    for (ParticipantId member : world.government(bucket).replicas) {
      if (world.discarded(member)) continue;
      const ReplicaReference* reference = reference_of(world.image(member), bucket);
      // A copy made void by a repair (reference rule 6) holds nothing, as
      // a lost disk's: the other members must hold it.
      if (reference != nullptr && reference->void_copy()) continue;
      const size_t committed = reference == nullptr ? 0 : reference->end();
      if (top < committed) continue;  // the truth comparison covers content
      const consensus::WritePtr& reg = reference == nullptr ? nullptr : reference->held();
      if (reg == nullptr || reg->first != committed || reg->end() <= top) {
        fail(fmt::format("bucket {}: position {} answered 2xx, but member {} holds only {} "
                         "committed{}",
                         bucket, top, member, committed,
                         reg ? fmt::format(" and a register [{},{})", reg->first, reg->end())
                             : std::string()));
        return;
      }
      for (auto q = b.acked.lower_bound(committed); q != b.acked.end(); ++q) {
        if (reg->entries[q->first - reg->first].body != q->second) {
          fail(fmt::format("bucket {}: member {}'s register holds '{}' at {}, '{}' was answered",
                           bucket, member, reg->entries[q->first - reg->first].body, q->first,
                           q->second));
          return;
        }
      }
    }
  }
}

void PhaserChecker::after_step(const PhaserWorld& world) {
  if (violated()) return;
  check_logs(world);
  if (!violated()) check_acked_durable(world);
  if (!violated()) check_dedup(world);
}

// DESIGN §3, folded here on its own terms: per connection the newest window
// committed in this bucket and the time of the last write that held one of
// its messages; a write, once committed, drops every connection last seen
// before its expire_before and raises that issuer's watermark past it.
void PhaserChecker::fold_reference(Bucket& b, const consensus::Write& write) {
  if (write.first < b.ref_end) return;  // folded already (a re-proposal committed again)
  b.ref_waiting.emplace(write.first, write);
  for (auto it = b.ref_waiting.begin(); it != b.ref_waiting.end() && it->first == b.ref_end;
       it = b.ref_waiting.erase(it)) {
    const consensus::Write& w = it->second;
    if (w.time < b.ref_time || w.expire_before < b.ref_expired_before) {
      fail(fmt::format("bucket {}: the write at {} goes back in time ({} after {}, expiry {} "
                       "after {})",
                       w.bucket, w.first, w.time, b.ref_time, w.expire_before,
                       b.ref_expired_before));
      return;
    }
    for (size_t i = 0; i < w.entries.size(); i++) {
      const BucketEntry& e = w.entries[i];
      if (!e.connection.valid()) continue;
      RefConnection& c = b.ref[e.connection];
      if (c.positions.empty() || c.window != e.window) c.positions.clear();
      c.window = e.window;
      c.positions.emplace_back(e.series, w.first + i);
      c.last_seen = w.time;
    }
    // Check 3: committed writes chain (phaser.h step 3): each stands on the
    // one before it, so one checksum at one position vouches for the log
    // below it (step 9f's verification relies on it).
    if (w.prior != b.ref_checksum) {
      fail(fmt::format("bucket {}: the write committed at {} names prior {:08x}, the write "
                       "committed before it has checksum {:08x}",
                       w.bucket, w.first, w.prior, b.ref_checksum));
      return;
    }
    b.ref_checksum = w.checksum;
    // Check 3: the truth grows by committed writes too. Folds are
    // contiguous from 0 and each extends the truth to its end, so the truth
    // reaches at least ref_end here.
    COWORKER_ASSERT(b.truth.size() >= w.first);
    for (size_t i = 0; i < w.entries.size() && !violated(); i++) {
      const Position p = w.first + i;
      if (p == b.truth.size()) {
        extend_truth(w.bucket, w.entries[i]);
      } else if (!(b.truth[p] == w.entries[i])) {
        fail(fmt::format("bucket {} position {}: '{}' committed, '{}' held by the copies", w.bucket,
                         p, w.entries[i].body, b.truth[p].body));
      }
    }
    if (violated()) return;
    b.ref_time = w.time;
    b.ref_expired_before = w.expire_before;
    for (auto c = b.ref.begin(); c != b.ref.end();) {
      if (c->second.last_seen < w.expire_before) {
        uint64_t& mark = b.ref_watermarks[c->first.issuer];
        mark = std::max(mark, c->first.counter + 1);
        c = b.ref.erase(c);
      } else {
        ++c;
      }
    }
    b.ref_end = w.end();
  }
}

void PhaserChecker::check_dedup(const PhaserWorld& world) {
  for (ParticipantId id : world.participants()) {
    for (const auto& [bucket, durable] : world.host_image(id).phasers) {
      if (_planted.count({id, bucket}) != 0) continue;  // its table folds the planted write
      const Bucket& b = _buckets[bucket];
      if (durable.commit_end != b.ref_end || !b.ref_waiting.empty()) continue;
      const consensus::DedupTable& table = durable.dedup;
      const auto marks = table.watermarks();
      const std::tuple<Position, size_t, size_t> seen{durable.commit_end, table.connections(),
                                                      marks.size()};
      auto [checked, fresh] = _dedup_checked.try_emplace({id, bucket}, seen);
      if (!fresh && checked->second == seen) continue;
      checked->second = seen;
      std::string why;
      if (table.time() != b.ref_time || table.expired_before() != b.ref_expired_before) {
        why = fmt::format("time {} expiry {}, the writes' {} {}", table.time(),
                          table.expired_before(), b.ref_time, b.ref_expired_before);
      }
      std::vector<std::pair<ParticipantId, uint64_t>> ref_marks(b.ref_watermarks.begin(),
                                                                 b.ref_watermarks.end());
      if (why.empty() && marks != ref_marks) why = "its watermarks differ";
      const auto tracked = table.tracked();
      if (why.empty() && tracked.size() != b.ref.size()) {
        why = fmt::format("{} connections tracked, {} by the writes", tracked.size(), b.ref.size());
      }
      for (size_t i = 0; i < tracked.size() && why.empty(); i++) {
        auto ref = b.ref.find(tracked[i].id);
        if (ref == b.ref.end() || ref->second.last_seen != tracked[i].last_seen ||
            ref->second.window != tracked[i].window ||
            ref->second.positions != tracked[i].window_positions) {
          why = fmt::format("connection {} differs", tracked[i].id.to_string());
        }
      }
      if (!why.empty()) {
        fail(fmt::format("participant {} bucket {} at {}: its dedup table is not the one its "
                         "committed writes make: {}",
                         id, bucket, durable.commit_end, why));
        return;
      }
    }
  }
}

void PhaserChecker::leader_committed(const PhaserWorld& world, ParticipantId leader,
                                     const consensus::Write& write) {
  for (ParticipantId member : world.government(write.bucket).replicas) {
    // A copy discarded by a repair holds nothing; its ack, sent before the
    // damage, may still arrive (a lost disk's would too).
    if (world.discarded(member)) continue;
    const ReplicaReference* d = reference_of(world.image(member), write.bucket);
    if (d != nullptr && d->void_copy()) continue;  // likewise a void copy (rule 6)
    // A member that never persisted anything for the bucket holds an empty
    // log: it holds an empty write at position 0 (a leadership start's, on
    // a newcomer of a grown government) and nothing else.
    bool holds = d == nullptr && write.end() == 0;
    if (d != nullptr) {
      const consensus::WritePtr& held = d->held();
      if (d->end() >= write.end()) {
        holds = true;
        for (size_t i = 0; i < write.entries.size() && holds; i++) {
          // Below a snapshot's start the replica holds the committed state only.
          if (write.first + i < d->start()) continue;
          holds = d->log()[write.first + i - d->start()] == write.entries[i];
        }
      } else if (held && held->first == write.first && held->end() == write.end() &&
                 held->checksum == write.checksum) {
        holds = true;
      }
    }
    if (!holds) {
      fail(fmt::format("bucket {}: leader {} committed [{},{}) under promise {}, but member {} "
                       "does not hold it durably",
                       write.bucket, leader, write.first, write.end(), write.promise.to_string(),
                       member));
      return;
    }
  }
  if (!write.entries.empty()) fold_reference(_buckets[write.bucket], write);
}

void PhaserChecker::lease_read(ParticipantId leader, uint32_t bucket, Position commit_end) {
  _reads++;
  const Bucket& b = _buckets[bucket];
  if (b.acked_max && *b.acked_max >= commit_end) {
    fail(fmt::format("bucket {}: a lease read at {} saw {} entries, but position {} was "
                     "answered 2xx before it",
                     bucket, leader, commit_end, *b.acked_max));
  }
}

bool PhaserChecker::settled(const PhaserWorld& world, const std::set<uint32_t>& dead,
                            std::string* why) const {
  for (uint32_t bucket = 0; bucket < _buckets.size(); bucket++) {
    if (dead.count(bucket) != 0) continue;
    const Bucket& b = _buckets[bucket];
    if (b.acked_max && *b.acked_max >= b.truth.size()) {
      if (why) *why = fmt::format("bucket {}: position {} answered but not committed", bucket,
                                  *b.acked_max);
      return false;
    }
    for (ParticipantId member : world.government(bucket).replicas) {
      if (!world.live(member)) continue;
      const ReplicaReference* reference = reference_of(world.image(member), bucket);
      const size_t committed = reference == nullptr ? 0 : reference->end();
      if (committed != b.truth.size()) {
        if (why) *why = fmt::format("bucket {}: member {} committed {} of {}", bucket, member,
                                    committed, b.truth.size());
        return false;
      }
    }
  }
  return true;
}

uint64_t PhaserChecker::committed_count() const {
  uint64_t n = 0;
  for (const Bucket& b : _buckets) n += b.truth.size();
  return n;
}

}  // namespace coworker::sim
