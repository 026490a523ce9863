#include "tests/sim/network.h"

#include <algorithm>
#include <utility>

#include "consensus/assert.h"
#include "consensus/membership_codec.h"
#include "consensus/overloaded.h"
#include "consensus/paxos_codec.h"
#include "consensus/phaser_codec.h"

namespace coworker::sim {

namespace {

// What a message is once it went through its codec (issue 19 point 3): the
// receiver gets only what decoding the sender's bytes gives back, as over a
// server's peer link, so a field the codec drops or mangles reaches the
// state machines as it would in production. Bytes that do not decode are a
// codec bug, not a network fault: the server would drop the link.
template <class Message, class Decode>
Message through(const Message& message, Decode&& decode) {
  auto decoded = decode(consensus::encode(message));
  COWORKER_ASSERT(decoded.value.has_value());
  return std::move(*decoded.value);
}

Payload through_codecs(Payload payload) {
  std::visit(consensus::Overloaded{
                 [](consensus::Message& m) { m = through(m, consensus::decode_paxos_message); },
                 [](MemberPacket& p) {
                   p.message = through(p.message, consensus::decode_membership_message);
                 },
                 [](Probe&) {},  // the simulator's stand-in, no wire form
                 [](consensus::PhaserMessage& m) {
                   m = through(m, [](std::string_view bytes) {
                     return consensus::decode_phaser_message(bytes);
                   });
                 },
                 [](PhaserPacket& p) {
                   p.message = through(p.message, [](std::string_view bytes) {
                     return consensus::decode_phaser_message(bytes);
                   });
                 },
             },
             payload);
  return payload;
}

}  // namespace

Network::Network(consensus::Prng& prng, size_t nodes, NetworkOptions options)
    : _prng(prng),
      _nodes(nodes),
      _blocked_until((nodes + 1) * (nodes + 1), 0),
      _last_delivery((nodes + 1) * (nodes + 1), 0) {
  set_options(options);
}

void Network::set_options(NetworkOptions options) {
  COWORKER_ASSERT(options.delay_min >= 1);  // nothing arrives in the tick it was sent
  COWORKER_ASSERT(options.delay_min <= options.delay_max);
  COWORKER_ASSERT(options.drop_per_mille <= 1000);
  COWORKER_ASSERT(options.duplicate_per_mille <= 1000);
  COWORKER_ASSERT(options.stale_per_mille <= 1000);
  if (options.stale_per_mille > 0) COWORKER_ASSERT(options.stale_delay_max > 0);
  _options = options;
}

size_t Network::link(ParticipantId from, ParticipantId to) const {
  COWORKER_ASSERT(from >= 1);
  COWORKER_ASSERT(from <= _nodes);
  COWORKER_ASSERT(to >= 1);
  COWORKER_ASSERT(to <= _nodes);
  return from * (_nodes + 1) + to;
}

void Network::send(Tick now, ParticipantId from, ParticipantId to, Payload payload) {
  // To its own address only in membership mode: a participant that gave up
  // its id at a repair (disk.h) sees the old id a member, at its address,
  // until it is departed, and the server's peer link to it is a loopback.
  COWORKER_ASSERT(from != to || !std::holds_alternative<consensus::Message>(payload));
  _stats.sent++;
  if (_options.drop_per_mille > 0 && _prng.chance_per_mille(_options.drop_per_mille)) {
    _stats.dropped++;
    return;
  }
  if (_options.duplicate_per_mille > 0 && _prng.chance_per_mille(_options.duplicate_per_mille)) {
    _stats.duplicated++;
    enqueue(now, from, to, payload);
  }
  enqueue(now, from, to, std::move(payload));
}

void Network::enqueue(Tick now, ParticipantId from, ParticipantId to, Payload payload) {
  Tick deliver = now + _prng.between(_options.delay_min, _options.delay_max);
  if (_options.stale_per_mille > 0 && _prng.chance_per_mille(_options.stale_per_mille)) {
    // Held back past the link order: not part of the FIFO bookkeeping.
    deliver += _prng.between(1, _options.stale_delay_max);
    _stats.stale++;
  } else {
    Tick& last = _last_delivery[link(from, to)];
    if (!_options.reorder) deliver = std::max(deliver, last);  // FIFO link
    last = std::max(last, deliver);
  }
  COWORKER_ASSERT(deliver > now);
  _queue.push_back(Packet{from, to, deliver, _sequence++, through_codecs(std::move(payload))});
  std::push_heap(_queue.begin(), _queue.end(), Later{});
}

void Network::inject(Tick deliver, ParticipantId from, ParticipantId to, Payload payload) {
  link(from, to);  // checks the ids
  _queue.push_back(Packet{from, to, deliver, _sequence++, through_codecs(std::move(payload))});
  std::push_heap(_queue.begin(), _queue.end(), Later{});
}

void Network::block(ParticipantId from, ParticipantId to, Tick until) {
  Tick& blocked_until = _blocked_until[link(from, to)];
  blocked_until = std::max(blocked_until, until);
}

bool Network::blocked(ParticipantId from, ParticipantId to, Tick now) const {
  return now < _blocked_until[link(from, to)];
}

void Network::heal() { std::fill(_blocked_until.begin(), _blocked_until.end(), 0); }

}  // namespace coworker::sim
