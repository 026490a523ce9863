// Network: the simulated links between participants, with fault injection.
//
// One Network per Simulation, owned by it. Packets are plain values in a
// priority queue ordered by (delivery tick, send sequence), so delivery order
// is a function of the seed alone. Faults, all drawn from the Prng passed in:
//   - drop and duplicate, per packet, at send time;
//   - delay: uniform in [delay_min, delay_max] ticks; without `reorder`
//     each directed link stays FIFO (a packet never overtakes an earlier one
//     on its link), with it every packet draws its own delay;
//   - stale packets: a few packets are held back for long (up to
//     stale_delay_max ticks) whatever the link order, so messages of
//     deposed leaders and old ballots arrive long after the fact;
//   - partitions: a directed link (from, to) can be blocked until a tick;
//     blocking both directions is a symmetric partition, one direction an
//     asymmetric one. A blocked link drops packets at delivery time, so
//     packets in flight when a partition starts are lost too.
// A packet addressed to a participant that is down when it arrives is lost
// (the Simulation decides that; the network only delivers).
#pragma once

#include <algorithm>
#include <cstdint>
#include <variant>
#include <vector>

#include "consensus/paxos_types.h"
#include "consensus/phaser_messages.h"
#include "consensus/prng.h"
#include "tests/sim/member_packet.h"

namespace coworker::sim {

using consensus::ParticipantId;
using consensus::Tick;

// What travels between participants: one alternative per hosted protocol.
// (Membership: member_packet.h.)
// A phaser message between arrival ids (the membership families: a host
// that arrived anew serves under another id than its host number).
struct PhaserPacket {
  ParticipantId from = 0;
  ParticipantId to = 0;
  consensus::PhaserMessage message;
  uint64_t life = 0;  // the sending host's boot (its incarnation) when sent
};
using Payload =
    std::variant<consensus::Message, MemberPacket, Probe, consensus::PhaserMessage, PhaserPacket>;

struct Packet {
  ParticipantId from = 0;
  ParticipantId to = 0;
  Tick deliver = 0;
  uint64_t sequence = 0;
  Payload payload;
};

struct NetworkOptions {
  uint32_t drop_per_mille = 0;
  uint32_t duplicate_per_mille = 0;
  Tick delay_min = 1;
  Tick delay_max = 1;
  bool reorder = false;
  uint32_t stale_per_mille = 0;
  Tick stale_delay_max = 0;
};

class Network {
 public:
  struct Stats {
    uint64_t sent = 0;
    uint64_t dropped = 0;  // at send (loss) or at delivery (partition)
    uint64_t duplicated = 0;
    uint64_t stale = 0;
    uint64_t delivered = 0;
  };

  Network(consensus::Prng& prng, size_t nodes, NetworkOptions options);

  void set_options(NetworkOptions options);
  const NetworkOptions& options() const { return _options; }

  void send(Tick now, ParticipantId from, ParticipantId to, Payload payload);
  // Queues a packet for tick `deliver`, without drop, duplication or delay
  // draws (tests craft messages this way). Partitions still apply.
  void inject(Tick deliver, ParticipantId from, ParticipantId to, Payload payload);

  // Blocks the directed link from → to until tick `until` (exclusive).
  void block(ParticipantId from, ParticipantId to, Tick until);
  bool blocked(ParticipantId from, ParticipantId to, Tick now) const;
  void heal();  // every link open again

  // Pops every packet due at or before `now`, in order; `deliver(packet)` is
  // called for those whose link is open, the rest are dropped.
  template <class Deliver>
  void deliver_due(Tick now, Deliver&& deliver) {
    while (!_queue.empty() && _queue.front().deliver <= now) {
      std::pop_heap(_queue.begin(), _queue.end(), Later{});
      Packet packet = std::move(_queue.back());
      _queue.pop_back();
      if (blocked(packet.from, packet.to, now)) {
        _stats.dropped++;
        continue;
      }
      _stats.delivered++;
      deliver(packet);
    }
  }

  size_t in_flight() const { return _queue.size(); }
  const Stats& stats() const { return _stats; }

 private:
  struct Later {
    bool operator()(const Packet& a, const Packet& b) const {
      if (a.deliver != b.deliver) return a.deliver > b.deliver;
      return a.sequence > b.sequence;
    }
  };
  size_t link(ParticipantId from, ParticipantId to) const;
  void enqueue(Tick now, ParticipantId from, ParticipantId to, Payload payload);

  consensus::Prng& _prng;
  size_t _nodes;
  NetworkOptions _options;
  std::vector<Packet> _queue;        // a min-heap by (deliver, sequence): keys are unique
  std::vector<Tick> _blocked_until;  // per directed link
  std::vector<Tick> _last_delivery;  // per directed link, for FIFO links
  uint64_t _sequence = 0;
  Stats _stats;
};

}  // namespace coworker::sim
