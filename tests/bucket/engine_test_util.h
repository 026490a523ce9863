// Helpers shared by the tests of the engine's records in the log store:
// bucket histories as a correct phaser persists them, and their folds.
// Test-only code; any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "consensus/phaser.h"

namespace coworker::bucket::testing {

// A bucket's history as a correct phaser would persist it: registers at the
// commit end, commits of them, higher promises now and then, and the empty
// write of a leadership start committed without a register.
std::vector<consensus::PhaserRecord> history(uint32_t bucket, uint64_t seed, int writes);

// Checks (doctest) that two durable images are the same.
void check_same(const consensus::PhaserDurable& got, const consensus::PhaserDurable& want);

consensus::PhaserDurable fold(const std::vector<consensus::PhaserRecord>& records);

}  // namespace coworker::bucket::testing
