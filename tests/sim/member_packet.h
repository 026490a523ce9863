// The simulator's membership traffic (network.h Payload alternatives).
//
// Hosts (network addresses 1..H) carry participants whose arrival ids change
// when they depart and arrive anew, so membership packets name the ids
// (MemberPacket: the envelope of consensus/membership_messages.h). Probes
// stand in for the phasers' write/ack traffic, which does not exist yet: a
// bucket leader probes the replicas of its current and next governments,
// and reports the ones that stay silent (DESIGN §4), and the simulated
// migration executor grows a bucket only onto replicas that answer.
#pragma once

#include "consensus/membership_messages.h"

namespace coworker::sim {

struct MemberPacket {
  consensus::ParticipantId from = consensus::no_participant;  // 0: a newcomer
  consensus::ParticipantId to = consensus::no_participant;
  consensus::MembershipMessage message;
};

struct Probe {
  consensus::ParticipantId from = consensus::no_participant;
  consensus::ParticipantId to = consensus::no_participant;
  bool reply = false;
};

}  // namespace coworker::sim
