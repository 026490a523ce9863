#include "bucket/distributor.h"

#include <algorithm>

#include "bucket/hash.h"
#include "consensus/assert.h"

namespace coworker::bucket {

Distributor::Distributor(uint32_t buckets, uint32_t replicas)
    : _replicas(replicas), _leader(buckets, no_participant) {
  COWORKER_ASSERT(is_power_of_two(buckets));
  COWORKER_ASSERT(replicas % 2 == 1);
}

bool Distributor::is_eligible(ParticipantId id) const {
  return std::binary_search(_eligible.begin(), _eligible.end(), id);
}

size_t Distributor::index_of(ParticipantId id) const {
  auto it = std::lower_bound(_eligible.begin(), _eligible.end(), id);
  COWORKER_ASSERT(it != _eligible.end());
  COWORKER_ASSERT(*it == id);
  return static_cast<size_t>(it - _eligible.begin());
}

uint32_t Distributor::leaderships(ParticipantId id) const {
  auto it = std::lower_bound(_eligible.begin(), _eligible.end(), id);
  if (it == _eligible.end() || *it != id) return 0;
  return _count[static_cast<size_t>(it - _eligible.begin())];
}

void Distributor::hand_over(uint32_t bucket, ParticipantId to) {
  const ParticipantId from = _leader[bucket];
  COWORKER_ASSERT(from != to);
  if (from != no_participant && is_eligible(from)) _count[index_of(from)]--;
  _count[index_of(to)]++;
  _leader[bucket] = to;
  _moves++;
}

void Distributor::admit(ParticipantId id) {
  COWORKER_ASSERT(id != no_participant);
  COWORKER_ASSERT(!is_eligible(id));
  auto it = std::lower_bound(_eligible.begin(), _eligible.end(), id);
  const size_t at = static_cast<size_t>(it - _eligible.begin());
  _eligible.insert(it, id);
  _count.insert(_count.begin() + static_cast<std::ptrdiff_t>(at), 0);

  if (_eligible.size() == 1) {
    // The first eligible participant leads every bucket that has no leader.
    for (uint32_t b = 0; b < buckets(); b++) {
      COWORKER_ASSERT(_leader[b] == no_participant);
      hand_over(b, id);
    }
  } else {
    // Take from the most loaded (lowest id on ties; its highest bucket) until
    // the newcomer is within one of the maximum: the fewest moves that
    // restore rule 2.
    for (;;) {
      size_t donor = 0;
      for (size_t i = 1; i < _count.size(); i++) {
        if (_count[i] > _count[donor]) donor = i;
      }
      if (_count[donor] <= _count[at] + 1) break;
      const ParticipantId from = _eligible[donor];
      uint32_t bucket = buckets();
      for (uint32_t b = buckets(); b-- > 0;) {
        if (_leader[b] == from) {
          bucket = b;
          break;
        }
      }
      COWORKER_ASSERT(bucket < buckets());
      hand_over(bucket, id);
    }
  }
  check_invariants();
}

void Distributor::withdraw(ParticipantId id) {
  const size_t at = index_of(id);
  const size_t n = _eligible.size();
  std::vector<uint32_t> orphans;
  for (uint32_t b = 0; b < buckets(); b++) {
    if (_leader[b] == id) orphans.push_back(b);
  }
  COWORKER_ASSERT(orphans.size() == _count[at]);
  // Candidates in the order of preference on ties: the right neighbour first,
  // then onwards around the ring.
  std::vector<size_t> order;
  for (size_t step = 1; step < n; step++) order.push_back((at + step) % n);
  for (uint32_t bucket : orphans) {
    if (order.empty()) {
      _count[at]--;
      _leader[bucket] = no_participant;
      _moves++;
      continue;
    }
    size_t best = order.front();
    for (size_t candidate : order) {
      if (_count[candidate] < _count[best]) best = candidate;
    }
    _count[at]--;
    _count[best]++;
    _leader[bucket] = _eligible[best];
    _moves++;
  }
  COWORKER_ASSERT(_count[at] == 0);
  _eligible.erase(_eligible.begin() + static_cast<std::ptrdiff_t>(at));
  _count.erase(_count.begin() + static_cast<std::ptrdiff_t>(at));
  check_invariants();
}

template <typename Fn>
void Distributor::for_each_member(uint32_t bucket, Fn fn) const {
  const ParticipantId leader = _leader[bucket];
  COWORKER_ASSERT(leader != no_participant);
  const size_t n = _eligible.size();
  const size_t at = index_of(leader);
  fn(leader);
  if (n <= _replicas) {
    for (size_t step = 1; step < n; step++) fn(_eligible[(at + step) % n]);
  } else {
    const size_t side = (_replicas - 1) / 2;
    for (size_t d = 1; d <= side; d++) {
      fn(_eligible[(at + d) % n]);
      fn(_eligible[(at + n - d) % n]);
    }
  }
}

std::vector<ParticipantId> Distributor::government(uint32_t bucket) const {
  if (_leader[bucket] == no_participant) return {};
  std::vector<ParticipantId> government;
  government.reserve(_replicas);
  for_each_member(bucket, [&](ParticipantId id) { government.push_back(id); });
  COWORKER_ASSERT(government.size() == std::min<size_t>(_eligible.size(), _replicas));
  return government;
}

bool Distributor::is_government(uint32_t bucket, const std::vector<ParticipantId>& replicas) const {
  if (_leader[bucket] == no_participant) return replicas.empty();
  size_t i = 0;
  bool same = true;
  for_each_member(bucket, [&](ParticipantId id) {
    same = same && i < replicas.size() && replicas[i] == id;
    i++;
  });
  return same && i == replicas.size();
}

void Distributor::encode(consensus::Writer& writer) const {
  writer.ids(_eligible);
  writer.ids(_leader);
  writer.u64(_moves);
}

std::optional<Distributor> Distributor::decode(consensus::Reader& reader, uint32_t buckets,
                                               uint32_t replicas) {
  Distributor distributor(buckets, replicas);
  std::vector<ParticipantId> eligible = reader.ids();
  std::vector<ParticipantId> leader = reader.ids();
  const uint64_t moves = reader.u64();
  if (!reader.ok() || leader.size() != buckets) return std::nullopt;
  for (size_t i = 0; i < eligible.size(); i++) {
    if (eligible[i] == no_participant || (i > 0 && eligible[i - 1] >= eligible[i])) {
      return std::nullopt;
    }
  }
  std::vector<uint32_t> count(eligible.size(), 0);
  for (ParticipantId id : leader) {
    const auto it = std::lower_bound(eligible.begin(), eligible.end(), id);
    if (eligible.empty() ? id != no_participant : (it == eligible.end() || *it != id)) {
      return std::nullopt;
    }
    if (!eligible.empty()) count[static_cast<size_t>(it - eligible.begin())]++;
  }
  if (!count.empty()) {
    const auto [low, high] = std::minmax_element(count.begin(), count.end());
    if (*high - *low > 1) return std::nullopt;
  }
  distributor._eligible = std::move(eligible);
  distributor._leader = std::move(leader);
  distributor._count = std::move(count);
  distributor._moves = moves;
  distributor.check_invariants();
  return distributor;
}

void Distributor::check_invariants() const {
  COWORKER_ASSERT(_count.size() == _eligible.size());
  COWORKER_ASSERT(std::is_sorted(_eligible.begin(), _eligible.end()));
  if (_eligible.empty()) {
    for (ParticipantId leader : _leader) COWORKER_ASSERT(leader == no_participant);
    return;
  }
  std::vector<uint32_t> counted(_eligible.size(), 0);
  for (ParticipantId leader : _leader) {
    COWORKER_ASSERT(leader != no_participant);
    counted[index_of(leader)]++;
  }
  COWORKER_ASSERT(counted == _count);
  const auto [low, high] = std::minmax_element(_count.begin(), _count.end());
  COWORKER_ASSERT(*high - *low <= 1);
}

}  // namespace coworker::bucket
