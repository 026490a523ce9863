// Paxos: the configuration schedule (steps 12-15 of paxos.h) — which voters
// govern which slot, who is a member, who may campaign, and which
// configurations a candidate must cover and a lease must count.
#include <algorithm>
#include <iterator>

#include "consensus/paxos.h"
#include "consensus/assert.h"

namespace coworker::consensus {

bool contains(const std::vector<ParticipantId>& sorted, ParticipantId id) {
  return std::binary_search(sorted.begin(), sorted.end(), id);
}

bool valid_voters(const std::vector<ParticipantId>& voters) {
  if (voters.empty() || voters.size() > voters_max || voters.size() % 2 == 0) return false;
  if (voters.front() == no_participant) return false;
  return std::adjacent_find(voters.begin(), voters.end(), std::greater_equal<ParticipantId>()) ==
         voters.end();
}

size_t majority_of(const std::vector<ParticipantId>& voters) {
  COWORKER_ASSERT(!voters.empty());
  return voters.size() / 2 + 1;
}

const std::vector<ParticipantId>& Paxos::voters_for(Slot slot) const {
  const auto it = _schedule.upper_bound(slot);
  COWORKER_ASSERT(it != _schedule.begin());  // pruned only below the compaction point
  return std::prev(it)->second.voters;
}

Slot Paxos::configuration_start(Slot slot) const {
  const auto it = _schedule.upper_bound(slot);
  COWORKER_ASSERT(it != _schedule.begin());
  return std::prev(it)->first;
}

const std::vector<ParticipantId>& Paxos::latest_voters() const {
  COWORKER_ASSERT(!_schedule.empty());
  return _schedule.rbegin()->second.voters;
}

// Step 12: a decided reconfiguration is scheduled α slots later if it still
// replaces the latest voters (compare and swap); otherwise it is void.
void Paxos::schedule_decided(Slot slot, const Entry& entry) {
  COWORKER_ASSERT(entry.reconfigures());
  COWORKER_ASSERT(slot == _decided_through);
  if (entry.replaces != latest_voters() || entry.voters == entry.replaces ||
      !valid_voters(entry.voters)) {
    _stats.reconfigurations_void++;
    return;
  }
  const Slot first = slot + alpha();
  // Keys grow with the deciding slot because α is the same everywhere.
  COWORKER_ASSERT(first > _schedule.rbegin()->first);
  _schedule.emplace(first, ScheduledVoters{slot, entry.voters});
  _stats.reconfigurations++;
  rebuild_members();
}

Schedule Paxos::schedule_at(Slot at) const {
  COWORKER_ASSERT(at >= _durable.snapshot.slot);
  COWORKER_ASSERT(at <= _decided_through);
  Schedule result;
  for (const auto& [first, scheduled] : _schedule) {
    if (scheduled.decided_at > at) break;  // decided later: not part of the state at `at`
    if (first <= at + 1) result.clear();   // it supersedes the ones before it from at + 1
    result.emplace(first, scheduled);
  }
  COWORKER_ASSERT(!result.empty());
  COWORKER_ASSERT(result.begin()->first <= at + 1);
  return result;
}

// Drops configurations that govern only compacted slots.
void Paxos::prune_schedule() {
  const Slot compacted = _durable.snapshot.slot;
  while (_schedule.size() > 1 && std::next(_schedule.begin())->first <= compacted + 1) {
    _schedule.erase(_schedule.begin());
  }
  rebuild_members();
}

void Paxos::set_members(std::vector<ParticipantId> members) {
  COWORKER_ASSERT(std::is_sorted(members.begin(), members.end()));
  _learners = std::move(members);
  rebuild_members();
  COWORKER_ASSERT(is_member(_self));
}

void Paxos::rebuild_members() {
  std::vector<ParticipantId> all = _learners;
  for (const auto& [first, scheduled] : _schedule) {
    all.insert(all.end(), scheduled.voters.begin(), scheduled.voters.end());
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  all.erase(std::remove(all.begin(), all.end(), no_participant), all.end());
  _members = std::move(all);
}

// A voter of some configuration governing a slot past the decided prefix.
bool Paxos::voter_anywhere() const { return voter_from(_decided_through + 1); }

bool Paxos::voter_from(Slot slot) const {
  auto it = _schedule.upper_bound(slot);
  if (it != _schedule.begin()) --it;
  for (; it != _schedule.end(); ++it) {
    if (contains(it->second.voters, _self)) return true;
  }
  return false;
}

bool Paxos::electable() const { return !_paused && voter_anywhere(); }

bool Paxos::accepts_slot(Slot slot) const {
  // A compacted slot is decided, and acked without storing (paxos.cc
  // on_accept); we may no longer know its voters, so we ack it in any case
  // (the leader counts only the slot's voters).
  if (slot <= _durable.snapshot.slot) return true;
  // Beyond decided + α the voters are not fixed by what we decided yet.
  if (slot > _decided_through + alpha()) return true;
  return contains(voters_for(slot), _self);
}

void Paxos::refresh_role() {
  if (_status != Status::follower) return;
  if (!electable()) {
    _election_timeout.stop();
  } else if (!_election_timeout.running()) {
    restart_election_timeout();
  }
}

void Paxos::pause(bool paused) {
  _paused = paused;
  if (paused && _status != Status::follower) step_down();
  refresh_role();
  COWORKER_ASSERT(!paused || !_election_timeout.running());
}

// Appends the voter sets governing slots >= from: the decided ones, then the
// tentative ones `pending` would schedule if this ballot keeps leading
// (applied in slot order, compare and swap, as decide() would). Pointers
// stay valid until the schedule or `pending` changes.
template <class Pending>
void Paxos::configurations_from(Slot from, const Pending& pending, Configurations& out) const {
  auto it = _schedule.upper_bound(from);
  if (it != _schedule.begin()) --it;
  for (; it != _schedule.end(); ++it) out.push_back(&it->second.voters);
  const std::vector<ParticipantId>* latest = &latest_voters();
  const auto consider = [&](Slot slot, const Entry& entry) {
    COWORKER_ASSERT(slot > _decided_through);
    if (!entry.reconfigures() || entry.replaces != *latest || entry.voters == *latest ||
        !valid_voters(entry.voters)) {
      return;
    }
    latest = &entry.voters;
    out.push_back(latest);
  };
  pending(consider);
  COWORKER_ASSERT(!out.empty());
}

// Step 13: what a candidate must cover.
Paxos::Configurations Paxos::phase1_configurations(const std::map<Slot, AcceptedEntry>& best) const {
  Configurations out;
  configurations_from(
      _prepare_from,
      [&](const auto& consider) {
        for (const auto& [slot, accepted] : best) consider(slot, accepted.entry);
      },
      out);
  return out;
}

// Step 14: what the leader's lease must count: its instances and what it
// recovered, merged in slot order (the two never share a slot).
Paxos::Configurations Paxos::lease_configurations() const {
  Configurations out;
  configurations_from(
      _decided_through + 1,
      [&](const auto& consider) {
        auto instance = _instances.begin();
        auto recovered = _recovered.upper_bound(_decided_through);
        while (instance != _instances.end() || recovered != _recovered.end()) {
          if (recovered == _recovered.end() ||
              (instance != _instances.end() && instance->first < recovered->first)) {
            consider(instance->first, instance->second.entry);
            ++instance;
          } else {
            consider(recovered->first, recovered->second);
            ++recovered;
          }
        }
      },
      out);
  return out;
}

// Per open slot >= from, the entry of the highest ballot any promiser
// accepted. Two promisers reporting one (slot, ballot) agree (invariant 2).
std::map<Slot, AcceptedEntry> Paxos::best_reported(Slot from) const {
  std::map<Slot, AcceptedEntry> best;
  for (const auto& [voter, promise] : _promises) {
    for (const AcceptedEntry& accepted : promise.accepted) {
      if (accepted.slot < from || accepted.slot <= _decided_through) continue;
      auto [it, fresh] = best.try_emplace(accepted.slot, accepted);
      if (fresh) continue;
      if (it->second.ballot == accepted.ballot) {
        COWORKER_ASSERT(it->second.entry == accepted.entry);
      } else if (it->second.ballot < accepted.ballot) {
        it->second = accepted;
      }
    }
  }
  return best;
}

bool Paxos::promised_majority(const std::vector<ParticipantId>& voters, bool with_self) const {
  size_t count = 0;
  for (ParticipantId voter : voters) {
    if (_promises.count(voter) != 0 || (with_self && voter == _self)) count++;
  }
  return count >= majority_of(voters);
}

}  // namespace coworker::consensus
