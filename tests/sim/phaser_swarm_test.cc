// The phaser swarm: every family clean on a band of seeds, determinism, and
// scenarios aimed at the dangerous moments of DESIGN §4.
#include <doctest/doctest.h>

#include "tests/sim/phaser_swarm.h"
#include "tests/sim/scenario.h"

using namespace coworker;
using namespace coworker::sim;

namespace {

PhaserSeedResult run(uint64_t seed, const std::string& family) {
  Trace trace(false);
  return run_phaser_seed(seed, draw_phaser_swarm(seed, family), trace);
}

}  // namespace

TEST_CASE("phaser swarm: every family runs clean on its first seeds") {
  for (const std::string& family : phaser_family_names()) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
      PhaserSeedResult r = run(seed, family);
      CAPTURE(family);
      CAPTURE(seed);
      CHECK_MESSAGE(!r.violated, r.violation);
      CHECK(r.acked > 0);
    }
  }
}

TEST_CASE("phaser swarm: a seed replays to the same digest") {
  PhaserSeedResult a = run(7, "phaser-swarm");
  PhaserSeedResult b = run(7, "phaser-swarm");
  CHECK(a.digest == b.digest);
  CHECK(a.acked == b.acked);
}

TEST_CASE("phaser swarm: phasers over the real membership log run clean") {
  const Family* family = find_family("phaser-members");
  REQUIRE(family != nullptr);
  for (uint64_t seed = 1; seed <= 12; seed++) {
    const SeedResult r = run_seed(seed, *family, false);
    CAPTURE(seed);
    CHECK_MESSAGE(!r.violated, r.violation);
    CHECK(r.acked > 0);
  }
}
