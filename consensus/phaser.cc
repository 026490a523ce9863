#include "consensus/phaser.h"

#include <algorithm>

#include "consensus/crc32c.h"
#include "consensus/assert.h"

namespace coworker::consensus {

namespace {
// A client resubmitting a pending message attaches a waiter; bound them so a
// client spinning on resubmission cannot grow our memory.
constexpr size_t waiters_per_pending_max = 64;
}  // namespace

uint32_t checksum_of(const Write& write) {
  uint32_t crc = crc32c_u64(0, write.prior);
  crc = crc32c_u64(crc, write.first);
  crc = crc32c_u64(crc, write.time);
  crc = crc32c_u64(crc, write.expire_before);
  for (const BucketEntry& e : write.entries) {
    crc = crc32c_u64(crc, e.identifier.size());
    crc = crc32c(crc, e.identifier);
    crc = crc32c_u64(crc, e.connection.issuer);
    crc = crc32c_u64(crc, e.connection.counter);
    // The default wrap adds nothing: checksums of writes before wraps travelled stay.
    if (e.connection.wrap != series_wrap_default) crc = crc32c_u64(crc, e.connection.wrap);
    crc = crc32c_u64(crc, e.series);
    crc = crc32c_u64(crc, e.window);
    crc = crc32c_u64(crc, e.body.size());
    crc = crc32c(crc, e.body);
  }
  return crc;
}

bool Government::contains(ParticipantId id) const {
  return std::find(replicas.begin(), replicas.end(), id) != replicas.end();
}

// ---- durable state ------------------------------------------------------------

void PhaserDurable::apply(const PhaserRecord& record) {
  // A void copy (step 9g) stages nothing until a Catchup's reset or a
  // snapshot's checkpoint ends the repair.
  if (repairing) {
    COWORKER_ASSERT((std::holds_alternative<ResetRecord>(record) ||
                     std::holds_alternative<CheckpointRecord>(record) ||
                     std::holds_alternative<RepairRecord>(record)));
  }
  if (const auto* p = std::get_if<PromiseRecord>(&record)) {
    promise = std::max(promise, p->promise);
  } else if (const auto* r = std::get_if<RegisterRecord>(&record)) {
    COWORKER_ASSERT(r->write != nullptr);
    COWORKER_ASSERT(r->write->first == commit_end);
    promise = std::max(promise, r->write->promise);
    register_ = r->write;
  } else if (const auto* checkpoint = std::get_if<CheckpointRecord>(&record)) {
    const CommittedState* k = &checkpoint->state;
    // Everything before it in the log counts no more (the log may have lost
    // it), except the register at a round (below); the register, if any,
    // follows it in its own record.
    COWORKER_ASSERT(k->dedup != nullptr);
    COWORKER_ASSERT(k->last_commit.end == k->commit_end);
    COWORKER_ASSERT(k->last_commit_first <= k->commit_end);
    COWORKER_ASSERT(k->last_filled.end == k->commit_end);
    COWORKER_ASSERT(k->promise >= promise);
    // At the committed end (a checkpoint round), or above it (a snapshot,
    // step 9b): never below, which would forget committed positions.
    COWORKER_ASSERT(k->commit_end >= commit_end);
    if (keep_log && k->commit_end > commit_end) {
      // A snapshot: this replica holds no entry below its end.
      log.clear();
      writes.clear();
      log_start = k->commit_end;
    }
    // A snapshot drops the register (it lies below the snapshot's end:
    // committed or void). A round whose phaser held one keeps it: the
    // round's own record of it follows, but a crash may keep a log cut
    // between the two (a torn last batch keeps its records up to the first
    // damaged one; a round may span two batches), and the register may be
    // a write this replica acked. A round without one drops it: what
    // replaced or committed it (an empty write's register and its commit,
    // at the same end) may be the records damage took, and recovery takes
    // a proven round for the bucket's whole state (found by the damage
    // probe, phaser-rolling seed 2035373384).
    if (k->commit_end > commit_end || !checkpoint->register_follows) register_ = nullptr;
    promise = k->promise;
    repairing = false;
    commit_end = k->commit_end;
    last_commit = k->last_commit;
    last_commit_first = k->last_commit_first;
    last_filled = k->last_filled;
    dedup = *k->dedup;
  } else if (const auto* repair = std::get_if<RepairRecord>(&record)) {
    // Step 9g: the copy is void; everything before counts no more, the
    // promise included (the damage may have taken a higher one).
    const bool keep = keep_log;
    *this = PhaserDurable{};
    promise = repair->promise;
    keep_log = keep;
    repairing = true;
  } else if (const auto* reset = std::get_if<ResetRecord>(&record)) {
    // Step 9f: the copy is dropped; everything before counts no more.
    const Promise kept = std::max(promise, reset->promise);
    const bool keep = keep_log;
    *this = PhaserDurable{};
    promise = kept;
    keep_log = keep;
  } else {
    const auto& c = std::get<CommitRecord>(record);
    if (register_ && register_->end() == c.mark.end && register_->checksum == c.mark.checksum) {
      dedup.commit_write(*register_);
      if (keep_log) log.insert(log.end(), register_->entries.begin(), register_->entries.end());
      if (keep_log && !register_->entries.empty()) writes.push_back(register_);
      commit_end = register_->end();
      last_commit = c.mark;
      last_commit_first = register_->first;
      if (!register_->entries.empty()) last_filled = c.mark;
      register_ = nullptr;
    } else {
      // A leader's commit of a write it never persisted as a register (the
      // empty write of a leadership start) changes no position.
      COWORKER_ASSERT(c.mark.end <= commit_end);
    }
  }
}

// ---- construction and small helpers ---------------------------------------------

Phaser::Phaser(Config config, const PhaserDurable& durable)
    : _config(config),
      _promise(durable.promise),
      _commit_end(durable.commit_end),
      _last_commit(durable.last_commit),
      _last_commit_first(durable.last_commit_first),
      _last_filled(durable.last_filled),
      _register(durable.register_),
      _dedup(durable.dedup),
      _offered(durable.commit_end > 0),
      _repairing(durable.repairing) {
  COWORKER_ASSERT(_config.self != no_participant);
  COWORKER_ASSERT(_config.write_messages_max >= 1);
  COWORKER_ASSERT(_config.notice_ticks >= 1 && _config.resend_ticks >= 1);
  // A recovered register was durable before the crash.
  _register_durable = _register != nullptr;
  check_invariants();
}

uint64_t Phaser::persist(PhaserRecord record, PhaserOutput& out) {
  const uint64_t ticket = _next_ticket++;
  out.persist.push_back(Persist{ticket, std::move(record)});
  return ticket;
}

bool Phaser::all_others_in(const MemberSet& set) const {
  bool all = true;
  for_each_other([&](ParticipantId id) { all = all && set.contains(id); });
  return all;
}

// Step 5: a leadership start's write leaves only once our copy, and with it
// the new promise, is durable; every other write is under a durable promise.
bool Phaser::in_flight_sendable() const {
  COWORKER_ASSERT(_in_flight);
  return _role != Role::starting || _in_flight->own_durable;
}

bool Phaser::is_other(ParticipantId id) const {
  if (id == _config.self) return false;
  if (_government.contains(id)) return true;
  if (!_growth) return false;
  for (const Newcomer& n : _growth->newcomers) {
    if (n.id == id) return n.joined;
  }
  return false;
}

void Phaser::send_to_members(const PhaserMessage& message, PhaserOutput& out,
                             const MemberSet* skip) {
  out.send.reserve(out.send.size() + _government.replicas.size());
  for_each_other([&](ParticipantId id) {
    if (skip == nullptr || !skip->contains(id)) out.send.push_back(PhaserSend{id, message});
  });
}

void Phaser::resolve(const Waiter& waiter, MessageResult result, PhaserOutput& out) {
  auto it = _requests.find(waiter.request);
  COWORKER_ASSERT(it != _requests.end());
  Request& request = it->second;
  COWORKER_ASSERT(waiter.index < request.results.size());
  COWORKER_ASSERT(request.remaining > 0);
  request.results[waiter.index] = result;
  if (--request.remaining == 0) {
    COWORKER_ASSERT(request.handed_back.size() ==
                    static_cast<size_t>(std::count_if(
                        request.results.begin(), request.results.end(),
                        [](const MessageResult& r) { return r.outcome == Outcome::handed_back; })));
    out.reply.push_back(
        Reply{request.token, std::move(request.results), std::move(request.handed_back)});
    _requests.erase(it);
  }
}

void Phaser::hand_back(const std::vector<Waiter>& waiters, const BucketEntry& entry,
                       PhaserOutput& out) {
  COWORKER_ASSERT(_role == Role::follower);  // step 6: only as the leadership ends
  for (const Waiter& w : waiters) {
    auto it = _requests.find(w.request);
    COWORKER_ASSERT(it != _requests.end());
    it->second.handed_back.push_back(HandedBack{w.index, entry});
    resolve(w, MessageResult{Outcome::handed_back, 0}, out);
  }
}

// ---- government and leadership ---------------------------------------------------

PhaserOutput Phaser::on_government(const Government& government) {
  PhaserOutput out;
  COWORKER_ASSERT(government.slot >= _government.slot);
  _government = government;
  if (_role != Role::follower && government.leader() != _config.self) {
    step_down(out);
  }
  // Step 9d: the step moved on (our ack decided, or another): the growth is
  // over; newcomers the ack made members count as members from now on.
  if (_growth && government.step != _growth->step) _growth.reset();
  // Forget silence counters of members that left.
  for (auto it = _silent_ticks.begin(); it != _silent_ticks.end();) {
    it = is_other(it->first) ? std::next(it) : _silent_ticks.erase(it);
  }
  _commit_unacked.erase_if([&](ParticipantId id) { return !is_other(id); });
  if (_in_flight) {
    // Step 4: a departed member no longer counts; resend the write to the
    // rest, since the transport never retries on its own.
    if (in_flight_sendable()) send_to_members(_in_flight->write, out, &_in_flight->acked);
    _in_flight->ticks_since_send = 0;
    maybe_commit(out);
  }
  check_invariants();
  return out;
}

PhaserOutput Phaser::start_leadership(Promise promise) {
  PhaserOutput out;
  COWORKER_ASSERT(_government.leader() == _config.self);
  COWORKER_ASSERT(promise > _promise);
  COWORKER_ASSERT(!_repairing);  // step 9g: the host starts no leadership of a void copy
  if (_role != Role::follower) step_down(out);
  COWORKER_ASSERT(!_in_flight);
  COWORKER_ASSERT(_queue.empty());
  _role = Role::starting;
  _leading_promise = promise;
  _promise = promise;

  // Step 5: re-propose the register under the new promise with the same
  // positions, or an empty write carrying the commit of the last position.
  auto write = std::make_shared<Write>();
  write->bucket = _config.bucket;
  write->promise = promise;
  write->commit = _last_commit;
  if (_register) {
    COWORKER_ASSERT(_register->first == _commit_end);
    write->number = _register->number;
    write->first = _register->first;
    write->time = _register->time;
    write->expire_before = _register->expire_before;
    write->entries = _register->entries;
    write->prior = _register->prior;
    write->checksum = _register->checksum;
  } else {
    write->number = _last_commit.number + 1;
    write->first = _commit_end;
    write->prior = _last_filled.checksum;
    stamp(*write);
    write->checksum = checksum_of(*write);
  }
  // The register's messages are in flight again: they count as accepted, and
  // a resubmission of one of them waits for its outcome.
  _dedup.forget_accepted();
  InFlight flight;
  flight.untracked.resize(write->entries.size());
  for (const BucketEntry& e : write->entries) {
    if (!e.connection.valid()) continue;
    _dedup.accept(e.connection, e.series);
    _pending[{e.connection, e.series}] = Pending{};
  }
  WritePtr shared = std::move(write);
  _register = shared;
  _register_durable = false;
  // The promise becomes durable with the re-proposed register. The
  // participant's counter was made durable before this call, so the promise
  // can never be reused even if this record is lost in a crash. The write
  // goes out once it is durable (on_persisted): a replica that takes the
  // new promise drops its register (step 3), so a promise a crash could
  // still lose must reach none (long run seed 301670893 of phaser-arrivals:
  // a usurper sent its start, crashed with the promise unwritten, and acked
  // the old leader's write, which a member had dropped for the start's).
  flight.write = shared;
  flight.own_ticket = persist(RegisterRecord{shared}, out);
  _in_flight = std::move(flight);
  check_invariants();
  return out;
}

void Phaser::step_down(PhaserOutput& out) {
  COWORKER_ASSERT(_role != Role::follower);
  _role = Role::follower;
  // Step 6: what waits is handed back (queued messages, and in-flight ones
  // with a connection) or answered 503 (in-flight ones without).
  std::deque<Queued> queue = std::move(_queue);
  std::optional<InFlight> flight = std::move(_in_flight);
  std::map<std::pair<ConnectionId, uint64_t>, Pending> pending = std::move(_pending);
  _queue.clear();
  _in_flight.reset();
  _pending.clear();
  _last_written = nullptr;
  _growth.reset();
  _commit_unacked.clear();
  _silent_ticks.clear();
  _dedup.forget_accepted();
  auto tracked_waiters = [&pending](const BucketEntry& e) {
    auto it = pending.find({e.connection, e.series});
    COWORKER_ASSERT(it != pending.end());  // every tracked message waiting is pending
    std::vector<Waiter> waiters = std::move(it->second.waiters);
    pending.erase(it);
    return waiters;
  };
  if (flight) {
    const std::vector<BucketEntry>& entries = flight->write->entries;
    COWORKER_ASSERT(flight->untracked.size() == entries.size());
    for (size_t i = 0; i < entries.size(); i++) {
      if (entries[i].connection.valid()) {
        hand_back(tracked_waiters(entries[i]), entries[i], out);
      } else {
        for (const Waiter& w : flight->untracked[i]) {
          resolve(w, MessageResult{Outcome::unavailable, 0}, out);
        }
      }
    }
  }
  for (const Queued& queued : queue) {
    if (queued.entry.connection.valid()) {
      COWORKER_ASSERT(queued.untracked_waiters.empty());
      hand_back(tracked_waiters(queued.entry), queued.entry, out);
    } else {
      hand_back(queued.untracked_waiters, queued.entry, out);
    }
  }
  COWORKER_ASSERT(pending.empty());
  COWORKER_ASSERT(_requests.empty());
}

// ---- client appends (step 1) -----------------------------------------------------

PhaserOutput Phaser::on_append(uint64_t token, std::vector<BucketEntry> messages) {
  PhaserOutput out;
  COWORKER_ASSERT(!messages.empty());
  if (_role == Role::follower) {
    out.reply.push_back(
        Reply{token, std::vector<MessageResult>(messages.size(), {Outcome::unavailable, 0}), {}});
    return out;
  }
  // One request holds one window's messages for this bucket: series strictly
  // increase within it (the HTTP layer refuses anything else with 400).
  for (size_t i = 0; i < messages.size(); i++) {
    const ConnectionId& connection = messages[i].connection;
    COWORKER_ASSERT(!connection.valid() || messages[i].series < connection.wrap);
    if (i > 0 && connection.valid() && messages[i - 1].connection == connection) {
      COWORKER_ASSERT(series_after(messages[i].series, messages[i - 1].series, connection.wrap));
    }
  }
  const uint64_t id = _next_request++;
  Request& request = _requests[id];
  request.token = token;
  request.results.resize(messages.size());
  request.remaining = messages.size();
  for (uint32_t i = 0; i < messages.size(); i++) admit(id, i, std::move(messages[i]), out);
  maybe_start_write(out);
  check_invariants();
  return out;
}

void Phaser::admit(uint64_t request, uint32_t index, BucketEntry entry, PhaserOutput& out) {
  const Waiter waiter{request, index};
  if (!entry.connection.valid()) {
    if (_queue.size() >= _config.queue_messages_max) {
      resolve(waiter, MessageResult{Outcome::overloaded, 0}, out);
      return;
    }
    _queue.push_back(Queued{std::move(entry), {waiter}});
    return;
  }
  const std::pair<ConnectionId, uint64_t> key{entry.connection, entry.series};
  if (auto it = _pending.find(key); it != _pending.end()) {
    // Still queued or in flight: the same answer as the first attempt.
    if (it->second.waiters.size() >= waiters_per_pending_max) {
      resolve(waiter, MessageResult{Outcome::overloaded, 0}, out);
    } else {
      it->second.waiters.push_back(waiter);
    }
    return;
  }
  const DedupTable::Decision decision = _dedup.decide(entry.connection, entry.series);
  switch (decision.verdict) {
    case DedupTable::Verdict::duplicate:
      resolve(waiter, MessageResult{Outcome::duplicate, decision.position}, out);
      return;
    case DedupTable::Verdict::superseded:
      resolve(waiter, MessageResult{Outcome::superseded, 0}, out);
      return;
    case DedupTable::Verdict::expired:
      resolve(waiter, MessageResult{Outcome::expired, 0}, out);
      return;
    case DedupTable::Verdict::fresh:
      break;
  }
  if (_queue.size() >= _config.queue_messages_max) {
    resolve(waiter, MessageResult{Outcome::overloaded, 0}, out);
    return;
  }
  _dedup.accept(entry.connection, entry.series);
  _pending[key] = Pending{{waiter}};
  _queue.push_back(Queued{std::move(entry), {}});
}

// ---- the leader's round (steps 2 and 4) --------------------------------------------

// A new write's times (dedup.h): the leader's clock, never before the
// bucket's newest committed write; the expiry never lower than the last
// applied. A write without entries changes neither.
void Phaser::stamp(Write& write) const {
  COWORKER_ASSERT(write.first == _commit_end);
  if (write.entries.empty()) {
    write.time = _dedup.time();
    write.expire_before = _dedup.expired_before();
    return;
  }
  write.time = std::max(_now, _dedup.time());
  const uint64_t expire_before =
      _config.connection_expiry_ms > 0 && write.time > _config.connection_expiry_ms
          ? write.time - _config.connection_expiry_ms
          : 0;
  write.expire_before = std::max(expire_before, _dedup.expired_before());
}

void Phaser::maybe_start_write(PhaserOutput& out) {
  if (_role != Role::leading || _in_flight || _queue.empty()) return;
  COWORKER_ASSERT(_register == nullptr);
  auto write = std::make_shared<Write>();
  write->bucket = _config.bucket;
  write->promise = _leading_promise;
  write->number = _last_commit.number + 1;
  write->first = _commit_end;
  write->commit = _last_commit;
  InFlight flight;
  size_t bytes = 0;
  // A write always takes its first message; the caps limit what is added.
  while (!_queue.empty()) {
    const BucketEntry& next = _queue.front().entry;
    const size_t size = next.body.size() + next.identifier.size();
    if (!write->entries.empty() && (bytes + size > _config.write_bytes_max ||
                                    write->entries.size() >= _config.write_messages_max)) {
      break;
    }
    bytes += size;
    write->entries.push_back(std::move(_queue.front().entry));
    flight.untracked.push_back(std::move(_queue.front().untracked_waiters));
    _queue.pop_front();
  }
  write->prior = _last_filled.checksum;
  stamp(*write);
  write->checksum = checksum_of(*write);
  WritePtr shared = std::move(write);
  _register = shared;
  _register_durable = false;
  flight.write = shared;
  flight.own_ticket = persist(RegisterRecord{shared}, out);
  _in_flight = std::move(flight);
  _commit_unacked.clear();  // this write carries the commit
  send_to_members(shared, out, nullptr);
}

void Phaser::maybe_commit(PhaserOutput& out) {
  if (!_in_flight || !_in_flight->own_durable) return;
  if (!all_others_in(_in_flight->acked)) return;
  if (_government.heir != no_participant) return;  // step 4: alone, not yet confirmed
  commit_in_flight(out);
  maybe_start_write(out);
}

void Phaser::commit_in_flight(PhaserOutput& out) {
  COWORKER_ASSERT(_in_flight);
  COWORKER_ASSERT(_in_flight->own_durable);
  const WritePtr write = _in_flight->write;
  COWORKER_ASSERT(write->first == _commit_end);
  COWORKER_ASSERT(write->promise == _leading_promise);
  COWORKER_ASSERT(_register == write);
  std::vector<std::vector<Waiter>> untracked = std::move(_in_flight->untracked);
  _in_flight.reset();
  _dedup.commit_write(*write);
  for (size_t i = 0; i < write->entries.size(); i++) {
    const BucketEntry& e = write->entries[i];
    const Position position = write->first + i;
    const MessageResult appended{Outcome::appended, position};
    if (e.connection.valid()) {
      auto it = _pending.find({e.connection, e.series});
      COWORKER_ASSERT(it != _pending.end());
      std::vector<Waiter> waiters = std::move(it->second.waiters);
      _pending.erase(it);
      for (const Waiter& w : waiters) resolve(w, appended, out);
    } else {
      for (const Waiter& w : untracked[i]) resolve(w, appended, out);
    }
  }
  _last_commit = CommitMark{write->end(), write->number, write->checksum};
  _last_commit_first = write->first;
  if (!write->entries.empty()) _last_filled = _last_commit;
  _commit_end = write->end();
  _last_written = write;
  _register = nullptr;
  _register_durable = false;
  _commit_ticket = persist(CommitRecord{_last_commit, write->first}, out);
  if (_role == Role::starting) _role = Role::leading;
  // Until a next write carries it, the commit goes out as a trailing notice.
  _commit_unacked.clear();
  for_each_other([&](ParticipantId id) { _commit_unacked.insert(id); });
  _commit_ticks = 0;
}

void Phaser::on_ack(const Ack& ack, PhaserOutput& out) {
  if (_role == Role::follower || !is_other(ack.from)) return;
  _silent_ticks[ack.from] = 0;
  if (Newcomer* n = newcomer(ack.from); n != nullptr && ack.promise == _leading_promise) {
    // What a newcomer's ack says it holds (9c, 9d). A commit-only ack: every
    // position before its end, committed. A write ack: the positions before
    // the write committed and the write as its register, so it counts only
    // for the write in flight of a growth it joined, whose commit then goes
    // to it (it is one of the others). An ack of a write committed before it
    // joined (a late one, from an earlier growth's joint write: seed 13543
    // of phaser-arrivals) counted as its end made it ready with that write
    // only as its register, and no commit notice ever went to it.
    const bool counts = ack.commit_only || (n->joined && _in_flight &&
                                            ack.number == _in_flight->write->number);
    if (counts) n->end = std::max(n->end.value_or(0), ack.end);
  }
  if (ack.commit_only) {
    if (ack.promise == _leading_promise && ack.end >= _commit_end) _commit_unacked.erase(ack.from);
    return;
  }
  if (!_in_flight) return;
  const Write& write = *_in_flight->write;
  // Only acks given under our promise for the write in flight count.
  if (ack.promise != write.promise || ack.number != write.number) return;
  _in_flight->acked.insert(ack.from);
  maybe_commit(out);
}

void Phaser::on_nack(const Nack& nack, PhaserOutput& out) {
  // A higher promise exists: our leadership is stale (step 6).
  if (_role != Role::follower && nack.promise > _leading_promise) step_down(out);
}

// ---- the replica (step 3) ------------------------------------------------------------

PhaserOutput Phaser::on_message(ParticipantId from, const PhaserMessage& message) {
  PhaserOutput out;
  if (const auto* write = std::get_if<WritePtr>(&message)) {
    COWORKER_ASSERT((*write)->bucket == _config.bucket);
    on_write(from, *write, out);
  } else if (const auto* ack = std::get_if<Ack>(&message)) {
    COWORKER_ASSERT(ack->bucket == _config.bucket);
    on_ack(*ack, out);
  } else if (const auto* nack = std::get_if<Nack>(&message)) {
    COWORKER_ASSERT(nack->bucket == _config.bucket);
    on_nack(*nack, out);
  } else if (const auto* notice = std::get_if<CommitNotice>(&message)) {
    COWORKER_ASSERT(notice->bucket == _config.bucket);
    on_commit_notice(from, *notice, out);
  } else if (const auto* catchup = std::get_if<Catchup>(&message)) {
    COWORKER_ASSERT(catchup->bucket == _config.bucket);
    on_catchup(from, *catchup, out);
  } else if (const auto* snapshot = std::get_if<CatchupSnapshot>(&message)) {
    COWORKER_ASSERT(snapshot->bucket == _config.bucket);
    on_catchup_snapshot(from, *snapshot, out);
  } else {
    const auto& ack = std::get<CatchupAck>(message);
    COWORKER_ASSERT(ack.bucket == _config.bucket);
    on_catchup_ack(ack, out);
  }
  check_invariants();
  return out;
}

// Step 3: our copy and the leader's differ, or we miss what it committed.
// The copy is void from here (step 9g, at run time: a RepairRecord under
// the promise we hold, which is intact): it acks nothing more, and acks
// waiting for the disk are dropped, since what they claim is no longer
// held. The host tells the membership host, which shrinks us out of the
// government (membership_host.h step 6); the leader grows us back.
void Phaser::mark_for_repair(PhaserOutput& out) {
  COWORKER_ASSERT(_role == Role::follower);
  _repair = true;
  out.repair = true;
  if (_repairing) return;
  _repairing = true;
  drop_copy();
  _acks_after_persist.clear();
  _commit_ticket = persist(RepairRecord{_promise}, out);
}

// What a reset (9f) and a repair (9g) drop: the whole copy, the promise kept.
void Phaser::drop_copy() {
  COWORKER_ASSERT(_role == Role::follower);
  _resets++;  // 9h: a new life
  _offered = false;
  _commit_end = 0;
  _last_commit = CommitMark{};
  _last_commit_first = 0;
  _last_filled = CommitMark{};
  _register = nullptr;
  _register_durable = false;
  _dedup = DedupTable{};
}

bool Phaser::matches_committed(const Write& write) const {
  COWORKER_ASSERT(write.end() <= _commit_end);
  if (write.first == _last_commit_first && write.end() == _last_commit.end) {
    return write.checksum == _last_commit.checksum;
  }
  // Wholly before the newest committed write: a late duplicate of an old
  // write (a live government member is never more than one write behind).
  // Nothing to compare it with; it changes nothing.
  return write.end() <= _last_commit_first;
}

void Phaser::on_write(ParticipantId from, const WritePtr& write, PhaserOutput& out) {
  if (_repairing) return;  // step 9g: a void copy acks nothing
  if (write->promise < _promise) {
    out.send.push_back(PhaserSend{from, Nack{_config.bucket, _promise, _config.self}});
    return;
  }
  if (_role != Role::follower && write->promise > _leading_promise) step_down(out);
  if (_role != Role::follower) return;  // our own promise: a duplicate of our write
  // Within one leadership, write numbers grow: one numbered below our
  // register is a late duplicate (the network reorders and duplicates), and
  // taking it as a register would drop a write we may have acked.
  if (_register && _register->promise == write->promise && write->number < _register->number) {
    return;
  }
  const bool raised = write->promise > _promise;
  _promise = write->promise;
  if (!apply_commit_mark(write->commit, write->promise, out)) return;

  const Ack ack{_config.bucket, write->promise, write->number, write->end(), false, _config.self};
  if (write->end() <= _commit_end && !(write->entries.empty() && write->first == _commit_end)) {
    // Positions we committed already (a re-proposal after a leader change).
    if (!matches_committed(*write)) {
      mark_for_repair(out);
      return;
    }
    if (raised) {
      _acks_after_persist[persist(PromiseRecord{_promise}, out)] = AckAfter{ack, false, from, std::nullopt};
    } else {
      out.send.push_back(PhaserSend{from, ack});
    }
    return;
  }
  if (write->first != _commit_end) {
    // A newcomer still acclimating: the leader resends (step 9e).
    if (acclimating(write->promise)) return;
    // A gap (or a write straddling our commit end): only repair fills it.
    mark_for_repair(out);
    return;
  }
  if (_register && _register->promise == write->promise && _register->number == write->number) {
    // A resend of our register: ack once it is durable.
    if (_register_durable) out.send.push_back(PhaserSend{from, ack});
    return;
  }
  // The write stands on the newest write with entries we committed, or
  // our log and the leader's differ below it (checksums chain: a copy that
  // diverged takes nothing more, so it never passes for the log's, 9f).
  if (write->prior != _last_filled.checksum) {
    mark_for_repair(out);
    return;
  }
  // A higher promise (or the next write) replaces the register.
  _register = write;
  _register_durable = false;
  _register_ticket = persist(RegisterRecord{write}, out);
  _acks_after_persist[_register_ticket] = AckAfter{ack, true, from, std::nullopt};
}

bool Phaser::apply_commit_mark(const CommitMark& mark, const Promise& leader,
                               PhaserOutput& out) {
  const bool is_register =
      _register && _register->end() == mark.end && _register->checksum == mark.checksum;
  if (!is_register) {
    if (mark.end <= _commit_end) return true;  // committed here already
    if (acclimating(leader)) return false;  // step 9e: the leader resends
    // The leader committed something we do not hold: repair.
    mark_for_repair(out);
    return false;
  }
  const WritePtr write = _register;
  _dedup.commit_write(*write);
  _last_commit = mark;
  _last_commit_first = write->first;
  if (!write->entries.empty()) _last_filled = mark;
  _commit_end = write->end();
  _register = nullptr;
  _register_durable = false;
  _commit_ticket = persist(CommitRecord{mark, write->first}, out);
  return true;
}

void Phaser::on_commit_notice(ParticipantId from, const CommitNotice& notice, PhaserOutput& out) {
  if (_repairing) return;  // step 9g
  if (notice.promise < _promise) {
    out.send.push_back(PhaserSend{from, Nack{_config.bucket, _promise, _config.self}});
    return;
  }
  if (_role != Role::follower) return;
  // A commit is a fact whatever the promise; applying it raises nothing.
  if (!apply_commit_mark(notice.commit, notice.promise, out)) return;
  const Ack ack{_config.bucket, notice.promise, notice.commit.number, _commit_end, true,
                _config.self};
  // The ack says "committed durably": once it is in, the leader stops
  // resending, so a crash must not be able to take the commit back.
  if (_commit_ticket != 0) {
    _acks_after_persist[_commit_ticket] = AckAfter{ack, false, from, std::nullopt};
  } else {
    out.send.push_back(PhaserSend{from, ack});
  }
}

// ---- the disk --------------------------------------------------------------------------

PhaserOutput Phaser::on_persisted(uint64_t ticket) {
  PhaserOutput out;
  if (_in_flight && ticket == _in_flight->own_ticket) {
    COWORKER_ASSERT(!_in_flight->own_durable);
    _in_flight->own_durable = true;
    if (_register == _in_flight->write) _register_durable = true;
    if (_role == Role::starting) {
      // Step 5: the start's promise is durable: now the write may go out.
      send_to_members(_in_flight->write, out, &_in_flight->acked);
      _in_flight->ticks_since_send = 0;
    }
    maybe_commit(out);
  }
  if (ticket == _register_ticket && _register && _role == Role::follower) _register_durable = true;
  if (ticket == _commit_ticket) _commit_ticket = 0;  // the newest commit is durable
  if (ticket == _promise_ticket) _promise_ticket = 0;
  if (auto it = _acks_after_persist.find(ticket); it != _acks_after_persist.end()) {
    const AckAfter pending = it->second;
    _acks_after_persist.erase(it);
    if (pending.catchup) {
      // Committed positions are facts: no promise or register to re-check.
      if (_role == Role::follower) out.send.push_back(PhaserSend{pending.to, *pending.catchup});
      check_invariants();
      return out;
    }
    // Ack only what we still hold, under the promise we still hold.
    const bool still_promised = _promise == pending.ack.promise;
    const bool still_held = !pending.needs_register ||
                            (_register && _register->promise == pending.ack.promise &&
                             _register->number == pending.ack.number);
    if (still_promised && still_held && _role == Role::follower) {
      out.send.push_back(PhaserSend{pending.to, pending.ack});
    }
  }
  check_invariants();
  return out;
}

// ---- time ------------------------------------------------------------------------------

PhaserOutput Phaser::on_tick(uint64_t now_ms) {
  _now = now_ms;
  PhaserOutput out;
  if (_role == Role::follower) return out;
  MemberSet waiting_on;
  if (_in_flight) {
    for_each_other([&](ParticipantId id) {
      if (!_in_flight->acked.contains(id)) waiting_on.insert(id);
    });
    if (++_in_flight->ticks_since_send >= _config.resend_ticks && in_flight_sendable()) {
      send_to_members(_in_flight->write, out, &_in_flight->acked);
      _in_flight->ticks_since_send = 0;
    }
  } else if (!_commit_unacked.empty()) {
    waiting_on = _commit_unacked;
    // The first notice after notice_ticks idle ticks, then every resend.
    const uint32_t idle = ++_commit_ticks;
    if (idle >= _config.notice_ticks &&
        (idle - _config.notice_ticks) % _config.resend_ticks == 0) {
      for (ParticipantId id : _commit_unacked) {
        out.send.push_back(
            PhaserSend{id, CommitNotice{_config.bucket, _leading_promise, _last_commit}});
      }
    }
  }
  if (_growth) tick_growth(out);
  // Step 7: report a member that owes us an ack for the departure timeout.
  for (ParticipantId id : waiting_on) {
    if (++_silent_ticks[id] >= _config.report_ticks) {
      out.report.push_back(id);
      _silent_ticks[id] = 0;
    }
  }
  check_invariants();
  return out;
}

// ---- growth (step 9) ------------------------------------------------------------------

Phaser::Newcomer* Phaser::newcomer(ParticipantId id) {
  if (!_growth) return nullptr;
  for (Newcomer& n : _growth->newcomers) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

PhaserOutput Phaser::grow(uint64_t step, const std::vector<ParticipantId>& newcomers) {
  PhaserOutput out;
  // Not serving, or the host's table and our government disagree on the
  // step (its news reaches us next): the host asks again.
  if (_role != Role::leading || step != _government.step) return out;
  // Another step: the table moved past ours, so our ack can never be decided.
  if (_growth && _growth->step != step) _growth.reset();
  if (!_growth) _growth = Growth{step, {}};
  for (ParticipantId id : newcomers) {
    if (id == _config.self || is_member(id) || newcomer(id) != nullptr) continue;
    Newcomer n;
    n.id = id;
    _growth->newcomers.push_back(n);
    send_catchup(id, {}, out);  // 9a: the probe
  }
  if (_growth->newcomers.empty()) _growth.reset();
  check_invariants();
  return out;
}

PhaserOutput Phaser::end_growth() {
  PhaserOutput out;
  if (!_growth) return out;
  _growth.reset();
  // A commit may have waited only for the newcomers.
  _commit_unacked.erase_if([&](ParticipantId id) { return !is_other(id); });
  maybe_commit(out);
  check_invariants();
  return out;
}

bool Phaser::growth_ready(uint64_t step) const {
  if (_role != Role::leading || !_growth || _growth->step != step) return false;
  for (const Newcomer& n : _growth->newcomers) {
    if (!n.joined || *n.end < _commit_end) return false;
  }
  return true;
}

void Phaser::send_catchup(ParticipantId to, std::vector<WritePtr> writes, PhaserOutput& out,
                          std::optional<CommitMark> discard) {
  Newcomer* n = newcomer(to);
  COWORKER_ASSERT(n != nullptr);
  n->ticks = 0;
  out.send.push_back(PhaserSend{
      to, Catchup{_config.bucket, _leading_promise, std::move(writes), discard}});
}

// 9b and 9c: fetch what the newcomer lacks, or let it join.
void Phaser::advance(Newcomer& n, PhaserOutput& out) {
  COWORKER_ASSERT(_role == Role::leading);
  COWORKER_ASSERT(!n.joined);
  if (!n.end || n.fetching || n.offer) return;
  COWORKER_ASSERT(_last_written != nullptr);
  COWORKER_ASSERT(_last_written->end() == _commit_end);
  COWORKER_ASSERT(_last_written->first == _last_commit_first);
  if (*n.end < _last_commit_first) {
    fetch_for(n, *n.end, out);
    return;
  }
  n.joined = true;
  if (*n.end < _commit_end) send_catchup(n.id, {_last_written}, out);
  if (_in_flight && in_flight_sendable()) out.send.push_back(PhaserSend{n.id, _in_flight->write});
}

// A joined newcomer behind: one write behind, the Catchup of that write was
// lost; further (9h: a newer life of its copy), a fetch as in 9b.
void Phaser::stream_joined(Newcomer& n, PhaserOutput& out) {
  COWORKER_ASSERT(n.joined);
  if (!n.end || n.fetching || n.offer || *n.end >= _commit_end) return;
  if (*n.end >= _last_commit_first) {
    send_catchup(n.id, {_last_written}, out);
    return;
  }
  fetch_for(n, *n.end, out);
}

// 9b: the one read out for a newcomer (flow control), from `from`.
void Phaser::fetch_for(Newcomer& n, Position from, PhaserOutput& out) {
  COWORKER_ASSERT(!n.fetching);
  n.fetching = from;
  out.fetch.push_back(Fetch{n.id, from, _config.chunk_bytes});
}

// 9f: a Catchup whose first write holds the offer's last position, for the
// newcomer to compare; or, above our commit end, the discard.
void Phaser::verify_offer(Newcomer& n, PhaserOutput& out) {
  COWORKER_ASSERT(_role == Role::leading);
  COWORKER_ASSERT(n.offer.has_value() && n.offer->end > 0);
  if (n.fetching) return;
  if (n.offer->end > _commit_end) {
    send_catchup(n.id, {}, out, n.offer);
    return;
  }
  fetch_for(n, n.offer->end - 1, out);
}

// 9b: an answer to a fetch from an end the newcomer has acked past since
// (its ack crossed the read) would stream what it holds: read again from
// its end instead. (A fetch for an offer, 9f, moves no end.) 9h: one for a
// newcomer restarted from a probe since (a newer life) is dropped.
bool Phaser::fetch_stale(Newcomer& n, PhaserOutput& out) {
  COWORKER_ASSERT(n.fetching.has_value());
  const bool stale = !n.offer && (!n.end || *n.end > *n.fetching);
  n.fetching.reset();
  if (stale && !n.joined) advance(n, out);
  return stale;
}

PhaserOutput Phaser::on_fetched(ParticipantId to, std::vector<WritePtr> writes) {
  PhaserOutput out;
  Newcomer* n = newcomer(to);
  if (n == nullptr || _role != Role::leading || !n->fetching) return out;
  // Nothing read (not durable here yet, or the read failed): the tick retries.
  if (!fetch_stale(*n, out) && !writes.empty()) send_catchup(to, std::move(writes), out);
  check_invariants();
  return out;
}

PhaserOutput Phaser::on_fetch_retained(ParticipantId to) {
  PhaserOutput out;
  Newcomer* n = newcomer(to);
  if (n == nullptr || _role != Role::leading || !n->fetching) return out;
  if (fetch_stale(*n, out)) {
    check_invariants();
    return out;
  }
  n->ticks = 0;
  DedupTable committed = _dedup;
  committed.forget_accepted();  // the leader's pending marks are not committed
  out.send.push_back(PhaserSend{
      to, CatchupSnapshot{_config.bucket,
                          CommittedState{_leading_promise, _commit_end, _last_commit,
                                         _last_commit_first, _last_filled,
                                         std::make_shared<const DedupTable>(std::move(committed))}}});
  check_invariants();
  return out;
}

void Phaser::on_catchup_ack(const CatchupAck& ack, PhaserOutput& out) {
  Newcomer* n = newcomer(ack.from);
  if (n == nullptr || _role != Role::leading || ack.promise != _leading_promise) return;
  // 9h: an older life's ack is an old packet. A newer life's starts a
  // newcomer not yet joined over from a probe; a joined one (its acks
  // still count in every commit) believes that life's word and is
  // streamed what it lacks.
  if (n->life && ack.life < *n->life) return;
  const bool newer = n->life && ack.life > *n->life;
  n->life = ack.life;
  if (newer && !n->joined) {
    n->offer.reset();  // (a fetch still out is dropped when it answers)
    n->end.reset();
    send_catchup(n->id, {}, out);
    return;
  }
  if (newer && !ack.offer) {  // joined: its holdings now (an offer is verified as ever)
    n->offer.reset();
    n->end = ack.end;
    stream_joined(*n, out);
    return;
  }
  if (ack.offer) {
    // 9f: believe nothing of it until compared (a confused peer's offer,
    // not ending where it claims, is dropped).
    if (ack.offer->end != ack.end || ack.end == 0) return;
    // A copy restarted offers at least what it told it held (its acks came
    // after its records were durable; a repaired copy offers nothing): a
    // lower offer is an old packet, and verifying it would stream again
    // what the newcomer holds.
    if (n->end && ack.end < *n->end) return;
    n->offer = ack.offer;
    verify_offer(*n, out);
    return;
  }
  n->offer.reset();
  n->end = std::max(n->end.value_or(0), ack.end);
  if (!n->joined) advance(*n, out);
}

void Phaser::tick_growth(PhaserOutput& out) {
  if (_role != Role::leading) return;
  for (Newcomer& n : _growth->newcomers) {
    if (++n.ticks < _config.resend_ticks) continue;
    n.ticks = 0;
    if (n.offer) {
      verify_offer(n, out);  // the Catchup or its answer was lost
    } else if (!n.end) {
      send_catchup(n.id, {}, out);  // the probe again
    } else if (n.joined) {
      stream_joined(n, out);
    } else if (!n.fetching) {
      advance(n, out);  // the chunk or its ack was lost: read it again
    }
  }
}

// ---- the newcomer (9b, 9f) ------------------------------------------------------------

uint64_t Phaser::raise_promise(const Promise& promise, PhaserOutput& out) {
  if (promise <= _promise) return 0;
  _promise = promise;
  _promise_ticket = persist(PromiseRecord{_promise}, out);
  return _promise_ticket;
}

// 9g: a leader acclimates the void copy. It holds nothing; from now on it
// is an empty copy growing from 0, under that leader's promise (staged
// before any ack: the ack waits for this record).
void Phaser::end_repair(const Promise& leader, PhaserOutput& out) {
  COWORKER_ASSERT(_repairing && _role == Role::follower);
  COWORKER_ASSERT(_commit_end == 0 && _register == nullptr && !_offered);
  _repairing = false;
  _resets++;  // 9h: a new life
  _promise = std::max(_promise, leader);
  _commit_ticket = persist(ResetRecord{_promise}, out);
}

// 9f: the copy is dropped; the bucket is grown again from position 0.
uint64_t Phaser::reset_copy(PhaserOutput& out) {
  COWORKER_ASSERT(_offered);
  drop_copy();
  _commit_ticket = persist(ResetRecord{_promise}, out);
  return _commit_ticket;
}

// 9f: a leader's committed write against the offered copy. False: the
// write says nothing of the copy (it starts at or after our end), so take
// nothing until a Catchup that overlaps comes.
bool Phaser::compare_offer(const Write& write, PhaserOutput& out) {
  COWORKER_ASSERT(_offered && _commit_end > 0);
  if (write.entries.empty() || write.end() < _commit_end) return true;  // nothing to compare
  if (write.first >= _commit_end) return false;
  if (write.end() == _commit_end && write.checksum == _last_filled.checksum &&
      write.number == _last_filled.number) {
    _offered = false;  // the same newest write: the copy is the log's
    return true;
  }
  reset_copy(out);  // another write there, or one across our end
  return true;
}

CatchupAck Phaser::catchup_ack(const Promise& promise) const {
  CatchupAck ack{_config.bucket, promise, _commit_end, _config.self, std::nullopt,
                 CopyLife{_config.boot, _resets}};
  if (_offered) ack.offer = _last_filled;
  return ack;
}

// The ack goes once every record staged for it is durable: `wait`, the
// newest of them, or else the newest commit record or raise of the promise
// still pending (a duplicate Catchup stages nothing, and its ack must not
// overtake the first one's records).
void Phaser::ack_catchup(ParticipantId to, const CatchupAck& ack, uint64_t wait,
                         PhaserOutput& out) {
  if (wait == 0) wait = std::max(_commit_ticket, _promise_ticket);
  if (wait != 0) {
    _acks_after_persist[wait] = AckAfter{Ack{}, false, to, ack};
  } else {
    out.send.push_back(PhaserSend{to, ack});
  }
}

// The newcomer (9b): whole committed writes at our commit end become ours;
// an offered copy is compared first (9f).
void Phaser::on_catchup(ParticipantId from, const Catchup& catchup, PhaserOutput& out) {
  if (catchup.promise < _promise) {
    out.send.push_back(PhaserSend{from, Nack{_config.bucket, _promise, _config.self}});
    return;
  }
  if (_role != Role::follower) return;
  // 9g: a void copy ends its repair at a probe only. A chunk is meant for
  // a copy its leader believes holds something, which may be an ack of the
  // copy's life before the damage: it stays void (acks nothing), and a
  // growth decided on that belief names a void member, which is shrunk out.
  // And only while our view of the government is fed and does not name
  // us: a probe of an old growth, delayed past the growth's ack, would
  // otherwise make an empty member of a void one.
  if (_repairing && (!catchup.writes.empty() || catchup.discard || _government.slot == 0 ||
                     is_member(_config.self))) {
    return;
  }
  _acclimated_by = catchup.promise;
  const uint64_t first_ticket = _next_ticket;
  if (_repairing) end_repair(catchup.promise, out);
  // Before any ack under it (9f): a deposed leader can no longer discard.
  raise_promise(catchup.promise, out);
  if (catchup.discard && _offered && *catchup.discard == _last_filled) reset_copy(out);
  for (const WritePtr& write : catchup.writes) {
    if (write->bucket != _config.bucket) break;  // a confused peer: take nothing more
    if (_offered && !compare_offer(*write, out)) break;
    if (write->end() <= _commit_end) continue;   // held already
    if (write->first != _commit_end) break;      // a gap: the leader resends
    COWORKER_ASSERT(!_offered);
    if (write->prior != _last_filled.checksum) {  // our log differs below it (step 3)
      mark_for_repair(out);
      break;
    }
    COWORKER_ASSERT(write->promise <= catchup.promise);
    persist(RegisterRecord{write}, out);
    _dedup.commit_write(*write);
    _last_commit = CommitMark{write->end(), write->number, write->checksum};
    _last_commit_first = write->first;
    if (!write->entries.empty()) _last_filled = _last_commit;
    _commit_end = write->end();
    _register = nullptr;
    _register_durable = false;
    _commit_ticket = persist(CommitRecord{_last_commit, write->first}, out);
  }
  ack_catchup(from, catchup_ack(catchup.promise), _next_ticket > first_ticket ? _next_ticket - 1 : 0,
              out);
}

// The newcomer (9b, the leader's log retired what we lack): its committed
// state becomes ours, as a checkpoint; nothing below it is held here.
void Phaser::on_catchup_snapshot(ParticipantId from, const CatchupSnapshot& snapshot,
                                 PhaserOutput& out) {
  const CommittedState& state = snapshot.state;
  if (state.promise < _promise) {
    out.send.push_back(PhaserSend{from, Nack{_config.bucket, _promise, _config.self}});
    return;
  }
  if (_role != Role::follower) return;
  if (_repairing) return;  // 9g: at a probe only (on_catchup)
  _acclimated_by = state.promise;
  COWORKER_ASSERT(state.dedup != nullptr);
  COWORKER_ASSERT(state.last_commit.end == state.commit_end);
  const uint64_t first_ticket = _next_ticket;
  // The committed state is the leader's, under its promise: taking it is
  // taking the writes it folds, so a deposed leader's write below this end,
  // under a lower promise, is refused rather than compared with state we
  // hold no writes of (it would look like a conflict and mark us for
  // repair). And 9f: a deposed leader can no longer discard.
  raise_promise(state.promise, out);
  if (_offered && state.commit_end == _commit_end) {
    // 9f: at our end, the same newest write verifies the copy; another
    // says it is wrong (never believed, so dropping it loses nothing).
    if (state.last_filled == _last_filled) {
      _offered = false;
    } else {
      reset_copy(out);
    }
  } else if (_offered && state.commit_end > _commit_end) {
    // Above our end the leader's state replaces the copy in one record
    // (a snapshot drops the register and everything below it). No reset
    // first: a crash could keep the reset alone, and empty a copy the
    // leader believed (a verified copy restarted is offered again).
    _offered = false;
  }
  if (!_offered && state.commit_end > _commit_end) {
    _commit_end = state.commit_end;
    _last_commit = state.last_commit;
    _last_commit_first = state.last_commit_first;
    _last_filled = state.last_filled;
    _dedup = *state.dedup;
    _register = nullptr;  // below the snapshot's end: committed or void
    _register_durable = false;
    constexpr bool no_register = false;  // a snapshot drops it
    _commit_ticket = persist(CheckpointRecord{CommittedState{_promise, _commit_end, _last_commit,
                                                             _last_commit_first, _last_filled,
                                                             state.dedup},
                                              no_register},
                             out);
  }
  ack_catchup(from, catchup_ack(state.promise), _next_ticket > first_ticket ? _next_ticket - 1 : 0,
              out);
}

PhaserDurable Phaser::image() const {
  PhaserDurable durable;
  durable.promise = _promise;
  durable.commit_end = _commit_end;
  durable.last_commit = _last_commit;
  durable.last_commit_first = _last_commit_first;
  durable.last_filled = _last_filled;
  durable.register_ = _register;
  durable.dedup = _dedup;
  durable.repairing = _repairing;
  // A leader's accepted-but-uncommitted marks are not durable state: a
  // replay would not have them (its register's entries are accepted again
  // at the next leadership start).
  durable.dedup.forget_accepted();
  return durable;
}

std::vector<PhaserRecord> Phaser::checkpoint() const { return checkpoint_records(image()); }

std::vector<PhaserRecord> checkpoint_records(PhaserDurable durable) {
  std::vector<PhaserRecord> records;
  if (durable.repairing) {
    records.push_back(RepairRecord{durable.promise});  // step 9g: still void
    return records;
  }
  records.push_back(CheckpointRecord{
      CommittedState{durable.promise, durable.commit_end, durable.last_commit,
                     durable.last_commit_first, durable.last_filled,
                     std::make_shared<const DedupTable>(std::move(durable.dedup))},
      durable.register_ != nullptr});
  if (durable.register_ != nullptr) records.push_back(RegisterRecord{durable.register_});
  return records;
}

// ---- invariants ------------------------------------------------------------------------

void Phaser::check_invariants() const {
  if (_register) COWORKER_ASSERT(_register->first == _commit_end);
  COWORKER_ASSERT(_last_commit.end == _commit_end);
  COWORKER_ASSERT(_last_filled.end == _commit_end);
  if (_offered) COWORKER_ASSERT(_commit_end > 0);
  if (_repairing) {
    COWORKER_ASSERT(_role == Role::follower && !_offered);
    COWORKER_ASSERT(_commit_end == 0 && _register == nullptr);
  }
  if (_role == Role::follower) {
    COWORKER_ASSERT(!_in_flight);
    COWORKER_ASSERT(_queue.empty());
    COWORKER_ASSERT(_pending.empty());
    COWORKER_ASSERT(_requests.empty());
  } else {
    COWORKER_ASSERT(_promise == _leading_promise);
    COWORKER_ASSERT(_government.leader() == _config.self);
  }
  if (_in_flight) {
    COWORKER_ASSERT(_in_flight->write->first == _commit_end);
    COWORKER_ASSERT(_register == _in_flight->write);
    COWORKER_ASSERT(_in_flight->write->promise == _leading_promise);
    COWORKER_ASSERT(_in_flight->untracked.size() == _in_flight->write->entries.size());
  }
  if (_role == Role::starting) COWORKER_ASSERT(_in_flight);
  if (_role == Role::leading) {
    COWORKER_ASSERT(_last_written != nullptr && _last_written->end() == _commit_end);
  }
  if (_growth) {
    COWORKER_ASSERT(_role == Role::leading);
    COWORKER_ASSERT(_growth->step == _government.step);
    for (const Newcomer& n : _growth->newcomers) {
      COWORKER_ASSERT(n.id != _config.self && !is_member(n.id));
      if (n.joined) COWORKER_ASSERT(n.end.has_value());
    }
  }
  COWORKER_ASSERT(_queue.size() <= _config.queue_messages_max);
}

}  // namespace coworker::consensus
