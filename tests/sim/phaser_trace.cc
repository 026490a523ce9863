#include "tests/sim/phaser_trace.h"

#include <fmt/core.h>

#include "consensus/overloaded.h"
#include "tests/sim/trace.h"

namespace coworker::sim {

namespace {
uint64_t promise_word(const consensus::Promise& p) { return mix64(p.slot, p.counter); }
}  // namespace

uint64_t digest_phaser_message(const consensus::PhaserMessage& message) {
  uint64_t hash = mix64(0x9a5e, message.index());
  std::visit(consensus::Overloaded{
                 [&](const consensus::WritePtr& w) {
                   hash = mix64(mix64(hash, w->bucket), promise_word(w->promise));
                   hash = mix64(mix64(hash, w->number), w->first);
                   hash = mix64(mix64(hash, w->entries.size()), w->checksum);
                   hash = mix64(hash, w->commit.end);
                 },
                 [&](const consensus::Ack& a) {
                   hash = mix64(mix64(hash, a.bucket), promise_word(a.promise));
                   hash = mix64(mix64(hash, a.number), a.end);
                   hash = mix64(mix64(hash, a.commit_only), a.from);
                 },
                 [&](const consensus::Nack& n) {
                   hash = mix64(mix64(hash, n.bucket), promise_word(n.promise));
                 },
                 [&](const consensus::CommitNotice& c) {
                   hash = mix64(mix64(hash, c.bucket), promise_word(c.promise));
                   hash = mix64(hash, c.commit.end);
                 },
                 [&](const consensus::Catchup& c) {
                   hash = mix64(mix64(hash, c.bucket), promise_word(c.promise));
                   for (const consensus::WritePtr& w : c.writes) hash = mix64(hash, w->end());
                 },
                 [&](const consensus::CatchupAck& a) {
                   hash = mix64(mix64(hash, a.bucket), promise_word(a.promise));
                   hash = mix64(mix64(hash, a.end), a.from);
                 },
                 [&](const consensus::CatchupSnapshot& k) {
                   hash = mix64(mix64(hash, k.bucket), promise_word(k.state.promise));
                   hash = mix64(mix64(hash, k.state.commit_end), k.state.last_commit.checksum);
                 },
             },
             message);
  return hash;
}

const char* phaser_message_name(const consensus::PhaserMessage& message) {
  static constexpr const char* names[] = {"write", "ack", "nack", "commit", "catchup",
                                                 "catchup-ack", "catchup-snapshot"};
  static_assert(std::size(names) == std::variant_size_v<consensus::PhaserMessage>);
  return names[message.index()];
}

std::string describe_phaser_message(const consensus::PhaserMessage& message) {
  return std::visit(
      consensus::Overloaded{
          [](const consensus::WritePtr& w) {
            return fmt::format("b={} p={} n={} [{},{}) commit={}", w->bucket,
                               w->promise.to_string(), w->number, w->first, w->end(),
                               w->commit.end);
          },
          [](const consensus::Ack& a) {
            return fmt::format("b={} p={} n={} end={}{}", a.bucket, a.promise.to_string(),
                               a.number, a.end, a.commit_only ? " commit" : "");
          },
          [](const consensus::Nack& n) {
            return fmt::format("b={} p={}", n.bucket, n.promise.to_string());
          },
          [](const consensus::CommitNotice& c) {
            return fmt::format("b={} p={} end={}", c.bucket, c.promise.to_string(), c.commit.end);
          },
          [](const consensus::Catchup& c) {
            return fmt::format("b={} p={} writes={} [{},{}){}", c.bucket, c.promise.to_string(),
                               c.writes.size(), c.writes.empty() ? 0 : c.writes.front()->first,
                               c.writes.empty() ? 0 : c.writes.back()->end(),
                               c.discard ? fmt::format(" discard={}", c.discard->end) : "");
          },
          [](const consensus::CatchupAck& a) {
            return fmt::format("b={} p={} end={}{}", a.bucket, a.promise.to_string(), a.end,
                               a.offer ? " (offer)" : "");
          },
          [](const consensus::CatchupSnapshot& k) {
            return fmt::format("b={} p={} end={}", k.bucket, k.state.promise.to_string(),
                               k.state.commit_end);
          },
      },
      message);
}

}  // namespace coworker::sim
