// MembershipHost: the membership log of one participant, driven from a
// storage and a network — the driver the server's core 0 and the simulator
// share.
//
// One per participant boot, owned by core 0's owner (the simulator: by the
// simulated participant); destroyed by a crash and rebuilt at restart from
// the recovered MembershipDurable. It owns the MembershipNode, the
// BucketTable the node feeds, and the queue of outputs waiting for the disk.
// Single-threaded and non-blocking: calls in, effects out through
// HostStorage (host.h) and MembershipEffects.
//
// The driver contract of consensus/membership_messages.h, kept here once:
//   1. Persist before send, FIFO: an output's records are staged
//      (HostStorage::stage_membership), and the output is released only once
//      they are durable and every earlier output was released — a later
//      message may rely on an earlier record (an Accepted on the promise a
//      Promise persisted).
//   2. Release: observers hear of proposals and withdrawals; outputs of the
//      node's current Paxos generation report what they installed and
//      decided; the sends go out; then the node applies what was installed
//      and decided, which may produce more output (queued behind this one).
//   3. Governments: after every applied output the table's changes go to the
//      phaser hosts (MembershipEffects::government) — only from a caught-up
//      view. A government that makes us leader after another live member led
//      (a move) carries start_wait = lease + margin: our leadership starts
//      only then, once any read lease the previous leader held from an ack
//      sent before the change has run out. So does the first government fed
//      after a boot that makes us leader: the previous leader is unknown. While the node is `recovering` (a restart replaying the log,
//      DESIGN §3) no government is fed: a leadership started on the stale
//      governments of a recovered prefix would write to members departed
//      since; the phasers still ack what their leaders write. When recovery
//      ends every current government is fed at once.
//   4. Stuck storage: a batch that has not completed for the departure
//      timeout makes the node stop heartbeating (set_stuck), so a hung
//      participant is departed too (DESIGN §4); it resumes when the batch
//      completes.
//   5. Migrations this participant leads (the table's next step of a
//      bucket whose current leader we are), once governments are fed:
//      - shrink and reorder (the target only drops or reorders members):
//        the ack is proposed at once. Every member of the new government
//        already holds every committed position; a new leader runs the
//        leadership-start sequence (usurp) and requests queued at the old
//        one are answered 503 (resubmit);
//      - growth: the bucket's host is asked to grow it by the newcomers
//        (BucketHost::prepare; the leader's phaser acclimates them and
//        joins them to every commit, phaser.h step 9), again every
//        heartbeat until it answers `ready`; then the ack is proposed. The
//        growth (and its joint acks) lasts until the ack is decided or can
//        no longer be (the bucket's step moved on, or a participant it
//        names is gone): only then is it released (release_hold). So every
//        member of the grown government holds every committed position.
//      - after a boot: a growth ack proposed before the crash may still be
//        decided, and the joint set died with the process. So the first
//        scan holds every bucket we lead (no leadership starts: nothing
//        commits) and proposes a bump (an ack keeping the government,
//        which voids every older ack of the bucket), or its move; the hold
//        ends when the step moved on. The host starts no leadership before
//        its governments are fed, and the holds are asked in the same turn.
//   6. Per-bucket repair (bucket/repair.h): for each bucket whose copy here
//      is void (damaged at rest, or marked for repair at run time: phaser.h
//      steps 3 and 9g; repair() says which), the ack {bucket, step, the
//      government without us} is proposed, whoever leads: while we are in
//      the government a shrink, always safe (every other member holds every
//      committed position; a void copy acks nothing, so nothing commits
//      without the others); while we are not, a bump of the government
//      (we may be a newcomer of a growth in flight whose leader believes
//      the end our copy acked before it was void: its ack must not be
//      decided). Either voids every older ack of the bucket. Again until
//      we are out at a later step than the repair was first seen at; then
//      the table's next step grows us back (step 5, run by the bucket's
//      leader, from a probe). Not proposed while we are the bucket's
//      last member (no copy is left to grow from: step 7 takes the
//      heir's), nor as a bump of a government that waits for step 7.
//   7. Heirs (bucket/table.h): a government a removal left with one
//      member commits nothing until an ack confirms it (phaser.h step 4),
//      so the removed member's copy (the heir's) holds every committed
//      position. Its sole member, if it is us and our copy is not void,
//      confirms it by a bump (held: BucketHost::prepare answers `held`),
//      with migrations on or off. The participant holding the heir's data
//      directory (the heir itself, returned from a mark, or the same disk
//      arrived anew, unless a boot that found damage gave up the heir's
//      incarnation's id: Identity::void_through) adopts it: once the
//      bucket has stayed unconfirmed
//      for the departure timeout since we first saw it at its step (its
//      sole member void, or down), and while we are an active member and
//      our copy is not void (prepare answers `void_copy` otherwise), it
//      proposes the ack {bucket, step, [us]}; decided, we lead from our
//      copy (a leadership start: the register re-proposed, as a usurp)
//      and the table's next steps grow the rest back. Whichever of the
//      bump and the adoption is decided first voids the other. A void
//      sole member whose heir's copy is gone too (void, given up, or its
//      disk lost)
//      leaves the bucket answering 503 until an operator decides
//      (docs/OPERATIONS.md): every copy of its writes is lost.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bucket/host.h"
#include "bucket/table.h"
#include "consensus/membership_node.h"

namespace coworker::bucket {

using consensus::Tick;

// What the membership host tells the world.
class MembershipEffects {
 public:
  // A membership message for the participant at `address` (arrival id `to`,
  // 0 when unknown), sent by arrival id `from` (0 while arriving).
  virtual void send(const std::string& address, ParticipantId from, ParticipantId to,
                    consensus::MembershipMessage message) = 0;
  // The bucket's current government changed (for the core hosting it).
  virtual void government(uint32_t bucket, const consensus::Government& government) = 0;
  // Step 5, to the core hosting the bucket: BucketHost::prepare (answer
  // through MembershipHost::growth_answer), or release_hold.
  virtual void prepare(uint32_t bucket, uint64_t step,
                       std::vector<ParticipantId> newcomers) = 0;
  virtual void release_hold(uint32_t bucket) = 0;

  // Observers (the simulator's checkers); a server ignores them.
  // A new Paxos of the node (boot, arrival, arrival anew) starts from this.
  virtual void booted(const consensus::Snapshot& snapshot) {}
  virtual void proposed(const consensus::Entry& entry) {}
  virtual void withdrawn(const consensus::ProposalId& id) {}
  virtual void installed(const consensus::Snapshot& snapshot) {}
  virtual void learned(const consensus::Decided& decided) {}
  virtual void applied() {}

 protected:
  ~MembershipEffects() = default;
};

class MembershipHost {
 public:
  MembershipHost(const consensus::MembershipConfig& config, consensus::Prng& prng,
                 const consensus::MembershipDurable& recovered, HostStorage& storage,
                 MembershipEffects& effects);

  consensus::MembershipNode& node() { return _node; }
  const consensus::MembershipNode& node() const { return _node; }
  BucketTable& table() { return _table; }
  const BucketTable& table() const { return _table; }

  void start();
  void tick();
  void deliver(ParticipantId from, ParticipantId to, const std::string& address,
               const consensus::MembershipMessage& message);
  // Any other call into the node (leave, report_silent, propose, set_stuck):
  // its output goes through the same queue.
  void call(const std::function<consensus::MembershipOutput(consensus::MembershipNode&)>& fn);
  // An output the caller got from the node itself (node().propose(...)).
  void handle(consensus::MembershipOutput output);
  // Storage made more tickets durable: release what waited for them.
  void on_durable();
  // A checkpoint of the membership state as staged so far (the fold of the
  // recovered image and every record staged since, kept beside the node),
  // for the log store's checkpoint rounds (DESIGN §6).
  HostStorage::Ticket checkpoint();
  const consensus::MembershipDurable& staged_image() const { return _staged; }

  // Step 3: from now on, feed governments to phaser hosts (first every
  // current one, once caught up). Called again after a phaser host is rebuilt.
  void feed_governments();
  // Step 3 again: recovery may have ended on this tick.
  void govern();
  // Step 4: the storage has (not) been completing batches; `now` in ticks.
  void storage_hung(Tick now, bool hung);
  // Step 5 on or off (on by default; the simulator's families choose).
  void set_migrations(bool on) { _migrations_on = on; }
  // Step 6: these buckets' copies here are void (at boot: bucket/repair.h
  // void_copies; at run time: the host's repair effect).
  void repair(const std::vector<uint32_t>& buckets);
  uint64_t repairs_proposed() const { return _repairs_proposed; }
  // Step 6: the void copy of `bucket` here is being repaired.
  bool repairing(uint32_t bucket) const { return _repairs.count(bucket) != 0; }
  // Step 5: the bucket's host answered prepare for `step`.
  void growth_answer(uint32_t bucket, uint64_t step, BucketHost::Growth growth);
  uint64_t migrations_proposed() const { return _migrations_proposed; }

  size_t pending_outputs() const { return _pending.size(); }
  // The proposals of outputs still waiting for the disk whose records
  // reached it through `ticket` after all (some or all of them): a crash
  // that left them there lets them be decided without an observer having
  // heard of them (the simulator's checkers count them as proposed).
  std::vector<consensus::Entry> unreleased_proposals(HostStorage::Ticket ticket) const;

 private:
  struct Pending {
    HostStorage::Ticket ticket = 0;  // durable first; 0 = nothing to wait for
    consensus::MembershipOutput output;
  };
  void release(consensus::MembershipOutput& output);
  void notice_generation();
  void migrate();
  void feed(uint32_t bucket);

  consensus::MembershipConfig _config;
  HostStorage& _storage;
  MembershipEffects& _effects;
  BucketTable _table;
  consensus::MembershipNode _node;

  consensus::MembershipDurable _staged;  // recovered + every record staged
  std::deque<Pending> _pending;
  bool _draining = false;
  uint64_t _generation = 0;  // of the node's Paxos, as last reported
  bool _feeding = false;     // phaser hosts attached
  bool _governed = false;    // every government fed since the view caught up
  std::vector<ParticipantId> _fed_leaders;  // by bucket: the leader last fed
  std::optional<Tick> _hung_since;  // storage hung since
  bool _stuck_by_storage = false;

  // Step 5: by bucket.
  struct Migration {
    enum class Kind : uint8_t {
      growth,  // adds members: proposed once the newcomers are acclimated
      move,    // shrink or reorder: proposed at once
      bump,    // after a boot, or to confirm us alone: the same government, a new step
      repair,  // step 6: the government without us, whoever leads
      adopt,   // step 7: the heir's copy, held here: the government [us]
    };
    enum class State : uint8_t { asked, proposed };
    consensus::MigrationAck ack;
    Kind kind = Kind::growth;
    State state = State::asked;
    bool hold_sent = false;  // the bucket's host was asked (prepare)
    Tick retry_at = 0;       // asked/proposed again at this tick of the node
  };
  std::optional<Migration> migration_for(uint32_t bucket) const;
  std::vector<ParticipantId> newcomers(const Migration& migration) const;
  void propose(Migration& migration, std::vector<consensus::MigrationAck>& acks);
  bool migration_over(const Migration& migration) const;
  void end_migration(std::map<uint32_t, Migration>::iterator it);
  std::map<uint32_t, Migration> _migrations;
  std::optional<Migration> repair_for(uint32_t bucket) const;
  void end_repairs();
  std::optional<Migration> adoption_for(uint32_t bucket) const;
  void watch_heirs();
  // Step 7: buckets whose heir's data directory is ours: the step and the
  // tick of the node we first saw it at.
  struct Heir {
    uint64_t step = 0;
    Tick since = 0;
  };
  std::map<uint32_t, Heir> _heirs;
  // Step 6: buckets whose copy here is void, with the step their repair was
  // first seen at by a scan (the table fed).
  std::map<uint32_t, std::optional<uint64_t>> _repairs;
  uint64_t _migrations_proposed = 0;
  uint64_t _repairs_proposed = 0;
  bool _bump_after_boot = true;  // the first scan after this boot
  bool _migrating = false;
  bool _migrations_on = true;
};

}  // namespace coworker::bucket
