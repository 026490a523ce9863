// What membership nodes exchange, persist and put out: plain values, like
// paxos_types.h, ready for the binary peer codec.
//
// A MembershipMessage travels in an envelope that names the sender's and the
// addressee's arrival ids (0 for a participant that has none yet) and the
// sender's address; the transport delivers by address. A message for an id
// the receiver no longer has (it departed and arrived anew) is dropped,
// except a heartbeat: whoever is there answers it (a departed sender learns
// it is gone; MembershipNode::on_message).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "consensus/membership_entry.h"
#include "consensus/paxos_types.h"

namespace coworker::consensus {

// A newcomer asks a member to propose its arrival (retried with the same
// nonce until answered).
struct ArriveRequest {
  ClusterParams params;
  std::string address;
  Nonce nonce;
};

// The member's answer: the id and a snapshot of the membership state (the
// newcomer learns the log after it through Paxos), or a refusal. `gone`:
// this nonce's arrival was decided but its id departed since — arrive anew
// with an incarnation above `incarnation`.
struct ArriveAnswer {
  Nonce nonce;
  ParticipantId id = no_participant;
  Snapshot snapshot;
  std::string refusal;
  bool gone = false;
  uint64_t incarnation = 0;
};

// A member's heartbeat to the membership leader. `sent` is the member's own
// tick: the read lease the ack grants counts from it (DESIGN §3). Ticks
// start again at every boot, so `boot` (the member's Paxos boot counter,
// durable before anything of that boot is sent) says which boot's tick it is.
struct MemberHeartbeat {
  Tick sent = 0;
  Slot applied = 0;
  bool recovering = false;
  uint64_t boot = 0;
};

// The leader's ack: a read lease until sent + lease, valid once the member
// applied `slot` (the leader's decided slot); `sent` and `boot` echo the
// heartbeat, and only that boot of the member takes the lease. `gone`: the
// member departed (any member says so); `compacted`: then the sender's
// snapshot slot.
struct MemberAck {
  Tick sent = 0;
  Slot slot = 0;
  bool gone = false;
  Slot compacted = 0;
  uint64_t boot = 0;
};

// A bucket leader's report of a replica that owes it acks for the departure
// timeout (DESIGN §4).
struct SilentReport {
  ParticipantId replica = no_participant;
};

using MembershipMessage =
    std::variant<Message, ArriveRequest, ArriveAnswer, MemberHeartbeat, MemberAck, SilentReport>;

// ---- What must survive a crash ----

// Who this data directory is. Replaced whole by each record: a new id (or
// none) starts a fresh acceptor state.
struct Identity {
  uint64_t data_dir = 0;     // 0: never used
  uint64_t incarnation = 0;  // bumped, and persisted, before each new arrival
  ParticipantId id = no_participant;
  bool arriving = false;  // an arrival with this incarnation is under way
  // Without an id after a departure: the members' addresses as we last knew
  // them, where an arrival anew asks besides --join (the departed id's
  // acceptor state, which held them, is gone with it).
  std::vector<std::string> remembered;
  uint64_t remembered_cluster = 0;  // and the cluster they formed (0: none)
  // The copies this directory held under every incarnation up to this one
  // are void for a heir's adoption (bucket/membership_host.h step 7): a
  // boot that found damage gave up that incarnation's id (bucket/repair.h),
  // forgetting or voiding copies the removed member had acked, and the
  // log may name the removed member's directory a heir before it hears of
  // the arrival anew (phaser-repair seed 806933991). 0: none given up.
  uint64_t void_through = 0;
  friend bool operator==(const Identity&, const Identity&) = default;
};

using MembershipRecord = std::variant<PersistRecord, Identity>;

struct MembershipDurable {
  Identity identity;
  Durable paxos;  // the acceptor state of identity.id

  void apply(const MembershipRecord& record);
};

// ---- Outputs ----

struct MembershipSend {
  ParticipantId to = no_participant;
  std::string address;  // where the transport delivers it
  MembershipMessage message;
};

// What one call produced. The driver contract is Paxos's (paxos_types.h
// Output): `persist` durable before any `send` of this or a later output,
// and before it hands `installed` and `decided` back through
// MembershipNode::apply(), in order. `proposed` and `withdrawn` are for
// observers (the simulator's checkers): entries this node proposed, and
// leader-only proposals it gave up.
struct MembershipOutput {
  std::vector<MembershipRecord> persist;
  std::vector<MembershipSend> send;
  std::optional<Snapshot> installed;
  std::vector<Decided> decided;
  std::vector<Entry> proposed;
  std::vector<ProposalId> withdrawn;
  // Which Paxos of the node produced it (a participant that departs and
  // arrives anew starts another); MembershipNode::apply ignores others.
  uint64_t generation = 0;
  ParticipantId from = no_participant;  // the node's id when it produced this (0: arriving)

  bool empty() const {
    return persist.empty() && send.empty() && !installed && decided.empty() && proposed.empty() &&
           withdrawn.empty();
  }
};

}  // namespace coworker::consensus
