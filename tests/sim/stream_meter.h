// StreamMeter: an acclimation streams what its newcomer lacks, not the
// whole log again (issue 11 point 9; phaser.h step 9).
//
// One per PhaserLayer. It hears every Catchup and CatchupSnapshot a host
// sends and every CatchupAck a host's phasers are handed (Simulation::send
// and ::deliver), and judges what is streamed by what the newcomer had told
// its leader, bounded by the newcomer's disk — never by what the leader's
// code believes:
//   1. An acclimation is (bucket, newcomer id, the leader's promise): a new
//      promise (a new leader, or the same one after a restart) opens
//      another.
//   2. Told: what the newcomer's CatchupAcks under that promise, handed to
//      the leader's phasers, said: the highest end it holds, or, when the
//      newest of them was an offer (step 9f: a copy its leader must compare
//      before believing it, after a restart or in a new growth), the
//      offer's end, below which it holds everything but the write it is
//      compared by. A reset of the copy since (a wrong offer dropped, a
//      repair) forgets what was told. Never above what the disk holds of
//      the log (the checkers' own fold, phaser_reference.h; no further than
//      a planted write). An ack sent in an earlier boot of the newcomer
//      than an offer already told is stale (the network delayed it past
//      the restart that made the copy an offer): it tells nothing. A probe (step 9a, an empty Catchup) starts the
//      told over: the leader asks because it knows nothing (a new growth
//      under the same promise), and an old answer may come first.
//   3. Each write a Catchup carries is counted once per acclimation, by its
//      encoded bytes (the peer codec's); a snapshot once per end. A repeat
//      (the chunk or its ack lost, or the newcomer's disk slower than the
//      leader's resend) is the transport's retry, not a stream.
//   4. Counted bytes are *resent* when what they carry ends within what was
//      told when they were sent (at or below the end held; below an
//      offer's end), *needed* otherwise.
//   5. Bound, after every message: resent ≤ needed / 10. So what an
//      acclimation streams is within 1.1× of what its newcomer lacked of
//      the bucket's live data (its committed writes above its end, or the
//      snapshot in their place), plus the one write an offer is compared by.
// Costs: one encode per write first sent in a Catchup, and sets of the
// writes counted, per acclimation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "consensus/phaser_messages.h"
#include "tests/sim/network.h"

namespace coworker::sim {

class StreamMeter {
 public:
  // What the newcomer's disk holds of the log now (rule 2's bound), and
  // its resets so far.
  struct Disk {
    consensus::Position held = 0;
    uint64_t resets = 0;
  };

  // A CatchupAck from `from` handed to its leader's phasers, sent in its
  // host's boot `life`.
  void told(ParticipantId from, const consensus::CatchupAck& ack, Disk disk, uint64_t life);
  // A message sent to `to`; the violation, if the bound (rule 5) no longer
  // holds.
  std::optional<std::string> sent(ParticipantId to, const consensus::PhaserMessage& message,
                                  Disk disk);

 private:
  struct Acclimation {
    consensus::Promise promise;
    consensus::Position holds = 0;    // told held: every write ending at or below
    consensus::Position offered = 0;  // the newest offer: every write ending below
    bool offer_last = false;          // the newest told was an offer
    uint64_t offer_life = 0;          // the newcomer's boot that sent it
    uint64_t resets = 0;              // the copy's resets when told
    std::set<std::pair<consensus::Position, uint32_t>> writes;  // (first, checksum) counted
    std::set<consensus::Position> snapshots;                    // ends counted
    uint64_t needed = 0;
    uint64_t resent = 0;
  };
  Acclimation& acclimation(uint32_t bucket, ParticipantId to, const consensus::Promise& promise);

  std::map<std::pair<uint32_t, ParticipantId>, Acclimation> _open;
};

}  // namespace coworker::sim
