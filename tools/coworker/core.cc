#include "tools/coworker/core.h"

#include <algorithm>
#include <utility>

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
           std::unique_ptr<bucket::BucketIndex> index)
    : _participant(participant),
      _core(core),
      _store(std::move(store)),
      _index(std::move(index)),
      _storage(*_store, participant.image(), _index.get()),
      _reader(bucket::EntryReader::Config{participant.data_dir().log_dir}, *_index) {
  COWORKER_ASSERT(_store != nullptr);
  COWORKER_ASSERT(_index->core() == core);
  COWORKER_ASSERT(reactor::Loop::current().core() == core);
}

Core::~Core() { COWORKER_ASSERT(_appends.empty()); }

void Core::start() {
  // The host needs our arrival id: created when the membership knows it
  // (core 0 first, then every core, before any government reaches them).
  _tasks.spawn(run_ticker());
  _tasks.spawn(run_pump());
}

void Core::create_host(consensus::ParticipantId self) {
  COWORKER_ASSERT(_host == nullptr);
  COWORKER_ASSERT(self != consensus::no_participant);
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
  // image: continue above them.
  const uint32_t counter = _host->counter();
  _host.reset();
  COWORKER_ASSERT(_host == nullptr);
  bucket::HostEffects& effects = *this;
  _host = std::make_unique<bucket::BucketHost>(
      self, _participant.timing().phaser, std::max(counter, _participant.image().counter),
      _storage, effects);
}

Task<void> Core::close() {
  _closing = true;
  _staged.notify_all();
  _advanced.notify_all();
  co_await _tasks.join();
  co_await _store->close();
}

// ---- appends ---------------------------------------------------------------------------

Task<std::vector<MessageResult>> Core::append(uint32_t bucket,
                                              std::vector<consensus::BucketEntry> messages) {
  COWORKER_ASSERT(_participant.core_of(bucket) == _core);
  COWORKER_ASSERT(!messages.empty());
  const size_t count = messages.size();
  if (_host == nullptr || _closing) co_return std::vector<MessageResult>(count);
  PendingAppend pending;
  pending.deadline = _ticks + _participant.timing().append_timeout_ticks;
  const uint64_t token = _next_token++;
  _appends.emplace(token, &pending);
  _host->append(bucket, token, std::move(messages));
  staged();
  while (!pending.done.is_set() && !pending.expired) {
    Status woken = co_await pending.done.wait();
    if (!woken) break;  // the core stops
  }
  if (!pending.done.is_set()) {
    _appends.erase(token);  // still there when the core stops
    co_return std::vector<MessageResult>(count);
  }
  COWORKER_ASSERT(pending.results.size() == count);
  co_return std::move(pending.results);
}

void Core::reply(uint32_t, const consensus::Reply& reply) {
  const auto it = _appends.find(reply.token);
  if (it == _appends.end()) return;  // expired: its client was answered 503
  PendingAppend& pending = *it->second;
  pending.results = reply.results;
  _appends.erase(it);
  pending.done.set();
}

// Tokens grow with time and every deadline is issue time + the same
// timeout, so the oldest token expires first.
void Core::expire_appends() {
  while (!_appends.empty() && _appends.begin()->second->deadline <= _ticks) {
    PendingAppend& pending = *_appends.begin()->second;
    _appends.erase(_appends.begin());
    COWORKER_ASSERT(!pending.done.is_set());
    pending.expired = true;  // the waiter answers unavailable
    pending.done.notify_all();
  }
}

// ---- background tasks ------------------------------------------------------------------

Task<void> Core::run_ticker() {
  while (!_closing) {
    Status slept = co_await reactor::Timeout(_participant.timing().tick);
    if (!slept) break;  // the loop stops
    _ticks++;
    if (_host != nullptr) _host->tick();
    if (_core == 0 && _participant.has_cluster()) _participant.cluster().tick();
    expire_appends();
    staged();
  }
}

Task<bool> Core::durable(bucket::HostStorage::Ticket ticket) {
  while (_storage.durable() < ticket) {
    if (_closing || _storage.failed()) co_return false;
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
    Result<void, bucket::LogErrc> done = co_await _store->durable(*seq);
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
  std::string bytes = consensus::encode(message);
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

void Core::committed(uint32_t, const consensus::Write&) {}

void Core::repair(uint32_t bucket) {
  log_error(_core, "bucket {}: this replica's copy disagrees with its leader's (repair needed)",
            bucket);
}

// Reads stop at this replica's commit end (never past what it knows
// committed) and at what the index holds (a commit record still waiting in
// the storage's overflow is not indexed yet).
Task<Result<Core::Page, Core::ReadRefusal>> Core::read(uint32_t bucket, consensus::Position from,
                                                       size_t limit, Serve serve) {
  COWORKER_ASSERT(_participant.core_of(bucket) == _core);
  COWORKER_ASSERT(limit > 0);
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
  constexpr size_t page_bytes_max = size_t{4} << 20;
  const size_t wanted = static_cast<size_t>(std::min<uint64_t>(limit, end - from));
  auto read = _reader.read(bucket, from, wanted, page_bytes_max);
  Result<std::vector<consensus::BucketEntry>, bucket::ReadErrc> got = co_await read;
  if (!got) {
    log_error(_core, "bucket {}: reading from position {}: {}", bucket, from,
              bucket::read_errc_name(got.error()));
    co_return got.error() == bucket::ReadErrc::io ? ReadRefusal::io : ReadRefusal::corrupt;
  }
  COWORKER_ASSERT(got->size() <= wanted);
  page.next = from + got->size();
  page.entries = std::move(*got);
  co_return page;
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
