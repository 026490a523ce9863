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
};

struct AppendAttempt {
  uint64_t token = 0;
  ParticipantId target = 0;
  uint32_t bucket = 0;
  std::vector<consensus::BucketEntry> messages;
};

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
  };

  void start_window(Tick now, uint32_t index);
  void send_bucket(Tick now, uint32_t index, uint32_t bucket, bool other, const Target& target,
                   std::vector<AppendAttempt>& out);
  void fail_attempt(Tick now, uint32_t index, uint32_t bucket);
  void maybe_finish(uint32_t index);

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
};

}  // namespace coworker::sim
