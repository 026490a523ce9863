// The commands of coworker-cli and their options, as cli_main.cc parses them
// and each command's file (append.cc, read.cc, inspect.cc) runs them. Each
// command is one task on the CLI's one core and returns the exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reactor/task.h"
#include "tools/cli/session.h"
#include "tools/common/cli.h"

namespace coworker::cli_client {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;  // a server error, or a request given up

// The flags every command takes.
struct GlobalOptions {
  std::vector<cli::Address> servers;
  cli::Output output = cli::Output::text;
  uint64_t timeout_ms = 10000;
};

struct AppendOptions {
  std::string identifier;
  std::optional<std::string> file;        // else stdin
  std::optional<std::string> connection;  // else a new one
  uint64_t series_start = 1;
  uint64_t window = 100;
};

enum class Follow : bool { no, yes };
enum class Local : bool { no, yes };

struct ReadOptions {
  std::optional<uint64_t> bucket;
  std::optional<std::string> identifier;
  uint64_t from = 0;
  uint64_t limit = 100;
  Follow follow = Follow::no;
  Local local = Local::no;
};

reactor::Task<int> run_connect(Session& session, GlobalOptions options);
reactor::Task<int> run_append(Session& session, GlobalOptions options, AppendOptions append);
reactor::Task<int> run_read(Session& session, GlobalOptions options, ReadOptions read);
reactor::Task<int> run_status(Session& session, GlobalOptions options);
reactor::Task<int> run_health(Session& session, GlobalOptions options);

// POST /v1/connect: the new connection's id and the server's JSON, or why not.
struct Opened {
  std::string connection;
  std::string json;
};
reactor::Task<Result<Opened, std::string>> open_connection(Session& session);

// "coworker-cli <command>: <reason>" on stderr; returns exit_failure.
int fail(std::string_view command, std::string_view reason);

}  // namespace coworker::cli_client
