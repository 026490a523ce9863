// One question (issue 18 point 8): what does the engine cost per client
// message with no disk, no network, no HTTP and no other thread in the way?
//
//   coworker-bench-engine [--messages N] [--window W] [--buckets B]
//                         [--message-bytes S] [--runs R]
//
// Three BucketHosts (bucket/host.h, the participants' engines) on one
// thread, every bucket governed by all three and led by one of them in turn.
// Their storage encodes every record as the server's does
// (encode_phaser_record, engine_records.h), then checksums the payload and
// copies it into a batch buffer as the log store would; their network
// carries every phaser message as the bytes the server sends
// (phaser_codec.h), decoded at the receiver. A round gives each bucket's
// leader one window of W messages of one connection (consecutive series),
// then flushes every storage and delivers every message until nothing
// moves: one write per bucket per round, as with one client per bucket.
//
// Prints the wall time per message of the best run (one thread, so it is
// the engine's CPU time) and checks that every message was answered
// `appended`. For instruction counts, stable on a noisy machine:
//
//   valgrind --tool=callgrind --toggle-collect='*run_rounds*'
//     build/bin/coworker-bench-engine --runs 1 --messages 64000   (one line)
//
// then divide the total by the messages (callgrind_annotate shows where).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "bucket/engine_records.h"
#include "bucket/host.h"
#include "consensus/assert.h"
#include "consensus/crc32c.h"
#include "consensus/phaser_codec.h"

namespace {

using namespace coworker;
using consensus::ParticipantId;

// Records staged become durable at the next flush, in order.
class MemoryStorage final : public bucket::HostStorage {
 public:
  Ticket stage_membership(std::vector<consensus::MembershipRecord>) override { unused(); }
  Ticket stage_membership_checkpoint(const consensus::MembershipDurable&) override { unused(); }
  Ticket stage_phaser(uint32_t bucket, std::vector<consensus::PhaserRecord> records,
                      bucket::Flush) override {
    for (const consensus::PhaserRecord& record : records) {
      put(bucket::encode_phaser_record(bucket, record));
    }
    return ++_issued;
  }
  Ticket stage_counter(uint32_t counter) override {
    put(bucket::encode_counter_record(counter));
    return ++_issued;
  }
  Ticket durable() const override { return _durable; }
  const consensus::PhaserDurable* recovered(uint32_t) const override { return nullptr; }
  std::vector<uint32_t> recovered_buckets() const override { return {}; }
  void fetch(uint32_t, ParticipantId, consensus::Position, size_t) override { unused(); }

  // A group commit: everything staged is durable. False when nothing was.
  bool flush() {
    if (_durable == _issued) return false;
    _durable = _issued;
    _batch.clear();
    return true;
  }

 private:
  [[noreturn]] static void unused() { COWORKER_ASSERT(!"not used by this bench"); __builtin_unreachable(); }
  void put(const bucket::EngineRecord& record) {
    _checksums += consensus::crc32c(0, record.payload.data(), record.payload.size());
    _batch.append(record.payload);
  }
  Ticket _issued = 0;
  Ticket _durable = 0;
  std::string _batch;
  uint64_t _checksums = 0;  // the log store's checksum per record, summed
};

struct Packet {
  ParticipantId from = consensus::no_participant;
  ParticipantId to = consensus::no_participant;
  std::string bytes;
};

// Effects: messages become bytes on the shared network; answers are counted.
class Effects final : public bucket::HostEffects {
 public:
  Effects(ParticipantId self, std::deque<Packet>& network) : _self(self), _network(network) {}
  void send(ParticipantId to, consensus::PhaserMessage message) override {
    _network.push_back(Packet{_self, to, _encoder.encode(message)});  // as Core::send
  }
  void reply(uint32_t, const consensus::Reply& reply) override {
    for (const consensus::MessageResult& r : reply.results) {
      COWORKER_ASSERT(r.outcome == consensus::Outcome::appended);
      appended++;
    }
  }
  void report(uint32_t, ParticipantId) override { COWORKER_ASSERT(!"no replica is silent here"); }
  void committed(uint32_t, const consensus::Write&) override {}
  void repair(uint32_t) override { COWORKER_ASSERT(!"no copy is void here"); }
  uint64_t appended = 0;

 private:
  ParticipantId _self;
  std::deque<Packet>& _network;
  consensus::MessageEncoder _encoder;
};

struct Participant {
  Participant(ParticipantId id, std::deque<Packet>& network)
      : effects(id, network), host(id, consensus::Phaser::Config{}, 0, storage, effects) {}
  MemoryStorage storage;
  Effects effects;
  bucket::BucketHost host;
};

struct Options {
  uint64_t messages = 256000;
  uint32_t window = 64;
  uint32_t buckets = 64;
  size_t message_bytes = 100;
  int runs = 5;
};

class Engine {
 public:
  explicit Engine(const Options& options) : _options(options) {
    for (ParticipantId id = 1; id <= 3; id++) {
      _participants.push_back(std::make_unique<Participant>(id, _network));
    }
    for (uint32_t b = 0; b < options.buckets; b++) {
      consensus::Government government;
      government.slot = 1;
      government.step = 1;
      const ParticipantId leader = 1 + b % 3;
      government.replicas = {leader, 1 + leader % 3, 1 + (leader + 1) % 3};
      for (auto& p : _participants) p->host.government(b, government);
    }
    settle();
    for (int i = 0; i < 3; i++) tick();
    settle();
    for (uint32_t b = 0; b < options.buckets; b++) {
      const consensus::Phaser* phaser = leader_of(b).host.phaser(b);
      COWORKER_ASSERT(phaser != nullptr && phaser->role() == consensus::Phaser::Role::leading);
    }
    _body.assign(options.message_bytes, 'x');
  }

  // Sends `rounds` windows per bucket; returns the messages answered.
  // Not inlined: callgrind's --toggle-collect names it.
  [[gnu::noinline]] uint64_t run_rounds(uint64_t rounds) {
    uint64_t answered_before = answered();
    for (uint64_t r = 0; r < rounds; r++) {
      for (uint32_t b = 0; b < _options.buckets; b++) {
        std::vector<consensus::BucketEntry> window;
        window.reserve(_options.window);
        const uint64_t first = _series;
        for (uint32_t i = 0; i < _options.window; i++) {
          consensus::BucketEntry e;
          e.identifier = "k" + std::to_string(b);
          e.connection = consensus::ConnectionId{1, 1 + b};
          e.series = _series++;
          e.window = first;
          e.body = _body;
          window.push_back(std::move(e));
        }
        leader_of(b).host.append(b, ++_token, std::move(window));
      }
      settle();
      // The server ticks every heartbeat, not every write: a tick per round
      // would be three phaser ticks per message with windows of one.
      if (r % 16 == 15) tick();
    }
    settle();
    return answered() - answered_before;
  }

 private:
  Participant& leader_of(uint32_t bucket) { return *_participants[bucket % 3]; }
  uint64_t answered() const {
    uint64_t n = 0;
    for (const auto& p : _participants) n += p->effects.appended;
    return n;
  }
  void tick() {
    _now_ms += 10;
    for (auto& p : _participants) p->host.tick(_now_ms);
  }
  void settle() {
    for (bool moved = true; moved;) {
      moved = false;
      for (auto& p : _participants) {
        if (p->storage.flush()) {
          p->host.on_durable();
          moved = true;
        }
      }
      while (!_network.empty()) {
        Packet packet = std::move(_network.front());
        _network.pop_front();
        auto decoded = consensus::decode_phaser_message(packet.bytes);
        COWORKER_ASSERT(decoded);
        _participants[packet.to - 1]->host.deliver(packet.from, *decoded.value);
        moved = true;
      }
    }
  }

  Options _options;
  std::deque<Packet> _network;
  std::vector<std::unique_ptr<Participant>> _participants;
  std::string _body;
  uint64_t _series = 1;
  uint64_t _token = 0;
  uint64_t _now_ms = 1'000'000;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The engine's cost per client message: three BucketHosts on one thread, records "
               "encoded and messages as bytes, no disk, network or HTTP (issue 18 point 8)"};
  Options o;
  app.add_option("--messages", o.messages, "Messages per run (rounded up to whole rounds)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--window", o.window, "Messages per window (one write)")->check(CLI::Range(1, 4096));
  app.add_option("--buckets", o.buckets, "Buckets, led in turn by the three")->check(CLI::Range(1, 4096));
  app.add_option("--message-bytes", o.message_bytes, "Bytes of each body")->check(CLI::Range(0, 65536));
  app.add_option("--runs", o.runs, "Runs, each with fresh hosts; the best is printed")->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);

  const uint64_t per_round = uint64_t{o.window} * o.buckets;
  const uint64_t rounds = (o.messages + per_round - 1) / per_round;
  double best_ns = 0;
  for (int run = 0; run < o.runs; run++) {
    Engine engine(o);
    const auto start = std::chrono::steady_clock::now();
    const uint64_t answered = engine.run_rounds(rounds);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (answered != rounds * per_round) {
      std::fprintf(stderr, "coworker-bench-engine: %llu of %llu messages answered\n",
                   static_cast<unsigned long long>(answered),
                   static_cast<unsigned long long>(rounds * per_round));
      return 1;
    }
    const double ns = 1e9 * seconds / static_cast<double>(answered);
    if (run == 0 || ns < best_ns) best_ns = ns;
  }
  std::printf("%llu messages of %zu bytes, windows of %u over %u buckets, best of %d runs: "
              "%.0f ns per message (%.0f messages/s on one thread)\n",
              static_cast<unsigned long long>(rounds * per_round), o.message_bytes, o.window,
              o.buckets, o.runs, best_ns, 1e9 / best_ns);
  return 0;
}
