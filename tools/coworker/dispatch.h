// Dispatch: a client request for a bucket, taken to wherever the bucket's
// leader is (DESIGN §3 "any participant", §4 the hop rule).
//
//   1. Appends try the bucket's core first: if its phaser leads (or runs its
//      leadership start, which queues them), they are appended there.
//   2. Otherwise core 0 says where the leader is, after catching up to the
//      slot the request carries (a hop's sender saw that table):
//        here     the table names us, the phaser is not there yet (the
//                 government is on its way to the core): park, go to 1;
//        peer     hop: the request goes over the peer link with our slot,
//                 hops + 1 and what is left of the deadline; the answer is
//                 the leader's. At hops_max we stop: 503;
//        nowhere  no leader now, or we do not serve: park until the table
//                 changes, go to 1.
//   3. At the deadline: 503 (unavailable, Retry-After). The outcome of an
//      append that timed out is unknown; the client's resubmission is
//      deduplicated (DESIGN §3), so a hop never doubles a message.
//   4. Hand-back: messages our phaser hands back as its leadership ends
//      (phaser.h step 6: an abdication, a usurp) go to 1 again, as a
//      resubmission on the client's behalf, until the deadline. So a
//      request queued at a leader that hands over is answered by the next
//      one, and no Outcome::handed_back ever leaves this function (nor
//      crosses a hop: the hop's receiver runs this same dispatch).
// Reads go to core 0 first (the read lease lives there), then to the
// bucket's core when we lead under the lease; `local=1` reads never come
// here. Parking is bounded (ClusterNode::parked_max) and wakes at the next
// tick at the latest, so a parked request notices its deadline.
//
// Runs on any core; every step on another core goes through submit_to, so a
// hop between two cores of one process never touches a socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "consensus/phaser_messages.h"
#include "reactor/task.h"
#include "tools/coworker/hop.h"

namespace coworker::server {

class Participant;

struct Budget {
  uint64_t slot = 0;  // the table the request was sent with (0: a client's)
  uint32_t hops = 0;  // hops taken so far
  std::chrono::steady_clock::time_point deadline;
};

// The request deadline of a client request arriving now.
Budget client_budget();

// The words of a 503 for a bucket whose only replica is marked unreachable.
std::string unreachable_words(uint32_t bucket, consensus::ParticipantId replica);

// What dispatch_append gives back: a result per message, in order, and
// when the bucket answered unavailable because its only replica is marked
// unreachable (DESIGN §2), which one, for the answer's words.
struct Placed {
  std::vector<consensus::MessageResult> results;
  consensus::ParticipantId unreachable = consensus::no_participant;
};

// One bucket's part of a window (or a single message), in order.
reactor::Task<Placed> dispatch_append(Participant& p, uint32_t bucket,
                                      std::vector<consensus::BucketEntry> messages, Budget budget);

// A read without local=1; the budget's deadline includes the query's wait_ms.
reactor::Task<ReadAnswer> dispatch_read(Participant& p, ReadHop query, Budget budget);

}  // namespace coworker::server
