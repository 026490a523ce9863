#include "bucket/table.h"

#include <algorithm>
#include <utility>

#include "consensus/assert.h"

namespace coworker::bucket {

using consensus::Effect;
using consensus::MembershipState;
using consensus::MemberStatus;
using consensus::MigrationAck;

namespace {

bool distinct(std::vector<ParticipantId> ids) {
  std::sort(ids.begin(), ids.end());
  return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
}

bool has(const std::vector<ParticipantId>& ids, ParticipantId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

uint64_t mix(uint64_t state, uint64_t value) {
  state ^= value + 0x9e3779b97f4a7c15ULL + (state << 6) + (state >> 2);
  state *= 0xbf58476d1ce4e5b9ULL;
  return state ^ (state >> 31);
}

}  // namespace

BucketTable::BucketTable(uint32_t buckets, uint32_t replicas)
    : _distributor(buckets, replicas), _current(buckets) {}

void BucketTable::count(const std::vector<ParticipantId>& replicas, int delta) {
  for (ParticipantId id : replicas) {
    uint32_t& held = _held[id];
    COWORKER_ASSERT(delta > 0 || held > 0);
    held = static_cast<uint32_t>(static_cast<int>(held) + delta);
    if (held == 0) _held.erase(id);
  }
  if (replicas.size() == 1) {
    uint32_t& alone = _alone[replicas[0]];
    COWORKER_ASSERT(delta > 0 || alone > 0);
    alone = static_cast<uint32_t>(static_cast<int>(alone) + delta);
    if (alone == 0) _alone.erase(replicas[0]);
  }
}

void BucketTable::set_government(uint32_t bucket, CurrentGovernment government) {
  CurrentGovernment& current = _current.at(bucket);
  if (current == government) return;
  COWORKER_ASSERT(government.step >= current.step);
  COWORKER_ASSERT(government.slot >= current.slot);
  count(current.replicas, -1);
  current = std::move(government);
  count(current.replicas, +1);
  _changes.push_back(GovernmentChange{current.slot, bucket});
}

bool BucketTable::sole_member(ParticipantId id) const { return _alone.count(id) != 0; }

bool BucketTable::holds_nothing(ParticipantId id) const { return _held.count(id) == 0; }

void BucketTable::apply(Slot slot, const Effect& effect, const MembershipState& state) {
  switch (effect.kind) {
    case Effect::Kind::arrived:
      _distributor.admit(effect.id);
      if (_held.empty()) {
        // The bootstrap (nobody holds anything yet): the first member holds
        // every bucket alone.
        for (uint32_t b = 0; b < buckets(); b++) set_government(b, {0, slot, {effect.id}});
      }
      break;
    case Effect::Kind::returned:
      _unreachable.erase(effect.id);
      _distributor.admit(effect.id);  // back by growth: the next steps grow it in
      break;
    case Effect::Kind::leaving:
      // (An unreachable member heard leaving is back: its buckets move away.)
      _unreachable.erase(effect.id);
      if (_distributor.is_eligible(effect.id)) _distributor.withdraw(effect.id);
      break;
    case Effect::Kind::departed:
      _unreachable.erase(effect.id);
      if (_distributor.is_eligible(effect.id)) _distributor.withdraw(effect.id);
      remove_member(slot, effect.id, heir_nonce_of(effect.nonce, state), false);
      break;
    case Effect::Kind::unreachable: {
      // Every migration in flight is void from here: a growth may have
      // joined the marked member as a newcomer, and its ack, proposed again
      // until it is decided or void, would otherwise wait for the member's
      // return — forever when it is down for good and stays marked (the
      // last survivor elsewhere), with the bucket's commits held up by the
      // joint acks (phaser-churn seed 37578). A bucket whose government
      // holds the member gets its new step from remove_member.
      std::vector<uint32_t> moving;
      for (uint32_t b = 0; b < buckets(); b++) {
        if (!has(_current[b].replicas, effect.id) && _current[b].replicas != target(b)) {
          moving.push_back(b);
        }
      }
      _unreachable.insert(effect.id);
      if (_distributor.is_eligible(effect.id)) _distributor.withdraw(effect.id);
      remove_member(slot, effect.id, heir_nonce_of(state.member(effect.id)->nonce, state), true);
      for (uint32_t b : moving) {
        CurrentGovernment bumped = _current[b];
        bumped.step++;
        bumped.slot = slot;
        set_government(b, std::move(bumped));
      }
      break;
    }
    case Effect::Kind::acks:
      for (const MigrationAck& ack : effect.acks) {
        if (!ack_valid(ack, state)) {
          _acks_void++;
          continue;
        }
        set_government(ack.bucket, {ack.step + 1, slot, ack.government});
        _acks_confirmed++;
      }
      break;
    case Effect::Kind::nothing:
    case Effect::Kind::undecodable:
    case Effect::Kind::retried:
    case Effect::Kind::refused:
    case Effect::Kind::reconfigured:
      break;
  }
  check_invariants();
}

// The nonce (data directory, incarnation) a removed member's copies are
// on, if they may be its heir's: not when that directory arrived anew
// since (a higher incarnation decided while the member still was one). A participant gives up its id
// before its departure only when its boot found damage (bucket/repair.h):
// its copies were made void and may have been reset and streamed in part
// since, under the new id, so none holds what the removed member acked
// (phaser-repair seed 1346297047: the heir's directory adopted a bucket
// from such a copy and lost a committed position). The arrival anew may
// also be decided after the removal: the holder itself then declines to
// adopt (Identity::void_through, membership_host.h step 7).
std::optional<consensus::Nonce> BucketTable::heir_nonce_of(const consensus::Nonce& nonce,
                                                           const consensus::MembershipState& state) {
  const auto seen = state.nonces().find(nonce.data_dir);
  if (seen != state.nonces().end() && seen->second.first > nonce.incarnation) return std::nullopt;
  return nonce;
}

// A departure (or an unreachable mark: only where another member survives)
// shrinks every current government the participant is in; the next member in
// government order leads where it led (the usurper). A government left with
// one member names the removed one its heir (the header), unless its copies
// cannot be (heir_nonce_of: none).
void BucketTable::remove_member(Slot slot, ParticipantId id, std::optional<consensus::Nonce> nonce,
                                bool keep_where_alone) {
  for (uint32_t b = 0; b < buckets(); b++) {
    const CurrentGovernment& current = _current[b];
    if (!has(current.replicas, id)) continue;
    if (keep_where_alone && current.replicas.size() == 1) continue;
    CurrentGovernment shrunk = current;
    shrunk.slot = slot;
    // A new step: every ack computed from the government before this
    // removal is void from now on. Otherwise an ack naming a member marked
    // unreachable (removed here, commits going on without it) would be
    // valid again at its return and put it back in the government without
    // the positions committed meanwhile (found by phaser-churn, seed 4).
    shrunk.step++;
    shrunk.replicas.erase(std::find(shrunk.replicas.begin(), shrunk.replicas.end(), id));
    COWORKER_ASSERT(!shrunk.replicas.empty() && current.heir == consensus::no_participant);
    if (shrunk.replicas.size() == 1 && nonce) {
      shrunk.heir = id;
      shrunk.heir_dir = nonce->data_dir;
      shrunk.heir_incarnation = nonce->incarnation;
    }
    set_government(b, std::move(shrunk));
  }
}

bool BucketTable::ack_valid(const MigrationAck& ack, const MembershipState& state) const {
  if (ack.bucket >= buckets()) return false;
  if (ack.step != _current[ack.bucket].step) return false;  // the step moved on: void
  if (ack.government.empty() || !distinct(ack.government)) return false;
  for (ParticipantId id : ack.government) {
    const consensus::Member* member = state.member(id);
    if (member == nullptr || member->status == MemberStatus::unreachable) return false;
  }
  return true;
}

std::optional<MigrationAck> BucketTable::next_step(uint32_t bucket) const {
  const CurrentGovernment& current = _current.at(bucket);
  if (current.replicas.empty() || _distributor.is_government(bucket, current.replicas)) {
    return std::nullopt;  // settled (the common case): nothing built
  }
  std::vector<ParticipantId> target = _distributor.government(bucket);
  if (target.empty()) return std::nullopt;
  // A bucket held by an unreachable member alone waits for its return: any
  // ack naming it with another member would be void.
  for (ParticipantId id : current.replicas) {
    if (_unreachable.count(id) != 0) return std::nullopt;
  }
  bool subset = true;
  for (ParticipantId id : target) subset &= has(current.replicas, id);
  MigrationAck ack{bucket, current.step, {}};
  if (subset) {
    ack.government = std::move(target);  // shrink, abdication, reorder
  } else {
    ack.government = current.replicas;  // growth: the current leader keeps leading meanwhile
    for (ParticipantId id : target) {
      if (!has(ack.government, id)) ack.government.push_back(id);
    }
  }
  COWORKER_ASSERT(ack.government != current.replicas);
  return ack;
}

std::vector<GovernmentChange> BucketTable::take_changes() { return std::exchange(_changes, {}); }

void BucketTable::grow_instantly(const std::vector<ParticipantId>& ids, Slot slot) {
  COWORKER_ASSERT(_distributor.eligible().empty());
  for (ParticipantId id : ids) _distributor.admit(id);
  for (uint32_t b = 0; b < buckets(); b++) set_government(b, {0, slot, target(b)});
  check_invariants();
}

void BucketTable::start_one_member(const std::vector<ParticipantId>& ids, Slot slot) {
  COWORKER_ASSERT(_distributor.eligible().empty());
  for (ParticipantId id : ids) _distributor.admit(id);
  for (uint32_t b = 0; b < buckets(); b++) {
    const std::vector<ParticipantId> full = target(b);
    COWORKER_ASSERT(!full.empty());
    set_government(b, {0, slot, {b % 2 == 0 ? full.front() : full.back()}});
  }
  check_invariants();
}

uint64_t BucketTable::digest() const {
  uint64_t hash = mix(buckets(), replicas());
  for (uint32_t b = 0; b < buckets(); b++) {
    for (ParticipantId id : _distributor.government(b)) hash = mix(hash, id);
    hash = mix(hash, 0xfeed);
    const CurrentGovernment& current = _current[b];
    hash = mix(mix(hash, current.step), current.slot);
    for (ParticipantId id : current.replicas) hash = mix(hash, id);
    hash = mix(mix(mix(hash, current.heir), current.heir_dir), current.heir_incarnation);
  }
  for (ParticipantId id : _unreachable) hash = mix(hash, id);
  return hash;
}

void BucketTable::encode(consensus::Writer& writer) const {
  _distributor.encode(writer);
  for (const CurrentGovernment& government : _current) {
    writer.u64(government.step);
    writer.u64(government.slot);
    writer.ids(government.replicas);
    writer.u64(government.heir);
    writer.u64(government.heir_dir);
    writer.u64(government.heir_incarnation);
  }
  writer.ids(std::vector<ParticipantId>(_unreachable.begin(), _unreachable.end()));
  writer.u64(_acks_confirmed);
  writer.u64(_acks_void);
}

bool BucketTable::decode(consensus::Reader& reader) {
  auto distributor = Distributor::decode(reader, buckets(), replicas());
  if (!distributor) return false;
  std::vector<CurrentGovernment> current(buckets());
  for (CurrentGovernment& government : current) {
    government.step = reader.u64();
    government.slot = reader.u64();
    government.replicas = reader.ids();
    government.heir = reader.u64();
    government.heir_dir = reader.u64();
    government.heir_incarnation = reader.u64();
    if (!reader.ok() || !distinct(government.replicas)) return false;
    if (government.heir != consensus::no_participant && government.replicas.size() != 1) return false;
  }
  const std::vector<ParticipantId> unreachable = reader.ids();
  const uint64_t confirmed = reader.u64();
  const uint64_t void_acks = reader.u64();
  if (!reader.ok()) return false;
  _unreachable = std::set<ParticipantId>(unreachable.begin(), unreachable.end());
  _distributor = std::move(*distributor);
  _current = std::move(current);
  _held.clear();
  _alone.clear();
  for (const CurrentGovernment& government : _current) count(government.replicas, +1);
  _changes.clear();
  for (uint32_t b = 0; b < buckets(); b++) _changes.push_back({_current[b].slot, b});
  _acks_confirmed = confirmed;
  _acks_void = void_acks;
  check_invariants();
  return true;
}

void BucketTable::check_invariants() const {
  _distributor.check_invariants();
  COWORKER_ASSERT(_current.size() == _distributor.buckets());
  for (const CurrentGovernment& government : _current) {
    COWORKER_ASSERT(distinct(government.replicas));
    if (government.heir != consensus::no_participant) {
      COWORKER_ASSERT(government.replicas.size() == 1 && government.replicas[0] != government.heir);
    }
  }
  for (ParticipantId id : _unreachable) COWORKER_ASSERT(!_distributor.is_eligible(id));
}

}  // namespace coworker::bucket
