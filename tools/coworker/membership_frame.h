// The payload of a membership frame (peer_frame.h, type 2): the sender's
// and the addressee's arrival ids, 8 bytes each (0: arriving, or "whoever
// is here" for a heartbeat), then the membership codec's bytes
// (consensus/membership_codec.h). Used by the ClusterNode and by the
// RecoveryBeacon (beacon.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "consensus/ids.h"
#include "consensus/membership_messages.h"

namespace coworker::server {

std::string membership_envelope(consensus::ParticipantId from, consensus::ParticipantId to,
                                const consensus::MembershipMessage& message);

struct MembershipEnvelope {
  consensus::ParticipantId from = consensus::no_participant;
  consensus::ParticipantId to = consensus::no_participant;
  std::string_view body;  // the membership codec's bytes, in the frame's payload
};
// Nothing when the payload is shorter than the two ids.
std::optional<MembershipEnvelope> open_membership_envelope(std::string_view payload);

}  // namespace coworker::server
