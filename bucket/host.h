// BucketHost: the phasers of the buckets one core hosts, driven from a
// storage and a network — the one driver the server and the simulator share.
//
// One BucketHost per core (the simulator: per participant boot), owned by
// whoever owns the core's storage; destroyed by a crash and rebuilt at
// restart from what reached the disk (HostStorage::recovered). It runs on
// one thread and never blocks: every input is a synchronous call, every
// effect goes out through the two interfaces below.
//
// The driver contract of consensus/phaser.h, kept here once:
//   1. persist: each PhaserOutput's records are staged in order as one unit
//      (HostStorage::stage_phaser, one ticket); once storage reports that
//      ticket durable, on_persisted(t) is called for each of the output's
//      record tickets, in order. The phaser itself withholds every ack and
//      answer that depends on a record until then.
//   2. send, reply, report, repair: handed out at once (a phaser never emits
//      one that depends on a persist of the same output).
//   3. leadership start (not before the government's start_wait ticks have
//      passed, membership_host.h step 3): the core's promise counter is bumped and made
//      durable (stage_counter) before start_leadership(promise) is called,
//      so a promise is never reused even if the start's own records are
//      lost in a crash. promise = (slot of the government that made us
//      leader, counter). A start is skipped while the bucket already holds
//      a promise at least that high: a later government names someone else
//      and its news has not reached us yet.
//   4. durable notifications (on_durable) release phaser tickets and
//      counter starts in ticket order across both queues.
//   5. migrations (membership_host.h step 5), asked by the membership host:
//      growth — the leader's phaser acclimates the newcomers (phaser.h step
//      9; its Fetch outputs are read from storage, HostStorage::fetch, and
//      handed back through fetched) and the answer says when the ack may be
//      proposed; a hold (after a boot) — no leadership of the bucket starts
//      until it is released, so nothing commits before the bump that voids
//      any ack proposed before the crash. A void copy (phaser.h step 9g)
//      starts no leadership at all: its repair is a shrink
//      (membership_host.h step 6).
//
//   6. boot: the constructor bumps the counter and stages it, and holds
//      every effect until it is durable; its value is the phasers' boot
//      (Phaser::Config::boot, the first half of a copy's life, phaser.h
//      step 9h), so no two boots that sent anything share one.
//
// Governments come from the membership host (membership_host.h), which
// feeds only a caught-up view; appends from the client layer; messages from
// peers; ticks from the core's timer.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "bucket/record.h"
#include "consensus/membership_messages.h"
#include "consensus/phaser.h"

namespace coworker::bucket {

using consensus::ParticipantId;

// A core's durable storage, as the engine sees it: staged records become
// durable in staging order; tickets grow with every stage call. Core 0's
// storage also keeps the membership records (membership_host.h).
class HostStorage {
 public:
  using Ticket = uint64_t;  // 0: nothing

  virtual Ticket stage_membership(std::vector<consensus::MembershipRecord> records) = 0;
  // `flush`: Flush::with_next when nothing waits for these records to act
  // (record.h); a storage may make them durable whenever it likes.
  virtual Ticket stage_phaser(uint32_t bucket, std::vector<consensus::PhaserRecord> records,
                              Flush flush) = 0;
  virtual Ticket stage_counter(uint32_t counter) = 0;
  // A checkpoint of the whole membership state (core 0's storage): it
  // replaces what the membership records before it fold to.
  virtual Ticket stage_membership_checkpoint(const consensus::MembershipDurable& durable) = 0;
  // Every ticket up to this one is durable.
  virtual Ticket durable() const = 0;
  // What reached the disk for a bucket before this boot (null: nothing).
  virtual const consensus::PhaserDurable* recovered(uint32_t bucket) const = 0;
  // Every bucket recovered() knows, in increasing order.
  virtual std::vector<uint32_t> recovered_buckets() const = 0;
  // Committed writes of `bucket` with entries, from the one holding `from`,
  // about `bytes_max` bytes of entries (at least one write when there is
  // one), for the newcomer `to` (phaser.h step 9b). The answer goes to
  // BucketHost::fetched later, never from inside this call; empty when
  // nothing is readable there yet or the read failed; fetch_retained when
  // `from` lies below what the log still holds (retention).
  virtual void fetch(uint32_t bucket, ParticipantId to, consensus::Position from,
                     size_t bytes_max) = 0;

 protected:
  ~HostStorage() = default;
};

// What the host's phasers tell the world.
class HostEffects {
 public:
  virtual void send(ParticipantId to, consensus::PhaserMessage message) = 0;
  virtual void reply(uint32_t bucket, const consensus::Reply& reply) = 0;
  // A replica of a government we lead owed us an ack for the departure
  // timeout: for the membership leader (MembershipNode::report_silent).
  virtual void report(uint32_t bucket, ParticipantId silent) = 0;
  // We lead the bucket and just committed this write (long-poll readers,
  // observers).
  virtual void committed(uint32_t bucket, const consensus::Write& write) = 0;
  // A commit record of the bucket was staged, whatever our role: its
  // committed end may have moved (readers waiting at the end, DESIGN §3
  // wait_ms, re-check it).
  virtual void commit_staged(uint32_t bucket) {}
  // This replica's copy disagrees with its leader's: the phaser made it
  // void (phaser.h steps 3, 9g); the membership host shrinks it out
  // (MembershipHost::repair).
  virtual void repair(uint32_t bucket) = 0;
  // The copy this replica offered did not match its leader's log and was
  // dropped (a ResetRecord staged, phaser.h step 9f): it grows from 0.
  virtual void copy_reset(uint32_t bucket) {}

 protected:
  ~HostEffects() = default;
};

class BucketHost {
 public:
  // `counter`: the promise counter as last made durable (the highest
  // counter record found at recovery, over every core's log). `floor`: a
  // host that replaces another in the same process (a participant arriving
  // anew) recovers from the old host's images(), which may include records
  // staged but not yet durable; nothing it sends, answers or reports leaves
  // before storage is durable up to `floor` (the last ticket issued then).
  BucketHost(ParticipantId self, consensus::Phaser::Config base, uint32_t counter,
             HostStorage& storage, HostEffects& effects, HostStorage::Ticket floor = 0);

  ParticipantId self() const { return _self; }

  // The membership says this is the bucket's current government now.
  void government(uint32_t bucket, const consensus::Government& government);
  void append(uint32_t bucket, uint64_t token, std::vector<consensus::BucketEntry> messages);
  void deliver(ParticipantId from, const consensus::PhaserMessage& message);
  // Storage made more tickets durable: release what waited for them.
  void on_durable();
  // One phaser tick for every hosted bucket, with the host's clock (ms since
  // the epoch: the time leaders stamp on writes, Phaser::on_tick).
  void tick(uint64_t now_ms);

  // Step 5. `newcomers` empty: hold the bucket (answered `held` at once);
  // else grow it by them (answered `ready` once the ack may be proposed).
  // Both last until release_hold.
  enum class Growth : uint8_t {
    held,       // no leadership of it starts until released
    ready,      // the newcomers are acclimated and joined: propose the ack
    not_ready,  // not led and serving here, or still acclimating: ask again
    void_copy,  // held, but the copy here is void: nothing to confirm or adopt
  };
  Growth prepare(uint32_t bucket, uint64_t step, const std::vector<ParticipantId>& newcomers);
  void release_hold(uint32_t bucket);
  bool held(uint32_t bucket) const { return _held.count(bucket) != 0; }
  // The storage's answer to fetch().
  void fetched(uint32_t bucket, ParticipantId to, std::vector<consensus::WritePtr> writes);
  // The storage's other answer: the writes from there were retired (the
  // newcomer gets a snapshot, phaser.h step 9b).
  void fetch_retained(uint32_t bucket, ParticipantId to);

  // A checkpoint round (DESIGN §6): stages, for every bucket hosted or
  // recovered, its image as checkpoint records (Phaser::checkpoint, or the
  // recovered image of a bucket no phaser runs for yet), in bucket order.
  // Once the returned ticket is durable no record staged before the round
  // is needed to recover any bucket (the log store may retire them). 0:
  // no bucket at all.
  HostStorage::Ticket checkpoint();
  // The same records, by bucket, without staging them (the server checks
  // their size first: checkpoint_records of each, then stage_phaser).
  std::vector<std::pair<uint32_t, std::vector<consensus::PhaserRecord>>> checkpoints() const;

  // Every phaser's image (Phaser::image), for the host that replaces this one.
  std::map<uint32_t, consensus::PhaserDurable> images() const;

  // Null for a bucket this host has never heard of.
  const consensus::Phaser* phaser(uint32_t bucket) const;
  bool hosts(uint32_t bucket) const { return _phasers.count(bucket) != 0; }
  uint32_t counter() const { return _counter; }

 private:
  struct PendingWrite {
    HostStorage::Ticket ticket = 0;
    uint32_t bucket = 0;
    // The output's phaser tickets, consecutive (Phaser::persist numbers one
    // output's records in order): the first and how many. No vector: it was
    // a heap allocation per staged output.
    uint64_t first_phaser_ticket = 0;
    uint32_t phaser_tickets = 0;
  };
  struct PendingStart {
    HostStorage::Ticket ticket = 0;
    uint32_t bucket = 0;
    consensus::Promise promise;
  };

  consensus::Phaser& phaser_for(uint32_t bucket);
  void handle(uint32_t bucket, consensus::PhaserOutput output,
              const consensus::WritePtr& leading_before);
  // Calls fn(phaser) and handles its output, noticing a leader's commit.
  template <typename Fn>
  void call(uint32_t bucket, Fn&& fn);
  void maybe_start(uint32_t bucket);
  bool start_pending(uint32_t bucket) const;

  const ParticipantId _self;
  consensus::Phaser::Config _base;
  HostStorage& _storage;
  HostEffects& _effects;
  std::map<uint32_t, std::unique_ptr<consensus::Phaser>> _phasers;  // by bucket
  std::deque<PendingWrite> _writes;
  std::deque<PendingStart> _starts;
  std::set<uint32_t> _held;  // step 5: no leadership start
  uint64_t _ticks = 0;                        // tick() calls
  std::map<uint32_t, uint64_t> _start_after;  // by bucket: no start before this tick
  // Effects held until storage is durable up to _floor (see the constructor).
  HostStorage::Ticket _floor = 0;
  struct Held {
    uint32_t bucket = 0;
    consensus::PhaserOutput output;  // without records
  };
  std::deque<Held> _before_floor;
  void effects_of(uint32_t bucket, consensus::PhaserOutput& output);
  uint32_t _counter = 0;  // the promise counter, as last staged
};

}  // namespace coworker::bucket
