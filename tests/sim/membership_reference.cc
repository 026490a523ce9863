#include "tests/sim/membership_reference.h"

#include <fmt/core.h>

#include <algorithm>
#include <set>

#include "consensus/overloaded.h"

namespace coworker::sim {

using consensus::MemberStatus;

namespace {

bool contains(const std::vector<ParticipantId>& ids, ParticipantId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

const char* status_name(MemberStatus status) {
  switch (status) {
    case MemberStatus::active: return "active";
    case MemberStatus::leaving: return "leaving";
    case MemberStatus::unreachable: return "unreachable";
  }
  return "?";
}

}  // namespace

std::string ids_text(const std::vector<ParticipantId>& ids) {
  std::string text = "[";
  for (size_t i = 0; i < ids.size(); i++) text += fmt::format("{}{}", i ? " " : "", ids[i]);
  return text + "]";
}

void MembershipReference::start(const consensus::MembershipState& state,
                                const bucket::BucketTable& table) {
  if (state.bootstrapped()) _params = state.params();
  for (const auto& [id, member] : state.members()) {
    _members[id] = Member{member.address, member.nonce, member.status};
    uint64_t& incarnation = _incarnations[member.nonce.data_dir];
    incarnation = std::max(incarnation, member.nonce.incarnation);
  }
  for (uint32_t b = 0; b < buckets(); b++) {
    const bucket::CurrentGovernment& current = table.current(b);
    _governments[b] = Government{current.step, current.slot, current.replicas, current.heir,
                                 current.heir_dir, current.heir_incarnation};
  }
}

void MembershipReference::fold(Slot slot, const std::optional<consensus::MembershipEntry>& entry,
                               const Targets& target_before) {
  if (!entry) return;  // rule 7
  std::visit(
      consensus::Overloaded{
          [&](const consensus::Arrive& a) { arrive(slot, a); },
          [&](const consensus::Leave& leave) {  // rule 2
            auto it = _members.find(leave.id);
            if (it != _members.end()) it->second.status = MemberStatus::leaving;
          },
          [&](const consensus::Depart& depart) {  // rule 3
            auto it = _members.find(depart.id);
            if (it == _members.end()) return;
            if (alone_somewhere(depart.id)) {
              if (it->second.status != MemberStatus::unreachable) {
                mark(slot, depart.id, target_before);
              }
              return;
            }
            const consensus::Nonce nonce = it->second.nonce;
            _members.erase(it);
            leave_governments(slot, depart.id, heir_nonce_for(nonce), false);
          },
          [&](const consensus::Unreachable& unreachable) {  // rule 4
            auto it = _members.find(unreachable.id);
            if (it != _members.end() && it->second.status != MemberStatus::unreachable) {
              mark(slot, unreachable.id, target_before);
            }
          },
          [&](const consensus::Return& returned) {  // rule 5
            auto it = _members.find(returned.id);
            if (it != _members.end() && it->second.status == MemberStatus::unreachable) {
              it->second.status = MemberStatus::active;
            }
          },
          [&](const consensus::Acks& acks) {  // rule 6
            for (const consensus::MigrationAck& ack : acks.acks) {
              if (ack.bucket >= buckets() || ack.step != _governments[ack.bucket].step ||
                  ack.government.empty()) {
                continue;
              }
              const std::set<ParticipantId> named(ack.government.begin(), ack.government.end());
              bool valid = named.size() == ack.government.size();
              for (ParticipantId id : ack.government) {
                auto it = _members.find(id);
                valid = valid && it != _members.end() &&
                        it->second.status != MemberStatus::unreachable;
              }
              if (!valid) continue;
              const Government& before = _governments[ack.bucket];
              if (before.heir != 0 && !contains(ack.government, before.replicas[0])) _adoptions++;
              _governments[ack.bucket] = Government{ack.step + 1, slot, ack.government};
            }
          },
          [&](const consensus::Reconfigure&) {},
      },
      *entry);
}

// Rule 1.
void MembershipReference::arrive(Slot slot, const consensus::Arrive& a) {
  if (!_params) {
    if (slot != 1) return;
    _params = a.params;
  } else if (!(a.params == *_params)) {
    return;
  }
  auto seen = _incarnations.find(a.nonce.data_dir);
  if (seen != _incarnations.end() && a.nonce.incarnation <= seen->second) return;
  const bool first = std::all_of(_governments.begin(), _governments.end(),
                                 [](const Government& g) { return g.replicas.empty(); });
  _members[slot] = Member{a.address, a.nonce, MemberStatus::active};
  _incarnations[a.nonce.data_dir] = a.nonce.incarnation;
  if (first) {
    for (Government& g : _governments) g = Government{0, slot, {slot}};
  }
}

// Rule 4 (and rule 3's conversion).
void MembershipReference::mark(Slot slot, ParticipantId id, const Targets& target_before) {
  Member& member = _members.at(id);
  member.status = MemberStatus::unreachable;
  for (uint32_t b = 0; b < buckets(); b++) {
    Government& g = _governments[b];
    if (!contains(g.replicas, id) && g.replicas != target_before(b)) {
      g.step++;
      g.slot = slot;
    }
  }
  leave_governments(slot, id, heir_nonce_for(member.nonce), true);
}

// Rule 8: a removed member's directory names no heir once it arrived anew
// while the member still was one (its participant gave up the id after
// damage at rest: what the directory holds now is not what it acked).
std::optional<consensus::Nonce> MembershipReference::heir_nonce_for(
    const consensus::Nonce& nonce) const {
  const auto seen = _incarnations.find(nonce.data_dir);
  if (seen != _incarnations.end() && seen->second > nonce.incarnation) return std::nullopt;
  return nonce;
}

void MembershipReference::leave_governments(Slot slot, ParticipantId id,
                                            std::optional<consensus::Nonce> heir_nonce,
                                            bool keep_where_alone) {
  for (Government& g : _governments) {
    if (!contains(g.replicas, id) || (keep_where_alone && g.replicas.size() == 1)) continue;
    g.replicas.erase(std::find(g.replicas.begin(), g.replicas.end(), id));
    g.step++;
    g.slot = slot;
    if (g.replicas.size() == 1 && heir_nonce) {  // rule 8
      g.heir = id;
      g.heir_dir = heir_nonce->data_dir;
      g.heir_incarnation = heir_nonce->incarnation;
    }
  }
}

bool MembershipReference::heir_dir(uint64_t dir) const {
  return std::any_of(_governments.begin(), _governments.end(),
                     [&](const Government& g) { return g.heir != 0 && g.heir_dir == dir; });
}

bool MembershipReference::alone_somewhere(ParticipantId id) const {
  return std::any_of(_governments.begin(), _governments.end(), [&](const Government& g) {
    return g.replicas.size() == 1 && g.replicas[0] == id;
  });
}

std::optional<std::string> MembershipReference::agree(const consensus::MembershipState& state,
                                                      const bucket::BucketTable& table) const {
  if (state.members().size() != _members.size()) {
    return fmt::format("{} members, the log's {}", state.members().size(), _members.size());
  }
  for (const auto& [id, member] : state.members()) {
    auto it = _members.find(id);
    if (it == _members.end()) return fmt::format("{} is a member, not by the log", id);
    const Member& ref = it->second;
    if (member.status != ref.status || member.address != ref.address ||
        !(member.nonce == ref.nonce)) {
      return fmt::format("member {} is {} at {}, the log's {} at {}", id,
                         status_name(member.status), member.address, status_name(ref.status),
                         ref.address);
    }
  }
  for (uint32_t b = 0; b < buckets(); b++) {
    const bucket::CurrentGovernment& current = table.current(b);
    const Government& ref = _governments[b];
    if (current.heir != ref.heir || current.heir_dir != ref.heir_dir ||
        current.heir_incarnation != ref.heir_incarnation) {
      return fmt::format("bucket {}'s heir is {} (directory {:#x}.{}), the log's {} ({:#x}.{})", b,
                         current.heir, current.heir_dir, current.heir_incarnation, ref.heir,
                         ref.heir_dir, ref.heir_incarnation);
    }
    if (current.step != ref.step || current.replicas != ref.replicas || current.slot != ref.slot) {
      return fmt::format("bucket {} is at step {} with {} as of slot {}, the log's step {} with "
                         "{} as of slot {}",
                         b, current.step, ids_text(current.replicas), current.slot, ref.step,
                         ids_text(ref.replicas), ref.slot);
    }
  }
  return std::nullopt;
}

}  // namespace coworker::sim
