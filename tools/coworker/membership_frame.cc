#include "tools/coworker/membership_frame.h"

#include "consensus/codec.h"
#include "consensus/membership_codec.h"

namespace coworker::server {

std::string membership_envelope(consensus::ParticipantId from, consensus::ParticipantId to,
                                const consensus::MembershipMessage& message) {
  consensus::Writer writer;
  writer.u64(from);
  writer.u64(to);
  consensus::encode(writer, message);
  return writer.take();
}

std::optional<MembershipEnvelope> open_membership_envelope(std::string_view payload) {
  consensus::Reader reader(payload);
  MembershipEnvelope envelope;
  envelope.from = reader.u64();
  envelope.to = reader.u64();
  if (!reader.ok()) return std::nullopt;
  envelope.body = payload.substr(payload.size() - reader.left());
  return envelope;
}

}  // namespace coworker::server
