#include "tools/bench/driver.h"

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bucket/hash.h"
#include "consensus/assert.h"
#include "consensus/prng.h"
#include "http/client.h"
#include "reactor/loop.h"
#include "reactor/ops.h"
#include "reactor/sync.h"
#include "tools/bench/router.h"

namespace coworker::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr milliseconds backoff_first{10};
constexpr milliseconds backoff_max{500};
// One attempt's bound: connect, send, answer.
constexpr milliseconds attempt_timeout{5000};
constexpr milliseconds connect_timeout{1000};

uint64_t core_seed(uint64_t seed, unsigned core) {
  uint64_t state = seed + core;
  return consensus::splitmix64(state);
}

// This core's share of `total` split over `cores`: the first ones take the
// remainder.
uint64_t share(uint64_t total, unsigned cores, unsigned core) {
  return total / cores + (core < total % cores ? 1 : 0);
}

// What became of one window.
enum class Outcome : uint8_t {
  acked,          // answered 2xx: logged once
  refused,        // a final 409 on the first attempt: not logged
  indeterminate,  // given up, or refused after a resubmission: maybe logged
  stopped,        // the loop is stopping (SIGINT)
  fatal,          // a final 4xx that says the bench is wrong
};

// One client connection of the bench: its id, its next series, and one
// keep-alive socket per participant address it has sent to.
struct Connection {
  std::string id;
  uint64_t series = 1;
  std::vector<std::unique_ptr<http::Client>> clients;  // by Router address index

  http::Client& client(const Router& router, size_t index) {
    if (clients.size() < router.addresses()) clients.resize(router.addresses());
    if (!clients[index]) {
      http::ClientConfig config;
      config.connect_timeout = connect_timeout;
      config.request_timeout = attempt_timeout;
      clients[index] = std::make_unique<http::Client>(router.endpoint(index), config);
    }
    return *clients[index];
  }
};

class Driver {
 public:
  Driver(const BenchOptions& options, const Identifiers& identifiers, unsigned core, Tally* tally)
      : _options(options),
        _tally(*tally),
        _router(options),
        _picker(identifiers, core_seed(options.seed, core)),
        _body(message_body(options.message_bytes, options.seed)),
        _connections(share(options.connections, options.cores, core)),
        _rate(share(options.rate, options.cores, core)) {}

  reactor::Task<void> run() {
    auto asking = _router.refresh();
    std::string why = co_await asking;
    if (!why.empty()) {
      _tally.fatal = "no participant answered /v1/cluster: " + why;
      auto closing = _router.close();
      co_await closing;
      co_return;
    }
    std::vector<Connection> connections(_connections);
    std::vector<reactor::Task<void>> opening;
    for (Connection& connection : connections) opening.push_back(open(connection));
    co_await reactor::when_all(std::move(opening));
    if (_tally.fatal.empty()) {
      _start = Clock::now();
      _measure_from = _start + _options.warmup;
      _end = _measure_from + _options.duration;
      std::vector<reactor::Task<void>> loads;
      for (Connection& connection : connections) loads.push_back(load(connection));
      co_await reactor::when_all(std::move(loads));
      if (_rate > 0) count_unsent();
    }
    for (Connection& connection : connections) {
      for (std::unique_ptr<http::Client>& client : connection.clients) {
        if (!client) continue;
        auto closing = client->close();
        co_await closing;
      }
    }
    auto closing = _router.close();
    co_await closing;
  }

 private:
  // 2. POST /v1/connect until answered 201, or the give-up bound passes.
  reactor::Task<void> open(Connection& connection) {
    const Clock::time_point deadline = Clock::now() + _options.give_up;
    milliseconds backoff = backoff_first;
    while (_tally.fatal.empty()) {
      const size_t server = _router.target_spread();
      http::Client& client = connection.client(_router, server);
      auto asking = client.request(http::Method::post, "/v1/connect");
      Result<http::Message> reply = co_await asking;
      if (reply && (reply->status == 201 || reply->status == 200)) {
        simdjson::dom::parser parser;
        std::string_view id;
        if (parser.parse(reply->body).get_object()["connection"].get_string().get(id)) {
          _tally.fatal = "POST /v1/connect answered without a connection id: " + reply->body;
          co_return;
        }
        connection.id = std::string(id);
        co_return;
      }
      if (reply) {
        count_error(std::to_string(reply->status));
      } else {
        if (stopping()) co_return;
        count_error(reply.error().code == ETIMEDOUT ? "timeout" : "connection");
      }
      if (Clock::now() + backoff > deadline) {
        _tally.fatal = "could not open a connection: POST /v1/connect " +
                       (reply ? "answered " + std::to_string(reply->status)
                              : std::string("failed: ") + reply.error().message());
        co_return;
      }
      reactor::Timeout pause{backoff};
      if (!co_await pause) co_return;
      backoff = std::min(backoff * 2, backoff_max);
    }
  }

  // 3. One connection's windows until the end.
  reactor::Task<void> load(Connection& connection) {
    Request request;
    while (_tally.fatal.empty()) {
      std::optional<Clock::time_point> intended = next_intended();
      if (!intended) co_return;
      const Clock::time_point now = Clock::now();
      if (*intended > now) {
        reactor::Timeout pause{nanoseconds(*intended - now)};
        if (!co_await pause) co_return;
      }
      const Identifier& identifier = _picker.next();
      build_request(request, identifier, connection.id, connection.series, _options.window, _body);
      connection.series += _options.window;
      auto sending = send(connection, request, identifier, *intended + _options.give_up);
      const Outcome outcome = co_await sending;
      const Clock::time_point done = Clock::now();
      switch (outcome) {
        case Outcome::acked:
          record(*intended, done);
          break;
        case Outcome::refused:
          _tally.refused_windows++;
          break;
        case Outcome::indeterminate:
          _tally.indeterminate_windows++;
          _tally.indeterminate_messages += _options.window;
          break;
        case Outcome::stopped:
        case Outcome::fatal:
          co_return;
      }
    }
  }

  // 3a. Closed loop: now, until the end. Open loop: the next slot of the
  // schedule, while it lies before the end and the end has not passed.
  std::optional<Clock::time_point> next_intended() {
    const Clock::time_point now = Clock::now();
    if (now >= _end) return std::nullopt;
    if (_rate == 0) return now;
    const Clock::time_point slot = slot_time(_next_slot);
    if (slot >= _end) return std::nullopt;
    _next_slot++;
    return slot;
  }

  Clock::time_point slot_time(uint64_t slot) const {
    const double ns = static_cast<double>(slot) * 1e9 / static_cast<double>(_rate);
    return _start + nanoseconds(static_cast<int64_t>(ns));
  }

  void count_unsent() {
    const double slots = static_cast<double>(_rate) *
                         std::chrono::duration<double>(_end - _start).count();
    const uint64_t due = static_cast<uint64_t>(slots);
    if (due > _next_slot) _tally.unsent_windows += due - _next_slot;
  }

  // 3b. Attempts until a 2xx, a final answer, or the deadline.
  reactor::Task<Outcome> send(Connection& connection, const Request& request,
                              const Identifier& identifier, Clock::time_point deadline) {
    const uint32_t bucket = bucket_of(identifier);
    milliseconds backoff = backoff_first;
    bool spread = false;  // the next attempt goes to a --server address
    for (uint64_t attempt = 0;; attempt++) {
      if (attempt > 0) _tally.resubmissions++;
      const size_t index = spread ? _router.target_spread() : _router.target(bucket);
      http::Client& client = connection.client(_router, index);
      client.queue(request.method, request.target, request.body, request.headers);
      auto flushing = client.flush();
      Status sent = co_await flushing;
      std::optional<int> status;
      std::optional<Errno> failure;
      if (sent) {
        auto answering = client.next_response();
        Result<http::Message*> reply = co_await answering;
        if (reply) {
          status = (*reply)->status;
          if (*status >= 200 && *status < 300) co_return Outcome::acked;
          if (final_refusal(*status)) co_return judge_refusal(**reply, request, attempt);
        } else {
          failure = reply.error();
        }
      } else {
        failure = sent.error();
      }
      if (failure) {
        if (stopping()) co_return Outcome::stopped;
        count_error(failure->code == ETIMEDOUT ? "timeout" : "connection");
        spread = !spread;
      } else {
        count_error(std::to_string(*status));
        spread = *status == 503 ? !spread : spread;
      }
      _router.mark_stale();
      if (Clock::now() + backoff > deadline) co_return Outcome::indeterminate;
      reactor::Timeout pause{backoff};
      if (!co_await pause) co_return Outcome::stopped;
      backoff = std::min(backoff * 2, backoff_max);
      auto refreshing = _router.maybe_refresh();
      co_await refreshing;
    }
  }

  // A 4xx other than 408 and 429 is final: resubmitting cannot change it.
  static bool final_refusal(int status) {
    return status >= 400 && status < 500 && status != 408 && status != 429;
  }

  Outcome judge_refusal(const http::Message& reply, const Request& request, uint64_t attempt) {
    count_error(std::to_string(reply.status));
    if (reply.status == 409) {
      // superseded / expired on a first attempt: this window was not logged.
      // After a resubmission the first attempt may have been logged.
      return attempt == 0 ? Outcome::refused : Outcome::indeterminate;
    }
    _tally.fatal = "POST " + request.target + " answered " + std::to_string(reply.status) + " " +
                   reply.body.substr(0, 300);
    return Outcome::fatal;
  }

  uint32_t bucket_of(const Identifier& identifier) const;

  void record(Clock::time_point intended, Clock::time_point done) {
    _tally.acked_windows++;
    _tally.acked_messages += _options.window;
    if (intended < _measure_from || intended >= _end) return;
    const uint64_t ns = static_cast<uint64_t>(nanoseconds(done - intended).count());
    _tally.latency.record(ns);
    _tally.latency_max_ns = std::max(_tally.latency_max_ns, ns);
    _tally.measured_windows++;
    _tally.measured_messages += _options.window;
  }

  void count_error(const std::string& kind) { _tally.errors[kind]++; }
  static bool stopping() { return reactor::Loop::current().stopping(); }

  const BenchOptions& _options;
  Tally& _tally;
  Router _router;
  Picker _picker;
  const std::string _body;
  const uint64_t _connections;
  const uint64_t _rate;  // this core's windows per second; 0: closed loop
  Clock::time_point _start{};
  Clock::time_point _measure_from{};
  Clock::time_point _end{};
  uint64_t _next_slot = 0;
};

uint32_t Driver::bucket_of(const Identifier& identifier) const {
  return bucket::bucket_of(identifier.name, _router.buckets());
}

}  // namespace

reactor::Task<void> run_core(const BenchOptions& options, const Identifiers& identifiers,
                             unsigned core, Tally* tally) {
  Driver driver(options, identifiers, core, tally);
  auto running = driver.run();
  co_await running;
}

}  // namespace coworker::bench
