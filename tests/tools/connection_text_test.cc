// The client's text form of a connection id (tools/coworker/connection_text.h):
// fixed vectors (the check computed independently, CRC32C in Python), round
// trips, and every refusal with its kind.
#include <doctest/doctest.h>

#include <string>

#include "tools/coworker/connection_text.h"

using namespace coworker;
using namespace coworker::server;
using consensus::ConnectionId;

namespace {

ConnectionRefusal refusal(std::string_view text, uint64_t cluster) {
  auto id = parse_connection(text, cluster);
  REQUIRE(!id);
  return id.error();
}

}  // namespace

TEST_CASE("connection text: fixed vectors pin the form and the check") {
  constexpr uint64_t cluster = 0xc7f3a1;
  CHECK(connection_text(ConnectionId{3, 17}, cluster) == "3-17-edc86c05");
  CHECK(connection_text(ConnectionId{3, 17, uint64_t{1} << 32}, cluster) == "3-17-4294967296-4f0625bf");
  const auto id = parse_connection("3-17-4294967296-4f0625bf", cluster);
  REQUIRE(id);
  CHECK(*id == ConnectionId{3, 17, uint64_t{1} << 32});
}

TEST_CASE("connection text: every id prints and parses back, under its cluster only") {
  for (uint64_t cluster : {uint64_t{1}, uint64_t{0xc7f3a1}, ~uint64_t{0}}) {
    for (const ConnectionId& id :
         {ConnectionId{1, 0}, ConnectionId{57, 4095}, ConnectionId{~uint64_t{0}, (uint64_t{1} << 63) - 1},
          ConnectionId{2, 9, consensus::series_wrap_min},
          ConnectionId{2, 9, consensus::series_wrap_default - 1}}) {
      const std::string text = connection_text(id, cluster);
      CAPTURE(text);
      const auto back = parse_connection(text, cluster);
      REQUIRE(back);
      CHECK(*back == id);
      CHECK(refusal(text, cluster + 1) == ConnectionRefusal::unknown);
    }
  }
}

TEST_CASE("connection text: malformed ids are refused as malformed") {
  constexpr uint64_t cluster = 0xc7f3a1;
  const std::string good = connection_text(ConnectionId{3, 17}, cluster);
  REQUIRE(good == "3-17-edc86c05");
  for (std::string_view text :
       {"", "3", "3-17", "3-17-", "-17-edc86c05", "3--edc86c05", "03-17-edc86c05",
        "3-017-edc86c05", "+3-17-edc86c05", "3-17-EDC86C05", "3-17-edc86c0", "3-17-edc86c050",
        "3-17-edc86c0g", "0-17-edc86c05", "3-17-1-2-edc86c05", "3-17-9007199254740992-edc86c05",
        "3-17-4294967295-edc86c05", "3-9223372036854775808-edc86c05",
        "3-17-edc86c05 ", "18446744073709551616-17-edc86c05", "3-17--edc86c05"}) {
    CAPTURE(text);
    CHECK(refusal(text, cluster) == ConnectionRefusal::malformed);
  }
  // A changed check is another cluster's (or a typo): unknown.
  CHECK(refusal("3-17-edc86c06", cluster) == ConnectionRefusal::unknown);
  CHECK(refusal("3-18-edc86c05", cluster) == ConnectionRefusal::unknown);
}
