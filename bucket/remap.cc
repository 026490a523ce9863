#include "bucket/remap.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "bucket/engine_records.h"
#include "bucket/recovery.h"
#include "bucket/segment.h"
#include "consensus/assert.h"
#include "reactor/block_on.h"

namespace coworker::bucket {

unsigned core_of(uint32_t bucket, unsigned cores) {
  COWORKER_ASSERT(cores > 0);
  if (bucket >= participant_bucket) return 0;  // membership, the participant's own records
  return bucket % cores;
}

bool foreign_record(unsigned core, uint32_t bucket, unsigned cores) {
  if (core >= cores) return true;
  return bucket < participant_bucket && core_of(bucket, cores) != core;
}

namespace {

std::string remap_dir(const std::string& log_dir) { return log_dir + ".remap"; }

std::string parent_dir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// A record to copy: where its payload lies in the old log, and its header.
struct Copy {
  unsigned core = 0;
  uint64_t segment = 0;
  uint64_t offset = 0;
  RecordHeader header;
};

// Step 2: every old core's records, in log order, and what they fold to.
struct Plan {
  unsigned old_cores = 0;
  std::vector<Copy> copies;
  EngineImage image;
};

Result<Plan, std::string> plan_remap(const std::string& log_dir) {
  Result<std::vector<unsigned>> cores = list_cores(log_dir);
  if (!cores) return fmt::format("cannot list {}: {}", log_dir, cores.error().message());
  Plan plan;
  plan.old_cores = cores->empty() ? 0 : cores->back() + 1;
  for (unsigned core : *cores) {
    Result<CoreReport> report = replay_core(log_dir, core, [&](const ReplayedRecord& r) {
      plan.image.apply(r.header, r.payload);
      // The participant's own records are replaced by their folded values,
      // and a round marker speaks only for its core's buckets (remap.h step 3).
      if (r.header.bucket == participant_bucket) return;
      plan.copies.push_back(Copy{r.core, r.segment, r.offset, r.header});
    });
    if (!report) return fmt::format("cannot read {}: {}", log_dir, report.error().message());
    if (report->corrupt()) {
      return fmt::format("core {}'s log is damaged ({}); start once with the --cores it was "
                         "written with ({}) so the damaged buckets are repaired, then change "
                         "--cores",
                         core, damage_name(report->damages.front().what), plan.old_cores);
    }
  }
  const EngineImage& image = plan.image;
  if (!image.damaged_buckets.empty() || image.membership_damaged || image.counter_damaged) {
    return fmt::format("records in the log do not decode; start once with the --cores it was "
                       "written with ({}) so the damaged state is repaired, then change --cores",
                       plan.old_cores);
  }
  return plan;
}

// Reads copied payloads back, one segment file open at a time (the copies
// come in log order).
class PayloadReader {
 public:
  explicit PayloadReader(std::string log_dir) : _log_dir(std::move(log_dir)) {}
  ~PayloadReader() {
    if (_fd >= 0) ::close(_fd);
  }
  PayloadReader(const PayloadReader&) = delete;
  PayloadReader& operator=(const PayloadReader&) = delete;

  Result<std::span<const char>, std::string> read(const Copy& copy) {
    if (_fd < 0 || copy.core != _core || copy.segment != _segment) {
      if (_fd >= 0) ::close(_fd);
      const std::string path = segment_path(_log_dir, copy.core, copy.segment);
      _fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (_fd < 0) return fmt::format("cannot open {}: {}", path, std::strerror(errno));
      _core = copy.core;
      _segment = copy.segment;
    }
    _buffer.resize(copy.header.payload_bytes);
    size_t done = 0;
    while (done < _buffer.size()) {
      const ssize_t n = ::pread(_fd, _buffer.data() + done, _buffer.size() - done,
                                static_cast<off_t>(copy.offset + record_header_bytes + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return fmt::format("cannot read segment {} of core {}: {}", copy.segment, copy.core,
                           n < 0 ? std::strerror(errno) : "short file");
      }
      done += static_cast<size_t>(n);
    }
    std::span<const char> payload(_buffer.data(), _buffer.size());
    if (!payload_intact(copy.header, payload)) {
      return fmt::format("segment {} of core {} changed while it was re-mapped", copy.segment,
                         copy.core);
    }
    return payload;
  }

 private:
  std::string _log_dir;
  int _fd = -1;
  unsigned _core = 0;
  uint64_t _segment = 0;
  std::vector<char> _buffer;
};

reactor::Task<Result<void, std::string>> stage_one(LogStore& store, const RecordMeta& meta,
                                                   std::span<const char> payload) {
  for (;;) {
    Result<uint64_t, LogErrc> seq = store.stage(meta, payload);
    if (seq) co_return Result<void, std::string>{};
    if (seq.error() != LogErrc::full) {
      co_return fmt::format("the new log of core {} refused a record of {} bytes: {}",
                            store.config().core, payload.size(), log_errc_name(seq.error()));
    }
    co_await store.room(payload.size());
  }
}

// Step 3 on a temporary loop: the new logs under `new_dir`.
reactor::Task<Result<void, std::string>> write_new_logs(const Plan& plan,
                                                        const std::string& log_dir,
                                                        const std::string& new_dir,
                                                        unsigned cores, LogStore::Config base,
                                                        RemapReport* report) {
  std::vector<std::unique_ptr<LogStore>> stores;
  for (unsigned c = 0; c < cores; c++) {
    LogStore::Config config = base;
    config.dir = new_dir;
    config.core = c;
    Result<std::unique_ptr<LogStore>> store = LogStore::open(config, Resume{});
    if (!store) {
      co_return fmt::format("cannot create core {}'s log in {}: {}", c, new_dir,
                            store.error().message());
    }
    stores.push_back(std::move(*store));
  }
  std::optional<std::string> failure;
  std::vector<EngineRecord> own;
  if (plan.image.counter > 0) own.push_back(encode_counter_record(plan.image.counter));
  if (plan.image.connection_block_end > 0) {
    own.push_back(encode_connection_block(plan.image.connection_block_end));
  }
  for (const EngineRecord& record : own) {
    Result<void, std::string> staged = co_await stage_one(*stores[0], record.meta, record.payload);
    if (!staged) failure = staged.error();
  }
  PayloadReader reader(log_dir);
  for (const Copy& copy : plan.copies) {
    if (failure) break;
    Result<std::span<const char>, std::string> payload = reader.read(copy);
    if (!payload) {
      failure = payload.error();
      break;
    }
    LogStore& store = *stores[core_of(copy.header.bucket, cores)];
    Result<void, std::string> staged = co_await stage_one(store, copy.header.meta(), *payload);
    if (!staged) {
      failure = staged.error();
      break;
    }
    report->records++;
    report->bytes += payload->size();
  }
  for (std::unique_ptr<LogStore>& store : stores) {
    if (!failure && store->next_seq() > 1) {
      Result<void, LogErrc> durable = co_await store->durable(store->next_seq() - 1);
      if (!durable) {
        failure = fmt::format("core {}'s new log failed: {}", store->config().core,
                              log_errc_name(durable.error()));
      }
    }
    co_await store->close();
  }
  if (failure) co_return *failure;
  co_return Result<void, std::string>{};
}

}  // namespace

Status remove_remap_leftover(const std::string& log_dir) {
  std::error_code error;
  std::filesystem::remove_all(remap_dir(log_dir), error);
  if (error) return Errno{error.value()};
  return {};
}

Result<RemapReport, std::string> remap_log(const std::string& log_dir, unsigned cores,
                                           const LogStore::Config& store) {
  COWORKER_ASSERT(cores > 0);
  const std::string new_dir = remap_dir(log_dir);
  // 1.
  if (Status removed = remove_remap_leftover(log_dir); !removed) {
    return fmt::format("cannot delete {}: {}", new_dir, removed.error().message());
  }
  // 2.
  Result<Plan, std::string> plan = plan_remap(log_dir);
  if (!plan) return plan.error();
  RemapReport report;
  report.old_cores = plan->old_cores;
  // 3.
  if (Status made = make_dirs(new_dir); !made) {
    return fmt::format("cannot create {}: {}", new_dir, made.error().message());
  }
  Result<void, std::string> written = reactor::block_on(
      write_new_logs(*plan, log_dir, new_dir, cores, store, &report));
  if (!written) return written.error();
  for (unsigned c = 0; c < cores; c++) {
    if (Status synced = fsync_dir(core_dir(new_dir, c)); !synced) {
      return fmt::format("cannot fsync {}: {}", core_dir(new_dir, c), synced.error().message());
    }
  }
  if (Status synced = fsync_dir(new_dir); !synced) {
    return fmt::format("cannot fsync {}: {}", new_dir, synced.error().message());
  }
  // 4.
  if (::renameat2(AT_FDCWD, log_dir.c_str(), AT_FDCWD, new_dir.c_str(), RENAME_EXCHANGE) != 0) {
    return fmt::format("cannot swap {} and {} (the file system must support "
                       "RENAME_EXCHANGE): {}",
                       log_dir, new_dir, std::strerror(errno));
  }
  if (Status synced = fsync_dir(parent_dir(log_dir)); !synced) {
    return fmt::format("cannot fsync {}: {}", parent_dir(log_dir), synced.error().message());
  }
  if (Status removed = remove_remap_leftover(log_dir); !removed) {
    return fmt::format("cannot delete the old log {}: {}", new_dir, removed.error().message());
  }
  return report;
}

}  // namespace coworker::bucket
