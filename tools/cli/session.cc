// Session: requests with failover and resubmission for coworker-cli (see
// session.h). Runs on the CLI's one core.
#include "tools/cli/session.h"

#include <algorithm>

#include "reactor/net.h"
#include "reactor/ops.h"

namespace coworker::cli_client {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// After a full round of failed addresses (or a retry on the same one), wait
// before the next attempt, doubling up to a second: a cluster electing a
// leader answers 503 for a few heartbeats, and hammering it does not help.
constexpr milliseconds backoff_first{50};
constexpr milliseconds backoff_max{1000};
// A connection that cannot be opened within this is as good as refused.
constexpr milliseconds connect_timeout_max{2000};
// Bodies are shown in messages up to this many bytes.
constexpr size_t described_bytes_max = 300;

http::ClientConfig client_config(const SessionConfig& config) {
  http::ClientConfig client;
  client.connect_timeout = std::min(connect_timeout_max, config.attempt_timeout);
  client.request_timeout = config.attempt_timeout;
  return client;
}

}  // namespace

std::string describe(const Answer& answer) {
  std::string text = std::to_string(answer.status);
  if (!answer.body.empty()) {
    std::string body = answer.body.substr(0, described_bytes_max);
    std::replace(body.begin(), body.end(), '\n', ' ');
    while (!body.empty() && body.back() == ' ') body.pop_back();
    text += " " + body;
    if (answer.body.size() > described_bytes_max) text += "...";
  }
  return text;
}

Session::Session(SessionConfig config) : _config(std::move(config)) {
  COWORKER_ASSERT(!_config.servers.empty());
  for (const cli::Address& address : _config.servers) {
    Result<reactor::Endpoint, std::string> endpoint = reactor::Endpoint::parse(address.to_string());
    COWORKER_ASSERT(endpoint.ok());  // cli::parse_address checked the same form
    _clients.push_back(std::make_unique<http::Client>(*endpoint, client_config(_config)));
  }
}

Session::Next Session::judge(const Answer& answer) const {
  if (answer.status >= 200 && answer.status < 300) return Next::done;
  if (answer.status == 503) return Next::next_server;
  if (answer.status == 404 && _config.not_replica == NotReplicaMovesOn::yes &&
      answer.body.find("\"not_replica\"") != std::string::npos) {
    return Next::next_server;
  }
  if (answer.status >= 500 || answer.status == 429 || answer.status == 408) {
    return Next::same_server;
  }
  return Next::done;  // a final 4xx: the caller reads it
}

reactor::Task<Result<Answer, GaveUp>> Session::call(http::Method method, std::string target,
                                                    std::string body, std::string headers) {
  const Clock::time_point deadline = Clock::now() + _config.timeout;
  milliseconds backoff = backoff_first;
  std::string last;
  for (uint64_t attempt = 1;; attempt++) {
    const std::string server = server_name(_current);
    auto sending = _clients[_current]->request(method, target, body, headers);
    Result<http::Message> reply = co_await sending;
    Next next = Next::next_server;
    if (!reply) {
      last = server + ": " + reply.error().message();
    } else {
      Answer answer{reply->status, std::move(reply->body), server, attempt};
      next = judge(answer);
      if (next == Next::done) co_return answer;
      last = server + ": " + describe(answer);
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      co_return GaveUp{"no answer within " + std::to_string(_config.timeout.count()) +
                           " ms after " + std::to_string(attempt) + " attempts, last " + last,
                       attempt};
    }
    if (next == Next::next_server) _current = (_current + 1) % _clients.size();
    // Rotating through the other addresses is free; only a failed round (or
    // a retry at the same address) waits.
    if (next == Next::same_server || attempt % _clients.size() == 0) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
      reactor::Timeout pause{std::min(backoff, left)};
      Status paused = co_await pause;
      (void)paused;  // ECANCELED only when the loop stops, and then we stop too
      backoff = std::min(backoff * 2, backoff_max);
    }
  }
}

reactor::Task<Result<Answer, std::string>> Session::attempt_at(size_t index, http::Method method,
                                                               std::string target) {
  COWORKER_ASSERT(index < _clients.size());
  const std::string server = server_name(index);
  auto sending = _clients[index]->request(method, target);
  Result<http::Message> reply = co_await sending;
  if (!reply) co_return std::string(reply.error().message());
  co_return Answer{reply->status, std::move(reply->body), server, 1};
}

reactor::Task<void> Session::close() {
  for (std::unique_ptr<http::Client>& client : _clients) {
    auto closing = client->close();
    co_await closing;
  }
}

}  // namespace coworker::cli_client
