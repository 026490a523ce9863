// Participant: one simulated coworker process — the state machines it hosts,
// its application, and its disk.
//
// Two modes. Paxos mode (issue 3): the participant's id is its host number,
// it runs Paxos and a LogApp. Membership mode (options.membership set): it
// runs a MemberHost (membership_host.h: the server's MembershipHost plus
// stand-in probes and migrations) and, with the phaser stack, a PhaserHost
// (the server's BucketHost); its arrival id changes when it departs and
// arrives anew, so `id()` stays the host number and member()->node().id()
// is the arrival id.
//
// Owned by the Simulation for the whole run; its volatile part (Paxos, the
// application, the hosts, outputs waiting for the disk, its Prng stream)
// lives for one boot and is destroyed by crash(). The Disk survives
// crashes. The driver rule "persist before send" is the engine's in
// membership mode (bucket/membership_host.h); in Paxos mode it is enforced
// here the same way: an Output's records go to the disk, and its messages,
// decisions and snapshot are released only when that write is durable, in
// FIFO order with every earlier Output.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <optional>
#include <string>

#include "consensus/paxos.h"
#include "tests/sim/app.h"
#include "tests/sim/disk.h"
#include "tests/sim/membership_host.h"
#include "tests/sim/network.h"
#include "tests/sim/phaser_host.h"
#include "tests/sim/sim_storage.h"

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
  // At a crash: proposals the node made that were never released (their
  // records were not durable yet, but the disk may keep them: disk.h).
  virtual void proposed_unreleased(ParticipantId node, const consensus::Entry& entry) = 0;
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
  // An id this participant gave up at a boot that repaired damage at rest
  // (disk.h repair_at_boot): its copies are gone, and it arrives anew.
  bool gave_up(ParticipantId id) const { return _given_up.count(id) != 0; }
  // Outputs waiting for the disk.
  size_t pending_outputs() const;
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
  // Its clock's rate, in millionths of the simulation's, and where within a
  // tick it starts (issue 19 point 5): each simulation tick gives its Paxos
  // or membership node as many ticks as its clock counted (0, 1 or 2).
  void set_clock(uint32_t rate_ppm, uint32_t phase_ppm);
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
    consensus::Output output;
  };
  void handle(Tick now, consensus::Output output);
  Disk::Ticket write(Tick now, std::vector<DiskRecord> records);
  void drain(Tick now);
  void release(Tick now, consensus::Output& output);
  void maybe_compact(Tick now);
  void tick_member(Tick now, uint64_t own_ticks);
  void tick_phasers(Tick now);
  void start_phasers(Tick now);

  // The membership host's effects: the network, the observers, the phasers.
  class MemberEffects final : public bucket::MembershipEffects {
   public:
    explicit MemberEffects(Participant& p) : _p(p) {}
    void send(const std::string& address, ParticipantId from, ParticipantId to,
              consensus::MembershipMessage message) override;
    void government(uint32_t bucket, const consensus::Government& government) override;
    void prepare(uint32_t bucket, uint64_t step, std::vector<ParticipantId> newcomers) override;
    void release_hold(uint32_t bucket) override;
    void booted(const consensus::Snapshot& snapshot) override;
    void proposed(const consensus::Entry& entry) override;
    void withdrawn(const consensus::ProposalId& id) override;
    void installed(const consensus::Snapshot& snapshot) override;
    void learned(const consensus::Decided& decided) override;
    void applied() override;

   private:
    Participant& _p;
  };

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
    void checkpoint_membership(ParticipantId at) override;

   private:
    Participant& _p;
  };

  const ParticipantId _id;
  static constexpr uint64_t membership_checkpoint_ticks = 32;  // ticks between checkpoints
  uint64_t _member_ticks = 0;
  const ParticipantOptions& _options;
  Effects& _effects;
  Disk _disk;
  uint64_t _incarnation = 0;

  // One boot.
  std::unique_ptr<consensus::Prng> _prng;
  std::unique_ptr<consensus::Paxos> _paxos;
  std::optional<LogApp> _app;
  std::unique_ptr<SimStorage> _storage;  // membership mode
  std::unique_ptr<MemberHost> _member;
  MemberEffects _member_effects{*this};
  bool _booted = false;
  std::set<ParticipantId> _given_up;
  std::deque<Pending> _pending;
  Disk::Ticket _boot_ticket = 0;  // start()'s records: no proposal before they are durable
  bool _draining = false;
  PhaserEffects _phaser_effects{*this};
  std::unique_ptr<PhaserHost> _phaser_host;
  Tick _now = 0;          // the tick of the call in progress (reports need it)
  uint32_t _clock_ppm = 1'000'000;  // set_clock
  uint64_t _clock_acc = 0;          // millionths of a tick counted, not yet delivered
};

}  // namespace coworker::sim
