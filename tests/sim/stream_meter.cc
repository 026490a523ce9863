#include "tests/sim/stream_meter.h"

#include <fmt/core.h>

#include <algorithm>

#include "consensus/phaser_codec.h"

namespace coworker::sim {

StreamMeter::Acclimation& StreamMeter::acclimation(uint32_t bucket, ParticipantId to,
                                                   const consensus::Promise& promise) {
  Acclimation& a = _open[{bucket, to}];
  if (a.promise != promise) {  // rule 1
    a = Acclimation{};
    a.promise = promise;
  }
  return a;
}

void StreamMeter::told(ParticipantId from, const consensus::CatchupAck& ack, Disk disk,
                       uint64_t life) {
  Acclimation& a = acclimation(ack.bucket, from, ack.promise);
  if (a.resets != disk.resets) {
    a.holds = a.offered = 0;  // rule 2: what a copy reset since told is forgotten
    a.resets = disk.resets;
  }
  if (life < a.offer_life) return;  // rule 2: from before the restart that offers
  if (ack.offer) {
    a.offered = ack.end;
    a.offer_life = life;
  } else {
    a.holds = std::max(a.holds, ack.end);
  }
  a.offer_last = ack.offer.has_value();
}

std::optional<std::string> StreamMeter::sent(ParticipantId to,
                                             const consensus::PhaserMessage& message, Disk disk) {
  const auto* catchup = std::get_if<consensus::Catchup>(&message);
  const auto* snapshot = std::get_if<consensus::CatchupSnapshot>(&message);
  if (catchup == nullptr && snapshot == nullptr) return std::nullopt;  // not a stream
  const uint32_t bucket = consensus::bucket_of(message);
  Acclimation& a =
      acclimation(bucket, to, catchup != nullptr ? catchup->promise : snapshot->state.promise);
  if (catchup != nullptr && catchup->writes.empty() && !catchup->discard) {
    // A probe (step 9a): the leader starts over, knowing nothing of the
    // newcomer's end (a new growth), and what it is told from now counts.
    a.holds = a.offered = 0;
    a.offer_last = false;
  }
  const bool told_still = a.resets == disk.resets;
  const consensus::Position holds = told_still ? std::min(a.holds, disk.held) : 0;
  const consensus::Position offered = told_still ? std::min(a.offered, disk.held) : 0;
  std::string what;
  const auto count = [&](uint64_t bytes, consensus::Position end) {  // rule 4
    what += fmt::format(" {}:{}", end, bytes);
    const bool resent = a.offer_last ? end < offered : end <= holds;
    (resent ? a.resent : a.needed) += bytes;
  };
  if (catchup != nullptr) {
    for (const consensus::WritePtr& write : catchup->writes) {
      what += fmt::format(" [{},{})", write->first, write->end());
      if (!a.writes.insert({write->first, write->checksum}).second) continue;  // rule 3
      count(consensus::encode(consensus::PhaserMessage{write}).size(), write->end());
    }
  } else if (a.snapshots.insert(snapshot->state.commit_end).second) {
    count(consensus::encode(message).size(), snapshot->state.commit_end);
  }
  if (a.resent <= a.needed / 10) return std::nullopt;  // rule 5
  return fmt::format(
      "bucket {}: the acclimation of {} under promise {} streamed {} bytes it had told it held "
      "for {} it lacked, more than a tenth (told: holds {}, offered {}; this message, "
      "end:bytes:{})",
      bucket, to, a.promise.to_string(), a.resent, a.needed, holds, offered, what);
}

}  // namespace coworker::sim
