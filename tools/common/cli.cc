// The shared command-line layer: value parsers and FlagSet (see cli.h).
#include "tools/common/cli.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#ifndef COWORKER_VERSION
#error "COWORKER_VERSION is set by tools/common/CMakeLists.txt"
#endif

namespace coworker::cli {
namespace {

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

// A number followed by a unit word, as in "64MiB" or "90m".
struct Quantity {
  std::string_view digits;
  std::string_view unit;
};

Quantity split_quantity(std::string_view text) {
  size_t end = 0;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') end++;
  return {text.substr(0, end), text.substr(end)};
}

struct Unit {
  std::string_view word;
  uint64_t scale;
};

// digits × the scale of `unit` from `units`, or why not. `what` names the
// kind of value for the message ("a size").
Parsed<uint64_t> scaled(std::string_view text, std::initializer_list<Unit> units,
                        std::string_view what) {
  const Quantity quantity = split_quantity(text);
  const Unit* found = nullptr;
  for (const Unit& unit : units) {
    if (unit.word == quantity.unit) found = &unit;
  }
  if (quantity.digits.empty() || found == nullptr) {
    return CliError{in_quotes(text) + " is not " + std::string(what)};
  }
  Parsed<uint64_t> n = parse_count(quantity.digits);
  if (!n) return n.error();
  if (*n > UINT64_MAX / found->scale) return CliError{in_quotes(text) + " is too large"};
  return *n * found->scale;
}

}  // namespace

Parsed<uint64_t> parse_count(std::string_view text) {
  uint64_t n = 0;
  const char* end = text.data() + text.size();
  const bool digits_only = std::all_of(text.begin(), text.end(),
                                       [](char c) { return c >= '0' && c <= '9'; });
  if (text.empty() || !digits_only) return CliError{in_quotes(text) + " is not a whole number"};
  auto [stop, errc] = std::from_chars(text.data(), end, n);
  if (errc == std::errc::result_out_of_range) return CliError{in_quotes(text) + " is too large"};
  COWORKER_ASSERT(errc == std::errc());
  COWORKER_ASSERT(stop == end);
  return n;
}

Parsed<uint64_t> parse_size_bytes(std::string_view text) {
  return scaled(text, {{"", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}},
                "a size (bytes, or a number with KiB, MiB or GiB)");
}

Parsed<uint64_t> parse_duration_ms(std::string_view text) {
  constexpr uint64_t second = 1000;
  return scaled(text,
                {{"", 1},
                 {"ms", 1},
                 {"s", second},
                 {"m", 60 * second},
                 {"h", 3600 * second},
                 {"d", 86400 * second}},
                "a duration (like 24h, 90m, 3600s, 250ms; a plain number is milliseconds)");
}

Parsed<Address> parse_address(std::string_view text) {
  const std::string shown = in_quotes(text);
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return CliError{shown + " is not HOST:PORT"};
  Address address;
  address.host = std::string(text.substr(0, colon));
  in_addr ignored{};
  if (inet_pton(AF_INET, address.host.c_str(), &ignored) != 1) {
    return CliError{shown + ": host " + in_quotes(address.host) + " is not an IPv4 address"};
  }
  const std::string_view port_text = text.substr(colon + 1);
  Parsed<uint64_t> port = parse_count(port_text);
  if (!port) return CliError{shown + ": port " + in_quotes(port_text) + " is not a number"};
  if (*port < 1 || *port > 65535) {
    return CliError{shown + ": port " + std::to_string(*port) + " is out of range 1..65535"};
  }
  address.port = static_cast<uint16_t>(*port);
  return address;
}

Parsed<std::vector<Address>> parse_address_list(std::string_view text) {
  std::vector<Address> addresses;
  size_t start = 0;
  while (true) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view item = text.substr(start, comma - start);
    if (item.empty()) return CliError{in_quotes(text) + " has an empty address"};
    Parsed<Address> address = parse_address(item);
    if (!address) return address.error();
    addresses.push_back(std::move(*address));
    if (comma == text.size()) break;
    start = comma + 1;
  }
  COWORKER_ASSERT(!addresses.empty());
  return addresses;
}

std::string_view coworker_version() { return COWORKER_VERSION; }

int emit(const CliExit& exit) {
  std::FILE* stream = exit.stream == Stream::out ? stdout : stderr;
  std::fputs(exit.text.c_str(), stream);
  std::fflush(stream);
  return exit.code;
}

FlagSet::FlagSet(std::string program, std::string description)
    : _program(std::move(program)), _app(std::move(description), _program) {
  _app.set_version_flag("--version", _program + " " + std::string(coworker_version()),
                        "Print the version and exit");
  _app.get_formatter()->column_width(40);
  _app.allow_extras();
}

// One value per occurrence, every occurrence kept: a repeated flag is ours
// to judge (a list, or an error), and a stray word after a flag is not taken
// for its second value.
CLI::Option* FlagSet::add_texts(const std::string& name, std::vector<std::string>* texts,
                                const std::string& help) {
  CLI::Option* option = _app.add_option(name, *texts, help)->expected(1)->allow_extra_args(false);
  option->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  return option;
}

CLI::Option* FlagSet::add_address_list(const std::string& name, std::vector<Address>* target,
                                       const std::string& help) {
  std::vector<std::string>& items = _lists.emplace_back();
  // `--join a --join b` and `--join a,b` both work.
  CLI::Option* option = add_texts(name, &items, help);
  option->type_name("HOST:PORT[,HOST:PORT...]");
  _conversions.push_back([name, &items, target]() {
    for (const std::string& item : items) {
      Parsed<std::vector<Address>> addresses = parse_address_list(item);
      if (!addresses) return name + ": " + addresses.error().reason;
      target->insert(target->end(), addresses->begin(), addresses->end());
    }
    return std::string();
  });
  return option;
}

std::optional<CliExit> FlagSet::parse(int argc, const char* const* argv) {
  try {
    _app.parse(argc, argv);
  } catch (const CLI::CallForAllHelp&) {
    return CliExit{0, Stream::out, _app.help("", CLI::AppFormatMode::All)};
  } catch (const CLI::CallForHelp&) {
    return CliExit{0, Stream::out, _app.help()};
  } catch (const CLI::CallForVersion& version) {
    return CliExit{0, Stream::out, std::string(version.what()) + "\n"};
  } catch (const CLI::ParseError& error) {
    return usage_error(error.what());
  }
  // Extras are allowed through CLI11 only to be named here, first one first.
  for (const std::string& extra : _app.remaining()) {
    if (extra == "--") continue;  // the end of the flags: only what follows is extra
    if (extra.size() > 1 && extra[0] == '-') return usage_error("unknown flag " + extra);
    return usage_error("unexpected argument " + in_quotes(extra));
  }
  for (const std::function<std::string()>& convert : _conversions) {
    if (std::string reason = convert(); !reason.empty()) return usage_error(reason);
  }
  return std::nullopt;
}

CliExit FlagSet::usage_error(std::string_view reason) const {
  std::string line = _program + ": " + std::string(reason);
  // One line, whatever CLI11 put in its message: a harness greps for it.
  std::replace(line.begin(), line.end(), '\n', ' ');
  return CliExit{exit_usage, Stream::err, line + "\n"};
}

void add_client_flags(FlagSet& flags, ClientFlags* client) {
  flags.add_address_list("--server", &client->servers, "Participants' client (HTTP) addresses")
      ->required();
  flags.add_switch("--json", &client->output, Output::json, "Print one JSON object");
}

}  // namespace coworker::cli
