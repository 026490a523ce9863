// A minimal deterministic harness for phaser scenario tests: participants
// with a FIFO "disk" (persists become durable when flushed), a FIFO network
// the test can hold, drop or deliver, crash/restart from the durable records.
// The full simulator (tests/sim/) adds randomised faults and checkers.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "consensus/phaser.h"

namespace coworker::consensus::testing {

struct Node {
  ParticipantId id = no_participant;
  std::vector<PhaserRecord> disk;  // durable records, in order
  std::deque<Persist> unflushed;   // asked for, not yet durable
  std::unique_ptr<Phaser> phaser;
  uint32_t counter = 0;            // the participant's durable promise counter
  Position retained_start = 0;     // fetches below it answer on_fetch_retained
  bool up = true;
};

struct InFlightMessage {
  ParticipantId from;
  ParticipantId to;
  PhaserMessage message;
};

class Cluster {
 public:
  explicit Cluster(std::vector<ParticipantId> ids, Phaser::Config base = {}) : _base(base) {
    for (ParticipantId id : ids) {
      _nodes[id].id = id;
      boot(id);
    }
  }

  Node& node(ParticipantId id) { return _nodes.at(id); }
  Phaser& phaser(ParticipantId id) { return *_nodes.at(id).phaser; }
  std::deque<InFlightMessage>& network() { return _network; }
  std::vector<Reply>& replies() { return _replies; }
  std::vector<ParticipantId>& reports() { return _reports; }

  // Every live participant learns the government; its leader starts.
  void govern(std::vector<ParticipantId> replicas, uint64_t slot, uint64_t step = 0) {
    _government = Government{slot, std::move(replicas), step};
    for (auto& [id, n] : _nodes) {
      if (n.up) handle(id, n.phaser->on_government(_government));
    }
    start(_government.leader());
  }
  void start(ParticipantId leader) {
    Node& n = _nodes.at(leader);
    n.counter++;  // durable before the start (the host's duty)
    handle(leader, n.phaser->start_leadership(Promise{_government.slot, n.counter}));
  }

  void append(ParticipantId at, uint64_t token, std::vector<BucketEntry> messages) {
    handle(at, node(at).phaser->on_append(token, std::move(messages)));
  }
  // Ticks carry the cluster's clock (ms), which tests move with advance().
  void tick(ParticipantId id) { handle(id, node(id).phaser->on_tick(now_ms)); }
  void advance(uint64_t ms) { now_ms += ms; }
  uint64_t now_ms = 1000;

  // Make everything `id` asked to persist durable, reporting each ticket.
  void flush(ParticipantId id) {
    Node& n = node(id);
    while (n.up && !n.unflushed.empty()) {
      Persist p = std::move(n.unflushed.front());
      n.unflushed.pop_front();
      n.disk.push_back(p.record);
      handle(id, n.phaser->on_persisted(p.ticket));
    }
  }
  // Deliver the oldest message; false when the network is empty.
  bool deliver_one() {
    if (_network.empty()) return false;
    InFlightMessage m = std::move(_network.front());
    _network.pop_front();
    Node& to = node(m.to);
    if (to.up) handle(m.to, to.phaser->on_message(m.from, m.message));
    return true;
  }
  void drop_to(ParticipantId to) {
    std::erase_if(_network, [&](const InFlightMessage& m) { return m.to == to; });
  }
  // The government changes without a new leadership (a growth ack decided).
  void confirm(std::vector<ParticipantId> replicas, uint64_t slot, uint64_t step) {
    _government = Government{slot, std::move(replicas), step};
    for (auto& [id, n] : _nodes) {
      if (n.up) handle(id, n.phaser->on_government(_government));
    }
  }
  void grow(ParticipantId leader, uint64_t step, std::vector<ParticipantId> newcomers) {
    handle(leader, phaser(leader).grow(step, newcomers));
  }
  void end_growth(ParticipantId leader) { handle(leader, phaser(leader).end_growth()); }
  size_t fetches() const { return _fetched; }
  size_t fetches_pending() const { return _fetches.size(); }
  // Writes sent to `to` in Catchups so far (step 9b's stream).
  size_t streamed(ParticipantId to) const {
    const auto found = _streamed.find(to);
    return found == _streamed.end() ? 0 : found->second;
  }
  int repairs() const { return _repairs; }
  // Answer every Fetch from the asker's durable committed writes.
  bool answer_fetches() {
    bool moved = false;
    while (!_fetches.empty()) {
      auto [id, fetch] = _fetches.front();
      _fetches.pop_front();
      Node& n = node(id);
      if (!n.up) continue;
      if (fetch.from < n.retained_start) {
        // Its log retired those writes: the host says so (step 9b).
        _fetched++;
        handle(id, n.phaser->on_fetch_retained(fetch.to));
        moved = true;
        continue;
      }
      const PhaserDurable d = fold(n, with_log());
      std::vector<WritePtr> writes;
      for (const WritePtr& w : d.writes) {
        if (w->end() > fetch.from) writes.push_back(w);
      }
      _fetched++;
      handle(id, n.phaser->on_fetched(fetch.to, std::move(writes)));
      moved = true;
    }
    return moved;
  }
  // Deliver and flush until nothing moves.
  void settle() {
    for (bool moved = true; moved;) {
      moved = answer_fetches();
      for (auto& [id, n] : _nodes) {
        if (n.up && !n.unflushed.empty()) {
          flush(id);
          moved = true;
        }
      }
      while (deliver_one()) moved = true;
    }
  }

  // Crash: unflushed persists and volatile state are lost.
  void crash(ParticipantId id) {
    Node& n = node(id);
    n.up = false;
    n.unflushed.clear();
    n.phaser.reset();
    std::erase_if(_network, [&](const InFlightMessage& m) { return m.to == id; });
  }
  void restart(ParticipantId id) {
    boot(id);
    Node& n = node(id);
    handle(id, n.phaser->on_government(_government));
  }

  // A participant's durable state, from its durable records alone, and its
  // committed log.
  PhaserDurable durable(ParticipantId id) { return fold(node(id), PhaserDurable{}); }
  std::vector<BucketEntry> committed(ParticipantId id) { return fold(node(id), with_log()).log; }
  std::optional<Reply> reply_for(uint64_t token) const {
    for (const Reply& r : _replies) {
      if (r.token == token) return r;
    }
    return std::nullopt;
  }

 private:
  static PhaserDurable with_log() {
    PhaserDurable d;
    d.keep_log = true;
    return d;
  }
  static PhaserDurable fold(const Node& n, PhaserDurable d) {
    for (const PhaserRecord& r : n.disk) d.apply(r);
    return d;
  }
  void boot(ParticipantId id) {
    Node& n = _nodes.at(id);
    const PhaserDurable d = fold(n, PhaserDurable{});
    Phaser::Config config = _base;
    config.self = id;
    n.phaser = std::make_unique<Phaser>(config, d);
    n.up = true;
  }
  void handle(ParticipantId id, PhaserOutput out) {
    Node& n = node(id);
    for (Persist& p : out.persist) n.unflushed.push_back(std::move(p));
    for (PhaserSend& s : out.send) {
      if (const auto* catchup = std::get_if<Catchup>(&s.message)) {
        _streamed[s.to] += catchup->writes.size();
      }
      _network.push_back(InFlightMessage{id, s.to, std::move(s.message)});
    }
    for (Reply& r : out.reply) _replies.push_back(std::move(r));
    for (ParticipantId r : out.report) _reports.push_back(r);
    for (const Fetch& f : out.fetch) _fetches.emplace_back(id, f);
    if (out.repair) _repairs++;
  }

  Phaser::Config _base;
  std::map<ParticipantId, Node> _nodes;
  Government _government;
  std::deque<InFlightMessage> _network;
  std::vector<Reply> _replies;
  std::vector<ParticipantId> _reports;
  std::deque<std::pair<ParticipantId, Fetch>> _fetches;
  size_t _fetched = 0;
  std::map<ParticipantId, size_t> _streamed;
  int _repairs = 0;
};

inline BucketEntry message(uint64_t connection, uint64_t series, std::string body,
                     uint64_t window = 0) {
  BucketEntry e;
  e.identifier = "id";
  e.connection = connection == 0 ? ConnectionId{} : ConnectionId{1, connection};
  e.series = series;
  e.window = window == 0 ? series : window;
  e.body = std::move(body);
  return e;
}

}  // namespace coworker::consensus::testing
