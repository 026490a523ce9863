#include "tools/coworker/participant.h"

#include <unistd.h>

#include <csignal>

#include <fmt/format.h>

#include "consensus/assert.h"
#include "http/server.h"
#include "reactor/latch.h"
#include "reactor/offload.h"
#include "reactor/sync.h"
#include "tools/coworker/beacon.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/core.h"
#include "tools/coworker/log.h"
#include "tools/coworker/routes.h"

namespace coworker::server {

using reactor::Task;

Timing timing_from(const ServerFlags& flags) {
  Timing t;
  // A heartbeat is five ticks: every timeout of the state machines is a
  // whole number of ticks, and a tick is short enough for resends.
  const consensus::Tick heartbeat = t.membership.heartbeat_ticks;
  COWORKER_ASSERT(heartbeat >= 1);
  const uint32_t tick_ms = std::max<uint32_t>(1, flags.heartbeat_ms / heartbeat);
  t.tick = reactor::Milliseconds(tick_ms);
  auto ticks = [tick_ms](uint64_t ms) { return std::max<uint64_t>(1, ms / tick_ms); };
  // The flags keep the departure timeout at five heartbeats or more (a read
  // lease and its margin, MembershipNode's constructor asserts it); with
  // heartbeats under five milliseconds a tick is one millisecond, so keep
  // the same ratio in ticks.
  const consensus::Tick departure_min = ServerFlags::heartbeats_per_departure_min * heartbeat;
  t.membership.departure_ticks = std::max(ticks(flags.departure_timeout_ms), departure_min);
  t.membership.recovery_ticks = std::max(ticks(flags.recovery_timeout_ms), 3 * heartbeat);
  t.phaser.report_ticks = static_cast<uint32_t>(t.membership.departure_ticks);
  // A commit's trailing notice waits a second tick: a bucket written more
  // often than that carries its commits in its next write (phaser.h step 7).
  t.phaser.notice_ticks = 2;
  t.phaser.connection_expiry_ms = flags.connection_expiry_ms;
  t.append_timeout_ticks = ticks(2000);  // DESIGN §3: the hop deadline
  return t;
}

Participant::Participant(ServerFlags flags, DataDir data_dir, std::optional<BootHint> hint)
    : _flags(std::move(flags)),
      _timing(timing_from(_flags)),
      _data_dir(std::move(data_dir)),
      _hint(std::move(hint)),
      _address(_flags.peer_listen.to_string() + "|" + _flags.listen.to_string()),
      _cores(_flags.cores),
      _metrics(_flags.cores) {
  for (auto& metrics : _metrics) metrics = std::make_unique<CoreMetrics>();
}

Participant::~Participant() {
  for (int fd : _http_fds) ::close(fd);
}

void Participant::fail(int code, const std::string& reason) {
  if (code == 0) {
    log_info(reactor::Loop::current().core(), "{}", reason);
  } else {
    log_error(reactor::Loop::current().core(), "{}", reason);
  }
  reactor::Smp::current().request_stop(code);
}

int Participant::run() {
  Result<reactor::Endpoint, std::string> endpoint =
      reactor::Endpoint::parse(_flags.listen.to_string());
  COWORKER_ASSERT(endpoint.ok());  // the flags parsed it
  reactor::Endpoint bound;
  Result<std::vector<int>> fds = http::listen_per_core(*endpoint, _flags.cores, &bound);
  if (!fds) {
    std::fprintf(stderr, "coworker: cannot listen on --listen %s: %s\n",
                 _flags.listen.to_string().c_str(), fds.error().message());
    return 1;
  }
  _http_fds = std::move(*fds);
  _router = make_router(*this);
  // Core 0's: this thread becomes core 0.
  _state_loaded = std::make_unique<reactor::Latch>(_flags.cores, 0);
  _all_ready = std::make_unique<reactor::Latch>(_flags.cores, 0);
  _smp = std::make_unique<reactor::Smp>(reactor::Smp::Config{.cores = _flags.cores});
  _smp->on_signal([this](int signo) { on_signal(signo); });
  return _smp->run([this](unsigned core) { return core_main(core); });
}

void Participant::on_signal(int signo) {
  COWORKER_ASSERT(reactor::Loop::current().core() == 0);
  if (signo == SIGTERM && !_leaving) {
    _leaving = true;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(_flags.leave_timeout_ms);
    const ClusterNode::LeaveStart start =
        _cluster ? _cluster->leave(deadline) : ClusterNode::LeaveStart::not_serving;
    switch (start) {
      case ClusterNode::LeaveStart::leaving:
        log_info(0, "SIGTERM: leaving the cluster (at most --leave-timeout-ms {}; SIGINT or "
                 "another SIGTERM stops at once)", _flags.leave_timeout_ms);
        return;
      case ClusterNode::LeaveStart::not_serving:
        return fail(0, "SIGTERM: not a serving member, nothing to leave; stopping");
      case ClusterNode::LeaveStart::alone:
        return fail(0, "SIGTERM: the only active member, no one to hand the buckets to; "
                    "stopping without leaving");
    }
  }
  fail(0, signo == SIGINT ? "SIGINT: stopping without leaving"
                          : "SIGTERM again: stopping without completing the leave");
}

Task<bool> Participant::load_state() {
  COWORKER_ASSERT(reactor::Loop::current().core() == 0);
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<RecoveryBeacon> beacon;
  const reactor::Milliseconds heartbeat{_flags.heartbeat_ms};
  if (_hint) {
    beacon = std::make_unique<RecoveryBeacon>(*_hint, heartbeat);
    Result<reactor::Endpoint, std::string> endpoint =
        reactor::Endpoint::parse(_flags.peer_listen.to_string());
    COWORKER_ASSERT(endpoint.ok());  // the flags parsed it
    Result<void, std::string> listening = beacon->listen(*endpoint);
    if (!listening) {
      fail(1, listening.error());
      co_return false;
    }
  }
  auto offload = reactor::Offload<Result<Loaded, BootFailure>>::start(
      [flags = &_flags, dir = &_data_dir, stop = &_stop_replay] {
        return load(*flags, *dir, *stop);
      });
  if (!offload) {
    fail(1, fmt::format("cannot start the replay: {}", offload.error().message()));
    if (beacon) co_await beacon->close();  // its transport's tasks end before it goes
    co_return false;
  }
  if (beacon) {
    log_info(0, "recovering: replaying the log in {} as id {}, heartbeating {} member(s) "
             "meanwhile", _data_dir.log_dir, _hint->id, _hint->members.size());
  }
  Status done;
  for (;;) {
    if (beacon) beacon->beat();
    done = co_await (*offload)->wait(beacon ? heartbeat : reactor::Milliseconds{0});
    if (done || done.error().code != ETIMEDOUT) break;
  }
  if (!done) {
    // Stopping (a signal): the replay ends at its next record (a re-map at
    // its end), and ~Offload joins it.
    _stop_replay.store(true, std::memory_order_relaxed);
    if (beacon) co_await beacon->close();
    if (!reactor::Loop::current().stopping()) {
      fail(1, fmt::format("waiting for the replay: {}", done.error().message()));
    }
    co_return false;
  }
  if (beacon) _handed_peers = beacon->hand_over();
  Result<Loaded, BootFailure> loaded = (*offload)->take();
  if (!loaded) {
    fail(loaded.error().code, loaded.error().reason);
    co_return false;
  }
  _loaded = std::move(*loaded);
  COWORKER_ASSERT(_loaded.indexes.size() == _flags.cores);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  log_info(0, "starting: data dir {} ({:016x}{}), {} cores, {} records replayed in {} ms{}",
           _data_dir.path, _data_dir.id, _data_dir.fresh ? ", new" : "", _flags.cores,
           _loaded.image.records, ms.count(),
           beacon ? fmt::format(", {} heartbeats sent recovering", beacon->beats()) : "");
  co_return true;
}

Task<void> Participant::core_main(unsigned core) {
  // HTTP from the start: while the log replays, /v1/health answers 503
  // "recovering" (DESIGN §3) and every other route 503, as the routes do
  // for a core or a cluster that does not exist yet.
  reactor::TaskGroup http;
  http.spawn(serve_http(core));
  co_await start_core(core);
  co_await http.join();  // until the loop stops
  if (core == 0 && _cluster) co_await _cluster->close();
  if (core == 0 && _handed_peers) co_await _handed_peers->close();  // stopped before the cluster
  if (has_core(core)) co_await _cores[core]->close();
}

Task<void> Participant::serve_http(unsigned core) {
  http::ServerConfig config;
  config.answered = [metrics = _metrics[core].get()](const http::Response& response) {
    metrics->count_answer(response.status, answer_code(response));
  };
  http::Server server(*_router, std::move(config));
  co_await server.serve(_http_fds[core]);
}

Task<void> Participant::start_core(unsigned core) {
  if (core == 0 && !co_await load_state()) co_return;  // core 0 never arrives: a stop
  auto loaded = _state_loaded->arrive_and_wait();
  if (!co_await loaded) co_return;
  const bucket::Recovery& recovery = _loaded.recovery;
  const std::optional<bucket::Repair>& repair = _loaded.repair;
  bucket::LogStore::Config config = log_store_config(_flags, _data_dir.log_dir, core);
  config.flushed = [metrics = _metrics[core].get()](std::chrono::steady_clock::duration took) {
    metrics->fdatasync_seconds.observe(std::chrono::duration<double>(took).count());
  };
  config.sealed = [this, core](const bucket::SealedSegment& sealed) {
    if (_cores[core] != nullptr) _cores[core]->sealed(sealed);
  };
  auto store = bucket::LogStore::open(config, recovery.core(core).resume);
  if (!store) {
    fail(1, fmt::format("core {}: cannot open the log in {}: {}", core, _data_dir.log_dir,
                        store.error().message()));
    co_return;
  }
  std::vector<uint32_t> resets;
  if (repair) resets = repair->resets[core];
  _cores[core] = std::make_unique<Core>(*this, core, std::move(*store),
                                        std::move(_loaded.indexes[core]),
                                        std::move(resets));
  Core& mine = *_cores[core];
  mine.start();
  mine.start_scrub(recovery.core(core).unread);
  if (core == 0 && repair && !repair->keeps_id) {
    // Repair step 2 (bucket/repair.h): the old id is given up durably before the
    // membership starts, and so before any core's first host (step 3).
    const auto ticket = mine.storage().stage_repair(
        {bucket::encode_identity_checkpoint(repair->identity)});
    mine.staged();
    if (!co_await mine.durable(ticket)) {
      // A failed log (the pump said so) or a signal stops the process
      // already; a stage refused otherwise must stop it too, or the HTTP
      // servers would wait for a stop that never comes.
      if (!reactor::Loop::current().stopping()) {
        fail(1, "repair: the identity checkpoint could not be made durable");
      }
      co_return;
    }
    log_info(0, "repair: the old id is given up; arriving anew");
  }
  // Core 0 starts the membership only once every core can take governments.
  auto ready = _all_ready->arrive_and_wait();
  if (!co_await ready) co_return;
  if (core == 0) {
    _cluster = std::make_unique<ClusterNode>(*this, mine);
    Result<void, std::string> started = _cluster->start(std::move(_handed_peers));
    if (!started) fail(2, started.error());
  }
}

}  // namespace coworker::server
