// The coworker command line (tools/coworker/flags.h) and the layer every tool
// shares (tools/common/cli.h): defaults, every flag, every refusal as one line
// naming the flag with exit code 2, help and version.
#include <doctest/doctest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "tools/common/cli.h"
#include "tools/coworker/flags.h"

using namespace coworker;
using namespace coworker::server;
using cli::Address;
using cli::Stream;

namespace {

using Args = std::vector<std::string>;

// The flags every start needs.
Args required() {
  return {"--listen", "127.0.0.1:7000", "--peer-listen", "127.0.0.1:7100", "--data-dir", "/d"};
}

Args with(std::initializer_list<std::string> extra) {
  Args args = required();
  args.insert(args.end(), extra);
  return args;
}

ParseResult parse(const Args& args) {
  std::vector<const char*> argv{"coworker"};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  return parse_server_flags(static_cast<int>(argv.size()), argv.data());
}

ServerFlags parse_ok(const Args& args) {
  ParseResult result = parse(args);
  INFO(result.exit.text);
  REQUIRE(result.flags.has_value());
  return *result.flags;
}

// A refusal: exit 2, one line on stderr, "coworker: " then a reason that
// names `flag`.
void check_refused(const Args& args, std::string_view flag) {
  ParseResult result = parse(args);
  std::string shown;
  for (const std::string& arg : args) shown += arg + " ";
  INFO("args: " << shown << "-> " << result.exit.text);
  REQUIRE(!result.flags.has_value());
  CHECK(result.exit.code == 2);
  CHECK(result.exit.stream == Stream::err);
  CHECK(result.exit.text.rfind("coworker: ", 0) == 0);
  CHECK(std::count(result.exit.text.begin(), result.exit.text.end(), '\n') == 1);
  CHECK(result.exit.text.back() == '\n');
  CHECK(result.exit.text.find(flag) != std::string::npos);
}

}  // namespace

TEST_CASE("flags: the three required flags alone give every default of DESIGN §3") {
  const ServerFlags f = parse_ok(required());
  CHECK(f.listen == Address{"127.0.0.1", 7000});
  CHECK(f.peer_listen == Address{"127.0.0.1", 7100});
  CHECK(f.data_dir == "/d");
  CHECK(f.join.empty());
  CHECK(f.cores == online_cpus());
  CHECK(f.cores >= 1);
  CHECK(f.buckets == 64);
  CHECK(f.replicas == 3);
  CHECK(f.sync == SyncMode::always);
  CHECK(f.prepare == bucket::Prepare::recycle);
  CHECK(f.heartbeat_ms == 100);
  CHECK(f.departure_timeout_ms == 1000);
  CHECK(f.recovery_timeout_ms == 30000);
  CHECK(f.max_connections == 100000);
  CHECK(f.segment_bytes == 64ull << 20);
  CHECK(f.retention_bytes == ServerFlags::unlimited);
  CHECK(f.retention_ms == ServerFlags::unlimited);
  CHECK(f.connection_expiry_ms == 24ull * 3600 * 1000);
  CHECK(f.leave_timeout_ms == 30000);
  CHECK(f.log_level == LogLevel::info);
}

TEST_CASE("flags: every flag is parsed into its field") {
  const ServerFlags f = parse_ok({"--listen",
                                  "127.0.0.2:8000",
                                  "--peer-listen=127.0.0.2:8100",
                                  "--data-dir",
                                  "/var/lib/coworker",
                                  "--join",
                                  "127.0.0.1:7100,127.0.0.3:7100",
                                  "--join",
                                  "127.0.0.4:7100",
                                  "--cores",
                                  "2",
                                  "--buckets",
                                  "1024",
                                  "--replicas",
                                  "5",
                                  "--sync",
                                  "none",
                                  "--prepare",
                                  "zero_fill",
                                  "--heartbeat-ms",
                                  "50",
                                  "--departure-timeout-ms",
                                  "250",
                                  "--recovery-timeout-ms",
                                  "60000",
                                  "--max-connections",
                                  "10",
                                  "--segment-bytes",
                                  "8MiB",
                                  "--retention-bytes",
                                  "10GiB",
                                  "--retention-ms",
                                  "86400000",
                                  "--connection-expiry",
                                  "90m",
                                  "--leave-timeout-ms",
                                  "5000",
                                  "--log-level",
                                  "debug"});
  CHECK(f.listen == Address{"127.0.0.2", 8000});
  CHECK(f.peer_listen == Address{"127.0.0.2", 8100});
  CHECK(f.data_dir == "/var/lib/coworker");
  const std::vector<Address> join{
      {"127.0.0.1", 7100}, {"127.0.0.3", 7100}, {"127.0.0.4", 7100}};
  CHECK(f.join == join);
  CHECK(f.cores == 2);
  CHECK(f.buckets == 1024);
  CHECK(f.replicas == 5);
  CHECK(f.sync == SyncMode::none);
  CHECK(f.prepare == bucket::Prepare::zero_fill);
  CHECK(f.heartbeat_ms == 50);
  CHECK(f.departure_timeout_ms == 250);  // exactly 5 heartbeats is enough
  CHECK(f.recovery_timeout_ms == 60000);
  CHECK(f.max_connections == 10);
  CHECK(f.segment_bytes == 8ull << 20);
  CHECK(f.retention_bytes == 10ull << 30);
  CHECK(f.retention_ms == 86400000);
  CHECK(f.connection_expiry_ms == 90ull * 60 * 1000);
  CHECK(f.leave_timeout_ms == 5000);
  CHECK(f.log_level == LogLevel::debug);
}

TEST_CASE("flags: bounds that are allowed") {
  CHECK(parse_ok(with({"--buckets", "1"})).buckets == 1);
  CHECK(parse_ok(with({"--buckets", "65536"})).buckets == 65536);
  CHECK(parse_ok(with({"--replicas", "1"})).replicas == 1);
  CHECK(parse_ok(with({"--replicas", "7"})).replicas == 7);
  CHECK(parse_ok(with({"--cores", "1"})).cores == 1);
  CHECK(parse_ok(with({"--cores", "256"})).cores == 256);
  CHECK(parse_ok(with({"--retention-bytes", "unlimited"})).retention_bytes ==
        ServerFlags::unlimited);
  CHECK(parse_ok(with({"--log-level", "error"})).log_level == LogLevel::error);
  CHECK(parse_ok(with({"--log-level", "warn"})).log_level == LogLevel::warn);
  // The same host on another port is a different address.
  CHECK(parse_ok({"--listen", "127.0.0.1:7000", "--peer-listen", "127.0.0.1:7001", "--data-dir",
                  "d"})
            .peer_listen.port == 7001);
}

TEST_CASE("flags: sizes in bytes, KiB, MiB and GiB") {
  CHECK(parse_ok(with({"--segment-bytes", "4194304"})).segment_bytes == 4ull << 20);
  CHECK(parse_ok(with({"--segment-bytes", "8192KiB"})).segment_bytes == 8ull << 20);
  CHECK(parse_ok(with({"--segment-bytes", "1GiB"})).segment_bytes == 1ull << 30);
  CHECK(parse_ok(with({"--retention-bytes", "512KiB"})).retention_bytes == 512ull << 10);
  CHECK(parse_ok(with({"--retention-bytes", "100"})).retention_bytes == 100);
  CHECK(cli::parse_size_bytes("3MiB").value() == 3ull << 20);
  CHECK(!cli::parse_size_bytes("3MB"));
  CHECK(!cli::parse_size_bytes("3 MiB"));
  CHECK(!cli::parse_size_bytes("1.5GiB"));
  CHECK(!cli::parse_size_bytes("MiB"));
  CHECK(!cli::parse_size_bytes("-1"));
  CHECK(!cli::parse_size_bytes("17179869184GiB"));  // 2^64: overflows
}

TEST_CASE("flags: durations in d, h, m, s, ms or plain milliseconds") {
  CHECK(parse_ok(with({"--connection-expiry", "24h"})).connection_expiry_ms == 86400000);
  CHECK(parse_ok(with({"--connection-expiry", "90m"})).connection_expiry_ms == 5400000);
  CHECK(parse_ok(with({"--connection-expiry", "3600s"})).connection_expiry_ms == 3600000);
  CHECK(parse_ok(with({"--connection-expiry", "1500"})).connection_expiry_ms == 1500);
  CHECK(parse_ok(with({"--connection-expiry", "250ms"})).connection_expiry_ms == 250);
  CHECK(parse_ok(with({"--connection-expiry", "7d"})).connection_expiry_ms == 604800000);
  CHECK(!cli::parse_duration_ms("1w"));
  CHECK(!cli::parse_duration_ms("1h30m"));
  CHECK(!cli::parse_duration_ms(""));
  CHECK(!cli::parse_duration_ms("213503982334601d"));  // overflows u64 ms
}

TEST_CASE("flags: each bad input exits 2 with one line naming the flag") {
  // Addresses.
  check_refused({"--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:7100", "--data-dir", "d"},
                "--listen");
  check_refused({"--listen", "127.0.0.1:65536", "--peer-listen", "127.0.0.1:7100", "--data-dir",
                 "d"},
                "--listen");
  check_refused({"--listen", "127.0.0.1:http", "--peer-listen", "127.0.0.1:7100", "--data-dir",
                 "d"},
                "--listen");
  check_refused({"--listen", "localhost:7000", "--peer-listen", "127.0.0.1:7100", "--data-dir",
                 "d"},
                "--listen");
  check_refused({"--listen", "127.0.0.1", "--peer-listen", "127.0.0.1:7100", "--data-dir", "d"},
                "--listen");
  check_refused({"--listen", "127.0.0.1:7000", "--peer-listen", "127.0.0.1:99999", "--data-dir",
                 "d"},
                "--peer-listen");
  check_refused({"--listen", "127.0.0.1:7000", "--peer-listen", "127.0.0.1:7000", "--data-dir",
                 "d"},
                "--peer-listen");
  check_refused(with({"--join", "127.0.0.1:7100,"}), "--join");
  check_refused(with({"--join", "127.0.0.1:7100", "--join", "127.0.0.1:0"}), "--join");
  // Missing, unknown and repeated flags.
  check_refused({"--listen", "127.0.0.1:7000", "--peer-listen", "127.0.0.1:7100"}, "--data-dir");
  check_refused({"--peer-listen", "127.0.0.1:7100", "--data-dir", "d"}, "--listen");
  check_refused(with({"--data-dir", "other"}), "--data-dir");
  check_refused({"--listen", "127.0.0.1:7000", "--peer-listen", "127.0.0.1:7100", "--data-dir",
                 ""},
                "--data-dir");
  check_refused(with({"--frobnicate", "1"}), "--frobnicate");
  check_refused(with({"stray"}), "stray");
  check_refused(with({"--cores"}), "--cores");
  // Shape of the cluster.
  check_refused(with({"--buckets", "48"}), "--buckets");
  check_refused(with({"--buckets", "0"}), "--buckets");
  check_refused(with({"--buckets", "131072"}), "--buckets");
  check_refused(with({"--replicas", "4"}), "--replicas");
  check_refused(with({"--replicas", "9"}), "--replicas");
  check_refused(with({"--sync", "sometimes"}), "--sync");
  check_refused(with({"--prepare", "zeros"}), "--prepare");
  check_refused(with({"--cores", "0"}), "--cores");
  check_refused(with({"--cores", "257"}), "--cores");
  check_refused(with({"--cores", "two"}), "--cores");
  check_refused(with({"--log-level", "verbose"}), "--log-level");
  // Timers.
  check_refused(with({"--departure-timeout-ms", "299"}), "--departure-timeout-ms");
  check_refused(with({"--heartbeat-ms", "400"}), "--departure-timeout-ms");  // 1000 < 2000
  // Below a read lease and its margin (4.4 heartbeats): once a crash at start.
  check_refused(with({"--departure-timeout-ms", "300"}), "--departure-timeout-ms");
  check_refused(with({"--heartbeat-ms", "0"}), "--heartbeat-ms");
  check_refused(with({"--heartbeat-ms", "-5"}), "--heartbeat-ms");
  check_refused(with({"--recovery-timeout-ms", "1s"}), "--recovery-timeout-ms");
  check_refused(with({"--leave-timeout-ms", "0"}), "--leave-timeout-ms");
  check_refused(with({"--connection-expiry", "1w"}), "--connection-expiry");
  check_refused(with({"--connection-expiry", "0h"}), "--connection-expiry");
  // Sizes and counts.
  check_refused(with({"--segment-bytes", "64MB"}), "--segment-bytes");
  check_refused(with({"--segment-bytes", "1MiB"}), "--segment-bytes");
  check_refused(with({"--segment-bytes", "5000000"}), "--segment-bytes");
  check_refused(with({"--retention-bytes", "0"}), "--retention-bytes");
  check_refused(with({"--retention-ms", "forever"}), "--retention-ms");
  check_refused(with({"--max-connections", "0"}), "--max-connections");
  check_refused(with({"--max-connections", "18446744073709551616"}), "--max-connections");
}

TEST_CASE("flags: a refusal reads as a reason") {
  CHECK(parse(with({"--buckets", "48"})).exit.text ==
        "coworker: --buckets: 48 is not a power of two\n");
  CHECK(parse(with({"--replicas", "4"})).exit.text ==
        "coworker: --replicas: 4 is not odd (1, 3, 5 or 7)\n");
  CHECK(parse(with({"--sync", "sometimes"})).exit.text ==
        "coworker: --sync: 'sometimes' is not one of always, none\n");
  CHECK(parse(with({"--departure-timeout-ms", "299"})).exit.text ==
        "coworker: --departure-timeout-ms: 299 is below 5 heartbeats "
        "(5 x --heartbeat-ms 100 = 500)\n");
  CHECK(parse({"--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:7100", "--data-dir", "d"})
            .exit.text == "coworker: --listen: '127.0.0.1:0': port 0 is out of range 1..65535\n");
  CHECK(parse(with({"--data-dir", "other"})).exit.text == "coworker: --data-dir: given 2 times\n");
  CHECK(parse(with({"--frobnicate", "1"})).exit.text == "coworker: unknown flag --frobnicate\n");
  CHECK(parse(with({"stray"})).exit.text == "coworker: unexpected argument 'stray'\n");
  CHECK(parse({"--peer-listen", "127.0.0.1:7100", "--data-dir", "d"}).exit.text ==
        "coworker: --listen is required\n");
}

TEST_CASE("flags: --help lists every flag with its default and exits 0") {
  for (const Args& args : {Args{"--help"}, Args{"-h"}, with({"--help"}),
                           Args{"--buckets", "48", "--help"}}) {
    ParseResult result = parse(args);
    REQUIRE(!result.flags.has_value());
    CHECK(result.exit.code == 0);
    CHECK(result.exit.stream == Stream::out);
    const std::string& help = result.exit.text;
    for (const char* flag :
         {"--listen", "--peer-listen", "--data-dir", "--join", "--cores", "--buckets",
          "--replicas", "--sync", "--prepare", "--heartbeat-ms", "--departure-timeout-ms",
          "--recovery-timeout-ms", "--max-connections", "--segment-bytes", "--retention-bytes",
          "--retention-ms", "--connection-expiry", "--leave-timeout-ms", "--log-level", "--help",
          "--version"}) {
      CHECK_MESSAGE(help.find(flag) != std::string::npos, flag);
    }
    for (const char* default_text : {"64MiB", "unlimited", "24h", "30000", "100000"}) {
      CHECK_MESSAGE(help.find(default_text) != std::string::npos, default_text);
    }
  }
}

TEST_CASE("flags: --version prints the one version and exits 0") {
  for (const Args& args : {Args{"--version"}, with({"--version"})}) {
    ParseResult result = parse(args);
    REQUIRE(!result.flags.has_value());
    CHECK(result.exit.code == 0);
    CHECK(result.exit.stream == Stream::out);
    CHECK(result.exit.text == "coworker " + std::string(cli::coworker_version()) + "\n");
  }
  CHECK(!cli::coworker_version().empty());
}

TEST_CASE("cli: addresses and address lists") {
  CHECK(cli::parse_address("10.0.0.1:1").value() == Address{"10.0.0.1", 1});
  CHECK(cli::parse_address("10.0.0.1:65535").value() == Address{"10.0.0.1", 65535});
  CHECK(cli::parse_address("10.0.0.1:65535")->to_string() == "10.0.0.1:65535");
  for (std::string_view bad : {"", ":", ":7000", "10.0.0.1:", "10.0.0.1:+1", "10.0.0:7000",
                               "[::1]:7000", "10.0.0.1:7000 ", "host:7000"}) {
    CHECK_MESSAGE(!cli::parse_address(bad), bad);
  }
  const std::vector<Address> two{{"127.0.0.1", 7000}, {"127.0.0.2", 7000}};
  CHECK(cli::parse_address_list("127.0.0.1:7000,127.0.0.2:7000").value() == two);
  CHECK(!cli::parse_address_list(""));
  CHECK(!cli::parse_address_list(",127.0.0.1:7000"));
  CHECK(!cli::parse_address_list("127.0.0.1:7000,,127.0.0.2:7000"));
}

TEST_CASE("cli: --server and --json parse the same way in every client tool") {
  auto run = [](std::vector<const char*> argv, cli::ClientFlags* client) {
    cli::FlagSet flags{"coworker-bench", "load generator"};
    cli::add_client_flags(flags, client);
    argv.insert(argv.begin(), "coworker-bench");
    return flags.parse(static_cast<int>(argv.size()), argv.data());
  };
  cli::ClientFlags client;
  CHECK(!run({"--server", "127.0.0.1:7000,127.0.0.2:7000", "--server=127.0.0.3:7000", "--json"},
             &client));
  const std::vector<Address> three{
      {"127.0.0.1", 7000}, {"127.0.0.2", 7000}, {"127.0.0.3", 7000}};
  CHECK(client.servers == three);
  CHECK(client.output == cli::Output::json);

  cli::ClientFlags plain;
  CHECK(!run({"--server", "127.0.0.1:7000"}, &plain));
  CHECK(plain.output == cli::Output::text);

  cli::ClientFlags missing;
  std::optional<cli::CliExit> exit = run({"--json"}, &missing);
  REQUIRE(exit.has_value());
  CHECK(exit->code == 2);
  CHECK(exit->text.rfind("coworker-bench: ", 0) == 0);
  CHECK(exit->text.find("--server") != std::string::npos);

  cli::ClientFlags bad;
  exit = run({"--server", "127.0.0.1:0"}, &bad);
  REQUIRE(exit.has_value());
  CHECK(exit->text.rfind("coworker-bench: --server: ", 0) == 0);

  cli::ClientFlags version;
  exit = run({"--version"}, &version);
  REQUIRE(exit.has_value());
  CHECK(exit->code == 0);
  CHECK(exit->text == "coworker-bench " + std::string(cli::coworker_version()) + "\n");
}

TEST_CASE("cli: whole numbers") {
  CHECK(cli::parse_count("0").value() == 0);
  CHECK(cli::parse_count("18446744073709551615").value() == UINT64_MAX);
  for (std::string_view bad : {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "18446744073709551616"}) {
    CHECK_MESSAGE(!cli::parse_count(bad), bad);
  }
}
