// The entries of the membership log (DESIGN §5) and their binary encoding.
//
// Plain values: each is encoded into the opaque bytes of a Paxos entry's
// value (membership_entry.cc; consensus/codec.h primitives), and decoded by
// every participant when the slot is decided. The encoding is versioned by
// its tag byte; an undecodable value is applied as nothing (a bug, counted
// and checked by the simulator, never an assertion: bytes come from disks).
//
//   arrive{address, nonce, params}  a participant asks in; its id = the slot
//   leave{id}                       graceful: out of every target at once
//   depart{id}                      out of the cluster (the last survivor of a
//                                   government is marked unreachable instead)
//   unreachable{id}                 out of targets and of governments with
//                                   another survivor; stays a member
//   return{id}                      an unreachable participant heard again
//   acks{[bucket, step, government]} migration steps confirmed, per bucket
//   reconfigure{basis}              the value of a Paxos reconfiguration: the
//                                   voters follow the rule at slot `basis`
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "consensus/ids.h"
#include "consensus/paxos_types.h"

namespace coworker::consensus {

// Identifies one attempt to arrive: the data directory and its incarnation
// counter (bumped and persisted before each new arrival). A retried arrival
// carries the same nonce and is decided once; a later re-arrival is new.
struct Nonce {
  uint64_t data_dir = 0;
  uint64_t incarnation = 0;
  friend auto operator<=>(const Nonce&, const Nonce&) = default;
};

// Fixed at bootstrap (DESIGN §1); an arrival with other values is refused.
struct ClusterParams {
  uint64_t cluster = 0;
  uint32_t buckets = 64;
  uint32_t replicas = 3;
  friend bool operator==(const ClusterParams&, const ClusterParams&) = default;
};

struct Arrive {
  std::string address;
  Nonce nonce;
  ClusterParams params;
  friend bool operator==(const Arrive&, const Arrive&) = default;
};
struct Leave {
  ParticipantId id = no_participant;
  friend bool operator==(const Leave&, const Leave&) = default;
};
struct Depart {
  ParticipantId id = no_participant;
  friend bool operator==(const Depart&, const Depart&) = default;
};
struct Unreachable {
  ParticipantId id = no_participant;
  friend bool operator==(const Unreachable&, const Unreachable&) = default;
};
struct Return {
  ParticipantId id = no_participant;
  friend bool operator==(const Return&, const Return&) = default;
};

// One bucket's migration step: `step` is the bucket's step number (the
// government it replaces), `government` the new one, leader first.
struct MigrationAck {
  uint32_t bucket = 0;
  uint64_t step = 0;
  std::vector<ParticipantId> government;
  friend bool operator==(const MigrationAck&, const MigrationAck&) = default;
};
struct Acks {
  std::vector<MigrationAck> acks;
  friend bool operator==(const Acks&, const Acks&) = default;
};

struct Reconfigure {
  Slot basis = 0;
  friend bool operator==(const Reconfigure&, const Reconfigure&) = default;
};

using MembershipEntry =
    std::variant<Arrive, Leave, Depart, Unreachable, Return, Acks, Reconfigure>;

// Upper bounds a decoder enforces (a value past them is malformed).
constexpr size_t address_bytes_max = 1024;
constexpr size_t government_size_max = 64;
constexpr size_t acks_max = 1 << 16;

std::string encode(const MembershipEntry& entry);
std::optional<MembershipEntry> decode_entry(std::string_view bytes);
const char* entry_name(const MembershipEntry& entry);
std::string describe(const MembershipEntry& entry);

}  // namespace coworker::consensus
