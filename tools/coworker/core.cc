#include "tools/coworker/core.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "bucket/repair.h"
#include "bucket/scrub.h"
#include "bucket/segment.h"
#include "consensus/assert.h"
#include "consensus/phaser_codec.h"
#include "reactor/loop.h"
#include "reactor/ops.h"
#include "reactor/smp.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/log.h"
#include "tools/coworker/participant.h"

namespace coworker::server {

using consensus::MessageResult;
using reactor::Task;

Core::Core(Participant& participant, unsigned core, std::unique_ptr<bucket::LogStore> store,
           std::unique_ptr<bucket::BucketIndex> index, std::vector<uint32_t> resets)
    : _participant(participant),
      _core(core),
      _store(std::move(store)),
      _index(std::move(index)),
      _resets(std::move(resets)),
      _storage(*_store, participant.image(), _index.get()),
      _reader(bucket::EntryReader::Config{participant.data_dir().log_dir}, *_index) {
  COWORKER_ASSERT(_store != nullptr);
  COWORKER_ASSERT(_index->core() == core);
  COWORKER_ASSERT(reactor::Loop::current().core() == core);
  _storage.set_hosts([this](uint32_t bucket) { return _participant.core_of(bucket) == _core; });
  _storage.set_fetcher([this](uint32_t bucket, consensus::ParticipantId to,
                              consensus::Position from, size_t bytes_max) {
    _tasks.spawn(run_fetch(bucket, to, from, bytes_max));
  });
}

// A newcomer's acclimation (phaser.h step 9b): committed writes read back
// from this core's log. The phaser allows one fetch per newcomer at a time.
Task<void> Core::run_fetch(uint32_t bucket, consensus::ParticipantId to, consensus::Position from,
                           size_t bytes_max) {
  if (from < _index->retained_start(bucket)) {
    // Retired: the newcomer gets our committed state instead (step 9b),
    // when it fits a record (the newcomer persists it as one).
    answer_retained(bucket, to);
    co_return;
  }
  auto read = _reader.read_writes(bucket, from, bytes_max);
  Result<std::vector<consensus::WritePtr>, bucket::ReadErrc> got = co_await read;
  std::vector<consensus::WritePtr> writes;
  if (got) {
    writes = std::move(*got);
  } else if (from < _index->retained_start(bucket)) {
    answer_retained(bucket, to);
    co_return;
  } else {
    log_error(_core, "bucket {}: reading from position {} for participant {}: {}", bucket, from,
              to, bucket::read_errc_name(got.error()));
  }
  if (_host == nullptr || _closing) co_return;
  _host->fetched(bucket, to, std::move(writes));
  staged();
}

void Core::answer_retained(uint32_t bucket, consensus::ParticipantId to) {
  if (_host == nullptr || _closing) return;
  const consensus::Phaser* phaser = _host->phaser(bucket);
  if (phaser == nullptr || !encode_checkpoint(bucket, phaser->checkpoint())) return;
  _host->fetch_retained(bucket, to);
  staged();
}

Core::~Core() { COWORKER_ASSERT(_appends.empty()); }

void Core::start() {
  // The host needs our arrival id: created when the membership knows it
  // (core 0 first, then every core, before any government reaches them).
  _tasks.spawn(run_ticker());
  _tasks.spawn(run_pump());
  _tasks.spawn(run_retention());
}

void Core::start_scrub(std::vector<bucket::SealedSegment> unread) {
  if (!unread.empty()) _tasks.spawn(run_scrub(std::move(unread)));
}

Task<void> Core::run_scrub(std::vector<bucket::SealedSegment> unread) {
  for (const bucket::SealedSegment& segment : unread) {
    if (_closing) co_return;
    // Retired meanwhile: nothing left to verify (or to serve).
    if (segment.segment < _store->first_segment()) continue;
    auto scrubbed = scrub_segment(segment);
    const bool intact = co_await scrubbed;
    if (!intact) _scrub.damaged++;
    if (_closing) co_return;
  }
  if (_closing) co_return;
  log_info(_core, "scrub: {} of {} segments the start did not read verified ({} bytes), {} damaged",
           _scrub.segments, unread.size(), _scrub.bytes, _scrub.damaged);
}

Task<bool> Core::scrub_segment(const bucket::SealedSegment& segment) {
  const std::string& log_dir = _participant.data_dir().log_dir;
  const std::string path = bucket::segment_path(log_dir, _core, segment.segment);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // Gone with retention between the check and the open: nothing to verify.
    if (errno != ENOENT) log_error(_core, "scrub: {}: {}", path, Errno{errno}.message());
    co_return true;
  }
  constexpr size_t chunk = 1u << 20;
  constexpr auto pace = std::chrono::nanoseconds(std::chrono::seconds(1)) /
                        (scrub_bytes_per_second / chunk);
  bucket::SegmentScrub scrub(segment);
  std::vector<char> buffer;
  while (scrub.state() == bucket::SegmentScrub::State::more && !_closing) {
    buffer.resize(std::max(chunk, scrub.want()));
    Result<size_t> got =
        co_await reactor::Read(fd, std::span<char>(buffer.data(), buffer.size()), scrub.offset());
    if (!got) {
      log_error(_core, "scrub: reading {}: {}", path, got.error().message());
      break;
    }
    _scrub.bytes += *got;
    (void)scrub.feed(std::span<const char>(buffer.data(), *got));
    Status slept = co_await reactor::Timeout(pace);
    if (!slept) break;
  }
  ::close(fd);
  if (scrub.state() == bucket::SegmentScrub::State::done) _scrub.segments++;
  if (scrub.state() != bucket::SegmentScrub::State::damaged) co_return true;
  // Retired while read: a recycled file holds the next segment's records
  // by now, which are not this segment's and say nothing of it.
  if (segment.segment < _store->first_segment()) co_return true;
  const bucket::SegmentScrub::Found& found = scrub.found();
  // The next start must read this segment (no summary) and so find and
  // repair the damage; it reads every segment after damage too (recovery.h
  // step 5). The `round` file stays: a retained log counts from a whole
  // round on, and the named one may be what shows it whole (step 4).
  ::unlink(bucket::summary_path(log_dir, _core, segment.segment).c_str());
  log_error(_core,
            "scrub: CORRUPTION ({}) in segment {} at offset {}{}: reads of damaged records "
            "fail their checksums; restart the participant to repair (its next start reads "
            "this segment)",
            bucket::damage_name(found.what), segment.segment, found.offset,
            found.bucket ? fmt::format(", a record of bucket {}", *found.bucket) : std::string());
  co_return false;
}

// Whether a bucket's checkpoint fits one log record (the store refuses a
// larger payload): a dedup table can outgrow it (each connection keeps its
// last window's positions). Logged once per bucket.
std::optional<std::vector<bucket::EngineRecord>> Core::encode_checkpoint(
    uint32_t bucket, const std::vector<consensus::PhaserRecord>& records) {
  std::vector<bucket::EngineRecord> encoded;
  encoded.reserve(records.size());
  for (const consensus::PhaserRecord& record : records) {
    encoded.push_back(bucket::encode_phaser_record(bucket, record));
    const size_t bytes = encoded.back().payload.size();
    if (bytes <= _store->payload_bytes_max()) continue;
    if (_oversized.insert(bucket).second) {
      log_error(_core,
                "bucket {}: its checkpoint ({} bytes) is larger than a log record may be ({}): "
                "retention and acclimation from snapshots wait for it",
                bucket, bytes, _store->payload_bytes_max());
    }
    return std::nullopt;
  }
  return encoded;
}

bucket::HostStorage::Ticket Core::checkpoint_round() {
  COWORKER_ASSERT(_host != nullptr);
  std::vector<std::vector<bucket::EngineRecord>> checkpoints;
  for (const auto& [bucket, records] : _host->checkpoints()) {
    std::optional<std::vector<bucket::EngineRecord>> encoded = encode_checkpoint(bucket, records);
    if (!encoded) return 0;  // no round: nothing retired
    checkpoints.push_back(std::move(*encoded));
  }
  _round_written = _store->stats().bytes_written;
  _round_bytes = 0;
  bucket::HostStorage::Ticket last = _storage.stage_round_marker();
  if (_host->counter() > 0) last = _storage.stage_counter(_host->counter());
  for (std::vector<bucket::EngineRecord>& records : checkpoints) {
    for (const bucket::EngineRecord& record : records) _round_bytes += record.payload.size();
    last = _storage.stage_checkpoint(std::move(records));
  }
  if (_core == 0 && _participant.has_cluster()) {
    last = std::max(last, _participant.cluster().checkpoint());
  }
  staged();
  return last;
}

bool Core::round_due() const {
  if (_round_segment >= _store->segment()) return false;
  // A round that could not be staged (a checkpoint too large for a record,
  // logged) is tried again in the next segment, not every check.
  if (_round_refused_segment >= _store->segment()) return false;
  const uint64_t since = _store->stats().bytes_written - _round_written;
  return since >= 4 * _round_bytes;
}

void Core::sealed(const bucket::SealedSegment& sealed) {
  COWORKER_ASSERT(sealed.core == _core);
  _index->drop_journals_below(sealed.segment);  // continued segments recovery could not name
  _tasks.spawn(write_summary(_index->take_summary(sealed)));
}

// Not fsync'ed: a summary lost with a crash only makes the next start read
// the segment itself (segment_summary.h, step 2).
Task<void> Core::write_summary(bucket::SegmentSummary summary) {
  const std::string bytes = bucket::encode_summary(summary);
  const std::string path =
      bucket::summary_path(_participant.data_dir().log_dir, _core, summary.segment);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    log_error(_core, "writing the summary of segment {}: {}", summary.segment,
              Errno{errno}.message());
    co_return;
  }
  Result<size_t> written = co_await reactor::Write{fd, bytes, 0};
  ::close(fd);
  if (!written) {
    log_error(_core, "writing the summary of segment {}: {}", summary.segment,
              written.error().message());
    ::unlink(path.c_str());  // a torn one would only be refused; gone is plainer
  }
}

Task<Core::RoundMade> Core::make_round() {
  const bucket::HostStorage::Ticket ticket = checkpoint_round();
  if (ticket == 0) {
    _round_refused_segment = _store->segment();
    co_return RoundMade::none;
  }
  const bool durable = co_await this->durable(ticket);
  if (!durable) co_return RoundMade::failed;
  // Read once durable: the marker may have waited in the overflow when it
  // was asked for, and only this task stages rounds.
  const bucket::RoundPlace place = _storage.round_place();
  COWORKER_ASSERT(place.segment >= _round_segment);
  Status named = co_await name_round(place);
  if (!named) {
    // Not counted: retention waits for a named round (recovery.h step 4),
    // and no other round is made in this segment.
    log_error(_core, "naming the newest round in {}: {}",
              bucket::round_path(_participant.data_dir().log_dir, _core), named.error().message());
    _round_refused_segment = _store->segment();
    co_return RoundMade::none;
  }
  _round_segment = place.segment;
  co_return RoundMade::durable;
}

// The `round` file names the newest round for the next start
// (segment_summary.h), durably: written aside, fdatasync'ed, renamed into
// place, the directory fsync'ed. A retained log's records count from a
// whole round on (recovery.h step 4), and this file is what shows the
// newest one whole; a start checks the record it names before using it.
Task<Status> Core::name_round(bucket::RoundPlace place) {
  const std::string path = bucket::round_path(_participant.data_dir().log_dir, _core);
  const std::string tmp = path + ".tmp";
  const std::string text = bucket::round_text(place);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) co_return Errno{errno};
  Result<size_t> written = co_await reactor::Write{fd, text, 0};
  Status status;
  if (!written) {
    status = written.error();
  } else if (*written != text.size()) {
    status = Errno{EIO};
  } else {
    status = co_await reactor::Fsync{fd};
  }
  ::close(fd);
  if (!status) co_return status;
  if (::rename(tmp.c_str(), path.c_str()) != 0) co_return Errno{errno};
  const std::string dir = bucket::core_dir(_participant.data_dir().log_dir, _core);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) co_return Errno{errno};
  status = co_await reactor::Fsync{dir_fd, reactor::SyncData::all};
  ::close(dir_fd);
  co_return status;
}

Task<void> Core::run_retention() {
  const ServerFlags& flags = _participant.flags();
  const bool retention = flags.retention_bytes != ServerFlags::unlimited ||
                         flags.retention_ms != ServerFlags::unlimited;
  // --retention-bytes is the participant's: each core keeps its share.
  const uint64_t bytes_max = flags.retention_bytes == ServerFlags::unlimited
                                 ? UINT64_MAX
                                 : std::max<uint64_t>(1, flags.retention_bytes / _participant.cores());
  const uint64_t age_ms_max =
      flags.retention_ms == ServerFlags::unlimited ? UINT64_MAX : flags.retention_ms;
  constexpr auto check_every = std::chrono::milliseconds(200);
  while (!_closing) {
    Status slept = co_await reactor::Timeout(check_every);
    if (!slept) break;
    if (_closing || _host == nullptr || _storage.failed()) continue;
    if (round_due()) {
      const RoundMade made = co_await make_round();
      if (made == RoundMade::failed) break;
    }
    if (!retention) continue;
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const uint64_t target = _store->retention_target(
        bytes_max, age_ms_max, std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
    if (target <= _store->first_segment()) continue;
    if (_round_segment < target) {
      // Nothing below `target` may go before a round in or above it is
      // durable and named: recovery folds a retained log from its first
      // whole round on (recovery.h step 4).
      if (_round_refused_segment >= _store->segment()) continue;
      const RoundMade made = co_await make_round();
      if (made == RoundMade::failed) break;
      if (made == RoundMade::none) continue;
      COWORKER_ASSERT(_round_segment >= target);
    }
    const uint64_t first = _store->first_segment();
    // Reads below the new start answer 410 from now on; the files go next.
    _index->retire(target);
    _reader.forget_below(target);
    Status retired = co_await _store->retire(target);
    if (!retired) {
      log_error(_core, "retiring log segments below {}: {}", target, retired.error().message());
      continue;
    }
    log_info(_core, "retention: log segments {}..{} deleted, {} bytes on disk", first,
             target - 1, _store->disk_bytes());
  }
}

void Core::create_host(consensus::ParticipantId self) {
  COWORKER_ASSERT(_host == nullptr);
  COWORKER_ASSERT(self != consensus::no_participant);
  if (!_resets.empty()) {
    // Repair step 3 (bucket/repair.h): core 0 made the old id's end durable before
    // the membership gave us `self` (unless the id is kept); the resets go
    // before any record of the host. Durable in log order: nothing needs to
    // wait for them (a void copy acks nothing).
    std::vector<bucket::EngineRecord> records;
    for (uint32_t b : _resets) records.push_back(bucket::repair_record(b, _participant.image()));
    _storage.stage_repair(std::move(records));
    staged();
    _resets.clear();
  }
  bucket::HostEffects& effects = *this;
  _host = std::make_unique<bucket::BucketHost>(self, _participant.timing().phaser,
                                               _participant.image().counter, _storage, effects);
}

void Core::replace_host(consensus::ParticipantId self) {
  COWORKER_ASSERT(_host != nullptr);
  COWORKER_ASSERT(self != _host->self());
  while (!_appends.empty()) {
    PendingAppend& pending = *_appends.begin()->second;
    _appends.erase(_appends.begin());
    pending.expired = true;  // unavailable
    pending.done.notify_all();
  }
  // Counters staged under the old id are in the log but not in the boot
  // image: continue above them. The phasers continue from what the old
  // ones staged (their copies may be offered as prefixes to the growth
  // that brings the new id into governments, phaser.h step 9), and the new
  // host says nothing before those records are durable.
  const uint32_t counter = _host->counter();
  std::map<uint32_t, consensus::PhaserDurable> images = _host->images();
  _host.reset();
  COWORKER_ASSERT(_host == nullptr);
  _storage.replace_images(std::move(images));
  bucket::HostEffects& effects = *this;
  _host = std::make_unique<bucket::BucketHost>(
      self, _participant.timing().phaser, std::max(counter, _participant.image().counter),
      _storage, effects, _storage.issued());
}

Task<void> Core::close() {
  _closing = true;
  _store->flush_lazy();  // the pump may wait for a Flush::with_next record
  _staged.notify_all();
  _advanced.notify_all();
  co_await _tasks.join();
  co_await _store->close();
}

// ---- appends ---------------------------------------------------------------------------

bool Core::accepts(uint32_t bucket) const {
  COWORKER_ASSERT(_participant.core_of(bucket) == _core);
  if (_host == nullptr || _closing) return false;
  const consensus::Phaser* phaser = _host->phaser(bucket);
  return phaser != nullptr && phaser->role() != consensus::Phaser::Role::follower;
}

uint64_t Core::ticks_for(std::chrono::milliseconds duration) const {
  const auto tick = _participant.timing().tick;
  return std::max<uint64_t>(1, static_cast<uint64_t>((duration + tick - tick / 2) / tick));
}

Task<consensus::Reply> Core::append(uint32_t bucket, std::vector<consensus::BucketEntry> messages,
                                    uint64_t timeout_ticks) {
  COWORKER_ASSERT(_participant.core_of(bucket) == _core);
  COWORKER_ASSERT(!messages.empty());
  COWORKER_ASSERT(timeout_ticks > 0);
  const size_t count = messages.size();
  consensus::Reply unknown;  // every message unavailable
  unknown.results.resize(count);
  if (_host == nullptr || _closing) co_return unknown;
  PendingAppend pending;
  pending.deadline = _ticks + timeout_ticks;
  const uint64_t token = _next_token++;
  _appends.emplace(token, &pending);
  _host->append(bucket, token, std::move(messages));
  staged();
  while (!pending.done.is_set() && !pending.expired) {
    Status woken = co_await pending.done.wait();
    if (!woken) break;  // the core stops
  }
  CoreMetrics& metrics = _participant.metrics();
  metrics.appends_total += count;
  if (!pending.done.is_set()) {
    _appends.erase(token);  // still there when the core stops
    metrics.unavailable_total += count;
    co_return unknown;
  }
  COWORKER_ASSERT(pending.reply.results.size() == count);
  for (const MessageResult& result : pending.reply.results) {
    switch (result.outcome) {
      case consensus::Outcome::appended: metrics.appended_total++; break;
      case consensus::Outcome::duplicate: metrics.duplicates_total++; break;
      case consensus::Outcome::superseded: metrics.superseded_total++; break;
      case consensus::Outcome::expired: metrics.expired_total++; break;
      case consensus::Outcome::overloaded: metrics.overloaded_total++; break;
      case consensus::Outcome::unavailable: metrics.unavailable_total++; break;
      case consensus::Outcome::handed_back: metrics.handed_back_total++; break;
    }
  }
  co_return std::move(pending.reply);
}

void Core::reply(uint32_t, const consensus::Reply& reply) {
  const auto it = _appends.find(reply.token);
  if (it == _appends.end()) return;  // expired: its client was answered 503
  PendingAppend& pending = *it->second;
  pending.reply = reply;
  _appends.erase(it);
  pending.done.set();
}

// Timeouts differ (a hopped request brings what is left of its deadline),
// so every pending append is looked at; they are bounded by the phasers'
// queues (queue_messages_max per bucket).
void Core::expire_appends() {
  for (auto it = _appends.begin(); it != _appends.end();) {
    PendingAppend& pending = *it->second;
    if (pending.deadline > _ticks) {
      ++it;
      continue;
    }
    it = _appends.erase(it);
    COWORKER_ASSERT(!pending.done.is_set());
    pending.expired = true;  // the waiter answers unavailable
    pending.done.notify_all();
  }
}

// ---- background tasks ------------------------------------------------------------------

Task<void> Core::run_ticker() {
  const auto tick = _participant.timing().tick;
  _ticks_start = std::chrono::steady_clock::now();
  while (!_closing) {
    const auto next = _ticks_start + (_ticks + 1) * tick;
    Status slept = co_await reactor::Timeout(
        std::max<std::chrono::nanoseconds>(next - std::chrono::steady_clock::now(), {}));
    if (!slept) break;  // the loop stops
    catch_up();
  }
}

void Core::catch_up() {
  if (_closing || _ticks_start == std::chrono::steady_clock::time_point{}) return;
  const auto elapsed = std::chrono::steady_clock::now() - _ticks_start;
  const uint64_t due = static_cast<uint64_t>(elapsed / _participant.timing().tick);
  while (_ticks < due && !_closing) tick_once();
}

void Core::tick_once() {
  _ticks++;
  // The wall clock: leaders stamp it on writes, and another participant
  // leading the bucket later compares its own with it (connection expiry,
  // DESIGN §3; phaser.h step 7).
  if (_host != nullptr) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    _host->tick(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now).count()));
  }
  if (_core == 0 && _participant.has_cluster()) _participant.cluster().tick();
  expire_appends();
  expire_polls();
  // The leader's commit records wait for the next register's fdatasync
  // (bucket/record.h, Flush); an idle bucket's go within a tick.
  if (_store) _store->flush_lazy();
  staged();
}

Task<bool> Core::durable(bucket::HostStorage::Ticket ticket) {
  while (_storage.durable() < ticket) {
    if (_closing || _storage.failed()) co_return false;
    _store->flush_lazy();  // someone waits: a Flush::with_next batch goes
    Status woken = co_await _advanced.wait();
    if (!woken) co_return false;
  }
  co_return true;
}

// Durability, one batch at a time: wait for the batch of the oldest record
// not known durable, then release what it covers.
Task<void> Core::run_pump() {
  while (!_closing) {
    if (_storage.overflowing()) co_await _storage.drain_overflow();
    const std::optional<uint64_t> seq = _storage.oldest_pending_seq();
    if (!seq) {
      Status woken = co_await _staged.wait();
      if (!woken) break;
      continue;
    }
    // Passing durability on hurries nothing: a leader's commit record still
    // waits for the next register (bucket/record.h, Flush).
    Result<void, bucket::LogErrc> done = co_await _store->durable(*seq, bucket::Flush::with_next);
    if (!done) {
      _participant.fail(1, fmt::format("core {}: the log failed: {}", _core,
                                       bucket::log_errc_name(done.error())));
      break;
    }
    if (_host != nullptr) _host->on_durable();
    if (_core == 0 && _participant.has_cluster()) _participant.cluster().on_durable();
    _advanced.notify_all();
  }
}

// ---- phaser effects --------------------------------------------------------------------

void Core::send(consensus::ParticipantId to, consensus::PhaserMessage message) {
  if (const auto* catchup = std::get_if<consensus::Catchup>(&message)) {
    for (const consensus::WritePtr& write : catchup->writes) {
      _participant.metrics().catchup_entries_sent_total += write->entries.size();
    }
  }
  std::string bytes = _encoder.encode(message);
  if (_core == 0) {
    _participant.cluster().send_phaser(to, std::move(bytes));
    return;
  }
  ClusterNode* cluster = &_participant.cluster();
  reactor::post_to(0, [cluster, to, bytes = std::move(bytes)]() mutable {
    cluster->send_phaser(to, std::move(bytes));
  });
}

void Core::report(uint32_t bucket, consensus::ParticipantId silent) {
  log_warn(_core, "bucket {}: replica {} owes acks for the departure timeout: reported", bucket,
           silent);
  if (_core == 0) {
    _participant.cluster().report(silent);
    return;
  }
  ClusterNode* cluster = &_participant.cluster();
  reactor::post_to(0, [cluster, silent] { cluster->report(silent); });
}

void Core::committed(uint32_t, const consensus::Write& write) {
  CoreMetrics& metrics = _participant.metrics();
  metrics.writes_total++;
  size_t bytes = 0;
  for (const consensus::BucketEntry& entry : write.entries) {
    bytes += entry.identifier.size() + entry.body.size();
  }
  metrics.write_bytes.observe(static_cast<double>(bytes));
}

void Core::commit_staged(uint32_t bucket) {
  const auto it = _polls.find(bucket);
  if (it != _polls.end()) it->second->changed.notify_all();
}

// A waiter removes its own deadline when it leaves, so a passed deadline
// is notified each tick until its waiter ran.
void Core::expire_polls() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = _poll_deadlines.begin(); it != _poll_deadlines.end() && it->first <= now; ++it) {
    const auto polls = _polls.find(it->second);
    COWORKER_ASSERT(polls != _polls.end());
    polls->second->changed.notify_all();
  }
}

consensus::Position Core::readable_end(uint32_t bucket) const {
  const consensus::Phaser* phaser = _host ? _host->phaser(bucket) : nullptr;
  if (phaser == nullptr) return 0;
  return std::min(phaser->commit_end(), _index->committed_end(bucket));
}

Task<bool> Core::wait_readable(uint32_t bucket, consensus::Position from,
                               std::chrono::steady_clock::time_point deadline) {
  COWORKER_ASSERT(_participant.core_of(bucket) == _core);
  std::unique_ptr<Polls>& slot = _polls[bucket];
  if (slot == nullptr) slot = std::make_unique<Polls>();
  Polls* polls = slot.get();
  if (polls->waiting >= long_polls_per_bucket_max) co_return false;
  polls->waiting++;
  _participant.metrics().long_polls_total++;
  const auto registered = _poll_deadlines.emplace(deadline, bucket);
  while (!_closing && readable_end(bucket) <= from &&
         std::chrono::steady_clock::now() < deadline) {
    // A commit record waiting in the overflow is indexed by the pump.
    const consensus::Phaser* phaser = _host ? _host->phaser(bucket) : nullptr;
    reactor::Event& event =
        phaser != nullptr && phaser->commit_end() > from ? _advanced : polls->changed;
    Status woken = co_await event.wait();
    if (!woken) break;
  }
  _poll_deadlines.erase(registered);
  polls->waiting--;
  if (polls->waiting == 0) _polls.erase(bucket);  // nobody parks on it now
  co_return true;
}

void Core::copy_reset(uint32_t bucket) {
  _participant.metrics().copies_reset_total++;
  log_warn(_core, "bucket {}: the copy offered here does not match the leader's log: dropped, "
           "growing again from position 0", bucket);
}

void Core::repair(uint32_t bucket) {
  log_error(_core, "bucket {}: this replica's copy disagrees with its leader's: it is void, "
            "shrunk out of the bucket and grown back (per-bucket repair)", bucket);
  if (_core == 0) {
    _participant.cluster().repair(bucket);
    return;
  }
  ClusterNode* cluster = &_participant.cluster();
  reactor::post_to(0, [cluster, bucket] { cluster->repair(bucket); });
}

// Reads stop at this replica's commit end (never past what it knows
// committed) and at what the index holds (a commit record still waiting in
// the storage's overflow is not indexed yet).
Task<Result<Core::Page, Core::ReadRefusal>> Core::read(uint32_t bucket, consensus::Position from,
                                                       size_t limit, Serve serve) {
  COWORKER_ASSERT(_participant.core_of(bucket) == _core);
  COWORKER_ASSERT(limit > 0);
  _participant.metrics().reads_total++;
  const consensus::Phaser* phaser = _host ? _host->phaser(bucket) : nullptr;
  if (phaser == nullptr) co_return ReadRefusal::not_hosted;
  if (serve == Serve::leader && !phaser->serving()) co_return ReadRefusal::not_leader;
  // A leader's read includes every append it answered (DESIGN §3): when a
  // commit record still waits for room in the batch, the index is behind
  // the phaser; wait for the pump to stage it.
  for (int turn = 0; serve == Serve::leader && turn < 100; turn++) {
    phaser = _host ? _host->phaser(bucket) : nullptr;
    if (phaser == nullptr) co_return ReadRefusal::not_hosted;
    if (_index->committed_end(bucket) >= phaser->commit_end()) break;
    Status woken = co_await _advanced.wait();
    if (!woken) co_return ReadRefusal::not_hosted;
  }
  if (serve == Serve::leader && _index->committed_end(bucket) < phaser->commit_end()) {
    co_return ReadRefusal::not_leader;
  }
  const consensus::Position end = std::min(phaser->commit_end(), _index->committed_end(bucket));
  Page page;
  page.next = from;
  if (from >= end) co_return page;
  if (from < _index->retained_start(bucket)) co_return ReadRefusal::retained;
  constexpr size_t page_bytes_max = size_t{4} << 20;
  const size_t wanted = static_cast<size_t>(std::min<uint64_t>(limit, end - from));
  auto read = _reader.read(bucket, from, wanted, page_bytes_max);
  Result<bucket::EntryPage, bucket::ReadErrc> got = co_await read;
  if (!got) {
    // Retention moved the start while the read waited for a slot.
    if (from < _index->retained_start(bucket)) co_return ReadRefusal::retained;
    log_error(_core, "bucket {}: reading from position {}: {}", bucket, from,
              bucket::read_errc_name(got.error()));
    co_return got.error() == bucket::ReadErrc::io ? ReadRefusal::io : ReadRefusal::corrupt;
  }
  COWORKER_ASSERT(got->size() <= wanted);
  page.next = from + got->size();
  page.entries = std::move(*got);
  co_return page;
}

std::vector<BucketGauge> Core::bucket_gauges() const {
  std::vector<BucketGauge> out;
  if (_host == nullptr) return out;
  for (uint32_t b = _core; b < _participant.buckets(); b += _participant.cores()) {
    const consensus::Phaser* phaser = _host->phaser(b);
    if (phaser == nullptr) continue;
    BucketGauge gauge{b, phaser->commit_end(), phaser->serving(), {}};
    if (phaser->serving()) {
      std::vector<consensus::ParticipantId> replicas = phaser->government().replicas;
      std::sort(replicas.begin(), replicas.end());
      for (consensus::ParticipantId replica : replicas) {
        if (replica != _host->self()) gauge.lag.emplace_back(replica, phaser->lag_of(replica));
      }
    }
    out.push_back(std::move(gauge));
  }
  return out;
}

Core::Tracked Core::tracked() const {
  Tracked tracked;
  if (_host == nullptr) return tracked;
  for (uint32_t b = _core; b < _participant.buckets(); b += _participant.cores()) {
    const consensus::Phaser* phaser = _host->phaser(b);
    if (phaser == nullptr) continue;
    tracked.connections += phaser->tracked_connections();
    tracked.bytes += phaser->tracked_connection_bytes();
  }
  return tracked;
}

std::vector<BucketView> Core::buckets() const {
  std::vector<BucketView> out;
  if (_host == nullptr) return out;
  for (uint32_t b = _core; b < _participant.buckets(); b += _participant.cores()) {
    const consensus::Phaser* phaser = _host->phaser(b);
    if (phaser == nullptr) continue;
    out.push_back(BucketView{b, phaser->promise(), phaser->commit_end(), phaser->serving()});
  }
  return out;
}

}  // namespace coworker::server
