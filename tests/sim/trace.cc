#include "tests/sim/trace.h"

#include <fmt/core.h>

#include "consensus/overloaded.h"
#include "tests/sim/phaser_trace.h"

namespace coworker::sim {

namespace {

uint64_t ballot_word(const consensus::Ballot& ballot) { return (ballot.round << 8) ^ ballot.node; }

}  // namespace

uint64_t mix64(uint64_t state, uint64_t value) {
  state ^= value + 0x9e3779b97f4a7c15ULL + (state << 6) + (state >> 2);
  state *= 0xbf58476d1ce4e5b9ULL;
  return state ^ (state >> 31);
}

void Trace::mix(uint64_t value) { _digest = mix64(_digest, value); }

void Trace::event(Tick tick, std::string_view name, uint64_t a, uint64_t b, uint64_t c, uint64_t d,
                  uint64_t e, uint64_t f) {
  mix(tick);
  mix(digest_bytes(name));
  for (uint64_t value : {a, b, c, d, e, f}) mix(value);
}

void Trace::note(Tick tick, std::string_view text) const {
  if (_verbose) fmt::print("{:>6} {}\n", tick, text);
}

uint64_t digest_bytes(std::string_view bytes, uint64_t seed) {
  uint64_t hash = 14695981039346656037ULL ^ seed;
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 1099511628211ULL;
  }
  return hash;
}

uint64_t digest_entry(const consensus::Entry& entry) {
  uint64_t hash = mix64(entry.id.proposer, entry.id.boot);
  hash = mix64(hash, entry.id.sequence);
  return mix64(hash, digest_bytes(entry.value));
}

uint64_t digest_message(const consensus::Message& message) {
  uint64_t hash = mix64(0, message.index());
  std::visit(consensus::Overloaded{
                 [&](const consensus::Prepare& m) {
                   hash = mix64(mix64(hash, ballot_word(m.ballot)), m.from);
                 },
                 [&](const consensus::Promised& m) {
                   hash = mix64(mix64(hash, ballot_word(m.ballot)), m.accepted.size());
                   hash = mix64(hash, m.compacted_through);
                 },
                 [&](const consensus::Reject& m) {
                   hash = mix64(mix64(hash, ballot_word(m.ballot)), ballot_word(m.promised));
                 },
                 [&](const consensus::Accept& m) {
                   hash = mix64(mix64(hash, ballot_word(m.ballot)), m.decided_through);
                   for (const auto& entry : m.entries) {
                     hash = mix64(mix64(hash, entry.slot), digest_entry(entry.entry));
                   }
                 },
                 [&](const consensus::Accepted& m) {
                   hash = mix64(hash, ballot_word(m.ballot));
                   for (auto slot : m.slots) hash = mix64(hash, slot);
                 },
                 [&](const consensus::Heartbeat& m) {
                   hash = mix64(mix64(hash, ballot_word(m.ballot)), m.decided_through);
                 },
                 [&](const consensus::HeartbeatAck& m) {
                   hash = mix64(mix64(hash, ballot_word(m.ballot)), m.decided_through);
                 },
                 [&](const consensus::CatchUp& m) { hash = mix64(hash, m.from); },
                 [&](const consensus::Learn& m) {
                   hash = mix64(mix64(hash, m.snapshot.slot), m.first);
                   hash = mix64(hash, m.entries.size());
                 },
                 [&](const consensus::Forward& m) { hash = mix64(hash, m.entries.size()); },
                 [&](const consensus::Forwarded& m) { hash = mix64(hash, m.decided.size()); },
             },
             message);
  return hash;
}

const char* message_name(const consensus::Message& message) {
  static constexpr const char* names[] = {"prepare",  "promise",   "reject",   "accept",
                                          "accepted", "heartbeat", "hb_ack",   "catch_up",
                                          "learn",    "forward",   "forwarded"};
  static_assert(std::size(names) == std::variant_size_v<consensus::Message>);
  return names[message.index()];
}

std::string describe_message(const consensus::Message& message) {
  const auto ballot = [](const consensus::Ballot& b) {
    return fmt::format("{}.{}", b.round, b.node);
  };
  return std::visit(
      consensus::Overloaded{
          [&](const consensus::Prepare& m) {
            return fmt::format("b={} from={}", ballot(m.ballot), m.from);
          },
          [&](const consensus::Promised& m) {
            return fmt::format("b={} accepted={} compacted={}", ballot(m.ballot), m.accepted.size(),
                               m.compacted_through);
          },
          [&](const consensus::Reject& m) {
            return fmt::format("b={} promised={}", ballot(m.ballot), ballot(m.promised));
          },
          [&](const consensus::Accept& m) {
            return fmt::format("b={} commit={} slots={}..{}", ballot(m.ballot), m.decided_through,
                               m.entries.empty() ? 0 : m.entries.front().slot,
                               m.entries.empty() ? 0 : m.entries.back().slot);
          },
          [&](const consensus::Accepted& m) {
            return fmt::format("b={} slots={}", ballot(m.ballot), m.slots.size());
          },
          [&](const consensus::Heartbeat& m) {
            return fmt::format("b={} commit={}", ballot(m.ballot), m.decided_through);
          },
          [&](const consensus::HeartbeatAck& m) {
            return fmt::format("b={} decided={}", ballot(m.ballot), m.decided_through);
          },
          [&](const consensus::CatchUp& m) { return fmt::format("from={}", m.from); },
          [&](const consensus::Learn& m) {
            return fmt::format("snapshot={} first={} n={}", m.snapshot.slot, m.first,
                               m.entries.size());
          },
          [&](const consensus::Forward& m) { return fmt::format("n={}", m.entries.size()); },
          [&](const consensus::Forwarded& m) { return fmt::format("n={}", m.decided.size()); },
      },
      message);
}

// ---- Payloads: Paxos messages, membership envelopes, probes ----

uint64_t digest_payload(const Payload& payload) {
  return std::visit(
      consensus::Overloaded{
          [](const consensus::Message& message) { return digest_message(message); },
          [](const MemberPacket& packet) {
            uint64_t hash = mix64(mix64(0x6d656d, packet.from), packet.to);
            hash = mix64(hash, packet.message.index());
            if (const auto* message = std::get_if<consensus::Message>(&packet.message)) {
              hash = mix64(hash, digest_message(*message));
            } else if (const auto* ack = std::get_if<consensus::MemberAck>(&packet.message)) {
              hash = mix64(mix64(mix64(hash, ack->sent), ack->slot), ack->gone);
            } else if (const auto* beat = std::get_if<consensus::MemberHeartbeat>(&packet.message)) {
              hash = mix64(mix64(mix64(hash, beat->sent), beat->applied), beat->recovering);
            } else if (const auto* answer = std::get_if<consensus::ArriveAnswer>(&packet.message)) {
              hash = mix64(mix64(hash, answer->id), answer->snapshot.slot);
            }
            return hash;
          },
          [](const Probe& probe) {
            return mix64(mix64(mix64(0x70726f, probe.from), probe.to), probe.reply);
          },
          [](const consensus::PhaserMessage& message) { return digest_phaser_message(message); },
          [](const PhaserPacket& packet) {
            return mix64(mix64(digest_phaser_message(packet.message), packet.from), packet.to);
          },
      },
      payload);
}

const char* payload_name(const Payload& payload) {
  static constexpr const char* members[] = {"paxos",        "arrive_request", "arrive_answer",
                                            "member_beat",  "member_ack",     "silent_report"};
  static_assert(std::size(members) == std::variant_size_v<consensus::MembershipMessage>);
  return std::visit(consensus::Overloaded{
                        [](const consensus::Message& message) { return message_name(message); },
                        [](const MemberPacket& packet) {
                          if (const auto* m = std::get_if<consensus::Message>(&packet.message)) {
                            return message_name(*m);
                          }
                          return members[packet.message.index()];
                        },
                        [](const Probe& probe) { return probe.reply ? "pong" : "probe"; },
                        [](const consensus::PhaserMessage& message) {
                          return phaser_message_name(message);
                        },
                        [](const PhaserPacket& packet) {
                          return phaser_message_name(packet.message);
                        },
                    },
                    payload);
}

std::string describe_payload(const Payload& payload) {
  return std::visit(
      consensus::Overloaded{
          [](const consensus::Message& message) { return describe_message(message); },
          [](const MemberPacket& packet) {
            std::string text = fmt::format("[{}->{}] ", packet.from, packet.to);
            std::visit(consensus::Overloaded{
                           [&](const consensus::Message& m) { text += describe_message(m); },
                           [&](const consensus::ArriveRequest& r) {
                             text += fmt::format("nonce={}.{} at {}", r.nonce.data_dir,
                                                 r.nonce.incarnation, r.address);
                           },
                           [&](const consensus::ArriveAnswer& a) {
                             text += fmt::format("nonce={}.{} id={} snapshot={} refusal='{}'",
                                                 a.nonce.data_dir, a.nonce.incarnation, a.id,
                                                 a.snapshot.slot, a.refusal);
                           },
                           [&](const consensus::MemberHeartbeat& h) {
                             text += fmt::format("sent={} applied={} recovering={}", h.sent,
                                                 h.applied, h.recovering);
                           },
                           [&](const consensus::MemberAck& a) {
                             text += fmt::format("sent={} slot={} gone={}", a.sent, a.slot, a.gone);
                           },
                           [&](const consensus::SilentReport& r) {
                             text += fmt::format("replica={}", r.replica);
                           },
                       },
                       packet.message);
            return text;
          },
          [](const Probe& probe) { return fmt::format("{}->{}", probe.from, probe.to); },
          [](const consensus::PhaserMessage& message) { return describe_phaser_message(message); },
          [](const PhaserPacket& packet) {
            return fmt::format("[{}->{}] {}", packet.from, packet.to,
                               describe_phaser_message(packet.message));
          },
      },
      payload);
}

}  // namespace coworker::sim
