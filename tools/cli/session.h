// Session: coworker-cli's way to the cluster. One keep-alive http::Client per
// --server address, a current address, and the retry rule every command
// shares: a connection error, a timeout or a 503 moves to the next address
// (round robin); any other 5xx or a 429 retries the same one; a full round of
// failures backs off. A request keeps being retried until it is answered
// (2xx or a final 4xx) or --timeout-ms has passed since its first attempt.
//
// Owned by the command's task on the CLI's one core, for the whole command.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.h"
#include "http/message.h"
#include "reactor/result.h"
#include "reactor/task.h"
#include "tools/common/cli.h"

namespace coworker::cli_client {

// What a server answered, with how many attempts it took to get it.
struct Answer {
  int status = 0;
  std::string body;
  std::string server;     // the address that answered
  uint64_t attempts = 0;  // 1 when the first attempt was answered
};

// Why a request was given up: one line, naming the last failure.
struct GaveUp {
  std::string reason;
  uint64_t attempts = 0;
};

// Whether a 404 {"code": "not_replica"} means "ask another address": yes for
// reads of a replica's own copy (`read --local`).
enum class NotReplicaMovesOn : bool { no, yes };

struct SessionConfig {
  std::vector<cli::Address> servers;
  std::chrono::milliseconds timeout{10000};
  // One attempt's bound (connect, send, answer). A long-poll needs more than
  // its wait; everything else is better retried elsewhere sooner.
  std::chrono::milliseconds attempt_timeout{5000};
  NotReplicaMovesOn not_replica = NotReplicaMovesOn::no;
};

class Session {
 public:
  explicit Session(SessionConfig config);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends the request until it is answered 2xx or with a final 4xx (both
  // returned), or gives up at the deadline. `headers`: extra header lines.
  reactor::Task<Result<Answer, GaveUp>> call(http::Method method, std::string target,
                                             std::string body, std::string headers);
  // One attempt at server `index`, no retry: a status, or why nothing came.
  reactor::Task<Result<Answer, std::string>> attempt_at(size_t index, http::Method method,
                                                        std::string target);

  size_t server_count() const { return _config.servers.size(); }
  std::string server_name(size_t index) const { return _config.servers[index].to_string(); }
  // Closes every connection (the loop must not stop with sockets open).
  reactor::Task<void> close();

 private:
  enum class Next : uint8_t { done, same_server, next_server };
  Next judge(const Answer& answer) const;

  SessionConfig _config;
  std::vector<std::unique_ptr<http::Client>> _clients;  // one per server
  size_t _current = 0;
};

// "503 {...}" for messages: the status and the body, cut to one line.
std::string describe(const Answer& answer);

}  // namespace coworker::cli_client
