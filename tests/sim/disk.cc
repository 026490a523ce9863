#include "tests/sim/disk.h"

#include <algorithm>
#include <span>
#include <utility>

#include <fmt/core.h>

#include "consensus/overloaded.h"
#include "consensus/assert.h"
#include "bucket/repair.h"
#include "consensus/membership_codec.h"

namespace coworker::sim {

namespace {

// The log-store record a server writes for `record` (none for the Paxos
// families' records: only the simulator hosts Paxos alone).
std::optional<bucket::EngineRecord> engine_record(const DiskRecord& record) {
  return std::visit(
      consensus::Overloaded{
          [](const consensus::PersistRecord&) -> std::optional<bucket::EngineRecord> {
            return std::nullopt;
          },
          [](const consensus::MembershipRecord& r) -> std::optional<bucket::EngineRecord> {
            return bucket::encode_membership_record(r);
          },
          [](const BucketRecord& r) -> std::optional<bucket::EngineRecord> {
            bucket::EngineRecord encoded = bucket::encode_phaser_record(r.bucket, r.record);
            encoded.phaser.reset();  // the index's copy: the fold reads the payload only
            return encoded;
          },
          [](const CounterRecord& r) -> std::optional<bucket::EngineRecord> {
            return bucket::encode_counter_record(r.counter);
          },
          [](const MembershipCheckpoint& r) -> std::optional<bucket::EngineRecord> {
            return bucket::encode_membership_checkpoint(r.durable);
          },
          [](const BucketReset& r) -> std::optional<bucket::EngineRecord> {
            return bucket::encode_bucket_reset(r.bucket);
          },
          [](const RoundMarker&) -> std::optional<bucket::EngineRecord> {
            return bucket::encode_round_marker();
          },
      },
      record);
}

std::string describe_write(const consensus::WritePtr& write) {
  if (write == nullptr) return "none";
  return fmt::format("[{},{}) #{} {} {:08x}", write->first, write->end(), write->number,
                     write->promise.to_string(), write->checksum);
}

// The first field in which two folds of one bucket's records differ.
// (`server`: the server's fold.)
std::optional<std::string> phaser_difference(const consensus::PhaserDurable& mine,
                                             const consensus::PhaserDurable& server) {
  if (mine.promise != server.promise) {
    return fmt::format("promise {}, the server's fold {}", mine.promise.to_string(),
                       server.promise.to_string());
  }
  if (mine.commit_end != server.commit_end || !(mine.last_commit == server.last_commit) ||
      mine.last_commit_first != server.last_commit_first ||
      !(mine.last_filled == server.last_filled)) {
    return fmt::format("committed to {} (last [{},{})), the server's fold to {} (last [{},{}))",
                       mine.commit_end, mine.last_commit_first, mine.last_commit.end,
                       server.commit_end, server.last_commit_first, server.last_commit.end);
  }
  if (describe_write(mine.register_) != describe_write(server.register_)) {
    return fmt::format("register {}, the server's fold {}", describe_write(mine.register_),
                       describe_write(server.register_));
  }
  if (!(mine.dedup == server.dedup)) return std::string("dedup tables differ");
  if (mine.repairing != server.repairing) {
    return fmt::format("{}, the server's fold {}", mine.repairing ? "void" : "not void",
                       server.repairing ? "void" : "not void");
  }
  return std::nullopt;
}

// The first difference between two folds of the same records (each has
// the membership state, the promise counter and the phasers' images).
template <class Mine, class Server>
std::optional<std::string> difference(const Mine& mine, const Server& server) {
  if (consensus::encode_membership_checkpoint(mine.membership) !=
      consensus::encode_membership_checkpoint(server.membership)) {
    return std::string("another membership state");
  }
  if (mine.counter != server.counter) {
    return fmt::format("promise counter {}, the server's fold {}", mine.counter, server.counter);
  }
  if (mine.phasers.size() != server.phasers.size()) {
    return fmt::format("{} buckets, the server's fold {}", mine.phasers.size(),
                       server.phasers.size());
  }
  for (const auto& [bucket, image] : mine.phasers) {
    const auto found = server.phasers.find(bucket);
    if (found == server.phasers.end()) {
      return fmt::format("bucket {}, missing from the server's fold", bucket);
    }
    if (auto why = phaser_difference(image, found->second)) {
      return fmt::format("bucket {}: {}", bucket, *why);
    }
  }
  return std::nullopt;
}

// What of a bucket's image a repair must keep as it was: all of it but an
// empty register. An empty write holds no position (its promise is in
// `promise` already), and one a replica persisted stays in the fold after
// its commit, which changes no position, until a round's checkpoint keeps
// it: damage to its record before that checkpoint loses nothing.
consensus::PhaserDurable material(consensus::PhaserDurable image) {
  if (image.register_ != nullptr && image.register_->entries.empty()) image.register_ = nullptr;
  return image;
}

bucket::EngineImage material(bucket::EngineImage image) {
  for (auto& [bucket, phaser] : image.phasers) phaser = material(std::move(phaser));
  return image;
}

// The same of the disk's own fold, for difference().
struct Material {
  consensus::MembershipDurable membership;
  uint32_t counter = 0;
  std::map<uint32_t, consensus::PhaserDurable> phasers;
};

Material material(const DurableImage& image) {
  Material out{image.membership, image.counter, {}};
  for (const auto& [bucket, phaser] : image.phasers) out.phasers.emplace(bucket, material(phaser));
  return out;
}

// The server's repair plan (bucket/repair.h) for a simulated participant's
// recovered image, as main computes it: one core, no index, others always
// there to arrive anew through, and data dir id 1 (the static images name
// theirs; the checks compare buckets, not identities).
std::optional<bucket::Repair> plan_for(bucket::EngineImage& image,
                                       const bucket::Recovery& recovery) {
  constexpr unsigned cores = 1;
  constexpr bool can_join = true;
  constexpr uint64_t data_dir_id = 1;
  const std::span<const std::unique_ptr<bucket::BucketIndex>> no_indexes;
  Result<std::optional<bucket::Repair>, std::string> plan =
      bucket::plan_repair(image, recovery, cores, no_indexes, data_dir_id, can_join);
  COWORKER_ASSERT(plan.ok());
  return std::move(*plan);
}

}  // namespace

Disk::Disk(DiskOptions options, uint64_t seed)
    : _options(options), _faults(seed), _damage(consensus::derive_seed(seed, 1)) {
  if (_options.files) _files = std::make_unique<LogFiles>(consensus::derive_seed(seed, 2));
}

Disk::Ticket Disk::write(Tick now, consensus::Prng& prng, std::vector<DiskRecord> records) {
  COWORKER_ASSERT(!records.empty());
  COWORKER_ASSERT(!_sync_failed);
  const Ticket ticket = ++_issued;
  if (!_batches.empty() && _batches.back().written == now) {
    // Same tick, same batch: one write + fsync carries them all.
    Batch& batch = _batches.back();
    for (auto& record : records) batch.records.push_back(std::move(record));
    batch.last = ticket;
    batch.writes.emplace_back(batch.records.size(), ticket);
    return ticket;
  }
  Tick due = now + prng.between(_options.latency_min, _options.latency_max);
  if (!_batches.empty()) due = std::max(due, _batches.back().due);  // batches complete in order
  const size_t count = records.size();
  _batches.push_back(Batch{now, due, ticket, std::move(records), {{count, ticket}}});
  return ticket;
}

void Disk::install(DurableImage image) {
  COWORKER_ASSERT(_issued == 0);
  _image = std::move(image);
  _unfolded.push_back(Unfolded{{MembershipCheckpoint{_image.membership}}});
}

void Disk::tick(Tick now) {
  COWORKER_ASSERT(!_sync_failed);
  while (!_hung && !_batches.empty() && _batches.front().due <= now) {
    Batch& batch = _batches.front();
    COWORKER_ASSERT(batch.last > _durable);
    _durable = batch.last;
    complete(batch);
    _batches.pop_front();
  }
}

void Disk::complete(Batch& batch, LogFiles::Synced synced) {
  for (const DiskRecord& record : batch.records) {
    apply(record);
  }
  // The Paxos families' records have no log-store form.
  if (!std::holds_alternative<consensus::PersistRecord>(batch.records.front())) {
    _unfolded.push_back(Unfolded{std::move(batch.records), synced});
  }
}

const bucket::EngineImage& Disk::recovered() {
  for (const Unfolded& unfolded : std::exchange(_unfolded, {})) {
    std::vector<bucket::EngineRecord> batch;
    for (const DiskRecord& record : unfolded.records) {
      std::optional<bucket::EngineRecord> encoded = engine_record(record);
      COWORKER_ASSERT(encoded.has_value());  // membership mode: every record has its form
      apply_engine(*encoded);
      batch.push_back(std::move(*encoded));
    }
    if (_files) _files->append(batch, unfolded.synced);
  }
  return _engine;
}

void Disk::apply(const DiskRecord& record) {
  if (const auto* paxos = std::get_if<consensus::PersistRecord>(&record)) {
    _image.paxos.apply(*paxos);
  } else if (const auto* membership = std::get_if<consensus::MembershipRecord>(&record)) {
    _image.membership.apply(*membership);
  } else if (const auto* phaser = std::get_if<BucketRecord>(&record)) {
    ReplicaReference& reference = _image.references[phaser->bucket];
    std::optional<std::string> why = reference.fold(phaser->record);
    if (why && reference.void_copy()) {
      // The checkers' own finding (rule 6), before the code's fold asserts
      // on the same record.
      report(fmt::format("bucket {}: {}", phaser->bucket, *why));
      return;
    }
    consensus::PhaserDurable& durable = _image.phasers[phaser->bucket];
    durable.keep_log = true;  // compared entry by entry with the reference's
    durable.apply(phaser->record);
    if (!why) {
      why = reference.agree(durable);
      if (why) *why = "PhaserDurable::apply recovers " + *why;
    }
    if (why && !_image.fold_violation) {
      _image.fold_violation = fmt::format("bucket {}: {}", phaser->bucket, *why);
    }
    // A copy dropped (phaser.h step 9f) or made void (9g): the checkers
    // compare it afresh.
    if (std::holds_alternative<consensus::ResetRecord>(phaser->record) ||
        std::holds_alternative<consensus::RepairRecord>(phaser->record)) {
      _image.resets[phaser->bucket]++;
    }
  } else if (const auto* checkpoint = std::get_if<MembershipCheckpoint>(&record)) {
    _image.membership = checkpoint->durable;
  } else if (std::holds_alternative<RoundMarker>(record)) {
    // Nothing of its own: the round's records restate the state.
  } else if (const auto* reset = std::get_if<BucketReset>(&record)) {
    // The promise counter's reset changes nothing here: a new id promises
    // in its own slot (repair_at_boot).
    if (reset->bucket == bucket::participant_bucket) return;
    COWORKER_ASSERT(reset->bucket < bucket::participant_bucket);
    forget_bucket(reset->bucket);
  } else {
    const auto& counter = std::get<CounterRecord>(record);
    // Higher at each bump; the same in a checkpoint round.
    COWORKER_ASSERT(counter.counter >= _image.counter);
    _image.counter = counter.counter;
  }
}

void Disk::apply_engine(const bucket::EngineRecord& record) {
  bucket::RecordHeader header = bucket::header_of(record.meta);
  header.payload_bytes = static_cast<uint32_t>(record.payload.size());
  header.seq = ++_engine_seq;
  header.batch_first_seq = header.seq;
  _engine.apply(header, record.payload);
  // Nothing in the simulated disk is damaged: a record the server's fold
  // refuses is a bug in the mapping or in the fold.
  if (_engine.membership_damaged || _engine.counter_damaged || !_engine.damaged_buckets.empty()) {
    report(fmt::format("the server's fold refused a {} record of bucket {:#x} as damaged",
                       bucket::record_kind_name(header.kind), header.bucket));
  }
}

void Disk::report(std::string violation) {
  if (!_image.fold_violation) _image.fold_violation = std::move(violation);
}

Disk::SyncEnd Disk::end_hang() {
  COWORKER_ASSERT(_hung);
  COWORKER_ASSERT(!_sync_failed);
  _hung = false;
  // One time in four, and only when a batch was being synced.
  if (_batches.empty() || !_faults.chance_per_mille(250)) return SyncEnd::ok;
  _sync_failed = true;
  _syncs_failed++;
  return SyncEnd::failed;
}

void Disk::crash() {
  recovered();  // every batch completed so far, through the server's fold
  _kept_through = 0;
  _last_crash = fmt::format("{} batches lost", _batches.size());
  // After a failed fdatasync (end_hang) the disk is not hung: the batch it
  // was syncing meets the fates of any crash below.
  const char* failed = std::exchange(_sync_failed, false) ? "the stuck fdatasync failed; " : "";
  if (!_batches.empty() && !_hung && _faults.chance_per_mille(333)) {
    // The batch a server would have been writing reached the disk whole:
    // its fdatasync never returned, so nothing that waited for it was sent,
    // but the restart recovers it. (A hung disk was writing nothing.)
    _kept_at_crash++;
    _kept_through = _batches.front().last;
    _last_crash = fmt::format("the batch being written kept whole ({} records), {} lost",
                              _batches.front().records.size(), _batches.size() - 1);
    complete(_batches.front(), LogFiles::Synced::no);
    recovered();
  } else if (_files && !_batches.empty() && !_hung && _faults.chance_per_mille(500)) {
    // Otherwise, with log files, half the time a part of it got there
    // (log_files.h step 2): recovery keeps its records up to the first one
    // damaged, so the folds take those too, and cuts the rest.
    tear(_batches.front());
  }
  // What the restart recovers: the server's fold must agree with the
  // protocols' own, and with what recovery reads back from the files.
  // (After damage at rest, what the damage took and no position needed —
  // an empty register — may differ until the bucket's next record: the
  // repair's rule, repair_at_boot.)
  const bool damaged = _files && _files->damaged();
  if (auto why = damaged ? difference(material(_image), material(_engine))
                         : difference(_image, _engine)) {
    report("recovers " + *why);
  }
  if (_files) {
    LogFiles::Recovered recovered = _files->recover();
    if (auto why = difference(_engine, recovered.image)) {
      report("recovers from its log files " + *why + " (recovery.cc read them back)");
    }
    _torn_at_crash += recovered.torn;
    start_from(std::move(recovered));
    // The probe compares with an intact log's fold.
    if (!_files->damaged()) probe_damage();
  }
  _last_crash = failed + _last_crash;
  _batches.clear();
  // Tickets of lost writes are never reused: the next boot's writes get new
  // ones, so nothing waits on a lost write.
  _durable = _issued;
  _hung = false;
}

std::optional<std::string> Disk::damage_at_rest(LogFiles::DamageTarget target,
                                                const Aimed& aim) {
  COWORKER_ASSERT(_files != nullptr);
  COWORKER_ASSERT(_batches.empty());  // down: the crash settled every batch
  COWORKER_ASSERT(_unfolded.empty());
  std::optional<std::string> fault = _files->damage(_damage, target, aim);
  if (!fault) return std::nullopt;
  start_from(_files->recover());
  return fault;
}

// What a boot starts from: recovery's fold of the files, and its report
// when it found damage (for repair_at_boot).
void Disk::start_from(LogFiles::Recovered recovered) {
  if (recovered.wrong) report(*recovered.wrong);
  _engine = std::move(recovered.image);
  if (recovered.report.corrupt()) _report = std::move(recovered.report);
}

std::optional<Disk::Planted> Disk::plant_write(std::optional<PlantAim> aim) {
  COWORKER_ASSERT(_batches.empty());  // down: the crash settled every batch
  COWORKER_ASSERT(_unfolded.empty());
  if (_image.phasers.empty()) return std::nullopt;
  auto chosen = _image.phasers.begin();
  if (aim) {
    chosen = _image.phasers.find(aim->bucket);
    COWORKER_ASSERT(chosen != _image.phasers.end());
    COWORKER_ASSERT(aim->end > chosen->second.commit_end);
  } else {
    std::advance(chosen, static_cast<std::ptrdiff_t>(_damage.below(_image.phasers.size())));
  }
  const uint32_t bucket = chosen->first;
  const consensus::PhaserDurable& copy = chosen->second;
  if (copy.repairing) return std::nullopt;  // a void copy holds nothing to plant on
  auto write = std::make_shared<consensus::Write>();
  write->bucket = bucket;
  write->promise = copy.promise;
  write->number = copy.last_commit.number + 1;
  write->first = copy.commit_end;
  write->time = copy.dedup.time();
  write->expire_before = copy.dedup.expired_before();
  // On the copy's own newest write: only the write itself differs from the
  // log's, as a write that diverged without failing a checksum would.
  write->prior = copy.last_filled.checksum;
  const consensus::Position end = aim ? aim->end : write->first + 1;
  for (consensus::Position at = write->first; at < end; at++) {
    write->entries.push_back(consensus::BucketEntry{"planted", consensus::ConnectionId{}, 0, 0,
                                                    fmt::format("planted {}/{}", bucket, at)});
  }
  write->checksum = consensus::checksum_of(*write);
  write->commit = copy.last_commit;
  const consensus::CommitMark mark{write->end(), write->number, write->checksum};
  std::vector<DiskRecord> records;
  records.push_back(BucketRecord{bucket, consensus::RegisterRecord{write}});
  records.push_back(BucketRecord{bucket, consensus::CommitRecord{mark, write->first}});
  const Ticket ticket = ++_issued;
  _durable = ticket;
  Batch batch{0, 0, ticket, std::move(records), {}};
  complete(batch);  // this disk's own fold; the server's takes it below
  recovered();
  return Planted{bucket, write->first, write->end()};
}

std::optional<consensus::ParticipantId> Disk::repair_at_boot() {
  if (!_report) return std::nullopt;
  COWORKER_ASSERT(_batches.empty());
  COWORKER_ASSERT(_unfolded.empty());
  bucket::Recovery recovery;
  recovery.cores.push_back(*std::exchange(_report, std::nullopt));
  std::optional<bucket::Repair> plan = plan_for(_engine, recovery);
  if (!plan) return std::nullopt;  // repaired at an earlier boot: the resets follow the damage
  const consensus::ParticipantId gave_up =
      plan->keeps_id ? consensus::no_participant : _image.membership.identity.id;
  std::vector<DiskRecord> records;
  // repair.h step 2, as the server writes it (encode_identity_checkpoint).
  if (!plan->keeps_id) {
    records.push_back(MembershipCheckpoint{consensus::MembershipDurable{plan->identity, {}}});
  }
  bool counter = false;
  for (uint32_t bucket : plan->resets[0]) {
    // Step 3, as the server writes it (bucket::repair_record).
    if (bucket == bucket::participant_bucket) {
      records.push_back(BucketReset{bucket});
      counter = true;
    } else {
      const consensus::Promise promise = _engine.phasers.at(bucket).promise;
      records.push_back(BucketRecord{bucket, consensus::RepairRecord{promise}});
    }
  }
  // Durable before anything starts, as the server waits for them.
  const Ticket ticket = ++_issued;
  _durable = ticket;
  Batch batch{0, 0, ticket, std::move(records), {}};
  complete(batch);  // into this disk's own fold; the server's takes them below
  // The counter the plan keeps is what the server continues from; records
  // of the old id's counter the damage took no longer matter.
  if (counter) _image.counter = _engine.counter;
  _damage_repairs_at_boot++;
  _last_repair = plan->damage;
  _last_repair_kept_id = plan->keeps_id;
  if (auto why = check_repaired(recovery.cores[0].unattributed)) {
    report(fmt::format("repaired at boot ({}), it starts from what was not written (this "
                       "disk's fold, repaired, against the image): {}",
                       plan->damage, *why));
    return gave_up;
  }
  // The records say what the plan did: the server's fold of them (and of
  // the log before them, at a later restart) is the image it started from.
  recovered();
  if (auto why = difference(material(_image), material(_engine))) {
    report(fmt::format("repaired at boot ({}), its records fold to {}", plan->damage, *why));
  }
  return gave_up;
}

// Every bucket the boot image keeps must be what was written. A bucket the
// damage left without a record is kept by no one (recovery cannot name it,
// and the id that held it is given up): this disk's fold drops it too —
// only when the damage was unattributed, since attributed damage names its
// bucket and the plan resets it.
std::optional<std::string> Disk::check_repaired(bool unattributed) {
  std::vector<uint32_t> unnamed;
  for (const auto& [bucket, image] : _image.phasers) {
    const auto kept = _engine.phasers.find(bucket);
    if (kept == _engine.phasers.end()) {
      if (!unattributed) return fmt::format("bucket {} is missing, and no damage hid it", bucket);
      unnamed.push_back(bucket);
    } else if (auto differs = phaser_difference(material(image), material(kept->second))) {
      return fmt::format("bucket {} with {}", bucket, *differs);
    }
  }
  for (uint32_t bucket : unnamed) forget_bucket(bucket);
  return difference(material(_image), material(_engine));
}

void Disk::forget_bucket(uint32_t bucket) {
  _image.phasers.erase(bucket);
  _image.references.erase(bucket);
  _image.resets[bucket]++;
}

void Disk::probe_damage() {
  if (!_damage.chance(1, 2)) return;  // half the crashes: a copy and a replay each
  std::optional<LogFiles::Damaged> damaged = _files->damage_copy(_damage);
  if (!damaged) return;
  _damage_probes++;
  if (!damaged->report.corrupt() && !damaged->scrubbed) {
    report(fmt::format("damage at rest not found: {}", damaged->fault));
    return;
  }
  bucket::Recovery recovery;
  recovery.cores.push_back(std::move(damaged->report));
  bucket::EngineImage& kept = damaged->image;
  const std::optional<bucket::Repair> plan = plan_for(kept, recovery);
  std::optional<std::string> why;
  if (plan) {
    _damage_repairs++;
    // What the repaired participant keeps of its buckets is what its
    // intact log holds; its identity and counter start over.
    for (const auto& [bucket, image] : kept.phasers) {
      if (image.repairing) continue;  // void (phaser.h step 9g): it keeps nothing of it
      const auto intact = _engine.phasers.find(bucket);
      if (intact == _engine.phasers.end()) {
        why = fmt::format("it keeps bucket {}, which the intact log does not hold", bucket);
      } else if (auto differs = phaser_difference(material(intact->second), material(image))) {
        why = fmt::format("it keeps bucket {} with {}", bucket, *differs);
      }
      if (why) break;
    }
  } else if (auto differs = difference(material(_engine), material(kept))) {
    why = "nothing to repair, yet it recovers " + *differs;
  }
  if (why) {
    report(fmt::format("after damage at rest ({}; recovery: {}), {}", damaged->fault,
                       recovery.cores[0].describe(), *why));
  }
}

void Disk::tear(const Batch& batch) {
  std::vector<bucket::EngineRecord> engine;
  for (const DiskRecord& record : batch.records) {
    std::optional<bucket::EngineRecord> encoded = engine_record(record);
    COWORKER_ASSERT(encoded.has_value());  // files only in membership mode
    engine.push_back(std::move(*encoded));
  }
  const size_t kept = _files->tear(engine, _faults);
  for (size_t i = 0; i < kept; i++) {
    apply(batch.records[i]);
    apply_engine(engine[i]);
  }
  // A write some of whose records were kept: what it persisted may be
  // acted on (an accepted value decided), though not all of it.
  size_t begin = 0;
  for (const auto& [end, ticket] : batch.writes) {
    if (begin < kept) _kept_through = ticket;
    begin = end;
  }
  std::string kinds;
  for (size_t i = 0; i < engine.size(); i++) {
    kinds += fmt::format("{}{}{}", i == kept ? " |" : "", i == 0 ? "" : " ",
                         bucket::record_kind_name(engine[i].meta.kind));
  }
  _last_crash = fmt::format("the batch being written torn: {} of its {} records kept ({}), {} lost",
                            kept, batch.records.size(), kinds, _batches.size() - 1);
  _records_kept_from_torn += kept;
}

}  // namespace coworker::sim
