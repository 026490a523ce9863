#include "bucket/recovery.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <set>

#include "bucket/segment.h"
#include "bucket/segment_reader.h"
#include "consensus/assert.h"

namespace coworker::bucket {

namespace {

enum class Probe : uint8_t { good, end, bad_header, bad_payload };

struct Probed {
  Probe probe = Probe::end;
  RecordHeader header;
  std::span<const char> payload;
};

// Where the scanner stands: the i-th present segment, at a byte offset.
struct Cursor {
  size_t i = 0;
  uint64_t offset = 0;
};

// What the look-ahead from a bad spot found.
struct Look {
  bool later_batch = false;  // a good record whose batch began after the missing seq
  bool found = false;        // a good record with seq >= the missing one
  Cursor resume;
  uint64_t resume_seq = 0;
  uint64_t resume_batch = 0;
  uint64_t records = 0;    // good records with seq >= the missing one
  uint64_t dirty_end = 0;  // end of non-zero bytes in the first segment scanned
};

struct BucketSeen {
  uint64_t last_checkpoint_seq = 0;
  uint64_t last_damage_seq = 0;  // attributed damage
};

class CoreScanner {
 public:
  // `first`: the first segment kept (the retained marker; 1 without one).
  // `damaged_marker`: the marker did not verify (retention ran: fold from
  // a round marker only).
  CoreScanner(const std::string& log_dir, unsigned core, std::vector<uint64_t> segments,
              uint64_t first, bool damaged_marker, const ReplayVisitor& visit,
              const ReplayOptions& options)
      : _log_dir(log_dir), _core(core), _segments(std::move(segments)), _first(first),
        _front_retired(first > 1 || damaged_marker), _visit(visit), _options(options) {}

  Result<CoreReport> run();

 private:
  Result<Probed> probe(SegmentReader& reader, Cursor at, size_t* opened);
  Result<Look> look_ahead(Cursor from, uint64_t missing_seq);
  Status open(SegmentReader& reader, size_t i, size_t* opened);
  Status accept(const Probed& p, Cursor at);
  void start_at_boot(const Probed& p);
  void add_front_damage(uint64_t next_good);
  void end_at(Cursor at, const Look& look, bool torn_possible);
  void add_damage(Damage::What what, uint64_t segment, uint64_t offset,
                  std::optional<uint32_t> bucket, const Look& look);
  void compute_suspects();
  // Step 4 (recovery.h): the `round` file's marker, when the record at the
  // place it names is that marker.
  Status find_named();
  // Step 4: whether the round of the marker `h` read at `at` is whole.
  Result<bool> round_whole(const RecordHeader& h, Cursor at);
  // Step 5: takes segment `at->i`'s summary instead of reading it, when it
  // may stand for it; true: taken, `*at` is the next segment's start.
  Result<bool> take_summary(Cursor* at);
  // Whether an intact summary of `segment` with these seqs is on disk.
  Result<bool> summary_there(uint64_t segment, uint64_t first_seq, uint64_t seal_seq);
  // A record of at most 64 payload bytes, read alone (a small pread, not a
  // chunk): nullopt when it is not an intact record of `kind` of this core
  // placed there.
  Result<std::optional<RecordHeader>> small_record(uint64_t segment, uint64_t offset,
                                                   RecordKind kind);
  Result<std::optional<RecordHeader>> segment_head(uint64_t segment);

  const std::string& _log_dir;
  unsigned _core;
  std::vector<uint64_t> _segments;
  uint64_t _first = 1;
  // A log whose front was retired (or whose `retained` marker is damaged):
  // the visitor takes its records only from its first whole round (step 4).
  bool _front_retired = false;
  bool _index_started = true;  // the visitor takes records
  bool _folding = true;        // ... as Feed::everything
  // The seq of the marker the image folds from (the named one, with
  // summaries); 0: the first whole one (a retired front) or the start.
  uint64_t _fold_from = 0;
  uint64_t _front_seq = 0;  // the seq reading starts from
  std::optional<RoundPlace> _named;  // step 4
  const ReplayVisitor& _visit;
  const ReplayOptions& _options;
  std::set<uint64_t> _summarized;  // segments taken from their summaries (step 5)
  // Summaries take_summary read and turned down (nullopt: no file), by
  // segment: summary_there asks again at the segment's seal.
  std::map<uint64_t, std::optional<SegmentSummary>> _declined;
  // The segment being read: its header's seq, whether a record of it was
  // not visited or was damaged (no summary is written for it then).
  uint64_t _header_seq = 0;
  bool _segment_partial = false;
  SegmentReader _main;
  SegmentReader _ahead;
  size_t _main_open = SIZE_MAX;
  size_t _ahead_open = SIZE_MAX;
  uint64_t _expected = 1;
  uint64_t _batch = 0;
  uint64_t _last_unattributed_seq = 0;
  std::map<uint32_t, BucketSeen> _buckets;
  // Batches of this life of the log so far (a boot record begins a life),
  // and the bucket checkpoints not yet proven whole with what follows them
  // (a register record may follow in the same batch or the next, and a
  // crash may tear the life's last batch): promoted to last_checkpoint_seq
  // once a batch two after theirs begins in the same life.
  uint64_t _life_batches = 0;
  struct PendingCheckpoint {
    uint32_t bucket = 0;
    uint64_t seq = 0;
    uint64_t batch = 0;  // its _life_batches
  };
  std::deque<PendingCheckpoint> _pending_checkpoints;
  void count_batch(const RecordHeader& h);
  struct {
    uint64_t segment = 0;
    uint64_t bytes = 0;
  } _segment_bytes_seen;  // from the last segment header read
  CoreReport _report;
};

Status CoreScanner::open(SegmentReader& reader, size_t i, size_t* opened) {
  if (*opened == i) return {};
  *opened = SIZE_MAX;
  Status status = reader.open(segment_path(_log_dir, _core, _segments[i]));
  if (!status) return status;
  *opened = i;
  return {};
}

// Reads and verifies the record at `at` (not its seq: the caller's business).
Result<Probed> CoreScanner::probe(SegmentReader& reader, Cursor at, size_t* opened) {
  Status status = open(reader, at.i, opened);
  if (!status) return status.error();
  Probed p;
  Result<std::span<const char>> head = reader.view(at.offset, record_header_bytes);
  if (!head) return head.error();
  if (head->empty()) return p;  // Probe::end
  p.probe = Probe::bad_header;
  const uint64_t segment = _segments[at.i];
  if (decode_header(head->data(), segment, &p.header) != HeaderCheck::ok) return p;
  const RecordHeader& h = p.header;
  const bool placed = h.core == _core && uint64_t{h.location} * record_align == at.offset &&
                      ((at.offset == 0) == (h.kind == RecordKind::segment_header));
  if (!placed) return p;
  p.probe = Probe::bad_payload;
  Result<std::span<const char>> body =
      reader.view(at.offset + record_header_bytes, h.payload_bytes);
  if (!body) return body.error();
  if (body->size() != h.payload_bytes || !payload_intact(h, *body)) return p;
  p.payload = *body;
  p.probe = Probe::good;
  return p;
}

// Scans from `from` to the end of the log for good records (at 8-byte
// steps, skipping zeros quickly), stopping once both a resume point and
// proof of a later batch are known.
Result<Look> CoreScanner::look_ahead(Cursor from, uint64_t missing_seq) {
  COWORKER_ASSERT(from.i < _segments.size());
  COWORKER_ASSERT(missing_seq >= 1);
  Look look;
  look.dirty_end = from.offset;
  for (size_t i = from.i; i < _segments.size(); i++) {
    Status status = open(_ahead, i, &_ahead_open);
    if (!status) return status.error();
    uint64_t offset = i == from.i ? record_align_up(from.offset) : 0;
    while (offset + record_align <= _ahead.size()) {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(SegmentReader::chunk_bytes, _ahead.size() - offset) &
          ~uint64_t{record_align - 1});
      Result<std::span<const char>> chunk = _ahead.view(offset, n);
      if (!chunk) return chunk.error();
      size_t k = 0;
      while (k < n) {
        uint64_t word;
        std::memcpy(&word, chunk->data() + k, sizeof(word));
        if (word == 0) {
          k += record_align;
          continue;
        }
        if (i == from.i) look.dirty_end = std::max(look.dirty_end, offset + k + record_align);
        if (static_cast<uint32_t>(word) == record_magic) break;
        k += record_align;
      }
      if (k >= n) {
        offset += n;
        continue;
      }
      const Cursor at{i, offset + k};
      Result<Probed> p = probe(_ahead, at, &_ahead_open);
      if (!p) return p.error();
      if (p->probe != Probe::good) {
        offset = at.offset + record_align;
        continue;
      }
      const RecordHeader& h = p->header;
      const uint64_t end = at.offset + record_bytes(h.payload_bytes);
      if (i == from.i) look.dirty_end = std::max(look.dirty_end, end);
      if (h.seq >= missing_seq) {
        look.records++;
        if (!look.found) {
          look.found = true;
          look.resume = at;
          look.resume_seq = h.seq;
          look.resume_batch = h.batch_first_seq;
        }
      }
      if (h.batch_first_seq > missing_seq) look.later_batch = true;
      if (look.found && look.later_batch) return look;
      offset = end;
    }
  }
  return look;
}

// A round's bucket checkpoint at the committed end keeps the register
// folded before it, and the round stages that register again right after
// it (PhaserDurable::apply; BucketHost::checkpoints): until that record
// is known to be on the disk, the checkpoint does not stand for the
// bucket's state, and damage to the register's earlier record is not
// covered by it. A crash tears only the last batch of a life, and the two
// records lie in one batch or two consecutive ones, so a batch two after
// the checkpoint's, in the same life, proves it whole. (Found by the
// simulator's damage probe, phaser-repair seed 944: a round torn between a
// checkpoint and its register, and the register's earlier record flipped,
// recovered without an acknowledged register and with nothing suspect.)
//
// A life's first batch opens with its boot record, or with a segment's
// header and then the boot (LogStore::open places a fresh segment's header
// first): so nothing is promoted at a segment header, only at the record
// after it, once it is known not to be a boot.
void CoreScanner::count_batch(const RecordHeader& h) {
  if (h.kind == RecordKind::boot) {
    // A new life: the last batches of the one before may have been torn.
    _pending_checkpoints.clear();
    _life_batches = 1;  // the batch holding the boot is the new life's first
    return;
  }
  if (h.batch_first_seq == h.seq) _life_batches++;
  if (h.kind == RecordKind::segment_header) return;
  while (!_pending_checkpoints.empty() &&
         _pending_checkpoints.front().batch + 2 <= _life_batches) {
    const PendingCheckpoint& c = _pending_checkpoints.front();
    BucketSeen& seen = _buckets[c.bucket];
    seen.last_checkpoint_seq = std::max(seen.last_checkpoint_seq, c.seq);
    _pending_checkpoints.pop_front();
  }
}

// Step 4b: a boot record that names itself, with no whole round before it
// and none named: the life after a recovery that folded nothing. The
// visitor and the image start here; the front before it stays
// unattributed damage, so what that life's first batch did not reset (a
// crash may have torn it after the boot record) is suspect again.
void CoreScanner::start_at_boot(const Probed& p) {
  const RecordHeader& h = p.header;
  if (h.kind != RecordKind::boot || _folding || _named) return;
  if (decode_boot_payload(p.payload).value_or(0) != h.seq) return;
  COWORKER_ASSERT(!_index_started);  // no whole round before it
  add_front_damage(h.seq);
  _index_started = true;
  _folding = true;
}

Status CoreScanner::accept(const Probed& p, Cursor at) {
  const RecordHeader& h = p.header;
  COWORKER_ASSERT(h.seq == _expected);
  COWORKER_ASSERT(h.batch_first_seq == _batch || h.batch_first_seq == h.seq);
  start_at_boot(p);
  count_batch(h);
  _batch = h.batch_first_seq;
  _expected = h.seq + 1;
  _report.last_seq = h.seq;
  _report.bytes += record_bytes(h.payload_bytes);
  if (h.kind == RecordKind::segment_header) {
    if (auto header = decode_segment_header_payload(p.payload)) {
      _segment_bytes_seen.segment = _segments[at.i];
      _segment_bytes_seen.bytes = header->segment_bytes;
    }
  }
  if (h.kind == RecordKind::segment_header) {
    _header_seq = h.seq;
    _segment_partial = false;
  }
  if (h.kind == RecordKind::seal && _options.sealed && _header_seq != 0) {
    const uint64_t segment = _segments[at.i];
    Result<bool> there = summary_there(segment, _header_seq, h.seq);
    if (!there) return there.error();
    _options.sealed(SealedSegment{_core, segment, _header_seq, h.seq, !_segment_partial, *there});
  }
  if (record_kind_internal(h.kind)) return {};
  if (h.kind == RecordKind::checkpoint_round && !_folding) {
    if (!_index_started) {
      Result<bool> whole = round_whole(h, at);
      if (!whole) return whole.error();
      _index_started = *whole;
    }
    _folding = _index_started && (_fold_from == 0 || h.seq == _fold_from);
  }
  BucketSeen& seen = _buckets[h.bucket];  // suspect if no round follows
  if (!_index_started) {
    _segment_partial = true;
    return {};  // its state is in the round after it
  }
  _report.records++;
  if (h.kind == RecordKind::bucket_checkpoint) {
    _pending_checkpoints.push_back(PendingCheckpoint{h.bucket, h.seq, _life_batches});
  } else if (record_kind_checkpoint(h.kind)) {
    seen.last_checkpoint_seq = h.seq;  // whole in itself
  }
  const Feed feed = _folding ? Feed::everything : Feed::index_only;
  _visit(ReplayedRecord{_core, _segments[at.i], at.offset, h, p.payload, feed});
  return {};
}

Result<std::optional<RecordHeader>> CoreScanner::small_record(uint64_t segment, uint64_t offset,
                                                              RecordKind kind) {
  char bytes[record_bytes(64)];
  const int fd = ::open(segment_path(_log_dir, _core, segment).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno{errno};
  const ssize_t n = ::pread(fd, bytes, sizeof(bytes), static_cast<off_t>(offset));
  const int e = errno;
  ::close(fd);
  if (n < 0) return Errno{e};
  RecordHeader h;
  const bool ok = static_cast<size_t>(n) >= record_header_bytes &&
                  decode_header(bytes, segment, &h) == HeaderCheck::ok && h.core == _core &&
                  uint64_t{h.location} * record_align == offset && h.kind == kind &&
                  record_header_bytes + h.payload_bytes <= static_cast<size_t>(n) &&
                  payload_intact(h, std::span<const char>(bytes + record_header_bytes,
                                                          h.payload_bytes));
  if (!ok) return std::optional<RecordHeader>();
  return std::optional<RecordHeader>(h);
}

Result<std::optional<RecordHeader>> CoreScanner::segment_head(uint64_t segment) {
  return small_record(segment, 0, RecordKind::segment_header);
}

Status CoreScanner::find_named() {
  Result<std::optional<RoundPlace>> place = read_round(_log_dir, _core);
  if (!place) return place.error();
  if (!*place || !std::binary_search(_segments.begin(), _segments.end(), (*place)->segment)) {
    return {};
  }
  Result<std::optional<RecordHeader>> marker =
      small_record((*place)->segment, (*place)->offset, RecordKind::checkpoint_round);
  if (!marker) return marker.error();
  if (*marker && (*marker)->seq == (*place)->seq) _named = **place;
  return {};
}

// A round's records follow its marker, and within one life of the log a
// round is staged only once the one before it was durable whole
// (Core::make_round). So the next marker, read before any boot record,
// proves this round whole; a boot record first means a crash came between
// them, and may have cut this round short.
Result<bool> CoreScanner::round_whole(const RecordHeader& h, Cursor at) {
  COWORKER_ASSERT(h.kind == RecordKind::checkpoint_round);
  if (_named && _named->seq == h.seq) return true;  // named once durable whole
  Cursor c{at.i, at.offset + record_bytes(h.payload_bytes)};
  uint64_t expected = h.seq + 1;
  for (;;) {
    Result<Probed> p = probe(_ahead, c, &_ahead_open);
    if (!p) return p.error();
    const RecordHeader& r = p->header;
    if (p->probe != Probe::good || r.seq != expected) return false;  // an end, or damage
    if (r.kind == RecordKind::checkpoint_round) return true;
    if (r.kind == RecordKind::boot) {
      // The next life's open names the round its recovery found whole.
      return decode_boot_payload(p->payload).value_or(0) == h.seq;
    }
    expected++;
    c.offset += record_bytes(r.payload_bytes);
    if (r.kind != RecordKind::seal) continue;
    if (c.i + 1 >= _segments.size() || _segments[c.i + 1] != _segments[c.i] + 1) return false;
    c = Cursor{c.i + 1, 0};
  }
}

Result<bool> CoreScanner::summary_there(uint64_t segment, uint64_t first_seq, uint64_t seal_seq) {
  if (_summarized.contains(segment)) return true;
  std::optional<SegmentSummary> summary;
  if (auto declined = _declined.find(segment); declined != _declined.end()) {
    summary = std::move(declined->second);
    _declined.erase(declined);
  } else {
    Result<std::optional<SegmentSummary>> read = read_summary(_log_dir, _core, segment);
    if (!read) return read.error();
    summary = std::move(*read);
  }
  return summary.has_value() && summary->first_seq == first_seq && summary->seal_seq == seal_seq;
}

Result<bool> CoreScanner::take_summary(Cursor* at) {
  // Only below the named round, once the visitor takes records and before
  // the image does: the image needs every record from its round on.
  if (!_options.summaries || !_named || !_index_started || _folding) return false;
  // After damage every record is read: which buckets it hit goes by the
  // checkpoints read after it (suspects, below).
  if (!_report.damages.empty()) return false;
  const size_t i = at->i;
  if (at->offset != 0 || _segments[i] >= _named->segment) return false;
  if (i + 1 >= _segments.size() || _segments[i + 1] != _segments[i] + 1) return false;
  Result<std::optional<SegmentSummary>> summary = read_summary(_log_dir, _core, _segments[i]);
  if (!summary) return summary.error();
  // Turned down below: the segment is read, and its seal asks again.
  auto decline = [&] {
    _declined[_segments[i]] = std::move(*summary);
    return false;
  };
  if (!*summary || (*summary)->first_seq != _expected) return decline();
  // Its segment's header and the next one's are the ones it names (a
  // summary of another life of the segment has other seqs).
  Result<std::optional<RecordHeader>> head = segment_head(_segments[i]);
  if (!head) return head.error();
  if (!*head || (*head)->seq != _expected ||
      ((*head)->batch_first_seq != _batch && (*head)->batch_first_seq != _expected)) {
    return decline();
  }
  Result<std::optional<RecordHeader>> next = segment_head(_segments[i + 1]);
  if (!next) return next.error();
  if (!*next || (*next)->seq != (*summary)->seal_seq + 1) return decline();
  if (!_options.summaries(**summary)) return decline();
  const SegmentSummary& taken = **summary;
  _summarized.insert(taken.segment);
  _report.summarized++;
  _report.unread.push_back(
      SealedSegment{_core, taken.segment, taken.first_seq, taken.seal_seq, true, true});
  _report.last_seq = taken.seal_seq;
  _expected = taken.seal_seq + 1;
  _batch = (*next)->batch_first_seq;
  *at = Cursor{i + 1, 0};
  return true;
}

void CoreScanner::add_damage(Damage::What what, uint64_t segment, uint64_t offset,
                             std::optional<uint32_t> bucket, const Look& look) {
  _segment_partial = true;
  if (bucket) COWORKER_ASSERT(what == Damage::What::bad_payload);
  if (look.found) COWORKER_ASSERT(look.resume_seq >= _expected);
  Damage d{what, segment, offset, _expected, look.found ? look.resume_seq : 0, bucket};
  // What the damage hid may have been a boot record (a new life): no
  // checkpoint before it is proven whole by batches after it.
  _pending_checkpoints.clear();
  if (bucket) {
    BucketSeen& seen = _buckets[*bucket];
    seen.last_damage_seq = std::max(seen.last_damage_seq, _expected);
  } else {
    _last_unattributed_seq = std::max(_last_unattributed_seq, _expected);
    _report.unattributed = true;
  }
  _report.damages.push_back(d);
}

// The log's front, from its first record on, holds nothing the image can
// fold (a retained log without a whole round, step 4; or before the boot
// record of step 4b): unattributed damage, up to `next_good` (0: the
// whole log).
void CoreScanner::add_front_damage(uint64_t next_good) {
  COWORKER_ASSERT(_front_seq > 0 && _front_seq <= _expected);
  _pending_checkpoints.clear();
  _last_unattributed_seq = std::max(_last_unattributed_seq, _front_seq);
  _report.unattributed = true;
  _report.damages.push_back(
      Damage{Damage::What::missing_segment, _first, 0, _front_seq, next_good, std::nullopt});
}

// The log ends at `at`: what follows was never acknowledged (or is missing).
void CoreScanner::end_at(Cursor at, const Look& look, bool torn_possible) {
  COWORKER_ASSERT(at.i < _segments.size());
  COWORKER_ASSERT(!look.later_batch);  // else it is corruption, not an end
  Resume& r = _report.resume;
  r.segment = _segments[at.i];
  r.offset = at.offset;
  r.next_seq = _expected;
  r.segment_bytes = _segment_bytes_seen.segment == r.segment ? _segment_bytes_seen.bytes : 0;
  // The store tells of this segment's seal only when the index saw all of it.
  r.header_seq = _segment_bytes_seen.segment == r.segment && !_segment_partial ? _header_seq : 0;
  if (r.offset > 0 && r.segment_bytes < r.offset + record_header_bytes) {
    // The segment header was lost to damage: its file size is the next best.
    Status opened = open(_main, at.i, &_main_open);
    r.segment_bytes = std::max<uint64_t>(opened ? _main.size() : 0, r.offset + record_header_bytes);
  }
  r.erase_end = std::max(look.dirty_end, at.offset);
  for (size_t j = at.i + 1; j < _segments.size(); j++) r.discard.push_back(_segments[j]);
  const bool dirty = r.erase_end > at.offset || look.records > 0;
  if (torn_possible && dirty) {
    _report.torn = TornTail{r.segment, at.offset, r.erase_end - at.offset, look.records,
                            r.discard.size()};
  }
}

void CoreScanner::compute_suspects() {
  bool membership = false;
  for (const auto& [bucket, seen] : _buckets) {
    const bool hit = seen.last_damage_seq > seen.last_checkpoint_seq ||
                     _last_unattributed_seq > seen.last_checkpoint_seq;
    if (!hit) continue;
    if (bucket == membership_bucket) {
      membership = true;
    } else if (bucket != internal_bucket) {
      _report.suspect_buckets.push_back(bucket);
    }
  }
  // Damage no header names may have held the only records of a bucket (or
  // of the promise counter), which then leaves nothing to make it suspect:
  // the participant must give up the id that acked or promised with them.
  // The counter's bucket says so, as it does when it has records here,
  // until a reset of it follows the damage (repair.h step 3). Found by the
  // simulator's damage probe (tests/sim/log_files.h step 4): a lost counter
  // record recovered as counter 0.
  if (_last_unattributed_seq > 0 && !_buckets.contains(participant_bucket)) {
    COWORKER_ASSERT(_report.suspect_buckets.empty() ||
                    _report.suspect_buckets.back() < participant_bucket);
    _report.suspect_buckets.push_back(participant_bucket);
  }
  // Core 0 holds the membership state even when damage left no record of it.
  if (_core == 0 && _last_unattributed_seq > 0 &&
      _buckets[membership_bucket].last_checkpoint_seq < _last_unattributed_seq) {
    membership = true;
  }
  _report.membership_suspect = membership;
}

Result<CoreReport> CoreScanner::run() {
  _report.core = _core;
  // Files below the first kept segment: retired already, deleted at open.
  while (!_segments.empty() && _segments.front() < _first) {
    _report.resume.retire.push_back(_segments.front());
    _segments.erase(_segments.begin());
  }
  _report.segments = _segments.size();
  _report.resume.first_segment = _first;
  if (_segments.empty()) {
    _report.resume.segment = _first;
    return _report;
  }
  Cursor at{0, 0};
  Look none;
  bool resync = _segments[0] != _first;
  if (resync) add_damage(Damage::What::missing_segment, _first, 0, {}, none);
  if (!resync && _first > 1) {
    // A retained log starts at its first segment header's seq.
    Result<Probed> head = probe(_main, at, &_main_open);
    if (!head) return head.error();
    if (head->probe == Probe::good && head->header.kind == RecordKind::segment_header) {
      _expected = head->header.seq;
      _batch = head->header.batch_first_seq;
    } else {
      add_damage(Damage::What::bad_header, _first, 0, {}, none);
      resync = true;
    }
  }
  _front_seq = _expected;
  if (Status named = find_named(); !named) return named.error();
  if (_named) _report.resume.whole_round_seq = _named->seq;
  // Step 4: where the visitor and the image begin.
  _index_started = !_front_retired;
  if (_options.summaries && _named) _fold_from = _named->seq;
  _folding = _index_started && _fold_from == 0;
  for (;;) {
    if (_options.stop && _options.stop->load(std::memory_order_relaxed)) return Errno{ECANCELED};
    if (!resync) {
      Result<bool> taken = take_summary(&at);
      if (!taken) return taken.error();
      if (*taken) continue;
    }
    if (resync) {
      // After a missing segment: continue at the next good record, if any.
      resync = false;
      Result<Look> look = look_ahead(at, _expected);
      if (!look) return look.error();
      if (!look->found) {
        end_at(at, *look, false);
        break;
      }
      _report.damages.back().next_good_seq = look->resume_seq;
      at = look->resume;
      _expected = look->resume_seq;
      _batch = look->resume_batch;
    }
    Result<Probed> p = probe(_main, at, &_main_open);
    if (!p) return p.error();
    const RecordHeader& h = p->header;
    const bool in_order = h.seq == _expected &&
                          (h.batch_first_seq == _batch || h.batch_first_seq == h.seq);
    if (p->probe == Probe::good && in_order) {
      if (Status accepted = accept(*p, at); !accepted) return accepted.error();
      at.offset += record_bytes(h.payload_bytes);
      if (h.kind != RecordKind::seal) continue;
      const uint64_t next = _segments[at.i] + 1;
      if (at.i + 1 < _segments.size() && _segments[at.i + 1] == next) {
        at = Cursor{at.i + 1, 0};
        continue;
      }
      add_damage(Damage::What::missing_segment, next, 0, {}, none);
      if (at.i + 1 == _segments.size()) {
        // Nothing after the gap: continue in a new segment past it.
        Resume& r = _report.resume;
        r.segment = next + 1;
        r.offset = 0;
        r.next_seq = _expected;
        r.segment_bytes = 0;
        r.erase_end = 0;
        r.discard.clear();
        break;
      }
      at = Cursor{at.i + 1, 0};
      resync = true;
      continue;
    }
    // Not a good continuation: the end, a torn tail, or damage. Where the
    // header is intact, skip the record itself; a record from the future
    // (seq too high) may be where reading resumes.
    Cursor from = at;
    const bool intact_header = p->probe == Probe::good || p->probe == Probe::bad_payload;
    if (intact_header && !(p->probe == Probe::good && h.seq > _expected)) {
      from.offset += record_bytes(h.payload_bytes);
    }
    Result<Look> look = look_ahead(from, _expected);
    if (!look) return look.error();
    if (!look->later_batch) {
      end_at(at, *look, true);
      break;
    }
    if (p->probe == Probe::bad_payload && h.seq == _expected && in_order) {
      // The header is intact and in place: exactly one record of a known
      // bucket is lost, and the next record starts right after it.
      Look one;
      one.found = true;
      one.resume_seq = h.seq + 1;
      add_damage(Damage::What::bad_payload, _segments[at.i], at.offset, h.bucket, one);
      _expected = h.seq + 1;
      _batch = h.batch_first_seq;
      at = from;
      continue;
    }
    const Damage::What what =
        p->probe == Probe::good ? Damage::What::misplaced : Damage::What::bad_header;
    add_damage(what, _segments[at.i], at.offset, {}, *look);
    at = look->resume;
    _expected = look->resume_seq;
    _batch = look->resume_batch;
  }
  if (!_folding) {
    // Retired below a whole round that is not there, or the named round
    // lost to damage: the image holds nothing this log can vouch for.
    add_front_damage(0);
    _report.resume.image_from_boot = true;  // step 4b
  }
  compute_suspects();
  return _report;
}

}  // namespace

uint64_t boot_names(const Resume& resume, uint64_t boot_seq) {
  COWORKER_ASSERT(boot_seq >= resume.next_seq);
  return resume.image_from_boot ? boot_seq : resume.whole_round_seq;
}

const char* damage_name(Damage::What what) {
  switch (what) {
    case Damage::What::bad_header: return "bad header";
    case Damage::What::bad_payload: return "bad payload";
    case Damage::What::misplaced: return "misplaced record";
    case Damage::What::missing_segment: return "missing segment";
  }
  return "?";
}

bool CoreReport::suspect(uint32_t bucket) const {
  if (bucket == membership_bucket) return membership_suspect;
  return std::binary_search(suspect_buckets.begin(), suspect_buckets.end(), bucket);
}

std::string CoreReport::describe() const {
  std::string out;
  char line[256];
  if (torn) {
    std::snprintf(line, sizeof(line),
                  "core %u: torn tail cut at segment %llu offset %llu: %llu bytes, %llu "
                  "unacknowledged records, %llu later segments; log ends at seq %llu\n",
                  core, (unsigned long long)torn->segment, (unsigned long long)torn->offset,
                  (unsigned long long)torn->bytes, (unsigned long long)torn->records,
                  (unsigned long long)torn->segments, (unsigned long long)last_seq);
    out += line;
  }
  for (const Damage& d : damages) {
    std::snprintf(line, sizeof(line),
                  "core %u: CORRUPTION (%s) at segment %llu offset %llu: seq %llu..%s "
                  "lost%s\n",
                  core, damage_name(d.what), (unsigned long long)d.segment,
                  (unsigned long long)d.offset, (unsigned long long)d.first_missing_seq,
                  d.next_good_seq ? std::to_string(d.next_good_seq - 1).c_str() : "",
                  d.bucket ? " (one record)" : "");
    out += line;
  }
  if (corrupt()) {
    out += "core " + std::to_string(core) + ": suspect buckets:";
    for (uint32_t b : suspect_buckets) out += " " + std::to_string(b);
    if (suspect_buckets.empty()) out += " none (checkpoints or resets after the damage)";
    if (unattributed) out += " (+ any bucket without surviving records: unattributed damage)";
    if (membership_suspect) out += "; membership state suspect";
    out += "\n";
  }
  return out;
}

CoreReport Recovery::core(unsigned core) const {
  for (const CoreReport& r : cores) {
    if (r.core == core) return r;
  }
  CoreReport fresh;
  fresh.core = core;
  return fresh;
}

Result<CoreReport> replay_core(const std::string& log_dir, unsigned core,
                               const ReplayVisitor& visit, const ReplayOptions& options) {
  Result<std::vector<uint64_t>> segments = list_segments(log_dir, core);
  if (!segments) return segments.error();
  Result<std::optional<uint64_t>> retained = read_retained(log_dir, core);
  if (!retained) return retained.error();
  // An unreadable marker: the front counts as missing from segment 1, and
  // the fold waits for a round marker as in any retained log (none: every
  // bucket suspect).
  // A marker above every segment would make recovery delete them all:
  // damage, like an unreadable one.
  if (*retained && !segments->empty() && **retained > segments->back()) retained->reset();
  CoreScanner scanner(log_dir, core, std::move(*segments), retained->value_or(1),
                      !retained->has_value(), visit, options);
  return scanner.run();
}

Result<Recovery> replay_log(const std::string& log_dir, const ReplayVisitor& visit,
                            const ReplayOptions& options) {
  Result<std::vector<unsigned>> cores = list_cores(log_dir);
  if (!cores) return cores.error();
  Recovery recovery;
  for (unsigned core : *cores) {
    Result<CoreReport> report = replay_core(log_dir, core, visit, options);
    if (!report) return report.error();
    const std::string text = report->describe();
    if (!text.empty()) std::fputs(text.c_str(), stderr);
    recovery.cores.push_back(std::move(*report));
  }
  return recovery;
}

}  // namespace coworker::bucket
