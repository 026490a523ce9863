#include "tools/coworker/dispatch.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "consensus/assert.h"
#include "reactor/loop.h"
#include "reactor/smp.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/core.h"
#include "tools/coworker/participant.h"
#include "tools/coworker/reads.h"

namespace coworker::server {

using consensus::MessageResult;
using reactor::Task;
using reactor::on_core;

namespace {

using Milliseconds = std::chrono::milliseconds;

uint32_t ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now());
  return static_cast<uint32_t>(std::max<int64_t>(1, left.count()));
}

Task<Destination> where(Participant& p, uint32_t bucket, const Budget& budget) {
  auto ask = [&p, bucket, &budget]() -> Task<Destination> {
    if (!p.has_cluster()) co_return Destination{};
    auto asked = p.cluster().where(bucket, budget.slot, budget.deadline);
    co_return co_await asked;
  };
  auto call = on_core(0, ask);
  co_return co_await call;
}

// Step 2: the leader's peer address; or, the leader marked unreachable,
// that leader at once; or nothing after parking (until the table changes,
// the next tick, or the deadline).
Task<Destination> peer_or_park(Participant& p, uint32_t bucket, const Budget& budget) {
  auto asked = where(p, bucket, budget);
  Destination destination = co_await asked;
  if (destination.kind == Destination::Kind::peer ||
      destination.kind == Destination::Kind::unreachable) {
    co_return destination;
  }
  auto wait = [&p, &budget]() -> Task<void> {
    if (!p.has_cluster()) co_return;
    auto parked = p.cluster().park(budget.deadline);
    co_await parked;
  };
  auto call = on_core(0, wait);
  co_await call;
  co_return Destination{};
}

// The request (AppendHop or ReadHop) to the leader, with our
// slot as of sending, hops + 1 and what is left of the deadline.
template <typename Content>
Task<std::optional<Hop>> hop(Participant& p, const Destination& leader, const Budget& budget,
                             Content content) {
  COWORKER_ASSERT(budget.hops < hops_max);
  auto send = [&p, &leader, &budget, &content]() -> Task<std::optional<Hop>> {
    if (!p.has_cluster()) co_return std::nullopt;
    ClusterNode& cluster = p.cluster();
    content.route = HopRoute{cluster.slot(), budget.hops + 1, ms_left(budget.deadline)};
    Hop request;
    request.content = std::move(content);
    auto called = cluster.call(leader, std::move(request), budget.deadline);
    co_return co_await called;
  };
  auto call = on_core(0, send);
  co_return co_await call;
}

}  // namespace

std::string unreachable_words(uint32_t bucket, consensus::ParticipantId replica) {
  return fmt::format("bucket {}'s only replica, participant {}, is marked unreachable: the "
                     "bucket serves again when it returns; resubmit then",
                     bucket, replica);
}

Budget client_budget() {
  return Budget{0, 0, Clock::now() + Milliseconds(hop_deadline_ms)};
}

Task<Placed> dispatch_append(Participant& p, uint32_t bucket,
                             std::vector<consensus::BucketEntry> messages, Budget budget) {
  COWORKER_ASSERT(!messages.empty());
  COWORKER_ASSERT(budget.hops <= hops_max);
  Placed placed;
  std::vector<MessageResult>& results = placed.results;
  results.resize(messages.size());  // unavailable until answered
  // open[k]: the index in `results` of messages[k], the ones still to place.
  std::vector<uint32_t> open(messages.size());
  for (uint32_t k = 0; k < open.size(); k++) open[k] = k;
  const unsigned core = p.core_of(bucket);
  while (Clock::now() < budget.deadline) {
    auto try_here = [&p, core, bucket, &messages,
                     &budget]() -> Task<std::optional<consensus::Reply>> {
      if (!p.has_core(core) || !p.core(core).accepts(bucket)) co_return std::nullopt;
      Core& here = p.core(core);
      const auto timeout = here.ticks_for(Milliseconds(ms_left(budget.deadline)));
      auto append = here.append(bucket, std::move(messages), timeout);
      co_return co_await append;
    };
    auto tried = on_core(core, try_here);
    std::optional<consensus::Reply> reply = co_await tried;
    if (reply) {
      COWORKER_ASSERT(reply->results.size() == open.size());
      for (size_t k = 0; k < open.size(); k++) results[open[k]] = reply->results[k];
      if (reply->handed_back.empty()) break;
      // Step 4 (hand-back): our leadership ended with these waiting; they go
      // to the next leader like a client's resubmission, in window order.
      std::vector<uint32_t> still;
      messages.clear();
      // In window order: the phaser asserts series increase within a request.
      std::sort(reply->handed_back.begin(), reply->handed_back.end(),
                [](const auto& a, const auto& b) { return a.index < b.index; });
      for (consensus::HandedBack& back : reply->handed_back) {
        COWORKER_ASSERT(back.index < open.size());
        still.push_back(open[back.index]);
        messages.push_back(std::move(back.entry));
      }
      open = std::move(still);
      continue;
    }

    auto found = peer_or_park(p, bucket, budget);
    const Destination leader = co_await found;
    if (leader.kind == Destination::Kind::unreachable) {
      placed.unreachable = leader.leader;
      break;
    }
    if (leader.kind != Destination::Kind::peer) continue;
    if (budget.hops >= hops_max) break;
    auto sent = hop(p, leader, budget, AppendHop{{}, bucket, std::move(messages)});
    std::optional<Hop> answer = co_await sent;
    if (!answer) break;  // no answer by the deadline: unknown outcome
    auto* appended = std::get_if<AppendAnswer>(&answer->content);
    if (appended == nullptr || appended->results.size() != open.size()) break;  // confused peer
    for (size_t k = 0; k < open.size(); k++) results[open[k]] = appended->results[k];
    break;
  }
  // Handed back and not placed by the deadline: unknown outcome, 503.
  for (MessageResult& r : results) {
    if (r.outcome == consensus::Outcome::handed_back) r = MessageResult{};
  }
  co_return placed;
}

Task<ReadAnswer> dispatch_read(Participant& p, ReadHop query, Budget budget) {
  COWORKER_ASSERT(budget.hops <= hops_max);
  while (Clock::now() < budget.deadline) {
    // Step 1 for reads: we lead under the read lease (core 0 knows).
    auto lease = [&p, &query]() -> Task<bool> {
      co_return p.has_cluster() &&
          p.cluster().may_read(query.bucket, /*local=*/false) == ReadRight::yes;
    };
    auto leased = on_core(0, lease);
    if (co_await leased) {
      const auto wait_until = Clock::now() + Milliseconds(query.wait_ms);
      auto read = read_here(p, query, Core::Serve::leader, wait_until);
      ReadAnswer answer = co_await read;
      if (answer.status != 503) co_return answer;  // 503: the phaser is not serving yet
    }
    auto found = peer_or_park(p, query.bucket, budget);
    const Destination leader = co_await found;
    if (leader.kind == Destination::Kind::unreachable) {
      co_return read_error(503, "unavailable", unreachable_words(query.bucket, leader.leader));
    }
    if (leader.kind != Destination::Kind::peer) continue;
    if (budget.hops >= hops_max) break;
    auto sent = hop(p, leader, budget, query);
    std::optional<Hop> answer = co_await sent;
    if (!answer) break;
    auto* read = std::get_if<ReadAnswer>(&answer->content);
    if (read == nullptr) break;
    co_return std::move(*read);
  }
  co_return read_error(503, "unavailable", "the bucket has no leader reachable now; resubmit");
}

}  // namespace coworker::server
