// ConnectionLimit (tools/coworker/connection_limit.h): --max-connections
// counts the connections issued within the expiry before now.
#include <doctest/doctest.h>

#include "tools/coworker/connection_limit.h"

using coworker::server::ConnectionLimit;

TEST_CASE("connection limit: at most max within the window, then room as issues age") {
  ConnectionLimit limit(3, 1000);
  CHECK(limit.admit(0));
  CHECK(limit.admit(10));
  CHECK(limit.admit(500));
  CHECK(!limit.admit(600));  // refused, not counted
  CHECK(limit.live(600) == 3);
  CHECK(!limit.admit(999));
  CHECK(limit.admit(1000));  // the one issued at 0 left the window
  CHECK(limit.live(1000) == 3);
  CHECK(limit.admit(1010));  // and the one at 10
  CHECK(!limit.admit(1010));
  CHECK(limit.live(2600) == 0);
  for (uint64_t i = 0; i < 3; i++) CHECK(limit.admit(3000));
  CHECK(!limit.admit(3000));
}

TEST_CASE("connection limit: a limit of one, a window of one millisecond") {
  ConnectionLimit limit(1, 1);
  for (uint64_t t = 0; t < 100; t++) {
    CHECK(limit.admit(t));
    CHECK(!limit.admit(t));
  }
}
