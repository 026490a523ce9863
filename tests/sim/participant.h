// Participant: one simulated coworker process — the state machines it hosts,
// its application, and its disk.
//
// Two modes. Paxos mode (issue 3): the participant's id is its host number,
// it runs Paxos and a LogApp. Membership mode (options.membership set): it
// runs a MemberHost (membership_host.h: MembershipNode, BucketTable, stand-in
// phasers); its arrival id changes when it departs and arrives anew, so
// `id()` stays the host number and member()->node().id() is the arrival id.
//
// Owned by the Simulation for the whole run; its volatile part (Paxos, the
// application, outputs waiting for the disk, its Prng stream) lives for one
// boot and is destroyed by crash(). The Disk survives crashes. The driver
// rule "persist before send" is enforced here, once for every protocol: an
// Output's records go to the disk, and its messages, decisions and snapshot
// are released only when that write is durable, in FIFO order with every
// earlier Output (a later message may rely on an earlier record).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "consensus/paxos.h"
#include "tests/sim/app.h"
#include "tests/sim/disk.h"
#include "tests/sim/membership_host.h"
#include "tests/sim/network.h"
#include "tests/sim/phaser_host.h"

namespace coworker::sim {

// What a participant's outputs do to the world (implemented by Simulation).
class Effects {
 public:
  virtual void send(ParticipantId from, ParticipantId to, Payload payload) = 0;
  virtual void booted(ParticipantId node, const consensus::Snapshot& recovered) = 0;
  virtual void learned(ParticipantId node, const consensus::Decided& decided) = 0;
  virtual void installed(ParticipantId node, const consensus::Snapshot& snapshot) = 0;
  // Membership mode, for observers: entries the node proposed and proposals
  // it gave up (released in order with its decisions), and that it applied.
  virtual void proposed(ParticipantId node, const consensus::Entry& entry) = 0;
  virtual void withdrawn(ParticipantId node, const consensus::ProposalId& id) = 0;
  virtual void applied(ParticipantId node) = 0;
  // Phaser stack (SimOptions::phasers): what its phasers tell the world.
  virtual void phaser_reply(ParticipantId node, const consensus::Reply& reply) = 0;
  virtual void phaser_committed(ParticipantId node, const consensus::Write& write) = 0;
  virtual void phaser_repair(ParticipantId node, uint32_t bucket) = 0;

 protected:
  ~Effects() = default;
};

struct ParticipantOptions {
  consensus::Configuration configuration;
  consensus::Paxos::Timing timing;
  consensus::Paxos::Limits limits;
  DiskOptions disk;
  Slot snapshot_interval = 0;  // the application snapshots every this many slots; 0 never
  uint64_t seed = 0;
  const MembershipSimOptions* membership = nullptr;  // set: membership mode
  uint32_t hosts = 0;
  // Set (membership mode, static start): a static member hosts the phasers
  // of the buckets it governs, fed by its bucket table.
  const PhaserStackOptions* phasers = nullptr;
};

class Participant {
 public:
  Participant(ParticipantId id, const ParticipantOptions& options, Effects& effects);

  ParticipantId id() const { return _id; }
  bool up() const { return _booted; }
  bool membership_mode() const { return _options.membership != nullptr; }
  // Paxos runs (membership mode: the participant has an arrival id).
  bool has_paxos() const;
  MemberHost& member();
  const MemberHost& member() const;
  // Slots applied by its application (LogApp, or the membership state).
  Slot applied() const;
  uint64_t incarnation() const { return _incarnation; }
  consensus::Paxos& paxos();
  const consensus::Paxos& paxos() const;
  const LogApp& app() const;
  Disk& disk() { return _disk; }
  const Disk& disk() const { return _disk; }
  // Outputs waiting for the disk.
  size_t pending_outputs() const { return _pending.size(); }
  // Its phasers (phaser stack only; null while down or for a host that
  // arrived anew, whose old phaser state a later issue's growth would take).
  PhaserHost* phasers() { return _phaser_host.get(); }
  // Membership mode: it left gracefully and departed (the process exits).
  bool exited() const { return up() && membership_mode() && _member->node().exited(); }

  // Membership mode: a call into the node (leave, set_stuck, ...) whose
  // output goes through the disk like any other.
  void act(Tick now,
           const std::function<consensus::MembershipOutput(consensus::MembershipNode&)>& call);
  void boot(Tick now);
  void crash();
  void tick(Tick now);
  void deliver(Tick now, ParticipantId from, const Payload& payload);
  // Nothing until the boot record is durable (Paxos::start's contract).
  // `accepted` hears of the id before any of the proposal's effects.
  // With `voters`, a reconfiguration replacing this participant's latest
  // scheduled voters.
  std::optional<consensus::ProposalId> propose(
      Tick now, std::string value,
      const std::function<void(const consensus::ProposalId&)>& accepted,
      const std::vector<ParticipantId>* voters = nullptr);

 private:
  struct Pending {
    Disk::Ticket ticket = 0;  // durable first; 0 = nothing to wait for
    std::variant<consensus::Output, consensus::MembershipOutput> output;
  };
  void handle(Tick now, consensus::Output output);
  void handle(Tick now, consensus::MembershipOutput output);
  template <class Out>
  void queue(Tick now, Out output);
  Disk::Ticket write(Tick now, std::vector<DiskRecord> records);
  void drain(Tick now);
  void release(Tick now, consensus::Output& output);
  void release(Tick now, consensus::MembershipOutput& output);
  void maybe_compact(Tick now);
  void notice_generation();
  void tick_member(Tick now);
  void tick_phasers(Tick now);
  void start_phasers(Tick now);
  void govern_phasers(Tick now);

  // The phaser host's effects: sends through the network, reports into the
  // membership node, the rest to the world.
  class PhaserEffects final : public PhaserHostEffects {
   public:
    explicit PhaserEffects(Participant& p) : _p(p) {}
    void send(ParticipantId from, ParticipantId to, consensus::PhaserMessage message) override;
    void reply(ParticipantId at, const consensus::Reply& reply) override;
    void report(ParticipantId at, uint32_t bucket, ParticipantId silent) override;
    void leader_committed(ParticipantId at, const consensus::Write& write) override;
    void repair(ParticipantId at, uint32_t bucket) override;

   private:
    Participant& _p;
  };

  const ParticipantId _id;
  const ParticipantOptions& _options;
  Effects& _effects;
  Disk _disk;
  uint64_t _incarnation = 0;

  // One boot.
  std::unique_ptr<consensus::Prng> _prng;
  std::unique_ptr<consensus::Paxos> _paxos;
  std::optional<LogApp> _app;
  std::unique_ptr<MemberHost> _member;
  uint64_t _generation = 0;  // of the member's Paxos, as last reported
  bool _booted = false;
  std::deque<Pending> _pending;
  Disk::Ticket _boot_ticket = 0;  // start()'s records: no proposal before they are durable
  bool _draining = false;
  PhaserEffects _phaser_effects{*this};
  std::unique_ptr<PhaserHost> _phaser_host;
  Tick _now = 0;          // the tick of the call in progress (reports need it)
  bool _phasers_governed = false;  // governments fed since its membership caught up
  Tick _hung_since = 0;   // its disk has been hung since (0: not hung)
  bool _stuck_by_disk = false;
};

}  // namespace coworker::sim
