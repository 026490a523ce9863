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

uint64_t digest_payload(const Payload& payload) {
  if (const auto* phaser = std::get_if<consensus::PhaserMessage>(&payload)) {
    return digest_phaser_message(*phaser);
  }
  const auto& message = std::get<consensus::Message>(payload);
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

const char* payload_name(const Payload& payload) {
  if (const auto* phaser = std::get_if<consensus::PhaserMessage>(&payload)) {
    return phaser_message_name(*phaser);
  }
  static constexpr const char* names[] = {"prepare",  "promise",   "reject",   "accept",
                                          "accepted", "heartbeat", "hb_ack",   "catch_up",
                                          "learn",    "forward",   "forwarded"};
  static_assert(std::size(names) == std::variant_size_v<consensus::Message>);
  return names[std::get<consensus::Message>(payload).index()];
}

std::string describe_payload(const Payload& payload) {
  if (const auto* phaser = std::get_if<consensus::PhaserMessage>(&payload)) {
    return describe_phaser_message(*phaser);
  }
  const auto& message = std::get<consensus::Message>(payload);
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

}  // namespace coworker::sim
