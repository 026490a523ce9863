// Crash consistency of the log store with a real process: a child appends
// under load (log_store_crash_child.cc) and is SIGKILLed at a random point,
// many times, with 1 to 3 cores and every preparation mode (recycle with
// retention running: segments retired behind round markers come back as
// the next ones, their old records behind the new); every other run
// also loses (damages) the last, unacknowledged batch as a power loss would. After each kill
// the whole log is replayed: every append ever reported durable is present
// and intact, nothing damaged or unacknowledged-and-torn is served, and a
// process crash never looks like corruption. Synchronisation is by the
// child's acks over a pipe, never by sleeping.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "bucket/segment.h"
#include "tests/bucket/log_test_util.h"

using namespace coworker::bucket;
using namespace coworker::bucket::testing;

namespace {

struct Ack {
  uint32_t core;
  uint64_t seq;
  uint64_t key;
} __attribute__((packed));

std::string child_path() {
  if (const char* env = std::getenv("COWORKER_CRASH_CHILD")) return env;
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  REQUIRE(n > 0);
  self[n] = '\0';
  std::string path = self;
  return path.substr(0, path.rfind('/')) + "/log_store_crash_child";
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

// Runs one child until `kill_after` acks, kills it, and returns every ack it
// sent (those still in the pipe after the kill were durable too).
std::vector<Ack> run_child(const std::string& dir, unsigned cores, uint64_t seed, int prepare,
                           uint64_t kill_after) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string exe = child_path();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    const std::string c = std::to_string(cores), s = std::to_string(seed),
                      p = std::to_string(prepare);
    ::execl(exe.c_str(), exe.c_str(), dir.c_str(), c.c_str(), s.c_str(), p.c_str(), nullptr);
    std::_Exit(127);
  }
  ::close(fds[1]);
  std::vector<Ack> acks;
  std::string pending;
  char buffer[4096];
  bool killed = false;
  for (;;) {
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    while (pending.size() >= sizeof(Ack)) {
      Ack ack;
      std::memcpy(&ack, pending.data(), sizeof(Ack));
      pending.erase(0, sizeof(Ack));
      acks.push_back(ack);
    }
    if (!killed && acks.size() >= kill_after) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(killed);
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGKILL);
  return acks;
}

// Emulates a power loss on top of the kill: in each core's log whose last
// batch holds no acknowledged record, damage one record of that batch (the
// one batch that may be in flight). Returns the cores damaged.
std::vector<unsigned> lose_last_batch(const std::string& dir,
                                      const std::map<std::pair<uint32_t, uint64_t>, uint64_t>& acked,
                                      uint64_t& state) {
  std::map<unsigned, uint64_t> acked_max;
  for (const auto& [where, key] : acked) {
    acked_max[where.first] = std::max(acked_max[where.first], where.second);
  }
  std::map<unsigned, std::vector<Replayed>> last_batch;
  ReplayResult replayed = replay_all(dir);
  for (Replayed& r : replayed.records) {
    auto& batch = last_batch[r.core];
    if (!batch.empty() && batch.back().batch_first_seq != r.batch_first_seq) batch.clear();
    batch.push_back(std::move(r));
  }
  std::vector<unsigned> damaged;
  for (auto& [core, batch] : last_batch) {
    if (batch.empty() || batch.front().batch_first_seq <= acked_max[core]) continue;
    // A later life's boot record (internal, not replayed) after it: that
    // open made this batch durable (LogStore::open syncs the tail) before
    // its own batch, so a power loss can no longer reach it.
    if (batch.back().seq != replayed.recovery.core(core).last_seq) continue;
    // The child names a round only once its batch is durable (no ack
    // tells of it): that batch cannot be lost any more either.
    const bool named = std::any_of(batch.begin(), batch.end(), [](const Replayed& r) {
      return r.kind == RecordKind::checkpoint_round;
    });
    if (named) continue;
    const Replayed& victim = batch[splitmix64(state) % batch.size()];
    const std::string path = segment_path(dir, core, victim.segment);
    if (splitmix64(state) % 2 == 0) {
      zero_range(path, victim.offset, 64);
    } else {
      flip_bit(path, victim.offset + 64 + splitmix64(state) % victim.payload.size(), 5);
    }
    damaged.push_back(core);
  }
  return damaged;
}

}  // namespace

TEST_CASE("crash: every append acknowledged before SIGKILL survives, many kills") {
  TempDir dir;
  const int iterations = env_int("COWORKER_CRASH_ITERATIONS", 40);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  uint64_t state = static_cast<uint64_t>(env_int("COWORKER_CRASH_SEED", 7));
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> durable;  // (core, seq) -> key
  int torn = 0;
  int retained_logs = 0;  // core logs found with their front retired (recycle runs)
  int run = 0;
  for (; run < iterations && std::chrono::steady_clock::now() < deadline; run++) {
    const unsigned cores = 1 + static_cast<unsigned>(run % 3);
    const int prepare = (run / 3) % 4;  // Prepare: zero_fill, fallocate, none, recycle
    const uint64_t kill_after = 1 + splitmix64(state) % 1500;
    CAPTURE(run);
    CAPTURE(cores);
    CAPTURE(prepare);
    for (const Ack& ack : run_child(dir.path(), cores, static_cast<uint64_t>(run + 1), prepare,
                                    kill_after)) {
      // Copies: the packed fields may be misaligned for a reference.
      const uint32_t core = ack.core;
      const uint64_t seq = ack.seq, key = ack.key;
      const auto [_, fresh] = durable.emplace(std::make_pair(core, seq), key);
      CHECK(fresh);  // a seq is never acknowledged twice
    }
    std::vector<unsigned> damaged;
    if (splitmix64(state) % 2 == 0) damaged = lose_last_batch(dir.path(), durable, state);
    ReplayResult replayed = replay_all(dir.path());
    std::map<std::pair<uint32_t, uint64_t>, const Replayed*> present;
    // With retention, a core's log is read from its first whole round on:
    // what was acknowledged below it was retired, the rest must be there.
    std::map<uint32_t, uint64_t> first_seq;
    for (const Replayed& r : replayed.records) {
      auto [at, fresh] = first_seq.emplace(r.core, r.seq);
      if (!fresh) at->second = std::min(at->second, r.seq);
      if (r.kind == RecordKind::checkpoint_round) continue;
      REQUIRE(payload_self_consistent(r.payload));
      CHECK(r.bucket == payload_key(r.payload) % 64);
      present[{r.core, r.seq}] = &r;
    }
    for (const CoreReport& report : replayed.recovery.cores) {
      CHECK_MESSAGE(!report.corrupt(), report.describe());
      if (report.torn) torn++;
    }
    for (unsigned core : damaged) CHECK(replayed.recovery.core(core).torn.has_value());
    size_t missing = 0;
    for (const CoreReport& report : replayed.recovery.cores) {
      if (report.resume.first_segment > 1) retained_logs++;
    }
    for (const auto& [where, key] : durable) {
      const CoreReport report = replayed.recovery.core(where.first);
      if (report.resume.first_segment > 1 && where.second < first_seq[where.first]) continue;
      auto found = present.find(where);
      if (found == present.end() || payload_key(found->second->payload) != key) missing++;
    }
    CHECK(missing == 0);
  }
  MESSAGE("crash runs: " << run << ", durable appends checked: " << durable.size()
                         << ", torn tails cut: " << torn << ", retained logs: " << retained_logs);
  CHECK(run >= 10);
  CHECK(retained_logs > 0);
  CHECK(durable.size() > 1000);
}
