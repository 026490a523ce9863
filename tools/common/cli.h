// The command-line layer every Coworker executable shares: value parsers
// (addresses, sizes, durations, counts), the version string, and FlagSet, a
// thin wrapper over CLI11 that gives every tool the same behaviour:
//   - `--help` prints to stdout and exits 0; `--version` prints
//     "<program> <version>" and exits 0;
//   - any error is ONE line "<program>: <reason>" on stderr, exit 2, and the
//     reason names the flag ("--buckets: 48 is not a power of two").
//
// CLI11 checks the shape of the command line (unknown flags, missing required
// ones, missing values, help and version); FlagSet then converts each given
// value with our own parsers, in the order the flags were added, so a bad value
// never hides `--help` and every message has the same form. Exceptions stay
// inside FlagSet::parse: callers get values.
//
// Used once, on the main thread, before any core starts. Nothing here is
// thread-safe or needs to be.
//
//   cli::FlagSet flags{"coworker-cli", "Coworker command-line client"};
//   cli::ClientFlags client;
//   cli::add_client_flags(flags, &client);
//   if (std::optional<cli::CliExit> exit = flags.parse(argc, argv)) return cli::emit(*exit);
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "reactor/result.h"

namespace coworker::cli {

// Why a value was refused: one line, without the program or flag name.
struct CliError {
  std::string reason;
};
template <typename T>
using Parsed = Result<T, CliError>;

// An IPv4 HOST:PORT (DESIGN §3: participants may run on distinct loopback
// addresses). `host` is kept as given, in dotted-quad form.
struct Address {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const Address&, const Address&) = default;
};

// "127.0.0.1:7000": a dotted-quad IPv4 host and a port in 1..65535.
Parsed<Address> parse_address(std::string_view text);
// "HOST:PORT[,HOST:PORT...]": one or more addresses, no empty items.
Parsed<std::vector<Address>> parse_address_list(std::string_view text);
// A whole decimal number: digits only, no sign, no spaces, no overflow.
Parsed<uint64_t> parse_count(std::string_view text);
// Bytes: "4096", or a number with a KiB, MiB or GiB suffix ("64MiB").
Parsed<uint64_t> parse_size_bytes(std::string_view text);
// Milliseconds from "24h", "90m", "3600s", "250ms", "7d", or a plain number
// of milliseconds ("1500").
Parsed<uint64_t> parse_duration_ms(std::string_view text);

// The one version of every executable, set in tools/common/CMakeLists.txt.
std::string_view coworker_version();

enum class Stream : uint8_t { out, err };

// What a tool prints before it exits instead of running.
struct CliExit {
  int code = 0;
  Stream stream = Stream::out;
  std::string text;  // ends in a newline
};
inline constexpr int exit_usage = 2;  // a command-line error

// Writes exit.text to its stream and returns exit.code, for `return emit(e);`.
int emit(const CliExit& exit);

// A converter from a flag's text to a value of type T.
template <typename T>
using Convert = std::function<Parsed<T>(std::string_view)>;

// A whole number in [low, high], converted to T.
template <typename T>
Convert<T> count_in(uint64_t low, uint64_t high) {
  return [low, high](std::string_view text) -> Parsed<T> {
    Parsed<uint64_t> n = parse_count(text);
    if (!n) return n.error();
    if (*n < low || *n > high) {
      return CliError{std::to_string(*n) + " is out of range " + std::to_string(low) + ".." +
                      std::to_string(high)};
    }
    return static_cast<T>(*n);
  };
}

// One of a fixed set of words, each naming a value of T.
template <typename T>
Convert<T> one_of(std::initializer_list<std::pair<std::string_view, T>> choices) {
  std::vector<std::pair<std::string, T>> table(choices.begin(), choices.end());
  return [table](std::string_view text) -> Parsed<T> {
    std::string words;
    for (const auto& [word, value] : table) {
      if (text == word) return value;
      words += words.empty() ? "" : ", ";
      words += word;
    }
    return CliError{"'" + std::string(text) + "' is not one of " + words};
  };
}

// The command line of one executable: CLI11's App plus deferred conversions.
class FlagSet {
 public:
  FlagSet(std::string program, std::string description);
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  CLI::App& app() { return _app; }
  const std::string& program() const { return _program; }

  // A flag taking one value, converted into *target when given (the target
  // keeps its default otherwise). Chain ->required(), ->type_name("MS"),
  // ->default_str("100") on the result for the help text.
  template <typename T>
  CLI::Option* add(const std::string& name, T* target, std::type_identity_t<Convert<T>> convert,
                   const std::string& help) {
    std::vector<std::string>& texts = _lists.emplace_back();
    CLI::Option* option = add_texts(name, &texts, help);
    _conversions.push_back([name, &texts, target, convert = std::move(convert)]() {
      if (texts.empty()) return std::string();
      if (texts.size() > 1) return name + ": given " + std::to_string(texts.size()) + " times";
      Parsed<T> value = convert(texts.front());
      if (!value) return name + ": " + value.error().reason;
      *target = std::move(*value);
      return std::string();
    });
    return option;
  }

  // A flag given once or more, each time one address or a comma list of
  // them; the addresses are appended to *target in order.
  CLI::Option* add_address_list(const std::string& name, std::vector<Address>* target,
                                const std::string& help);

  // A flag without a value: *target becomes `given` when it is present.
  template <typename T>
  CLI::Option* add_switch(const std::string& name, T* target, T given, const std::string& help) {
    return _app.add_flag_callback(name, [target, given] { *target = given; }, help);
  }

  // Parses argv. nullopt: every flag was converted, run the program.
  // Otherwise print the CliExit and exit: help or version (0) or an error (2).
  std::optional<CliExit> parse(int argc, const char* const* argv);

  // A one-line usage error "<program>: <reason>", exit 2, for the caller's own
  // cross-flag checks.
  CliExit usage_error(std::string_view reason) const;

 private:
  CLI::Option* add_texts(const std::string& name, std::vector<std::string>* texts,
                         const std::string& help);

  std::string _program;
  CLI::App _app;
  // Each flag's texts, one per occurrence; CLI11 keeps pointers to them.
  std::deque<std::vector<std::string>> _lists;
  // Each returns "" or the whole reason ("--flag: why").
  std::vector<std::function<std::string()>> _conversions;
};

// How a client tool prints its answers.
enum class Output : uint8_t { text, json };

// The flags coworker-cli and coworker-bench share:
//   --server HOST:PORT[,HOST:PORT...]  (required, repeatable)
//   --json                             print one JSON object
struct ClientFlags {
  std::vector<Address> servers;
  Output output = Output::text;
};
void add_client_flags(FlagSet& flags, ClientFlags* client);

}  // namespace coworker::cli
