// coworker-cli: the command-line client of a Coworker cluster (DESIGN §8).
//
//   coworker-cli [--server HOST:PORT[,HOST:PORT...]] [--json] [--timeout-ms N] COMMAND ...
//     connect                      open a client connection, print its id
//     append IDENTIFIER [--file F] [--connection ID --series-start S] [--window N]
//     read BUCKET | --identifier ID [--from P] [--limit N] [--follow] [--local]
//     status                       the cluster as a table
//     health                       each --server's readiness
//
// main() finds the command word, parses that command's flags (global flags
// may come before or after it) with the shared FlagSet, then runs the
// command as one task on a one-core reactor loop (block_on). Exit codes: 0
// done, 1 a failure (a server error, a request given up), 2 a bad command line.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reactor/block_on.h"
#include "tools/cli/commands.h"
#include "tools/cli/text.h"

using namespace coworker;
using namespace coworker::cli_client;

namespace {

enum class Command : uint8_t { connect, append, read, status, health };

struct CommandInfo {
  std::string_view name;
  Command command;
  std::string_view about;
};

constexpr CommandInfo commands[] = {
    {"connect", Command::connect, "Open a client connection and print its id"},
    {"append", Command::append,
     "Append lines (of --file, else stdin) as messages of IDENTIFIER, one per line"},
    {"read", Command::read, "Print a bucket's entries, or an identifier's"},
    {"status", Command::status, "Print the cluster's members, leaders and migrations"},
    {"health", Command::health, "Print each --server's state; exit 0 when all serve"},
};
constexpr std::string_view command_names = "connect, append, read, status, health";

// The default --server: the cluster that tools/run leaves running.
constexpr std::string_view servers_default = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";
// Identifiers are 1..1024 bytes of UTF-8 (DESIGN §3).
constexpr size_t identifier_bytes_max = 1024;
constexpr uint64_t window_max = 1000;
constexpr uint64_t page_limit_max = 1000;
constexpr uint64_t series_max = (uint64_t{1} << 53) - 1;  // below the default series_wrap
constexpr uint64_t timeout_ms_max = 24ull * 3600 * 1000;
// One attempt's bound; a long-poll (30 s on the server) gets 5 s more.
constexpr std::chrono::milliseconds attempt_timeout{5000};
constexpr std::chrono::milliseconds follow_attempt_timeout{35000};

cli::Convert<std::optional<std::string>> nonempty_text() {
  return [](std::string_view text) -> cli::Parsed<std::optional<std::string>> {
    if (text.empty()) return cli::CliError{"must not be empty"};
    return std::optional<std::string>(std::string(text));
  };
}

cli::Convert<std::string> identifier_text() {
  return [](std::string_view text) -> cli::Parsed<std::string> {
    if (text.empty() || text.size() > identifier_bytes_max || !valid_utf8(text)) {
      return cli::CliError{"an identifier is 1..1024 bytes of UTF-8"};
    }
    return std::string(text);
  };
}

void add_global_flags(cli::FlagSet& flags, GlobalOptions* global) {
  flags.add_address_list("--server", &global->servers,
                         "Participants' client (HTTP) addresses, tried in turn")
      ->default_str(std::string(servers_default));
  flags.add_switch("--json", &global->output, cli::Output::json, "Print the servers' JSON");
  flags.add("--timeout-ms", &global->timeout_ms, cli::count_in<uint64_t>(1, timeout_ms_max),
            "Keep retrying one request (over every --server) this long")
      ->type_name("MS")
      ->default_str("10000");
}

// The index of the command word in argv, skipping the global flags (and the
// value of those that take one); nullopt when there is none.
std::optional<int> find_command(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    const std::string_view arg = argv[i];
    if (arg == "--") return i + 1 < argc ? std::optional<int>(i + 1) : std::nullopt;
    if (arg == "--server" || arg == "--timeout-ms") {
      i++;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') continue;
    return i;
  }
  return std::nullopt;
}

// `coworker-cli` without a command: its --help and --version, else exit 2.
int without_command(int argc, char** argv, std::string_view word) {
  cli::FlagSet flags{"coworker-cli", "Coworker command-line client"};
  GlobalOptions global;
  add_global_flags(flags, &global);
  std::string footer = "\nCommands (each has --help):\n";
  for (const CommandInfo& info : commands) {
    footer += "  " + std::string(info.name) + std::string(10 - info.name.size(), ' ') +
              std::string(info.about) + "\n";
  }
  flags.app().footer(footer);
  if (word.empty()) {
    if (std::optional<cli::CliExit> exit = flags.parse(argc, argv)) return cli::emit(*exit);
    return cli::emit(flags.usage_error("no command given (one of " +
                                       std::string(command_names) + ")"));
  }
  return cli::emit(flags.usage_error("unknown command '" + std::string(word) + "' (one of " +
                                     std::string(command_names) + ")"));
}

struct Parsed {
  GlobalOptions global;
  AppendOptions append;
  ReadOptions read;
};

}  // namespace

namespace {

// append's flags; the caller checks them together once parsed.
struct AppendFlags {
  CLI::Option* connection = nullptr;
  CLI::Option* series_start = nullptr;
};

AppendFlags add_append_flags(cli::FlagSet& flags, AppendOptions* append,
                             std::string* identifier) {
  flags.app().add_option("identifier", *identifier, "The messages' identifier")->required();
  flags.add<std::optional<std::string>>(
           "--file", &append->file,
           nonempty_text(),
           "Read the lines from this file instead of stdin")
      ->type_name("FILE");
  AppendFlags given;
  given.connection =
      flags
          .add<std::optional<std::string>>(
              "--connection", &append->connection,
              nonempty_text(),
              "Send on this connection (with --series-start) instead of a new one")
          ->type_name("ID");
  given.series_start =
      flags.add("--series-start", &append->series_start, cli::count_in<uint64_t>(0, series_max),
                "The first message's series; the next ones count up from it")
          ->type_name("S")
          ->default_str("1");
  flags.add("--window", &append->window, cli::count_in<uint64_t>(1, window_max),
            "Messages per window (one window in flight)")
      ->type_name("N")
      ->default_str("100");
  return given;
}

void add_read_flags(cli::FlagSet& flags, ReadOptions* read, std::string* bucket) {
  flags.app().add_option("bucket", *bucket, "The bucket to read (or --identifier)");
  flags.add<std::optional<std::string>>(
           "--identifier", &read->identifier,
           [](std::string_view text) -> cli::Parsed<std::optional<std::string>> {
             cli::Parsed<std::string> identifier = identifier_text()(text);
             if (!identifier) return identifier.error();
             return std::optional<std::string>(std::move(*identifier));
           },
           "Read this identifier's entries (in its bucket) instead of a bucket")
      ->type_name("ID");
  flags.add("--from", &read->from, cli::count_in<uint64_t>(0, UINT64_MAX),
            "The first bucket position to read")
      ->type_name("P")
      ->default_str("0");
  flags.add("--limit", &read->limit, cli::count_in<uint64_t>(1, page_limit_max),
            "Entries per request (pages continue until the end)")
      ->type_name("N")
      ->default_str("100");
  flags.add_switch("--follow", &read->follow, Follow::yes,
                   "Keep reading new entries as they come (long-poll) until interrupted");
  flags.add_switch("--local", &read->local, Local::yes,
                   "Read a replica's own committed copy (bucket reads only)");
}

// The checks that span flags; a usage error or nothing.
std::optional<cli::CliExit> check_together(const cli::FlagSet& flags, Command command,
                                           const std::string& text, const AppendFlags& given,
                                           Parsed* parsed) {
  if (parsed->global.servers.empty()) {
    cli::Parsed<std::vector<cli::Address>> servers = cli::parse_address_list(servers_default);
    COWORKER_ASSERT(servers.ok());
    parsed->global.servers = std::move(*servers);
  }
  if (command == Command::append) {
    cli::Parsed<std::string> identifier = identifier_text()(text);
    if (!identifier) return flags.usage_error("identifier: " + identifier.error().reason);
    parsed->append.identifier = std::move(*identifier);
    // The id goes into a header line: it must stay one token.
    const std::optional<std::string>& connection = parsed->append.connection;
    if (connection && std::any_of(connection->begin(), connection->end(), [](char c) {
          return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
        })) {
      return flags.usage_error("--connection: an id has no spaces or control bytes");
    }
    // A reused connection already sent some series: starting at 1 again
    // would be superseded, so the caller must say where to go on.
    if (given.connection->count() > 0 && given.series_start->count() == 0) {
      return flags.usage_error("--connection needs --series-start above its last series");
    }
  }
  if (command == Command::read) {
    ReadOptions& read = parsed->read;
    if (text.empty() == !read.identifier.has_value()) {
      return flags.usage_error("give a BUCKET or --identifier, one of them");
    }
    if (!text.empty()) {
      cli::Parsed<uint64_t> bucket = cli::parse_count(text);
      if (!bucket) return flags.usage_error("bucket: " + bucket.error().reason);
      read.bucket = *bucket;
    }
    if (read.identifier && read.local == Local::yes) {
      return flags.usage_error("--local reads a bucket, not an --identifier");
    }
  }
  return std::nullopt;
}

reactor::Task<int> run_command(Session* session, Command command, Parsed parsed) {
  int code = exit_failure;
  if (command == Command::connect) {
    auto run = run_connect(*session, parsed.global);
    code = co_await run;
  } else if (command == Command::append) {
    auto run = run_append(*session, parsed.global, parsed.append);
    code = co_await run;
  } else if (command == Command::read) {
    auto run = run_read(*session, parsed.global, parsed.read);
    code = co_await run;
  } else if (command == Command::status) {
    auto run = run_status(*session, parsed.global);
    code = co_await run;
  } else {
    auto run = run_health(*session, parsed.global);
    code = co_await run;
  }
  auto closing = session->close();
  co_await closing;
  co_return code;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that goes away (`| head`) ends a read quietly, via write errors.
  std::signal(SIGPIPE, SIG_IGN);
  const std::optional<int> at = find_command(argc, argv);
  const CommandInfo* info = nullptr;
  for (const CommandInfo& candidate : commands) {
    if (at && candidate.name == argv[*at]) info = &candidate;
  }
  if (info == nullptr) return without_command(argc, argv, at ? argv[*at] : "");

  // The same command line without the command word.
  std::vector<const char*> args(argv, argv + argc);
  args.erase(args.begin() + *at);
  cli::FlagSet flags{"coworker-cli " + std::string(info->name), std::string(info->about)};
  Parsed parsed;
  add_global_flags(flags, &parsed.global);
  std::string positional;
  AppendFlags given;
  if (info->command == Command::append) {
    given = add_append_flags(flags, &parsed.append, &positional);
  }
  if (info->command == Command::read) add_read_flags(flags, &parsed.read, &positional);
  if (std::optional<cli::CliExit> exit = flags.parse(static_cast<int>(args.size()), args.data())) {
    return cli::emit(*exit);
  }
  if (std::optional<cli::CliExit> exit =
          check_together(flags, info->command, positional, given, &parsed)) {
    return cli::emit(*exit);
  }

  SessionConfig config;
  config.servers = parsed.global.servers;
  config.timeout = std::chrono::milliseconds(parsed.global.timeout_ms);
  const bool follows = info->command == Command::read && parsed.read.follow == Follow::yes;
  config.attempt_timeout =
      follows ? follow_attempt_timeout : std::min(attempt_timeout, config.timeout);
  if (parsed.read.local == Local::yes) config.not_replica = NotReplicaMovesOn::yes;
  Session session(std::move(config));
  return reactor::block_on(run_command(&session, info->command, std::move(parsed)));
}
