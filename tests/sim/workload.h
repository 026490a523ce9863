// Workload: simulated clients appending through phasers, keeping the client
// duties of DESIGN §3 — and exercising every way a client may retry.
//
// One Workload per seed, owned by the swarm driver, single-threaded. Each
// tracked client owns a connection and stamps increasing series (some start
// just below the series wrap, so series wrap around). It keeps one window in
// flight: a window of 1..window_max messages with random identifiers, hence
// spread over buckets; per bucket, the unanswered messages of the window go
// out as one attempt. An attempt is resubmitted after an error (503, 429), on
// a timeout, and sometimes early while the first attempt is still in flight,
// sometimes to another participant. After a failure a client sometimes
// abandons its window and moves on (never resubmitting it). Untracked clients
// send without connection and series (at-least-once): each retry is a new
// copy with a new body.
//
// Every body is unique (it names its client and series, or its copy), so the
// checkers identify a message by its body. The Workload reports what it
// submits and what was answered 2xx to the PhaserChecker, and flags answers
// that break the client contract at once (a 409 superseded for the window in
// flight, one message answered two positions).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "consensus/phaser.h"
#include "consensus/phaser_messages.h"
#include "consensus/prng.h"
#include "tests/sim/network.h"

namespace coworker::sim {

class PhaserChecker;

struct WorkloadOptions {
  uint32_t buckets = 16;
  uint32_t clients = 4;            // tracked connections
  uint32_t untracked_clients = 1;  // at-least-once senders
  uint32_t window_max = 4;
  uint32_t identifiers = 64;            // distinct identifiers drawn from
  uint32_t window_per_mille = 300;      // per tick, an idle client starts a window
  Tick attempt_timeout = 60;            // no answer: resubmit
  Tick retry_delay_max = 5;             // after an error, wait up to this
  uint32_t early_resubmit_per_mille = 30;  // per tick per open attempt
  uint32_t other_target_per_mille = 200;   // a resubmission goes elsewhere
  uint32_t abandon_per_mille = 100;        // per failure
  uint32_t wrap_start_per_mille = 250;     // a client starts just below the wrap
  // Connection expiry (DESIGN §3): before a window, a client sometimes
  // idles up to idle_ticks_max first (set it past the phasers' expiry so
  // connections expire under the workload). A 409 connection_expired makes
  // the client abandon its window and connect again (a new id).
  uint32_t idle_per_mille = 0;
  Tick idle_ticks_max = 0;
};

struct AppendAttempt {
  uint64_t token = 0;
  ParticipantId target = 0;
  uint32_t bucket = 0;
  std::vector<consensus::BucketEntry> messages;
};

// Connection expiry under the workload (issue 13): in three seeds of four a
// short expiry (20..300 ticks; the phasers' clock is in ticks) and clients
// that sometimes idle past it. Drawn last by the families, so the draws
// before it stay what they were.
void draw_expiry(consensus::Prng& prng, consensus::Phaser::Config& phaser,
                 WorkloadOptions& workload);

class Workload {
 public:
  // Picks where to send an attempt for a bucket; `other` asks for a
  // different participant than the usual one.
  using Target = std::function<ParticipantId(uint32_t bucket, bool other)>;

  Workload(consensus::Prng& prng, WorkloadOptions options, PhaserChecker& checker);

  // The attempts to send this tick.
  std::vector<AppendAttempt> tick(Tick now, const Target& target);
  // A leader emitted this answer (issue 19 point 2): its 2xx results are
  // acknowledged from this moment, whether the network then delivers the
  // answer or drops it, and the checker is told now.
  void on_emitted(const consensus::Reply& reply);
  // The client received the answer (emitted before).
  void on_reply(Tick now, const consensus::Reply& reply);
  // No new windows from now on (the settling phase); windows in flight
  // still complete.
  void stop_new_windows() { _stop_new = true; }
  // No window in flight (windows stuck only on `dead` buckets aside: buckets
  // whose every replica is gone for good, DESIGN §7.6).
  bool quiet(const std::set<uint32_t>& dead) const;
  std::string describe_open() const;

  uint64_t acked() const { return _acked; }
  uint64_t windows() const { return _windows; }
  uint64_t abandoned() const { return _abandoned; }
  uint64_t expired() const { return _expired; }
  uint64_t handed_back() const { return _handed_back; }
  uint64_t reconnects() const { return _reconnects; }

 private:
  enum class State : uint8_t { waiting, acked, abandoned };
  struct Message {
    consensus::BucketEntry entry;
    uint32_t bucket = 0;
    State state = State::waiting;
    consensus::Position position = 0;
  };
  struct Attempt {
    uint32_t client = 0;
    uint32_t bucket = 0;
    uint64_t window = 0;  // the client's window number when sent
    Tick sent = 0;
    bool answered = false;
    std::vector<size_t> indices;  // into the client's window
    std::vector<consensus::BucketEntry> entries;  // what went out, for the checker
  };
  struct Client {
    bool tracked = true;
    consensus::ConnectionId connection;
    uint64_t next_series = 0;
    uint64_t copies = 0;  // untracked: bodies sent
    uint64_t window_number = 0;
    std::vector<Message> window;      // the window in flight (empty: idle)
    std::map<uint32_t, uint64_t> open;     // bucket -> token of its newest attempt
    std::map<uint32_t, Tick> retry_at;     // bucket -> when to resubmit
    Tick idle_until = 0;                   // no new window before
  };
  // A tracked message's attempts, until it is logged or known not to be:
  // answered 409 connection_expired by every attempt sent, it never is (an
  // attempt answered otherwise, 503 say, may still be logged: then expired
  // never reaches sent).
  struct Attempts {
    uint32_t bucket = 0;
    uint32_t sent = 0;
    uint32_t expired = 0;
    uint32_t answered = 0;
  };

  void start_window(Tick now, uint32_t index);
  void send_bucket(Tick now, uint32_t index, uint32_t bucket, bool other, const Target& target,
                   std::vector<AppendAttempt>& out);
  void fail_attempt(Tick now, uint32_t index, uint32_t bucket);
  void maybe_finish(uint32_t index);
  void count_answer(const consensus::BucketEntry& entry, consensus::Outcome outcome);

  consensus::Prng& _prng;
  WorkloadOptions _options;
  PhaserChecker& _checker;
  std::vector<Client> _clients;
  std::map<uint64_t, Attempt> _attempts;  // by token
  uint64_t _next_token = 1;
  bool _stop_new = false;
  uint64_t _acked = 0;
  uint64_t _windows = 0;
  uint64_t _abandoned = 0;
  uint64_t _expired = 0;
  uint64_t _handed_back = 0;
  uint64_t _reconnects = 0;
  uint64_t _next_counter = 0;                 // connection ids: {99, counter}
  std::map<std::string, Attempts> _tracked;   // by body
};

}  // namespace coworker::sim
