// RecoveryBeacon: a restarted participant's heartbeats while it replays its
// log (boot.h step 2), so the membership keeps it instead of departing it
// for silence. DESIGN §3: a `recovering` participant, answering heartbeats
// while it replays, is departed only after --recovery-timeout-ms
// (consensus/membership_node.h rule 3: reports about a recovering member
// count only after the recovery timeout; silence still departs it).
//
// Core 0 runs it from the start of the process until the replay is done,
// then hands its transport, still listening, to the ClusterNode (closed
// instead when the process stops during the replay):
//   1. From the boot hint (boot.h step 1), every --heartbeat-ms:
//      MemberHeartbeat{sent: its own count, applied: 0, recovering,
//      boot: the hint's} to every member the hint knows, addressed to
//      "whoever is here" (to 0): the membership leader notes the member
//      heard and recovering; any member answers a departed id that it is
//      gone.
//   2. It claims nothing. Applied 0: never the slot that returns a member
//      marked unreachable (the node that follows does that, once it applied
//      the mark). It holds no read lease and takes no ack as one; its boot
//      is the one before this start (the membership node bumps it at
//      start), so no ack of its heartbeats counts for the node either.
//   3. Every frame that comes in is dropped: Paxos and the phasers resend.
//      An ack saying the id is gone is logged once and ends the heartbeats;
//      the participant arrives anew once the replay is done, as it would
//      have anyway.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "reactor/net.h"
#include "reactor/result.h"
#include "reactor/task.h"
#include "tools/coworker/boot.h"
#include "tools/coworker/peer.h"

namespace coworker::server {

class RecoveryBeacon {
 public:
  // `heartbeat`: its connect timeout is at most that (connect_timeout()),
  // so close() never waits longer.
  RecoveryBeacon(BootHint hint, reactor::Milliseconds heartbeat);
  RecoveryBeacon(const RecoveryBeacon&) = delete;
  RecoveryBeacon& operator=(const RecoveryBeacon&) = delete;
  ~RecoveryBeacon();

  // Listens on --peer-listen (peers dial it; what they send is dropped).
  Result<void, std::string> listen(const reactor::Endpoint& peer_listen);
  // Step 1: one heartbeat to every member the hint knows.
  void beat();
  // Once the replay is done: no more heartbeats, and the transport, still
  // listening with its links open, given away as a fresh one would start
  // (no cluster, no id: the ClusterNode sets them); what comes in until its
  // new owner takes it over is dropped.
  std::unique_ptr<PeerTransport> hand_over();
  // When the process stops during the replay: ends the transport and waits.
  reactor::Task<void> close();

  uint64_t beats() const { return _beats; }
  const BootHint& hint() const { return _hint; }

 private:
  void on_frame(const PeerInfo& from, FrameType type, std::string_view payload);
  reactor::Milliseconds connect_timeout() const;

  BootHint _hint;
  reactor::Milliseconds _heartbeat;
  std::unique_ptr<PeerTransport> _peers;
  uint64_t _beats = 0;
  bool _told_gone = false;
};

}  // namespace coworker::server
