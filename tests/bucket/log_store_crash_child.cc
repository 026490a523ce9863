// The child of the crash-consistency test (log_store_crash_test.cc).
//
//   log_store_crash_child <log dir> <cores> <seed>
//                         <prepare: 0 zero_fill, 1 fallocate, 2 none, 3 recycle>
//
// Recovers every core's log, opens one LogStore per core, and appends from
// 16 coroutines per core until killed. With recycle, retention runs too:
// every 8th append of each core's first appender writes a checkpoint round
// marker, waits for it to be durable, and retires the segments below the
// marker's (named in the `round` file), so retired segments come back as the next ones. After each append is durable it
// writes an ack (core, seq, key) of 20 bytes to stdout, a pipe to the
// parent; writes below PIPE_BUF are atomic, so acks from all cores
// interleave whole. The parent SIGKILLs it at a random ack count.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "bucket/log_store.h"
#include "reactor/smp.h"
#include "tests/bucket/log_test_util.h"

using namespace coworker;
using namespace coworker::bucket;
using coworker::reactor::Task;

namespace {

constexpr int appenders_per_core = 16;

struct Ack {
  uint32_t core;
  uint64_t seq;
  uint64_t key;
} __attribute__((packed));
static_assert(sizeof(Ack) == 20);

void send_ack(const Ack& ack) {
  if (::write(STDOUT_FILENO, &ack, sizeof(ack)) != sizeof(ack)) std::_Exit(4);
}

// A round marker, durable, named in the `round` file (recovery folds a
// retained log from a named round, recovery.h step 4), then the segments
// below its segment retired (as Core::run_retention does).
Task<void> retain(LogStore& store, const std::string& dir, unsigned core) {
  const RecordMeta marker{RecordKind::checkpoint_round, participant_bucket, 0, {}};
  const std::string one(1, '\1');
  Result<uint64_t, LogErrc> seq = store.stage(marker, one);
  while (!seq && seq.error() == LogErrc::full) {
    co_await store.room(one.size());
    seq = store.stage(marker, one);
  }
  if (!seq) std::_Exit(3);
  const auto [segment, offset] = store.last_location();
  if (!(co_await store.durable(*seq))) std::_Exit(3);
  if (!write_round(dir, core, RoundPlace{segment, offset, *seq})) std::_Exit(5);
  if (segment > store.first_segment()) {
    Status retired = co_await store.retire(segment);
    if (!retired) std::_Exit(5);
  }
}

Task<void> appender(LogStore& store, const std::string& dir, unsigned core, uint64_t seed,
                    int index, bool retention) {
  uint64_t state = seed ^ (uint64_t{core} << 48) ^ (uint64_t(index) << 40);
  for (uint64_t counter = 0;; counter++) {
    if (retention && index == 0 && counter % 8 == 7) co_await retain(store, dir, core);
    // Keys are unique across runs: the seed differs per run.
    const uint64_t key = (seed << 32) | (uint64_t{core} << 28) | (uint64_t(index) << 22) | counter;
    const size_t length = 12 + testing::splitmix64(state) % 3000;
    const std::string payload = testing::make_payload(key, length);
    RecordMeta meta{RecordKind::entry, static_cast<uint32_t>(key % 64), counter, {}};
    Result<uint64_t, LogErrc> seq = co_await store.append(meta, payload);
    if (!seq) {
      std::fprintf(stderr, "child: append failed: %s\n", log_errc_name(seq.error()));
      std::_Exit(3);
    }
    send_ack(Ack{core, *seq, key});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s LOG_DIR CORES SEED PREPARE\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const unsigned cores = static_cast<unsigned>(std::atoi(argv[2]));
  const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  const Prepare prepare = static_cast<Prepare>(std::atoi(argv[4]));
  Result<Recovery> recovery = replay_log(dir, [](const ReplayedRecord&) {});
  if (!recovery) {
    std::fprintf(stderr, "child: recovery failed: %s\n", recovery.error().message());
    return 2;
  }
  reactor::Smp smp(reactor::Smp::Config{cores, false});
  smp.run([&](unsigned core) -> Task<void> {
    LogStore::Config config;
    config.dir = dir;
    config.core = core;
    config.segment_bytes = 64 * 1024;
    config.batch_bytes_max = 32 * 1024;
    config.prepare = prepare;
    Result<std::unique_ptr<LogStore>> store =
        LogStore::open(config, recovery->core(core).resume);
    if (!store) {
      std::fprintf(stderr, "child: open failed: %s\n", store.error().message());
      std::_Exit(2);
    }
    // The stores live until the process is killed.
    LogStore* kept = store->release();
    for (int a = 0; a < appenders_per_core; a++) {
      reactor::Loop::current().spawn(
          appender(*kept, dir, core, seed, a, prepare == Prepare::recycle));
    }
    co_return;
  });
  return 0;
}
