#include "tools/coworker/boot.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "bucket/remap.h"
#include "consensus/codec.h"
#include "consensus/membership_entry.h"
#include "consensus/membership_state.h"
#include "tools/coworker/log.h"

namespace coworker::server {

namespace {

// The membership's snapshot state, when it decodes (the hint's members).
std::optional<consensus::MembershipState> snapshot_state(const consensus::Durable& paxos) {
  if (paxos.snapshot.bytes.empty()) return std::nullopt;
  consensus::Reader reader(paxos.snapshot.bytes);
  return consensus::MembershipState::decode(reader);
}

}  // namespace

std::optional<BootHint> read_hint(const std::string& log_dir) {
  bucket::EngineImage image;
  bucket::ReplayOptions options;
  // Below the named round nothing is needed (its membership checkpoint
  // holds the state): take every summary as read, without reading it.
  options.summaries = [](const bucket::SegmentSummary&) { return true; };
  Result<bucket::CoreReport> report = bucket::replay_core(
      log_dir, 0,
      [&](const bucket::ReplayedRecord& r) {
        if (r.feed == bucket::Feed::everything && r.header.bucket == bucket::membership_bucket) {
          image.apply(r.header, r.payload);
        }
      },
      options);
  if (!report || image.membership_damaged) return std::nullopt;
  const consensus::MembershipDurable& durable = image.membership;
  if (durable.identity.id == consensus::no_participant) return std::nullopt;
  BootHint hint;
  hint.id = durable.identity.id;
  hint.boots = durable.paxos.boots;
  std::set<std::string> members(durable.identity.remembered.begin(),
                                durable.identity.remembered.end());
  if (std::optional<consensus::MembershipState> state = snapshot_state(durable.paxos)) {
    if (state->gone(hint.id)) return std::nullopt;  // departed: nothing to keep
    hint.cluster = state->params().cluster;
    for (const consensus::ParticipantId id : state->ids()) {
      if (id != hint.id) members.insert(state->member(id)->address);
    }
  }
  // Arrivals accepted after the snapshot (a young cluster's bootstrapper
  // has no snapshot with members yet). Accepted is not decided: a hint.
  for (const auto& [slot, accepted] : durable.paxos.accepted) {
    std::optional<consensus::MembershipEntry> entry = consensus::decode_entry(accepted.entry.value);
    if (!entry || slot == hint.id) continue;
    if (const auto* arrive = std::get_if<consensus::Arrive>(&*entry)) {
      members.insert(arrive->address);
      if (hint.cluster == 0) hint.cluster = arrive->params.cluster;
    }
  }
  hint.members.assign(members.begin(), members.end());
  if (hint.members.empty()) return std::nullopt;
  return hint;
}

namespace {

// What replaying the log gives the participant.
struct Replayed {
  Loaded loaded;
  bool foreign = false;  // a record a core of today may not continue (remap.h)
};

Result<Replayed, std::string> replay(const std::string& log_dir, unsigned cores,
                                     const std::atomic<bool>& stop) {
  Replayed out;
  std::vector<std::unique_ptr<bucket::BucketIndex>>& indexes = out.loaded.indexes;
  for (unsigned c = 0; c < cores; c++) {
    indexes.push_back(std::make_unique<bucket::BucketIndex>(c));
  }
  // Summaries (recovery.h step 5) only while every core's log is one
  // of today's cores: a re-map reads and rewrites everything anyway.
  Result<std::vector<unsigned>> present = bucket::list_cores(log_dir);
  if (!present) {
    return fmt::format("cannot read the log in {}: {}", log_dir, present.error().message());
  }
  const bool same_cores = std::all_of(present->begin(), present->end(),
                                      [&](unsigned c) { return c < cores; });
  bucket::ReplayOptions options;
  options.stop = &stop;
  if (same_cores) {
    options.summaries = [&](const bucket::SegmentSummary& summary) {
      return indexes[summary.core]->apply_summary(summary.segment, summary.events);
    };
    // A segment read whole gets its summary now, so the next start need
    // not read it (not fsync'ed: segment_summary.h step 2).
    options.sealed = [&](const bucket::SealedSegment& sealed) {
      bucket::SegmentSummary summary = indexes[sealed.core]->take_summary(sealed);
      if (!sealed.whole || sealed.summarized) return;
      Status written = bucket::write_summary(log_dir, summary);
      if (!written) {
        log_error(log_no_core, "writing the summary of core {} segment {}: {}", sealed.core,
                  sealed.segment, written.error().message());
      }
    };
  }
  bucket::EngineImage& image = out.loaded.image;
  Result<bucket::Recovery> recovery = bucket::replay_log(
      log_dir,
      [&](const bucket::ReplayedRecord& r) {
        if (r.feed == bucket::Feed::everything) image.apply(r.header, r.payload);
        const uint32_t b = r.header.bucket;
        if (bucket::foreign_record(r.core, b, cores)) {
          out.foreign = true;
          return;
        }
        indexes[r.core]->on_replayed(r);  // a bucket's records, and round markers
      },
      options);
  if (!recovery) {
    return fmt::format("cannot read the log in {}: {}", log_dir, recovery.error().message());
  }
  out.loaded.recovery = std::move(*recovery);
  for (const bucket::CoreReport& report : out.loaded.recovery.cores) {
    if (report.core < cores) indexes[report.core]->drop_journals_below(report.resume.segment);
    if (report.summarized > 0) {
      log_info(log_no_core, "recovery: core {} took {} segments from their summaries, read {}",
               report.core, report.summarized, report.segments - report.summarized);
    }
  }
  return out;
}

// A fault for the tests (docs/OPERATIONS.md: never in production):
// COWORKER_TEST_SLOW_REPLAY_MS=N makes the replay N ms longer, as a log too
// large or a disk too slow would, so a test can show a long replay kept
// (tests/tools/slow_replay_test.py). It delays this thread only.
void slow_replay_for_tests(const std::atomic<bool>& stop) {
  const char* value = std::getenv("COWORKER_TEST_SLOW_REPLAY_MS");
  if (value == nullptr) return;
  const long ms = std::strtol(value, nullptr, 10);
  if (ms <= 0) return;
  log_warn(log_no_core, "COWORKER_TEST_SLOW_REPLAY_MS: the replay takes {} ms longer (a test)", ms);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

Result<Loaded, BootFailure> load(const ServerFlags& flags, const DataDir& dir,
                                 const std::atomic<bool>& stop) {
  const auto started = std::chrono::steady_clock::now();
  auto since_start = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 started)
        .count();
  };
  Result<Replayed, std::string> replayed = replay(dir.log_dir, flags.cores, stop);
  if (!replayed) return BootFailure{1, replayed.error()};
  if (replayed->foreign) {
    // Buckets are assigned to cores by b mod --cores and each core's log is
    // continued only by its own core: the log is rewritten for today's
    // count once, then read again (remap.h).
    log_info(log_no_core, "the log in {} was written with another --cores: re-mapping it to {}",
             dir.log_dir, flags.cores);
    const auto remap_started = std::chrono::steady_clock::now();
    Result<bucket::RemapReport, std::string> remapped =
        bucket::remap_log(dir.log_dir, flags.cores, log_store_config(flags, dir.log_dir, 0));
    if (!remapped) {
      return BootFailure{2, fmt::format("cannot re-map the log in {} to --cores {}: {}",
                                        dir.log_dir, flags.cores, remapped.error())};
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - remap_started);
    log_info(log_no_core, "re-mapped the log from {} cores to {}: {} records, {} bytes, {} ms",
             remapped->old_cores, flags.cores, remapped->records, remapped->bytes, ms.count());
    replayed = replay(dir.log_dir, flags.cores, stop);
    if (!replayed) return BootFailure{1, replayed.error()};
    COWORKER_ASSERT(!replayed->foreign);
  }
  Loaded& loaded = replayed->loaded;
  if (loaded.image.format_refused) {
    // Another build's records: not damage (repairing would drop every
    // copy a cluster upgraded at once holds), and not readable here.
    return BootFailure{2, fmt::format("the log in {} holds {}: this build cannot read it; start "
                                      "on a fresh data dir or with the build that wrote it "
                                      "(docs/OPERATIONS.md, Formats)",
                                      dir.log_dir, *loaded.image.format_refused)};
  }
  Result<std::optional<bucket::Repair>, std::string> repair =
      bucket::plan_repair(loaded.image, loaded.recovery, flags.cores, loaded.indexes, dir.id,
                          !flags.join.empty());
  if (!repair) return BootFailure{1, fmt::format("{} in {}", repair.error(), dir.log_dir)};
  loaded.repair = std::move(*repair);
  if (loaded.repair && loaded.repair->keeps_id) {
    log_warn(log_no_core,
             "recovery found {} damaged in {}: never serving from the damaged copies, this "
             "participant keeps its id and shrinks itself out of those buckets; they grow back "
             "to it from their replicas",
             loaded.repair->damage, dir.log_dir);
  } else if (loaded.repair) {
    log_warn(log_no_core,
             "recovery found {} damaged in {}: never serving from the damaged copy, this "
             "participant gives up its id and arrives anew; the buckets grow back to it from "
             "their replicas",
             loaded.repair->damage, dir.log_dir);
  }
  slow_replay_for_tests(stop);
  log_info(log_no_core, "replayed the log in {}: {} records, {} ms", dir.log_dir,
           loaded.image.records, since_start());
  return std::move(loaded);
}

}  // namespace coworker::server
