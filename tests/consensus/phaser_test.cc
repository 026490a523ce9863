// Phaser scenarios: steady state, leadership starts, usurp, exactly-once.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "tests/consensus/phaser_harness.h"

using namespace coworker::consensus;
using namespace coworker::consensus::testing;

namespace {

// {1, 2, 3} governed by 1 at slot 5, which commits `writes` writes of one
// message each.
void commit_writes(Cluster& c, uint64_t writes) {
  c.govern({1, 2, 3}, 5);
  c.settle();
  for (uint64_t i = 1; i <= writes; i++) {
    c.append(1, i, {message(7, i, "m" + std::to_string(i))});
    c.settle();
    c.tick(1);
    c.settle();
  }
}

Outcome outcome_of(const Cluster& c, uint64_t token, size_t i = 0) {
  auto reply = c.reply_for(token);
  REQUIRE(reply.has_value());
  return reply->results.at(i).outcome;
}

}  // namespace

TEST_CASE("phaser: steady state: commit after every replica holds the write") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  REQUIRE(c.phaser(1).serving());

  c.append(1, 100, {message(7, 1, "hello")});
  // The write reached the replicas but no ack is back: no answer yet.
  c.flush(1);
  CHECK(!c.reply_for(100));
  c.settle();
  REQUIRE(c.reply_for(100));
  CHECK(outcome_of(c, 100) == Outcome::appended);
  CHECK(c.reply_for(100)->results[0].position == 0);
  CHECK(c.committed(1).size() == 1);
  // Replicas hold it in their register; the trailing commit arrives by tick.
  CHECK(c.phaser(2).register_write() != nullptr);
  c.tick(1);
  c.settle();
  CHECK(c.committed(2).size() == 1);
  CHECK(c.committed(3) == c.committed(1));
}

TEST_CASE("phaser: steady state: the leader never answers before the last ack") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a")});
  c.flush(1);
  // Deliver the write to 2 and 3; let only 2 persist and ack.
  while (c.deliver_one()) {
  }
  c.flush(2);
  while (c.deliver_one()) {
  }
  CHECK(!c.reply_for(1));
  c.flush(3);
  while (c.deliver_one()) {
  }
  CHECK(outcome_of(c, 1) == Outcome::appended);
}

TEST_CASE("phaser: writes batch what is queued, within the caps") {
  Phaser::Config config;
  config.write_messages_max = 3;
  Cluster c({1, 2, 3}, config);
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a")});  // goes out alone
  for (uint64_t s = 2; s <= 8; s++) c.append(1, s, {message(7, s, "m")});
  REQUIRE(c.phaser(1).queued() == 7);
  c.settle();
  for (uint64_t s = 1; s <= 8; s++) CHECK(outcome_of(c, s) == Outcome::appended);
  // Writes of 1, then 3, 3, 1: positions contiguous.
  for (uint64_t s = 1; s <= 8; s++) CHECK(c.reply_for(s)->results[0].position == s - 1);
}

TEST_CASE("phaser: a write always takes its first message, whatever its size") {
  Phaser::Config config;
  config.write_bytes_max = 10;
  Cluster c({1, 2}, config);
  c.govern({1, 2}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, std::string(100, 'x')), message(7, 2, std::string(100, 'y'))});
  c.settle();
  auto reply = c.reply_for(1);
  REQUIRE(reply);
  CHECK(reply->results[0].outcome == Outcome::appended);
  CHECK(reply->results[1].position == 1);
}

TEST_CASE("phaser: exactly-once: duplicate, pending, superseded") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  // Window {1, 2}, then a resubmission while the first is still in flight.
  c.append(1, 1, {message(7, 1, "a", 1), message(7, 2, "b", 1)});
  c.append(1, 2, {message(7, 1, "a", 1), message(7, 2, "b", 1)});
  c.settle();
  auto first = c.reply_for(1);
  auto second = c.reply_for(2);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->results == second->results);  // the waiter got the same answer
  CHECK(first->results[0].outcome == Outcome::appended);
  // Resubmitting the committed window: duplicates with the same positions.
  c.append(1, 3, {message(7, 1, "a", 1), message(7, 2, "b", 1)});
  auto third = c.reply_for(3);
  REQUIRE(third);
  CHECK(third->results[0].outcome == Outcome::duplicate);
  CHECK(third->results[0].position == first->results[0].position);
  CHECK(third->results[1].position == first->results[1].position);
  // Next window {3}; then a straggler of an abandoned window {2'} is refused.
  c.append(1, 4, {message(7, 3, "c", 3)});
  c.settle();
  c.append(1, 5, {message(7, 2, "stale", 2)});
  CHECK(outcome_of(c, 5) == Outcome::superseded);
  // Only three entries ever made it into the log.
  c.tick(1);
  c.settle();
  CHECK(c.committed(2).size() == 3);
}

TEST_CASE("phaser: usurp: the first survivor re-proposes its register") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "in flight")});
  c.flush(1);
  // Replica 2 gets the write and makes it durable; 3 never does.
  c.drop_to(3);
  while (c.deliver_one()) {
  }
  c.flush(2);
  c.crash(1);  // the ack to 1 is lost with it
  CHECK(!c.reply_for(1));
  // Membership departs 1: current government {2, 3}; 2 usurps.
  c.govern({2, 3}, 9);
  c.settle();
  REQUIRE(c.phaser(2).serving());
  CHECK(c.phaser(2).promise() == Promise{9, 1});
  CHECK(c.committed(2).size() == 1);
  // The client resubmits: the message is found, not logged twice.
  c.append(2, 2, {message(7, 1, "in flight")});
  CHECK(outcome_of(c, 2) == Outcome::duplicate);
  c.tick(2);
  c.settle();
  CHECK(c.committed(3) == c.committed(2));
}

TEST_CASE("phaser: usurp: a write that never reached the usurper is dropped everywhere") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "lost")});
  c.flush(1);
  c.drop_to(2);
  while (c.deliver_one()) {
  }
  c.flush(3);  // only 3 holds it
  c.crash(1);
  c.govern({2, 3}, 9);
  c.settle();
  REQUIRE(c.phaser(2).serving());
  // Never acknowledged, and the higher promise replaced 3's register.
  CHECK(c.committed(2).empty());
  c.append(2, 2, {message(7, 1, "lost")});
  c.settle();
  CHECK(outcome_of(c, 2) == Outcome::appended);
  c.tick(2);
  c.settle();
  CHECK(c.committed(3).size() == 1);
  CHECK(c.committed(2) == c.committed(3));
}

// Step 5: a replica the new promise reaches drops its register, so the
// start's write leaves only once that promise is durable here (long run
// seed 301670893 of phaser-arrivals: a usurper sent its start, crashed with
// the promise unwritten, came back under the old promise and acked the old
// leader's write, which a member had dropped for the start's).
TEST_CASE("phaser: a leadership start sends its write only once its promise is durable") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  CHECK(c.network().empty());
  c.flush(1);
  CHECK(c.network().size() == 2);
  c.settle();
  c.append(1, 1, {message(7, 1, "w")});
  c.flush(1);
  c.drop_to(2);
  while (c.deliver_one()) {
  }
  c.flush(3);  // only 3 holds the write
  c.crash(1);
  c.govern({2, 3}, 9);
  for (const InFlightMessage& m : c.network()) {
    CHECK_FALSE((m.from == 2 && std::holds_alternative<WritePtr>(m.message)));
  }
  // The usurper crashes before its start is durable: the promise it made
  // reached no one, and 3 still holds the write under the old one.
  c.crash(2);
  CHECK(c.phaser(3).promise() == Promise{5, 1});
  REQUIRE(c.durable(3).register_ != nullptr);
  CHECK(c.durable(3).register_->first == 0);
  // Back, it starts again and re-proposes what it finds; the rest goes on.
  c.restart(2);
  c.start(2);
  c.settle();
  REQUIRE(c.phaser(2).serving());
  CHECK(c.phaser(3).promise() == c.phaser(2).promise());
}

TEST_CASE("phaser: a leader that learns it was replaced answers 503") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.govern({2, 3}, 9);  // 1 is told too
  c.settle();
  REQUIRE(c.phaser(2).serving());
  CHECK(!c.phaser(1).serving());
  c.append(1, 1, {message(7, 1, "x")});
  CHECK(outcome_of(c, 1) == Outcome::unavailable);
}

TEST_CASE("phaser: a leader with an old promise is nacked and steps down") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  // 2 starts a leadership on its own (as after a membership change 1 has not
  // applied yet): it holds a higher promise everywhere it wrote.
  Government g2{9, {2, 3}};
  c.phaser(2).on_government(g2);
  c.node(2).counter++;
  auto out = c.phaser(2).start_leadership(Promise{9, c.node(2).counter});
  for (auto& p : out.persist) c.node(2).unflushed.push_back(p);
  for (auto& s : out.send) c.network().push_back({2, s.to, s.message});
  c.settle();
  // 1 still thinks it leads; its write is nacked by 2 and 3, and the
  // message comes back to be taken to the next leader (step 6).
  c.append(1, 1, {message(7, 1, "stale")});
  c.settle();
  CHECK(outcome_of(c, 1) == Outcome::handed_back);
  REQUIRE(c.reply_for(1)->handed_back.size() == 1);
  CHECK(c.reply_for(1)->handed_back[0].entry == message(7, 1, "stale"));
  CHECK(!c.phaser(1).serving());
  CHECK(c.committed(1).empty());
}

TEST_CASE("phaser: a leadership that ends hands back what waits, and nothing doubles") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  // In flight: an untracked message and a tracked one; queued behind them:
  // a tracked and an untracked one; and a resubmission waiting on the first.
  c.append(1, 1, {message(0, 0, "u1"), message(7, 1, "a")});
  c.append(1, 2, {message(7, 2, "q"), message(0, 0, "u2")});
  c.append(1, 3, {message(7, 1, "a")});
  REQUIRE(c.replies().empty());
  // The government now names 2 (an abdication confirmed): 1 steps down.
  c.confirm({2, 3, 1}, 9, 1);
  CHECK(!c.phaser(1).serving());
  // The untracked message in flight may still be committed by the next
  // leader: unknown outcome, 503. Everything else comes back as it was sent.
  CHECK(outcome_of(c, 1, 0) == Outcome::unavailable);
  CHECK(outcome_of(c, 1, 1) == Outcome::handed_back);
  CHECK(c.reply_for(1)->handed_back == std::vector<HandedBack>{{1, message(7, 1, "a")}});
  CHECK(outcome_of(c, 2, 0) == Outcome::handed_back);
  CHECK(outcome_of(c, 2, 1) == Outcome::handed_back);
  CHECK(c.reply_for(2)->handed_back ==
        std::vector<HandedBack>{{0, message(7, 2, "q")}, {1, message(0, 0, "u2")}});
  CHECK(c.reply_for(3)->handed_back == std::vector<HandedBack>{{0, message(7, 1, "a")}});

  // 2 leads: its start re-proposes the write 1 had in flight. The server
  // takes the handed-back messages there, in order, as resubmissions.
  c.settle();
  c.start(2);
  c.settle();
  REQUIRE(c.phaser(2).serving());
  c.append(2, 4, {message(7, 1, "a"), message(7, 2, "q"), message(0, 0, "u2")});
  c.append(2, 5, {message(7, 1, "a")});
  c.settle();
  const std::optional<Reply> first = c.reply_for(4);
  REQUIRE(first);
  CHECK(first->results[0].outcome == Outcome::duplicate);
  CHECK(first->results[1].outcome == Outcome::appended);
  CHECK(first->results[2].outcome == Outcome::appended);
  CHECK(first->handed_back.empty());
  CHECK(outcome_of(c, 5) == Outcome::duplicate);
  std::vector<std::string> bodies;
  for (const BucketEntry& e : c.committed(2)) bodies.push_back(e.body);
  CHECK(bodies == std::vector<std::string>{"u1", "a", "q", "u2"});
  CHECK(first->results[0].position == 1);
  for (int i = 0; i < 3; i++) {  // the trailing commit notice
    c.tick(2);
    c.settle();
  }
  CHECK(c.committed(3) == c.committed(2));
}

TEST_CASE("phaser: departure of a replica: the write in flight commits with the rest") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.crash(3);
  c.append(1, 1, {message(7, 1, "x")});
  c.settle();
  CHECK(!c.reply_for(1));
  // 3 owes an ack: after report_ticks it is reported.
  for (int i = 0; i < 10; i++) c.tick(1);
  REQUIRE(!c.reports().empty());
  CHECK(c.reports().front() == 3);
  // Membership departs 3: the government shrinks and the write commits.
  Government shrunk{9, {1, 2}};
  auto out = c.phaser(1).on_government(shrunk);
  for (auto& r : out.reply) c.replies().push_back(r);
  for (auto& p : out.persist) c.node(1).unflushed.push_back(p);
  for (auto& s : out.send) c.network().push_back({1, s.to, s.message});
  c.settle();
  CHECK(outcome_of(c, 1) == Outcome::appended);
}

TEST_CASE("phaser: a government a removal left alone commits nothing until an ack confirms it") {
  Cluster c({1, 2});
  c.govern({1, 2}, 5);
  c.settle();
  c.crash(2);
  c.append(1, 1, {message(7, 1, "x")});
  c.settle();
  CHECK(!c.reply_for(1));
  // 2 departs: 1 is alone, 2 its heir. The write is durable on 1 alone and
  // stays uncommitted: 2's copy must keep holding every committed position.
  Government alone{9, {1}, 1};
  alone.heir = 2;
  auto out = c.phaser(1).on_government(alone);
  CHECK(out.reply.empty());
  for (auto& p : out.persist) c.node(1).unflushed.push_back(p);
  c.settle();
  CHECK(!c.reply_for(1));
  CHECK(c.phaser(1).commit_end() == 0);
  // The bump decided: the same government at the next step, no heir.
  c.confirm({1}, 10, 2);
  c.settle();
  CHECK(outcome_of(c, 1) == Outcome::appended);
  CHECK(c.phaser(1).commit_end() == 1);
}

TEST_CASE("phaser: restart: the leader comes back with a bumped counter and its register") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "x")});
  c.flush(1);
  c.drop_to(2);
  c.drop_to(3);
  c.crash(1);  // between write and commit
  c.restart(1);
  c.start(1);
  c.settle();
  REQUIRE(c.phaser(1).serving());
  CHECK(c.phaser(1).promise() == Promise{5, 2});
  CHECK(c.committed(1).size() == 1);  // its own register, re-proposed
  c.append(1, 2, {message(7, 1, "x")});
  CHECK(outcome_of(c, 2) == Outcome::duplicate);
}

TEST_CASE("phaser: a replica that already committed acks a re-proposal without appending") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a")});
  c.settle();
  c.append(1, 2, {message(7, 2, "b")});  // carries the commit of "a"
  c.flush(1);
  // Only 3 receives write 2; 2 keeps "a" uncommitted in its register.
  std::erase_if(c.network(), [](const InFlightMessage& m) { return m.to == 2; });
  while (c.deliver_one()) {
  }
  c.flush(3);
  c.crash(1);
  c.govern({2, 3}, 9);
  c.settle();
  REQUIRE(c.phaser(2).serving());
  // 2 re-proposed "a"; 3 had committed it and acked without appending.
  CHECK(c.committed(2).size() == 1);
  CHECK(c.committed(3).size() == 1);
  c.tick(2);
  c.settle();
  CHECK(c.committed(2) == c.committed(3));
}

TEST_CASE("phaser: appends without a connection are at-least-once and answered") {
  Cluster c({1, 2});
  c.govern({1, 2}, 5);
  c.settle();
  c.append(1, 1, {message(0, 0, "load")});
  c.append(1, 2, {message(0, 0, "load")});
  c.settle();
  CHECK(outcome_of(c, 1) == Outcome::appended);
  CHECK(outcome_of(c, 2) == Outcome::appended);
  CHECK(c.committed(1).size() == 2);
}

TEST_CASE("phaser: a government of one keeps its log and serves alone") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a")});
  c.settle();
  c.crash(2);
  c.crash(3);
  c.govern({1}, 12);
  c.settle();
  REQUIRE(c.phaser(1).serving());
  c.append(1, 2, {message(7, 2, "b")});
  c.settle();
  CHECK(outcome_of(c, 2) == Outcome::appended);
  CHECK(c.reply_for(2)->results[0].position == 1);
}

TEST_CASE("phaser: a trailing commit notice waits notice_ticks idle ticks; a next write carries it") {
  Phaser::Config config;
  config.notice_ticks = 3;
  config.resend_ticks = 2;
  Cluster c({1, 2, 3}, config);
  c.govern({1, 2, 3}, 5);
  c.settle();
  for (uint32_t t = 0; t < 4; t++) {
    c.tick(1);
    c.settle();
  }
  const auto notices = [&] {
    size_t n = 0;
    for (const InFlightMessage& m : c.network()) n += std::holds_alternative<CommitNotice>(m.message);
    return n;
  };
  c.append(1, 1, {message(7, 1, "a")});
  c.settle();
  REQUIRE(outcome_of(c, 1) == Outcome::appended);
  CHECK(c.phaser(2).commit_end() == 0);  // the commit waits for a carrier
  // Two idle ticks: nothing goes; the next write then carries the commit.
  c.tick(1);
  c.tick(1);
  CHECK(notices() == 0);
  c.append(1, 2, {message(7, 2, "b")});
  c.flush(1);
  CHECK(notices() == 0);
  c.settle();
  CHECK(c.phaser(2).commit_end() == 1);
  // Idle from here: the third tick sends the notice to both replicas, and
  // once acked nothing more goes.
  c.tick(1);
  c.tick(1);
  CHECK(notices() == 0);
  c.tick(1);
  CHECK(notices() == 2);
  c.settle();
  CHECK(c.phaser(2).commit_end() == 2);
  CHECK(c.phaser(3).commit_end() == 2);
  for (uint32_t t = 0; t < 6; t++) c.tick(1);
  CHECK(notices() == 0);
}

TEST_CASE("phaser: an unacked trailing notice is resent every resend_ticks") {
  Phaser::Config config;
  config.notice_ticks = 2;
  config.resend_ticks = 3;
  Cluster c({1, 2, 3}, config);
  c.govern({1, 2, 3}, 5);
  c.settle();
  for (uint32_t t = 0; t < 4; t++) {
    c.tick(1);
    c.settle();
  }
  c.append(1, 1, {message(7, 1, "a")});
  c.settle();
  REQUIRE(outcome_of(c, 1) == Outcome::appended);
  std::vector<uint32_t> sent_at;
  for (uint32_t t = 1; t <= 9; t++) {
    c.tick(1);
    const size_t before = c.network().size();
    c.drop_to(2);
    c.drop_to(3);
    if (before > 0) sent_at.push_back(t);
  }
  CHECK(sent_at == std::vector<uint32_t>{2, 5, 8});
  CHECK(c.phaser(2).commit_end() == 0);
}

TEST_CASE("phaser: growth: a newcomer is acclimated, joins, and then every commit needs it") {
  Cluster c({1, 2, 3, 4});
  commit_writes(c, 4);
  REQUIRE(c.phaser(1).commit_end() == 4);
  CHECK(c.phaser(4).commit_end() == 0);

  c.grow(1, 0, {4});
  CHECK(!c.phaser(1).growth_ready(0));
  c.settle();
  // Probe, a fetch of the writes it lacked, a Catchup, its ack: joined.
  CHECK(c.fetches() >= 1);
  CHECK(c.phaser(1).growth_ready(0));
  CHECK(c.committed(4) == c.committed(1));
  CHECK(c.phaser(4).commit_end() == 4);
  CHECK(c.repairs() == 0);

  // Joint acks: without the newcomer's ack nothing commits.
  c.append(1, 10, {message(7, 5, "joint")});
  c.flush(1);
  for (size_t i = 0; i < 8; i++) {
    c.drop_to(4);
    c.flush(2);
    c.flush(3);
    if (!c.deliver_one()) break;
  }
  c.drop_to(4);
  c.flush(2);
  c.flush(3);
  while (c.deliver_one()) c.drop_to(4);
  CHECK(!c.reply_for(10));
  // The resend reaches it: the commit follows.
  for (uint32_t t = 0; t < 4 && !c.reply_for(10); t++) {
    c.tick(1);
    c.settle();
  }
  CHECK(outcome_of(c, 10) == Outcome::appended);

  // The ack decided: the newcomer is a member and the growth is over.
  c.confirm({1, 2, 3, 4}, 9, 1);
  CHECK(!c.phaser(1).growing());
  c.append(1, 11, {message(7, 6, "after")});
  c.settle();
  c.tick(1);
  c.settle();
  CHECK(outcome_of(c, 11) == Outcome::appended);
  CHECK(c.committed(4) == c.committed(1));
}

TEST_CASE("phaser: growth: a late ack of an earlier growth's write does not make a newcomer join") {
  Cluster c({1, 2, 3, 4});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a")});
  c.settle();
  c.grow(1, 0, {4});
  c.settle();
  REQUIRE(c.phaser(1).growth_ready(0));
  // The next write reaches every replica and the joined newcomer; keep a
  // copy of the newcomer's ack.
  c.append(1, 2, {message(7, 2, "b")});
  c.flush(1);
  while (c.deliver_one()) {
  }
  for (ParticipantId id : {2, 3, 4}) c.flush(id);
  std::optional<InFlightMessage> late;
  for (const InFlightMessage& m : c.network()) {
    if (m.from == 4) late = m;
  }
  REQUIRE(late);
  c.settle();
  REQUIRE(outcome_of(c, 2) == Outcome::appended);
  REQUIRE(c.phaser(4).commit_end() == 1);  // the commit notice has not gone out
  // 3 departs before the notice: another step and the growth starts over.
  // The newcomer joins on the probe's answer; the Catchup of the write it
  // lacks is lost, and then the old ack arrives.
  c.confirm({1, 2}, 8, 1);
  c.grow(1, 1, {4});
  REQUIRE(c.deliver_one());  // the probe
  c.flush(4);
  REQUIRE(c.deliver_one());  // its answer: end 1
  c.drop_to(4);
  c.network().push_back(*late);
  c.settle();
  // Ready only once the newcomer holds the commit, not just the register.
  CHECK(!(c.phaser(1).growth_ready(1) && c.phaser(4).commit_end() < 2));
  for (uint32_t t = 0; t < 8 && !c.phaser(1).growth_ready(1); t++) {
    c.tick(1);
    c.settle();
  }
  REQUIRE(c.phaser(1).growth_ready(1));
  CHECK(c.phaser(4).commit_end() == 2);
  CHECK(c.committed(4) == c.committed(1));
}

TEST_CASE("phaser: growth: end_growth drops the newcomers from the count") {
  Cluster c({1, 2, 3, 4});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a")});
  c.settle();
  c.grow(1, 0, {4});
  c.settle();
  REQUIRE(c.phaser(1).growth_ready(0));
  c.crash(4);  // it departs: the host ends the growth
  c.append(1, 2, {message(7, 2, "b")});
  c.settle();
  CHECK(!c.reply_for(2));
  c.end_growth(1);  // its output commits
  c.settle();
  CHECK(outcome_of(c, 2) == Outcome::appended);
}

TEST_CASE("phaser: growth: a newcomer ignores a write past its end instead of asking for repair") {
  Cluster c({1, 2, 3});
  c.govern({1, 2}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a")});
  c.settle();
  c.append(1, 2, {message(7, 2, "b")});
  c.flush(1);
  // Hand the write in flight to 3, a non-member at position 0.
  auto& net = c.network();
  REQUIRE(!net.empty());
  InFlightMessage m = net.front();
  m.to = 3;
  net.push_back(m);
  c.settle();
  CHECK(c.repairs() == 0);
  CHECK(!c.phaser(3).needs_repair());
}

TEST_CASE("phaser: the queue is bounded") {
  Phaser::Config config;
  config.queue_messages_max = 2;
  Cluster small({1, 2}, config);
  small.govern({1, 2}, 5);
  small.settle();
  small.append(1, 1, {message(7, 1, "a")});  // in flight
  small.append(1, 2, {message(7, 2, "b"), message(7, 3, "c"), message(7, 4, "d")});
  small.settle();
  auto reply = small.reply_for(2);
  REQUIRE(reply);
  CHECK(reply->results[0].outcome == Outcome::appended);
  CHECK(reply->results[2].outcome == Outcome::overloaded);
}

TEST_CASE("phaser: series compare within the connection's wrap") {
  CHECK(series_after(1, 0, 1ull << 32));
  CHECK(!series_after(0, 1, 1ull << 32));
  CHECK(series_after(0, (1ull << 32) - 1, 1ull << 32));  // wrapped
  CHECK(!series_after(5, 5, 1ull << 32));
}

// The log store's checkpoints (DESIGN §6): a phaser's checkpoint records,
// folded alone or over everything before them, give its image; a replica
// restarted from them alone still knows every committed window.
TEST_CASE("phaser: a checkpoint alone recovers the image, the register and the windows") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "a", 1), message(7, 2, "b", 1)});
  c.append(1, 2, {message(8, 1, "c", 1)});
  c.settle();
  c.tick(1);
  c.settle();
  // One more write reaches replica 2's register, uncommitted.
  c.append(1, 3, {message(8, 2, "d", 2)});
  c.flush(1);
  c.drop_to(3);
  while (c.deliver_one()) {
  }
  c.flush(2);
  REQUIRE(c.phaser(2).register_write() != nullptr);
  REQUIRE(!c.reply_for(3));

  const PhaserDurable image = c.phaser(2).image();
  const std::vector<PhaserRecord> records = c.phaser(2).checkpoint();
  REQUIRE(records.size() == 2);  // the checkpoint, then the register
  CHECK(std::holds_alternative<CheckpointRecord>(records[0]));
  PhaserDurable alone;
  PhaserDurable over;
  for (const PhaserRecord& r : c.node(2).disk) over.apply(r);
  for (const PhaserRecord& r : records) {
    alone.apply(r);
    over.apply(r);
  }
  // Replay may stop after the checkpoint (a crash keeps a batch cut at a
  // record boundary; a round may span batches): the register folded before
  // it stays, where a snapshot above the committed end would drop it.
  PhaserDurable cut;
  for (const PhaserRecord& r : c.node(2).disk) cut.apply(r);
  cut.apply(records[0]);
  for (const PhaserDurable* d : {&alone, &over, &cut}) {
    CHECK(d->promise == image.promise);
    CHECK(d->commit_end == image.commit_end);
    CHECK(d->last_commit == image.last_commit);
    CHECK(d->last_commit_first == image.last_commit_first);
    REQUIRE(d->register_ != nullptr);
    CHECK(d->register_->first == image.register_->first);
    CHECK(d->register_->checksum == image.register_->checksum);
    CHECK(d->register_->entries == image.register_->entries);
    CHECK(d->dedup == image.dedup);
  }
  CHECK(image.dedup.connections() == 2);
  PhaserDurable snapshot = cut;
  const Position above = image.commit_end + 10;
  snapshot.apply(CheckpointRecord{CommittedState{
      image.promise, above, CommitMark{above, image.last_commit.number + 1, 7}, image.commit_end,
      CommitMark{above, image.last_commit.number + 1, 7}, std::make_shared<const DedupTable>(image.dedup)}});
  CHECK(snapshot.register_ == nullptr);  // below the snapshot's end: committed or void

  // Replica 2 loses everything but the checkpoint and leads: the committed
  // windows are still duplicates at their positions, the register commits.
  c.crash(2);
  c.node(2).disk = records;
  c.restart(2);
  c.crash(1);
  c.govern({2, 3}, 6);
  c.settle();
  REQUIRE(c.phaser(2).serving());
  c.append(2, 4, {message(7, 1, "a", 1), message(7, 2, "b", 1)});
  const auto again = c.reply_for(4);
  REQUIRE(again);
  CHECK(again->results[0].outcome == Outcome::duplicate);
  CHECK(again->results[0].position == 0);
  CHECK(again->results[1].position == 1);
  c.tick(2);
  c.settle();
  CHECK(c.phaser(2).commit_end() == 4);  // a, b, c and the re-proposed d
}

// Step 9b when the leader's log retired what the newcomer lacks: a snapshot
// of the committed state, persisted as the newcomer's checkpoint.
// What recovery folds when damage took records before a proven round
// (found by the damage probe, phaser-rolling seed 2035373384): a round
// held a register R1; an empty write's register replaced it and was
// committed; the next round held none. With the empty write's register
// record lost, that round must still drop R1 — it is the bucket's whole
// state — where a round that says its register follows keeps it (a crash
// may cut the log between the two).
TEST_CASE("phaser: a round without a register drops one folded before it; one with keeps it") {
  auto write_at = [](Position first, uint64_t number, std::vector<BucketEntry> entries) {
    auto w = std::make_shared<Write>();
    w->promise = Promise{7, 2};
    w->number = number;
    w->first = first;
    w->entries = std::move(entries);
    w->checksum = checksum_of(*w);
    return WritePtr(w);
  };
  const WritePtr first = write_at(0, 1, {message(7, 1, "a")});
  const WritePtr held = write_at(1, 2, {message(7, 2, "b")});  // R1, never committed
  const WritePtr empty = write_at(1, 3, {});                   // an empty write replacing it
  const CommitMark first_mark{1, 1, first->checksum};
  const CommitMark empty_mark{1, 3, empty->checksum};
  auto state_at = [&](const CommitMark& last) {
    return CommittedState{Promise{7, 2}, 1, last, 0, first_mark,
                          std::make_shared<const DedupTable>()};
  };
  std::vector<PhaserRecord> log = {RegisterRecord{first}, CommitRecord{first_mark, 0},
                                   CheckpointRecord{state_at(first_mark), true},
                                   RegisterRecord{held},
                                   RegisterRecord{empty},  // the record damage takes
                                   CommitRecord{empty_mark, 1},
                                   CheckpointRecord{state_at(empty_mark), false}};
  PhaserDurable whole;
  for (const PhaserRecord& r : log) whole.apply(r);
  CHECK(whole.register_ == nullptr);
  PhaserDurable damaged;
  for (size_t i = 0; i < log.size(); i++) {
    if (i != 4) damaged.apply(log[i]);
  }
  CHECK(damaged.register_ == nullptr);
  CHECK(damaged.last_commit == whole.last_commit);
  // A round that says its register follows, cut before that record by a
  // crash: the register folded before it stays.
  PhaserDurable torn;
  for (size_t i = 0; i < 4; i++) torn.apply(log[i]);
  torn.apply(CheckpointRecord{state_at(first_mark), true});
  REQUIRE(torn.register_ != nullptr);
  CHECK(torn.register_->checksum == held->checksum);
}

TEST_CASE("phaser: growth: below the leader's retained start, a snapshot acclimates") {
  Cluster c({1, 2, 3, 4});
  c.govern({1, 2, 3}, 5);
  c.settle();
  for (uint64_t i = 1; i <= 4; i++) {
    c.append(1, i, {message(7, i, "m" + std::to_string(i), i)});
    c.settle();
    c.tick(1);
    c.settle();
  }
  REQUIRE(c.phaser(1).commit_end() == 4);
  c.node(1).retained_start = 3;  // positions 0..2 are gone from its log

  c.grow(1, 0, {4});
  c.settle();
  CHECK(c.phaser(1).growth_ready(0));
  CHECK(c.phaser(4).commit_end() == 4);
  CHECK(c.committed(4).empty());  // no entry below the snapshot is held there
  const PhaserDurable at4 = c.durable(4);
  CHECK(at4.commit_end == 4);
  CHECK(at4.dedup == c.phaser(1).image().dedup);

  // It takes part from here on, and as leader it knows every window.
  c.append(1, 10, {message(7, 5, "after", 5)});
  c.settle();
  c.tick(1);
  c.settle();
  REQUIRE(c.reply_for(10));
  CHECK(c.phaser(4).commit_end() == 5);
  c.crash(1);
  c.govern({4, 2, 3}, 6);
  c.settle();
  REQUIRE(c.phaser(4).serving());
  c.append(4, 11, {message(7, 2, "m2", 2)});
  CHECK(outcome_of(c, 11) == Outcome::superseded);
  c.append(4, 12, {message(7, 5, "after", 5)});
  REQUIRE(c.reply_for(12));
  CHECK(c.reply_for(12)->results[0].outcome == Outcome::duplicate);
  CHECK(c.reply_for(12)->results[0].position == 4);
}

namespace {

// Step 9f's fixtures: `writes` messages committed on {1, 2, 3} led by 1,
// then 3 departs and arrives anew as 4 with its copy (4 down until then).
void offered_copy(Cluster& c, uint64_t writes) {
  c.crash(4);
  commit_writes(c, writes);
  REQUIRE(c.phaser(3).commit_end() == writes);
  c.crash(3);
  c.node(4).disk = c.node(3).disk;
  c.restart(4);
  c.confirm({1, 2}, 8, 1);
}

// A committed write no client sent, at the end of a down participant's
// copy: register and commit records with valid checksums (a bug, or
// damage no checksum caught).
void plant(Cluster& c, ParticipantId id, const std::string& body) {
  REQUIRE(!c.node(id).up);
  const PhaserDurable d = c.durable(id);
  auto w = std::make_shared<Write>();
  w->promise = d.promise;
  w->number = d.last_commit.number + 1;
  w->first = d.commit_end;
  w->time = d.dedup.time();
  w->expire_before = d.dedup.expired_before();
  w->entries = {message(9, 1, body)};
  w->prior = d.last_filled.checksum;
  w->checksum = checksum_of(*w);
  w->commit = d.last_commit;
  c.node(id).disk.push_back(RegisterRecord{w});
  c.node(id).disk.push_back(CommitRecord{CommitMark{w->end(), w->number, w->checksum}, w->first});
}

template <class R>
size_t records_of(Cluster& c, ParticipantId id) {
  const auto& disk = c.node(id).disk;
  return static_cast<size_t>(std::count_if(disk.begin(), disk.end(), [](const PhaserRecord& r) {
    return std::holds_alternative<R>(r);
  }));
}

void settle_growth(Cluster& c, ParticipantId leader, uint64_t step) {
  c.settle();
  for (uint32_t t = 0; t < 12 && !c.phaser(leader).growth_ready(step); t++) {
    c.tick(1);
    c.settle();
  }
}

// Step 9g as the membership runs it (membership_host.h step 6): 3's void
// copy is shrunk out of {1, 2, 3} at `slot` (step 1), the write waiting for
// its ack (`token`) commits with the rest, and 1 grows it back from 0.
void repair_replica_3(Cluster& c, uint64_t slot, uint64_t token) {
  c.confirm({1, 2}, slot, 1);
  c.tick(1);
  c.settle();
  CHECK(outcome_of(c, token) == Outcome::appended);
  c.grow(1, 1, {3});
  settle_growth(c, 1, 1);
  CHECK(c.phaser(1).growth_ready(1));
  CHECK(!c.phaser(3).repairing());
  CHECK(!c.durable(3).repairing);
  CHECK(c.durable(3).promise == c.phaser(1).promise());
  CHECK(c.committed(3) == c.committed(1));
}

}  // namespace

TEST_CASE("phaser: growth: an offered copy that matches is verified, and only the suffix streams") {
  Cluster c({1, 2, 3, 4});
  offered_copy(c, 3);
  c.append(1, 10, {message(7, 4, "m4")});
  c.append(1, 11, {message(7, 5, "m5")});
  c.settle();
  REQUIRE(c.phaser(1).commit_end() == 5);
  const size_t registers = records_of<RegisterRecord>(c, 4);
  c.grow(1, 1, {4});
  settle_growth(c, 1, 1);
  CHECK(c.phaser(1).growth_ready(1));
  CHECK(c.committed(4) == c.committed(1));
  CHECK(records_of<ResetRecord>(c, 4) == 0);
  CHECK(records_of<RegisterRecord>(c, 4) == registers + 2);  // the two writes it lacked
}

// Takes the first message in flight to `to` that `is` picks.
template <class M>
std::optional<InFlightMessage> take_first(Cluster& c, ParticipantId to) {
  auto& network = c.network();
  for (auto it = network.begin(); it != network.end(); ++it) {
    if (it->to == to && std::holds_alternative<M>(it->message)) {
      InFlightMessage m = std::move(*it);
      network.erase(it);
      return m;
    }
  }
  return std::nullopt;
}

TEST_CASE("phaser: growth: a fetch the newcomer's ack overtook streams nothing it holds") {
  // The chunk is streamed and held, its ack is slow, the resend reads the
  // same writes again; the ack arrives while that read is out. Its answer
  // would stream again what the newcomer holds (issue 11 point 9): the
  // leader reads from the acked end instead.
  Cluster c({1, 2, 3, 4});
  commit_writes(c, 4);
  REQUIRE(c.phaser(1).commit_end() == 4);
  c.grow(1, 0, {4});
  for (int i = 0; i < 64 && c.fetches_pending() == 0; i++) {
    if (!c.deliver_one()) c.flush(4);
  }
  REQUIRE(c.fetches_pending() == 1);
  c.answer_fetches();
  std::optional<InFlightMessage> chunk = take_first<Catchup>(c, 4);
  REQUIRE(chunk.has_value());
  c.network().push_front(std::move(*chunk));
  REQUIRE(c.deliver_one());
  c.flush(4);  // the chunk held, its ack sent
  std::optional<InFlightMessage> ack = take_first<CatchupAck>(c, 1);
  REQUIRE(ack.has_value());
  REQUIRE(std::get<CatchupAck>(ack->message).end == 4);
  const size_t streamed = c.streamed(4);
  CHECK(streamed == 4);
  for (int t = 0; t < 8 && c.fetches_pending() == 0; t++) c.tick(1);
  REQUIRE(c.fetches_pending() == 1);  // the resend's read, from 0
  c.network().push_front(std::move(*ack));
  REQUIRE(c.deliver_one());
  c.settle();
  CHECK(c.streamed(4) == streamed);
  CHECK(c.phaser(1).growth_ready(0));
  CHECK(c.committed(4) == c.committed(1));
}

TEST_CASE("phaser: growth: an old offer after the newcomer's holdings is not verified again") {
  Cluster c({1, 2, 3, 4});
  offered_copy(c, 3);
  c.append(1, 10, {message(7, 4, "m4")});
  c.settle();
  REQUIRE(c.phaser(1).commit_end() == 4);
  c.grow(1, 1, {4});
  std::optional<InFlightMessage> offer;
  for (int i = 0; i < 64 && !offer; i++) {
    offer = take_first<CatchupAck>(c, 1);
    if (offer && !std::get<CatchupAck>(offer->message).offer) {
      c.network().push_front(std::move(*offer));
      offer.reset();
    }
    if (!offer && !c.deliver_one()) c.flush(4);
  }
  REQUIRE(offer.has_value());
  c.network().push_back(*offer);  // delivered; a copy stays behind, as a network may hold one
  settle_growth(c, 1, 1);
  REQUIRE(c.phaser(1).growth_ready(1));
  const size_t streamed = c.streamed(4);
  c.network().push_back(std::move(*offer));
  c.settle();
  for (int t = 0; t < 4; t++) {
    c.tick(1);
    c.settle();
  }
  CHECK(c.streamed(4) == streamed);
  CHECK(c.phaser(1).growth_ready(1));
  CHECK(records_of<ResetRecord>(c, 4) == 0);
}

TEST_CASE("phaser: growth: an offered copy behind a retained start takes the snapshot in one record") {
  // A copy the leader's log can no longer be compared with (retention):
  // the snapshot replaces it in one CheckpointRecord. A reset before it
  // could be all a crash keeps, emptying a copy the leader believed.
  Cluster c({1, 2, 3, 4});
  offered_copy(c, 3);
  c.append(1, 10, {message(7, 4, "m4")});
  c.append(1, 11, {message(7, 5, "m5")});
  c.settle();
  REQUIRE(c.phaser(1).commit_end() == 5);
  c.node(1).retained_start = 4;  // the write holding position 2 is gone
  const size_t checkpoints = records_of<CheckpointRecord>(c, 4);
  c.grow(1, 1, {4});
  settle_growth(c, 1, 1);
  CHECK(c.phaser(1).growth_ready(1));
  CHECK(records_of<ResetRecord>(c, 4) == 0);
  CHECK(records_of<CheckpointRecord>(c, 4) == checkpoints + 1);
  CHECK(c.durable(4).commit_end == 5);
}

TEST_CASE("phaser: growth: a duplicate Catchup's ack waits for the first one's promise") {
  Cluster c({1, 2, 3, 4});
  offered_copy(c, 3);
  c.govern({2, 1}, 9, 2);  // a leader with a promise above the copy's
  c.settle();
  c.grow(2, 2, {4});
  REQUIRE(c.network().size() == 1);
  const InFlightMessage probe = c.network().front();
  REQUIRE(std::holds_alternative<Catchup>(probe.message));
  REQUIRE(c.deliver_one());  // 4 raises its promise to the leader's: not durable yet
  REQUIRE(!c.node(4).unflushed.empty());
  c.network().push_back(probe);
  REQUIRE(c.deliver_one());  // the duplicate stages nothing
  const auto acks = std::count_if(c.network().begin(), c.network().end(),
                                  [](const InFlightMessage& m) {
                                    return std::holds_alternative<CatchupAck>(m.message);
                                  });
  CHECK(acks == 0);
  c.settle();
  CHECK(c.durable(4).promise == c.phaser(2).promise());
}

TEST_CASE("phaser: growth: an offered copy whose newest write differs is dropped and grown from 0") {
  Cluster c({1, 2, 3, 4});
  offered_copy(c, 3);
  c.crash(4);
  plant(c, 4, "planted");  // at position 3, where the leader commits m4 next
  c.restart(4);
  c.append(1, 10, {message(7, 4, "m4")});
  c.append(1, 11, {message(7, 5, "m5")});
  c.settle();
  REQUIRE(c.phaser(1).commit_end() == 5);
  c.grow(1, 1, {4});
  settle_growth(c, 1, 1);
  CHECK(c.phaser(1).growth_ready(1));
  CHECK(records_of<ResetRecord>(c, 4) == 1);
  CHECK(c.committed(4) == c.committed(1));
  CHECK(c.repairs() == 0);
}

// Found by phaser-rolling seed 13540 (with the boot's lease wait): a copy
// with a write no client sent at its end, still in a leader's view of the
// government, took the leader's next write on top of it; offered later, its
// newest write matched the log's and the copy was believed. Checksums chain
// (Write::prior): the write does not stand on the copy's, so it is refused.
TEST_CASE("phaser: a copy that diverged takes no write on top of it") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  for (uint64_t i = 1; i <= 3; i++) {
    c.append(1, i, {message(7, i, "m" + std::to_string(i))});
    c.settle();
  }
  c.tick(1);
  c.settle();
  REQUIRE(c.phaser(3).commit_end() == 3);
  c.crash(3);
  c.govern({1, 2}, 6);
  c.append(1, 4, {message(7, 4, "m4")});
  c.settle();
  REQUIRE(c.phaser(1).commit_end() == 4);
  plant(c, 3, "planted");  // at 3, where the leader committed m4
  c.restart(3);
  c.govern({1, 2, 3}, 7);  // the leader's view lists 3 again
  c.append(1, 5, {message(7, 5, "m5")});
  c.settle();
  CHECK(c.repairs() >= 1);
  // Marked for repair, its copy is void (step 9g): nothing held, nothing
  // taken, its promise kept.
  CHECK(c.phaser(3).repairing());
  CHECK(c.durable(3).repairing);
  CHECK(c.phaser(3).commit_end() == 0);
  CHECK(c.phaser(3).register_write() == nullptr);
  CHECK(c.durable(3).promise == c.phaser(1).promise());
  CHECK(!c.reply_for(5));  // 3's ack never comes
  // Shrunk out, m5 commits; grown back from 0, without the planted write.
  repair_replica_3(c, 8, 5);
}

TEST_CASE("phaser: growth: an offer above the leader's commit end is discarded") {
  Cluster c({1, 2, 3, 4});
  offered_copy(c, 3);
  c.crash(4);
  plant(c, 4, "planted");  // position 3: no leader ever committed it
  c.restart(4);
  REQUIRE(c.phaser(1).commit_end() == 3);
  c.grow(1, 1, {4});
  settle_growth(c, 1, 1);
  CHECK(c.phaser(1).growth_ready(1));
  CHECK(records_of<ResetRecord>(c, 4) == 1);
  CHECK(c.committed(4) == c.committed(1));
  CHECK(c.phaser(4).commit_end() == 3);
}

TEST_CASE("phaser: growth: a deposed leader's discard cannot drop a copy a newer leader believed") {
  Cluster c({1, 2, 3, 4});
  offered_copy(c, 3);
  const Promise deposed = c.phaser(1).promise();
  // 2 takes over (a higher promise) and grows 4: its copy is verified and
  // believed, and nothing newer was written, so 4 took no write under 2.
  c.govern({2, 1}, 9, 2);
  c.settle();
  REQUIRE(c.phaser(2).serving());
  c.grow(2, 2, {4});
  settle_growth(c, 2, 2);
  REQUIRE(c.phaser(2).growth_ready(2));
  const PhaserDurable believed = c.durable(4);
  REQUIRE(believed.commit_end == 3);
  // 4 restarts (its copy is an offer again, the same one) and a discard
  // of exactly that offer, from the deposed leader, arrives late.
  c.crash(4);
  c.restart(4);
  c.network().push_back(InFlightMessage{
      1, 4, Catchup{0, deposed, {}, CommitMark{believed.last_filled}}});
  c.settle();
  CHECK(records_of<ResetRecord>(c, 4) == 0);
  CHECK(c.durable(4).commit_end == 3);
  CHECK(c.durable(4).promise == c.phaser(2).promise());
}

Phaser::Config expiring(uint64_t expiry_ms) {
  Phaser::Config config;
  config.connection_expiry_ms = expiry_ms;
  return config;
}

// DESIGN §3 expiry, issue 13: by the times leaders stamp on writes, the same
// on every replica; an expired connection is refused, never taken as new.
TEST_CASE("phaser: expiry: a connection idle past the expiry is refused, never logged anew") {
  Cluster c({1, 2, 3}, expiring(1000));
  c.govern({1, 2, 3}, 5);
  c.settle();
  // Connections 4 and 2 (issuer 1) append; time passes; only 2 appends again.
  c.tick(1);
  c.append(1, 1, {message(4, 10, "four")});
  c.append(1, 2, {message(2, 10, "two")});
  c.settle();
  c.advance(600);
  c.tick(1);
  c.append(1, 3, {message(2, 11, "two again")});
  c.settle();
  const Position two_again = c.reply_for(3)->results[0].position;
  c.advance(600);  // 4 was last seen 1200 ms ago, 2 600 ms ago
  c.tick(1);
  c.append(1, 4, {message(6, 1, "six")});  // its commit expires connection 4
  c.settle();
  CHECK(outcome_of(c, 4) == Outcome::appended);
  // Connection 4 resubmits its committed message: expired, never new.
  c.append(1, 5, {message(4, 10, "four")});
  CHECK(outcome_of(c, 5) == Outcome::expired);
  // Connection 3, never seen here, is below the watermark (4 + 1): expired.
  c.append(1, 6, {message(3, 1, "three")});
  CHECK(outcome_of(c, 6) == Outcome::expired);
  // Connection 2 is still tracked: its resubmission is a duplicate.
  c.append(1, 7, {message(2, 11, "two again")});
  CHECK(outcome_of(c, 7) == Outcome::duplicate);
  CHECK(c.reply_for(7)->results[0].position == two_again);
  // A connection above the watermark is new.
  c.append(1, 8, {message(7, 1, "seven")});
  c.settle();
  CHECK(outcome_of(c, 8) == Outcome::appended);
  c.tick(1);
  c.settle();
  // Every replica holds the same table, as the log made it.
  const PhaserDurable image = c.phaser(1).image();
  CHECK(image.dedup.connections() == 3);
  CHECK(image.dedup.watermarks() == std::vector<std::pair<ParticipantId, uint64_t>>{{1, 5}});
  for (ParticipantId id : {2, 3}) {
    CHECK(c.durable(id).dedup == image.dedup);
    CHECK(c.committed(id).size() == 5);
  }
}

// A replica expires by the write's time, not its own clock: a replica that
// restarts and replays, or a new leader with a clock behind, holds the same
// table and stamps no earlier.
TEST_CASE("phaser: expiry: a new leader with a clock behind never stamps earlier") {
  Cluster c({1, 2, 3}, expiring(1000));
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.advance(5000);
  c.tick(1);
  c.append(1, 1, {message(1, 1, "a")});
  c.settle();
  const uint64_t time = c.phaser(1).image().dedup.time();
  CHECK(time == c.now_ms);
  // 2 leads now, its clock 4 s behind: its writes keep the bucket's time.
  c.crash(1);
  c.govern({2, 3}, 9);
  c.settle();
  c.now_ms -= 4000;
  c.tick(2);
  c.append(2, 2, {message(2, 1, "b")});
  c.settle();
  CHECK(outcome_of(c, 2) == Outcome::appended);
  CHECK(c.phaser(2).image().dedup.time() == time);
  CHECK(c.phaser(2).image().dedup.connections() == 2);  // nothing expired
}

// Step 9g: a copy damaged at rest is made void at boot (a RepairRecord,
// bucket/repair.h). It acks nothing while it is a member (a promise the
// damage took could have been broken), its participant shrinks it out,
// and the leader grows it back; its first Catchup ends the repair under
// the leader's promise.
TEST_CASE("phaser: repair: a void copy acks nothing, is shrunk out, and grows back from 0") {
  Cluster c({1, 2, 3});
  c.govern({1, 2, 3}, 5);
  c.settle();
  c.append(1, 1, {message(7, 1, "m1")});
  c.append(1, 2, {message(7, 2, "m2")});
  c.settle();
  REQUIRE(c.phaser(1).commit_end() == 2);
  c.crash(3);
  c.node(3).disk.push_back(RepairRecord{Promise{}});  // what the damage left: no promise
  c.restart(3);
  CHECK(c.phaser(3).repairing());
  CHECK(c.durable(3).repairing);
  CHECK(c.durable(3).commit_end == 0);
  const size_t void_records = c.node(3).disk.size();
  // A member that acks nothing: the leader's next write does not commit.
  c.append(1, 3, {message(7, 3, "m3")});
  c.settle();
  for (uint32_t t = 0; t < 4; t++) {
    c.tick(1);
    c.tick(3);
    c.settle();
  }
  CHECK(!c.reply_for(3));
  CHECK(c.repairs() == 0);
  CHECK(c.node(3).disk.size() == void_records);  // it staged nothing either
  // A checkpoint round keeps it void; so does a restart.
  const std::vector<PhaserRecord> round = c.phaser(3).checkpoint();
  REQUIRE(round.size() == 1);
  CHECK(std::holds_alternative<RepairRecord>(round[0]));
  c.crash(3);
  c.restart(3);
  CHECK(c.phaser(3).repairing());
  // Shrunk out, the write commits with the rest; grown back from 0 under
  // the leader's promise, the repair ended by one reset.
  repair_replica_3(c, 6, 3);
  CHECK(records_of<ResetRecord>(c, 3) == 1);
  CHECK(c.repairs() == 0);
}

TEST_CASE("phaser: repair: a void copy ends its repair at a probe out of the government, never at a chunk") {
  // A chunk is meant for a copy its leader believes holds something: maybe
  // an ack of the copy's life before the damage (PROTOCOL, Limits). It
  // stays void; the leader's probe (it knows nothing of the copy) ends it.
  Cluster c({1, 2, 3});
  commit_writes(c, 2);
  c.crash(3);
  c.node(3).disk.push_back(RepairRecord{Promise{}});
  c.restart(3);
  REQUIRE(c.phaser(3).repairing());
  const size_t void_records = c.node(3).disk.size();
  const Promise leader = c.phaser(1).promise();
  auto chunk = std::make_shared<Write>();
  chunk->promise = leader;
  chunk->entries = {message(7, 1, "m1")};
  chunk->checksum = checksum_of(*chunk);
  c.network().push_back(InFlightMessage{1, 3, Catchup{0, leader, {chunk}, std::nullopt}});
  c.network().push_back(
      InFlightMessage{1, 3, Catchup{0, leader, {}, CommitMark{2, 2, chunk->checksum}}});
  while (c.deliver_one()) c.flush(3);
  CHECK(c.phaser(3).repairing());
  CHECK(c.node(3).disk.size() == void_records);
  // A probe while our view still names us: maybe one of an old growth,
  // delayed past its ack (long run seed 1960750603). It stays void.
  c.network().push_back(InFlightMessage{1, 3, Catchup{0, leader, {}, std::nullopt}});
  while (c.deliver_one()) c.flush(3);
  CHECK(c.phaser(3).repairing());
  CHECK(c.node(3).disk.size() == void_records);
  c.confirm({1, 2}, 9, 1);  // shrunk out (membership_host.h step 6)
  c.network().push_back(InFlightMessage{1, 3, Catchup{0, leader, {}, std::nullopt}});
  while (c.deliver_one()) c.flush(3);
  CHECK(!c.phaser(3).repairing());
  CHECK(records_of<ResetRecord>(c, 3) == 1);
  CHECK(c.durable(3).promise == leader);
}

TEST_CASE("phaser: growth: an ack of the newcomer's earlier life is not believed (9h)") {
  // The newcomer's copy lived before (it acked end 2, then was damaged and
  // reset): that old ack, delayed, reaches the leader first. Believing it
  // would stream from 2 to a copy holding nothing, which stops at the gap
  // and acks 0 forever. Its own ack names a newer life: the leader starts
  // it over from a probe and streams from 0.
  Phaser::Config base;
  base.boot = 2;
  Cluster c({1, 2, 3, 4}, base);
  commit_writes(c, 4);
  REQUIRE(c.phaser(1).commit_end() == 4);
  c.grow(1, 0, {4});
  const Promise promise = c.phaser(1).promise();
  c.network().push_front({4, 1, CatchupAck{0, promise, 2, 4, std::nullopt, CopyLife{1, 0}}});
  settle_growth(c, 1, 0);
  CHECK(c.phaser(1).growth_ready(0));
  CHECK(c.committed(4) == c.committed(1));
  CHECK(c.streamed(4) >= 4);
  // The same old ack again, after the newer life's: ignored.
  c.network().push_back({4, 1, CatchupAck{0, promise, 2, 4, std::nullopt, CopyLife{1, 0}}});
  c.settle();
  CHECK(c.phaser(1).growth_ready(0));
}

TEST_CASE("phaser: growth: a joined newcomer whose copy lives anew is streamed what it lacks (9h)") {
  // The old ack is within one write: the newcomer joins on it. Its own ack
  // (a newer life, end 0) says it holds nothing: it stays in every commit
  // and is streamed from 0, not left at a gap.
  Phaser::Config base;
  base.boot = 2;
  Cluster c({1, 2, 3, 4}, base);
  commit_writes(c, 4);
  c.grow(1, 0, {4});
  const Promise promise = c.phaser(1).promise();
  c.network().push_front({4, 1, CatchupAck{0, promise, 3, 4, std::nullopt, CopyLife{1, 0}}});
  c.append(1, 50, {message(8, 1, "during")});
  settle_growth(c, 1, 0);
  CHECK(c.phaser(1).growth_ready(0));
  // The write in flight meanwhile commits once the newcomer acks it (the
  // resend reaches it at its commit end).
  for (int t = 0; t < 12 && !c.reply_for(50); t++) {
    c.tick(1);
    c.settle();
  }
  CHECK(outcome_of(c, 50) == Outcome::appended);
  for (int t = 0; t < 4; t++) {  // the trailing commit notice
    c.tick(1);
    c.settle();
  }
  CHECK(c.committed(4) == c.committed(1));
}
