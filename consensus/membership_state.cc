#include "consensus/membership_state.h"

#include <cstring>
#include <utility>

#include "consensus/overloaded.h"
#include "consensus/assert.h"

namespace coworker::consensus {

namespace {

uint64_t mix(uint64_t state, uint64_t value) {
  state ^= value + 0x9e3779b97f4a7c15ULL + (state << 6) + (state >> 2);
  state *= 0xbf58476d1ce4e5b9ULL;
  return state ^ (state >> 31);
}

uint64_t fnv(std::string_view bytes) {
  uint64_t hash = 14695981039346656037ULL;
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 1099511628211ULL;
  }
  return hash;
}

void put64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; i++) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get64(std::string_view in, size_t at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; i++) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return value;
}

constexpr size_t header_bytes = 24;

}  // namespace

uint64_t chain_extend(uint64_t chain, const Entry& entry) {
  uint64_t hash = mix(entry.id.proposer, entry.id.boot);
  hash = mix(hash, entry.id.sequence);
  hash = mix(hash, fnv(entry.value));
  if (entry.reconfigures()) {
    for (ParticipantId id : entry.voters) hash = mix(hash, id);
    hash = mix(hash, 0xffff);
    for (ParticipantId id : entry.replaces) hash = mix(hash, id);
  }
  return mix(chain, hash);
}

const ClusterParams& MembershipState::params() const {
  COWORKER_ASSERT(_params.has_value());
  return *_params;
}

const Member* MembershipState::member(ParticipantId id) const {
  const auto it = _members.find(id);
  return it == _members.end() ? nullptr : &it->second;
}

std::optional<ParticipantId> MembershipState::arrival_of(const Nonce& nonce) const {
  const auto it = _nonces.find(nonce.data_dir);
  if (it == _nonces.end() || it->second.first != nonce.incarnation) return std::nullopt;
  return it->second.second;
}

std::vector<ParticipantId> MembershipState::ids() const {
  std::vector<ParticipantId> ids;
  ids.reserve(_members.size());
  for (const auto& [id, member] : _members) ids.push_back(id);
  return ids;
}

std::vector<ParticipantId> MembershipState::rule_voters() const {
  std::vector<ParticipantId> active;
  for (const auto& [id, member] : _members) {
    if (member.status == MemberStatus::active) active.push_back(id);
  }
  if (active.empty()) {
    // Everyone left is leaving (they cannot go: nobody takes their
    // buckets): they keep voting.
    for (const auto& [id, member] : _members) {
      if (member.status == MemberStatus::leaving) active.push_back(id);
    }
  }
  return first_voters(std::move(active));
}

std::vector<ParticipantId> MembershipState::first_voters(std::vector<ParticipantId> candidates) {
  size_t count = std::min<size_t>(candidates.size(), 5);
  if (count % 2 == 0 && count > 0) count--;
  candidates.resize(count);
  return candidates;
}

Effect MembershipState::apply(Slot slot, const Entry& entry, const GovernmentView& view) {
  COWORKER_ASSERT(slot == _applied + 1);
  _applied = slot;
  _chain = chain_extend(_chain, entry);
  Effect effect;
  if (entry.noop()) return effect;
  const std::optional<MembershipEntry> decoded = decode_entry(entry.value);
  if (!decoded) {
    effect.kind = Effect::Kind::undecodable;
    return effect;
  }
  std::visit(
      Overloaded{
          [&](const Arrive& arrive) { effect = this->arrive(slot, arrive); },
          [&](const Leave& leave) {
            Member* member = _members.count(leave.id) ? &_members.at(leave.id) : nullptr;
            if (member == nullptr || member->status == MemberStatus::leaving) return;
            member->status = MemberStatus::leaving;
            effect.kind = Effect::Kind::leaving;
            effect.id = leave.id;
          },
          [&](const Depart& depart) { effect = this->depart(depart.id, view); },
          [&](const Unreachable& unreachable) {
            Member* member =
                _members.count(unreachable.id) ? &_members.at(unreachable.id) : nullptr;
            if (member == nullptr || member->status == MemberStatus::unreachable) return;
            member->status = MemberStatus::unreachable;
            effect.kind = Effect::Kind::unreachable;
            effect.id = unreachable.id;
          },
          [&](const Return& returned) {
            Member* member = _members.count(returned.id) ? &_members.at(returned.id) : nullptr;
            if (member == nullptr || member->status != MemberStatus::unreachable) return;
            member->status = MemberStatus::active;
            effect.kind = Effect::Kind::returned;
            effect.id = returned.id;
          },
          [&](const Acks& acks) {
            effect.kind = Effect::Kind::acks;
            effect.acks = acks.acks;
          },
          [&](const Reconfigure& reconfigure) {
            effect.kind = Effect::Kind::reconfigured;
            effect.basis = reconfigure.basis;
          },
      },
      *decoded);
  check_invariants();
  return effect;
}

// Rules 1 and 2.
Effect MembershipState::arrive(Slot slot, const Arrive& arrive) {
  Effect effect;
  effect.nonce = arrive.nonce;
  if (!_params) {
    if (slot != 1) {
      effect.kind = Effect::Kind::refused;
      effect.reason = "no cluster was bootstrapped";
      return effect;
    }
    _params = arrive.params;
  } else if (!(arrive.params == *_params)) {
    effect.kind = Effect::Kind::refused;
    effect.reason = "cluster " + std::to_string(arrive.params.cluster) + " with " +
                    std::to_string(arrive.params.buckets) + " buckets and " +
                    std::to_string(arrive.params.replicas) + " replicas is not cluster " +
                    std::to_string(_params->cluster) + " with " +
                    std::to_string(_params->buckets) + " buckets and " +
                    std::to_string(_params->replicas) + " replicas";
    return effect;
  }
  const auto known = _nonces.find(arrive.nonce.data_dir);
  if (known != _nonces.end()) {
    if (arrive.nonce.incarnation < known->second.first) {
      effect.kind = Effect::Kind::refused;
      effect.reason = "incarnation " + std::to_string(arrive.nonce.incarnation) +
                      " is older than " + std::to_string(known->second.first);
      return effect;
    }
    if (arrive.nonce.incarnation == known->second.first) {
      effect.kind = Effect::Kind::retried;  // decided once: the id it got then
      effect.id = known->second.second;
      return effect;
    }
  }
  COWORKER_ASSERT(_members.count(slot) == 0);
  _members.emplace(slot, Member{slot, arrive.address, arrive.nonce, MemberStatus::active});
  _nonces[arrive.nonce.data_dir] = {arrive.nonce.incarnation, slot};
  effect.kind = Effect::Kind::arrived;
  effect.id = slot;
  return effect;
}

// Rule 4.
Effect MembershipState::depart(ParticipantId id, const GovernmentView& view) {
  Effect effect;
  const auto it = _members.find(id);
  if (it == _members.end()) return effect;
  effect.id = id;
  if (view.sole_member(id)) {
    if (it->second.status == MemberStatus::unreachable) return Effect{};
    it->second.status = MemberStatus::unreachable;
    effect.kind = Effect::Kind::unreachable;
    effect.converted = true;
    return effect;
  }
  effect.nonce = it->second.nonce;  // the heir's directory (bucket/table.h)
  _members.erase(it);
  effect.kind = Effect::Kind::departed;
  COWORKER_ASSERT(!is_member(id));
  return effect;
}

void MembershipState::encode(Writer& writer) const {
  std::string header(magic, 8);
  put64(header, _applied);
  put64(header, _chain);
  COWORKER_ASSERT(header.size() == header_bytes);
  writer.raw(header);
  writer.boolean(_params.has_value());
  if (_params) {
    writer.u64(_params->cluster);
    writer.u64(_params->buckets);
    writer.u64(_params->replicas);
  }
  writer.u64(_members.size());
  for (const auto& [id, member] : _members) {
    writer.u64(id);
    writer.bytes(member.address);
    writer.u64(member.nonce.data_dir);
    writer.u64(member.nonce.incarnation);
    writer.u8(static_cast<uint8_t>(member.status));
  }
  writer.u64(_nonces.size());
  for (const auto& [data_dir, known] : _nonces) {
    writer.u64(data_dir);
    writer.u64(known.first);
    writer.u64(known.second);
  }
}

std::optional<MembershipState::Header> MembershipState::header(std::string_view bytes) {
  if (bytes.size() < header_bytes || std::memcmp(bytes.data(), magic, 8) != 0) return std::nullopt;
  return Header{get64(bytes, 8), get64(bytes, 16)};
}

std::optional<MembershipState> MembershipState::decode(Reader& reader) {
  MembershipState state;
  std::string header;
  for (size_t i = 0; i < header_bytes && reader.ok(); i++) header.push_back(static_cast<char>(reader.u8()));
  const auto fixed = MembershipState::header(header);
  if (!reader.ok() || !fixed) return std::nullopt;
  state._applied = fixed->slot;
  state._chain = fixed->chain;
  if (reader.boolean()) {
    ClusterParams params;
    params.cluster = reader.u64();
    const uint64_t buckets = reader.u64();
    const uint64_t replicas = reader.u64();
    if (buckets > UINT32_MAX || replicas > UINT32_MAX) return std::nullopt;
    params.buckets = static_cast<uint32_t>(buckets);
    params.replicas = static_cast<uint32_t>(replicas);
    state._params = params;
  }
  const uint64_t members = reader.count(5);
  for (uint64_t i = 0; i < members && reader.ok(); i++) {
    Member member;
    member.id = reader.u64();
    member.address = reader.bytes();
    member.nonce.data_dir = reader.u64();
    member.nonce.incarnation = reader.u64();
    const uint8_t status = reader.u8();
    if (status > static_cast<uint8_t>(MemberStatus::unreachable)) return std::nullopt;
    member.status = static_cast<MemberStatus>(status);
    if (member.id == no_participant || member.id > state._applied) return std::nullopt;
    if (!state._members.emplace(member.id, member).second) return std::nullopt;
  }
  const uint64_t nonces = reader.count(3);
  for (uint64_t i = 0; i < nonces && reader.ok(); i++) {
    const uint64_t data_dir = reader.u64();
    const uint64_t incarnation = reader.u64();
    const uint64_t id = reader.u64();
    if (!state._nonces.emplace(data_dir, std::make_pair(incarnation, id)).second) return std::nullopt;
  }
  if (!reader.ok()) return std::nullopt;
  return state;
}

MembershipState MembershipState::genesis(const ClusterParams& params,
                                         const std::vector<Member>& members) {
  MembershipState state;
  state._params = params;
  for (const Member& member : members) {
    COWORKER_ASSERT(member.id == state._applied + 1);  // ids 1..N, each its own arrival slot
    state._applied = member.id;
    state._members.emplace(member.id, member);
    state._nonces[member.nonce.data_dir] = {member.nonce.incarnation, member.id};
  }
  state.check_invariants();
  return state;
}

void MembershipState::check_invariants() const {
  for (const auto& [id, member] : _members) {
    COWORKER_ASSERT(id == member.id);
    COWORKER_ASSERT(id != no_participant);
    COWORKER_ASSERT(id <= _applied);
  }
  if (!_members.empty()) COWORKER_ASSERT(_params.has_value());
}

}  // namespace coworker::consensus
