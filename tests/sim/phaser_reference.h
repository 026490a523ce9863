// ReplicaReference: what one replica's disk proves about one bucket, folded
// from its durable phaser records by the checkers' own rules — written from
// DESIGN §4, not from consensus/phaser.cc (issue 19 point 1).
//
// The simulated disk (disk.h) folds every durable record twice: into
// consensus::PhaserDurable, the image the code under test recovers from
// after a restart, and into this reference. The checkers read committed
// logs and registers from the reference only, and compare the two folds
// after every record (agree()), so a bug in PhaserDurable::apply shows as a
// difference at its first record instead of shaping the checkers' truth.
//
// The rules (DESIGN §4, "steady state" and "every leadership start"):
//   1. A promise record raises the promise; nothing goes back.
//   2. A register record holds the write a replica made durable and has not
//      committed yet; it starts where the committed log ends (the commit of
//      the write before it is durable first), and replaces any register.
//   3. A commit record commits the register it names by its mark (end and
//      checksum): its entries join the log. A mark at or below the
//      committed end changes nothing (the empty write of a leadership start
//      is never a register). A mark above it that names no held register
//      commits what the disk never held: a violation.
//   4. A checkpoint record carries the committed state as of its place: at
//      the committed end (a checkpoint round), or above it (a snapshot: no
//      entry below it is held from then on), never below. A snapshot drops
//      the register; a round keeps it when it says its register follows
//      (the round's record of it follows, but a log cut between the two by
//      a crash must not lose a write the replica acked), and drops it when
//      it held none (what replaced or committed the earlier register may be
//      lost to damage).
//   5. A reset record drops the copy (a copy offered and found wrong,
//      DESIGN §5's verified prefixes): nothing committed, no register, the
//      log empty from position 0; the promise stays, raised to the record's.
//   6. A repair record (a copy damaged at rest, repaired per bucket) makes
//      the copy void: nothing committed, no register, the promise the
//      record's (the damage may have taken a higher one). A void copy holds
//      nothing any check may count on (void_copy()), and only a reset or a
//      checkpoint record (a leader acclimating it) may follow; a promise,
//      register or commit record is a violation: it would ack while void.
// Besides the log, the newest committed write with entries is followed (the
// mark copies are compared by): a commit of a register with entries, a
// checkpoint's, nothing after a reset.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "consensus/phaser.h"

namespace coworker::sim {

class ReplicaReference {
 public:
  // Folds one durable record; the reason when the rules forbid it.
  std::optional<std::string> fold(const consensus::PhaserRecord& record);

  consensus::Position start() const { return _start; }  // a snapshot's end, else 0
  consensus::Position end() const { return _start + _log.size(); }
  // Committed entries [start(), end()).
  const std::vector<consensus::BucketEntry>& log() const { return _log; }
  const consensus::WritePtr& held() const { return _held; }
  const consensus::Promise& promise() const { return _promise; }
  bool void_copy() const { return _void; }  // rule 6

  // Where `image` (PhaserDurable::apply's fold of the same records, with
  // its log kept) differs from this one; entries are compared once each.
  std::optional<std::string> agree(const consensus::PhaserDurable& image);

 private:
  consensus::Position _start = 0;
  std::vector<consensus::BucketEntry> _log;
  consensus::WritePtr _held;
  consensus::Promise _promise;
  consensus::CommitMark _last;  // the newest committed write's mark
  consensus::CommitMark _filled;  // the newest one with entries
  consensus::Position _last_first = 0;  // and its first position
  size_t _agreed = 0;           // log entries already compared with the image's
  bool _void = false;           // rule 6
};

}  // namespace coworker::sim
