// The byte codecs of the consensus messages and records (paxos_codec.h,
// membership_codec.h, phaser_codec.h), alone: random values of every
// alternative drawn from a Prng survive a round trip byte for byte; every
// truncation, appended byte, unknown tag, bad version and corrupted write
// fails closed with its reason; fixed vectors pin the format.
#include <doctest/doctest.h>

#include <cstdint>
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "consensus/codec.h"
#include "consensus/dedup.h"
#include "consensus/membership_codec.h"
#include "consensus/paxos_codec.h"
#include "consensus/phaser_codec.h"
#include "consensus/prng.h"

namespace coworker::consensus {

// ---- Equality for the values that lack it: field by field ----

auto fields(const Snapshot& x) { return std::tie(x.slot, x.bytes, x.schedule); }
auto fields(const SlotEntry& x) { return std::tie(x.slot, x.entry); }
auto fields(const AcceptedEntry& x) { return std::tie(x.slot, x.ballot, x.entry); }
auto fields(const Prepare& x) { return std::tie(x.ballot, x.from); }
auto fields(const Promised& x) {
  return std::tie(x.ballot, x.from, x.compacted_through, x.accepted);
}
auto fields(const Reject& x) { return std::tie(x.ballot, x.promised, x.leader); }
auto fields(const Accept& x) { return std::tie(x.ballot, x.decided_through, x.entries); }
auto fields(const Accepted& x) { return std::tie(x.ballot, x.slots); }
auto fields(const Heartbeat& x) { return std::tie(x.ballot, x.sent, x.decided_through); }
auto fields(const HeartbeatAck& x) { return std::tie(x.ballot, x.sent, x.decided_through); }
auto fields(const CatchUp& x) { return std::tie(x.from); }
auto fields(const Learn& x) { return std::tie(x.snapshot, x.first, x.entries); }
auto fields(const Forward& x) { return std::tie(x.entries); }
auto fields(const Forwarded& x) { return std::tie(x.decided); }
auto fields(const PersistBoot& x) { return std::tie(x.boots); }
auto fields(const PersistPromise& x) { return std::tie(x.ballot); }
auto fields(const PersistAccept& x) { return std::tie(x.accepted); }
auto fields(const PersistSnapshot& x) { return std::tie(x.snapshot); }
auto fields(const ArriveRequest& x) { return std::tie(x.params, x.address, x.nonce); }
auto fields(const ArriveAnswer& x) {
  return std::tie(x.nonce, x.id, x.snapshot, x.refusal, x.gone, x.incarnation);
}
auto fields(const MemberHeartbeat& x) {
  return std::tie(x.sent, x.applied, x.recovering, x.boot);
}
auto fields(const MemberAck& x) { return std::tie(x.sent, x.slot, x.gone, x.compacted, x.boot); }
auto fields(const SilentReport& x) { return std::tie(x.replica); }
auto fields(const Write& x) {
  return std::tie(x.bucket, x.promise, x.number, x.first, x.entries, x.checksum, x.commit);
}
auto fields(const Ack& x) {
  return std::tie(x.bucket, x.promise, x.number, x.end, x.commit_only, x.from);
}
auto fields(const Nack& x) { return std::tie(x.bucket, x.promise, x.from); }
auto fields(const CommitNotice& x) { return std::tie(x.bucket, x.promise, x.commit); }
// The writes, not the pointers.
std::vector<Write> values(const std::vector<WritePtr>& writes) {
  std::vector<Write> out;
  for (const WritePtr& w : writes) out.push_back(*w);
  return out;
}
auto fields(const Catchup& x) {
  return std::make_tuple(x.bucket, x.promise, values(x.writes), x.discard);
}
auto fields(const CatchupAck& x) {
  return std::tie(x.bucket, x.promise, x.end, x.from, x.offer, x.life);
}
auto fields(const CommittedState& x) {  // the table, not the pointer
  return std::tie(x.promise, x.commit_end, x.last_commit, x.last_commit_first, x.last_filled,
                  *x.dedup);
}
auto fields(const CatchupSnapshot& x) {
  return std::tuple_cat(std::make_tuple(x.bucket), fields(x.state));
}
auto fields(const PromiseRecord& x) { return std::tie(x.promise); }
auto fields(const RegisterRecord& x) { return std::tie(*x.write); }  // the write, not the pointer
auto fields(const CommitRecord& x) { return std::tie(x.mark, x.first); }
auto fields(const CheckpointRecord& x) {
  return std::tuple_cat(fields(x.state), std::make_tuple(x.register_follows));
}
auto fields(const ResetRecord& x) { return std::tie(x.promise); }
auto fields(const RepairRecord& x) { return std::tie(x.promise); }

template <class T>
  requires requires(const T& x) { fields(x); }
bool operator==(const T& a, const T& b) {
  return fields(a) == fields(b);
}

}  // namespace coworker::consensus

using namespace coworker::consensus;

namespace {

// A WritePtr compares by address; compare the writes.
bool same(const PhaserMessage& a, const PhaserMessage& b) {
  const auto* wa = std::get_if<WritePtr>(&a);
  const auto* wb = std::get_if<WritePtr>(&b);
  if (wa != nullptr && wb != nullptr) return **wa == **wb;
  return a == b;
}
template <class T>
bool same(const T& a, const T& b) {
  return a == b;
}

// How big random values get: small ones keep the every-prefix tests fast.
struct Shape {
  size_t bytes_max = 0;
  size_t items_max = 0;
};
constexpr Shape small_shape{6, 2};
constexpr Shape large_shape{400, 5};

// Random values of every type, from one Prng stream. Integers lean to the
// edges of their varint encodings (0, one byte, two bytes, the maximum).
class Gen {
 public:
  Gen(uint64_t seed, Shape shape) : _prng(seed), _shape(shape) {}

  Prng& prng() { return _prng; }

  uint64_t u64() {
    switch (_prng.below(6)) {
      case 0: return 0;
      case 1: return _prng.below(0x80);
      case 2: return _prng.below(uint64_t{1} << 14);
      case 3: return _prng.next() >> _prng.below(64);
      case 4: return UINT64_MAX - _prng.below(2);
      default: return _prng.next();
    }
  }
  uint32_t u32() {
    if (_prng.chance(1, 6)) return UINT32_MAX;
    return static_cast<uint32_t>(u64());
  }
  bool boolean() { return _prng.chance(1, 2); }
  size_t items() { return _prng.below(_shape.items_max + 1); }
  std::string bytes() {
    // Mostly short; now and then past one length byte.
    const size_t max =
        _prng.chance(1, 4) ? _shape.bytes_max : std::min<size_t>(_shape.bytes_max, 8);
    std::string text(_prng.below(max + 1), '\0');
    for (char& c : text) c = static_cast<char>(_prng.below(256));
    return text;
  }
  std::vector<uint64_t> ids() {
    std::vector<uint64_t> values(items());
    for (uint64_t& value : values) value = u64();
    return values;
  }
  template <class T, class Make>
  std::vector<T> many(Make make) {
    std::vector<T> values;
    for (size_t n = items(); n > 0; n--) values.push_back(make());
    return values;
  }

  Ballot ballot() { return Ballot{u64(), u64()}; }
  ProposalId proposal_id() { return ProposalId{u64(), u64(), u64()}; }
  Promise promise() { return Promise{u64(), u32()}; }
  Entry entry() { return Entry{proposal_id(), bytes(), ids(), ids()}; }
  SlotEntry slot_entry() { return SlotEntry{u64(), entry()}; }
  AcceptedEntry accepted_entry() { return AcceptedEntry{u64(), ballot(), entry()}; }
  Snapshot snapshot() {
    Snapshot snapshot{u64(), bytes(), {}};
    // A map sorts its random keys: the encoding's increasing order.
    for (size_t n = items(); n > 0; n--) {
      const Slot first = u64();
      snapshot.schedule[first] = ScheduledVoters{u64(), ids()};
    }
    return snapshot;
  }

  Message paxos_message();
  PersistRecord paxos_record();
  MembershipMessage membership_message();
  MembershipRecord membership_record();
  PhaserMessage phaser_message();
  PhaserRecord phaser_record();

  // A connection (any issuer, 0 included: none) with either wrap; its
  // series below the wrap (the decoder checks it).
  BucketEntry bucket_entry() {
    ConnectionId connection{u64(), u64() >> 1, series_wrap_default};
    if (_prng.chance(1, 2)) {
      connection.wrap = series_wrap_min + _prng.below(series_wrap_default - series_wrap_min);
    }
    const uint64_t series = connection.valid() ? u64() % connection.wrap : u64();
    return BucketEntry{bytes(), connection, series, u64(), bytes()};
  }
  CommitMark mark() { return CommitMark{u64(), u64(), u32()}; }
  // A committed table: a few writes of a few connections, series increasing
  // along each, times growing, some expiring what came before (watermarks).
  std::shared_ptr<const DedupTable> dedup_table() {
    auto table = std::make_shared<DedupTable>();
    std::map<ConnectionId, uint64_t> series;
    const uint64_t n = _prng.below(6);
    Write write;
    write.first = _prng.below(1000);
    for (uint64_t i = 0; i < n; i++) {
      BucketEntry entry;
      // Connection 4 of each issuer has the smallest wrap and starts just
      // below it, so its series wrap around to 0.
      const uint64_t counter = 1 + _prng.below(4);
      const uint64_t wrap = counter == 4 ? series_wrap_min : series_wrap_default;
      entry.connection = ConnectionId{1 + _prng.below(3), counter, wrap};
      auto [it, fresh] = series.try_emplace(entry.connection, counter == 4 ? wrap - 3 : 0);
      uint64_t& s = it->second;
      s = (s + 1 + _prng.below(4)) % wrap;
      entry.series = s;
      entry.window = _prng.chance(1, 2) ? s : (s + wrap - _prng.below(2)) % wrap;
      write.entries = {entry};
      write.time += _prng.below(100);
      if (_prng.chance(1, 3)) write.expire_before = write.time - _prng.below(write.time - write.expire_before + 1);
      table->commit_write(write);
      write.first++;
    }
    return table;
  }
  CheckpointRecord checkpoint() {
    const CommitMark last = mark();
    const CommitMark filled{last.end, u64(), u32()};
    return CheckpointRecord{CommittedState{promise(), last.end, last,
                                           last.end - std::min(last.end, u64()), filled,
                                           dedup_table()},
                            boolean()};
  }
  WritePtr write() {
    auto write = std::make_shared<Write>();
    write->bucket = u32();
    write->promise = promise();
    write->number = u64();
    write->entries = many<BucketEntry>([&] { return bucket_entry(); });
    write->first = u64();
    if (write->first > UINT64_MAX - write->entries.size()) write->first -= write->entries.size();
    write->time = u64();
    write->expire_before = write->time - std::min(write->time, u64());
    write->checksum = checksum_of(*write);
    write->commit = mark();
    return write;
  }

 private:
  Prng _prng;
  Shape _shape;
};

Message Gen::paxos_message() {
  switch (_prng.below(std::variant_size_v<Message>)) {
    case 0: return Prepare{ballot(), u64()};
    case 1:
      return Promised{ballot(), u64(), u64(),
                      many<AcceptedEntry>([&] { return accepted_entry(); })};
    case 2: return Reject{ballot(), ballot(), u64()};
    case 3: return Accept{ballot(), u64(), many<SlotEntry>([&] { return slot_entry(); })};
    case 4: return Accepted{ballot(), ids()};
    case 5: return Heartbeat{ballot(), u64(), u64()};
    case 6: return HeartbeatAck{ballot(), u64(), u64()};
    case 7: return CatchUp{u64()};
    case 8: return Learn{snapshot(), u64(), many<Entry>([&] { return entry(); })};
    case 9: return Forward{many<Entry>([&] { return entry(); })};
    default: return Forwarded{many<ProposalId>([&] { return proposal_id(); })};
  }
}

PersistRecord Gen::paxos_record() {
  switch (_prng.below(std::variant_size_v<PersistRecord>)) {
    case 0: return PersistBoot{u64()};
    case 1: return PersistPromise{ballot()};
    case 2: return PersistAccept{accepted_entry()};
    default: return PersistSnapshot{snapshot()};
  }
}

MembershipMessage Gen::membership_message() {
  switch (_prng.below(std::variant_size_v<MembershipMessage>)) {
    case 0: return MembershipMessage{std::in_place_type<Message>, paxos_message()};
    case 1: return ArriveRequest{ClusterParams{u64(), u32(), u32()}, bytes(), Nonce{u64(), u64()}};
    case 2: return ArriveAnswer{Nonce{u64(), u64()}, u64(), snapshot(), bytes(), boolean(), u64()};
    case 3: return MemberHeartbeat{u64(), u64(), boolean(), u64()};
    case 4: return MemberAck{u64(), u64(), boolean(), u64(), u64()};
    default: return SilentReport{u64()};
  }
}

MembershipRecord Gen::membership_record() {
  if (_prng.chance(1, 2)) {
    return MembershipRecord{std::in_place_type<PersistRecord>, paxos_record()};
  }
  std::vector<std::string> remembered(_prng.below(3));
  for (std::string& address : remembered) address = bytes();
  Identity identity{u64(), u64(), u64(), boolean(), std::move(remembered), u64()};
  // Never above the incarnation (the decoder refuses it).
  if (_prng.chance(1, 2)) identity.void_through = identity.incarnation - identity.incarnation / 3;
  return identity;
}

PhaserMessage Gen::phaser_message() {
  switch (_prng.below(std::variant_size_v<PhaserMessage>)) {
    case 0: return PhaserMessage{std::in_place_type<WritePtr>, write()};
    case 1: return Ack{u32(), promise(), u64(), u64(), boolean(), u64()};
    case 2: return Nack{u32(), promise(), u64()};
    case 3: return CommitNotice{u32(), promise(), mark()};
    case 4: {
      std::vector<WritePtr> writes(_prng.below(3));
      for (WritePtr& w : writes) w = write();
      std::optional<CommitMark> discard;
      if (boolean()) discard = mark();
      return Catchup{u32(), promise(), std::move(writes), discard};
    }
    case 5: {
      CatchupAck ack{u32(), promise(), u64(), u64(), std::nullopt, CopyLife{u32(), u32()}};
      if (boolean()) ack.offer = CommitMark{ack.end, u64(), u32()};
      return ack;
    }
    default: {
      return CatchupSnapshot{u32(), checkpoint().state};
    }
  }
}

PhaserRecord Gen::phaser_record() {
  switch (_prng.below(std::variant_size_v<PhaserRecord>)) {
    case 0: return PromiseRecord{promise()};
    case 1: return RegisterRecord{write()};
    case 2: return CommitRecord{mark(), u64()};
    case 3: return ResetRecord{promise()};
    case 4: return RepairRecord{promise()};
    default: return checkpoint();
  }
}

// One family per decoder: how to draw a value and how to decode one.
struct PaxosMessages {
  static Message make(Gen& gen) { return gen.paxos_message(); }
  static Decoded<Message> decode(std::string_view b) { return decode_paxos_message(b); }
};
struct PaxosRecords {
  static PersistRecord make(Gen& gen) { return gen.paxos_record(); }
  static Decoded<PersistRecord> decode(std::string_view b) { return decode_paxos_record(b); }
};
struct MembershipMessages {
  static MembershipMessage make(Gen& gen) { return gen.membership_message(); }
  static Decoded<MembershipMessage> decode(std::string_view b) {
    return decode_membership_message(b);
  }
};
struct MembershipRecords {
  static MembershipRecord make(Gen& gen) { return gen.membership_record(); }
  static Decoded<MembershipRecord> decode(std::string_view b) {
    return decode_membership_record(b);
  }
};
struct PhaserMessages {
  static PhaserMessage make(Gen& gen) { return gen.phaser_message(); }
  static Decoded<PhaserMessage> decode(std::string_view b) { return decode_phaser_message(b); }
};
struct PhaserRecords {
  static PhaserRecord make(Gen& gen) { return gen.phaser_record(); }
  static Decoded<PhaserRecord> decode(std::string_view b) { return decode_phaser_record(b); }
};

constexpr uint64_t seed = 0xc0dec;

bool known_reason(const char* error) {
  static constexpr std::string_view reasons[] = {
      "truncated",       "varint too long", "non-minimal varint", "value too large",
      "bad bool",        "count too large", "bytes too large",    "bad version",
      "unknown tag",     "trailing bytes",  "unsorted keys",      "position overflow",
      "checksum mismatch", "bad value",
  };
  if (error == nullptr) return false;
  for (std::string_view reason : reasons) {
    if (reason == error) return true;
  }
  return false;
}

// Encode, decode, compare; the encoding of the decoded value is the same
// bytes (the format has one encoding per value).
template <class Family>
void check_round_trips(uint64_t stream, int rounds) {
  Gen gen(derive_seed(seed, stream), large_shape);
  for (int round = 0; round < rounds; round++) {
    const auto value = Family::make(gen);
    Writer writer;
    writer.u8(0xee);  // encode(Writer&) appends
    encode(writer, value);
    const std::string bytes = encode(value);
    REQUIRE(writer.data().substr(1) == bytes);
    const auto decoded = Family::decode(bytes);
    INFO("round " << round << ": " << (decoded.error ? decoded.error : ""));
    REQUIRE(decoded.value.has_value());
    CHECK(decoded.error == nullptr);
    CHECK(decoded.value->index() == value.index());
    CHECK(same(*decoded.value, value));
    CHECK(encode(*decoded.value) == bytes);
  }
}

// Every strict prefix fails with "truncated" or "count too large" (a count
// the rest cannot hold); one byte more fails with "trailing bytes".
template <class Family>
void check_truncations(uint64_t stream, int rounds) {
  Gen gen(derive_seed(seed, stream), small_shape);
  for (int round = 0; round < rounds; round++) {
    const std::string bytes = encode(Family::make(gen));
    for (size_t size = 0; size < bytes.size(); size++) {
      const auto decoded = Family::decode(std::string_view(bytes).substr(0, size));
      INFO("round " << round << " prefix " << size << " of " << bytes.size());
      REQUIRE(!decoded.value.has_value());
      const std::string_view error = decoded.error ? decoded.error : "";
      CHECK((error == "truncated" || error == "count too large"));
    }
    const auto longer = Family::decode(bytes + static_cast<char>(gen.prng().below(256)));
    REQUIRE(!longer.value.has_value());
    CHECK(std::string_view(longer.error) == "trailing bytes");
  }
}

// A changed byte either fails with a known reason or decodes to a value
// that encodes back to exactly the changed bytes.
template <class Family>
void check_corruptions(uint64_t stream, int rounds) {
  Gen gen(derive_seed(seed, stream), small_shape);
  for (int round = 0; round < rounds; round++) {
    std::string bytes = encode(Family::make(gen));
    bytes[gen.prng().below(bytes.size())] = static_cast<char>(gen.prng().below(256));
    const auto decoded = Family::decode(bytes);
    INFO("round " << round);
    if (decoded.value) {
      CHECK(decoded.error == nullptr);
      CHECK(encode(*decoded.value) == bytes);
    } else {
      CHECK(known_reason(decoded.error));
    }
  }
}

// Version byte 0 and 2 and tags 0, one past the last, and 255 fail.
template <class Family>
void check_version_and_tags(uint64_t stream, uint8_t tags) {
  Gen gen(derive_seed(seed, stream), small_shape);
  const std::string bytes = encode(Family::make(gen));
  const auto current = static_cast<uint8_t>(bytes[0]);
  for (uint8_t version : {uint8_t{0}, static_cast<uint8_t>(current + 1), uint8_t{0xff}}) {
    std::string changed = bytes;
    changed[0] = static_cast<char>(version);
    CHECK(std::string_view(Family::decode(changed).error) == "bad version");
  }
  for (uint8_t tag : {uint8_t{0}, static_cast<uint8_t>(tags + 1), uint8_t{0xff}}) {
    std::string changed = bytes;
    changed[1] = static_cast<char>(tag);
    CHECK(std::string_view(Family::decode(changed).error) == "unknown tag");
  }
  CHECK(std::string_view(Family::decode("").error) == "truncated");
  CHECK(std::string_view(Family::decode(std::string(1, static_cast<char>(current))).error) ==
        "truncated");
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  for (char c : bytes) {
    text += digits[static_cast<uint8_t>(c) >> 4];
    text += digits[static_cast<uint8_t>(c) & 15];
  }
  return text;
}

}  // namespace

TEST_CASE("codec: paxos: every message survives a round trip, byte for byte") {
  check_round_trips<PaxosMessages>(1, 20000);
}
TEST_CASE("codec: paxos: every record survives a round trip, byte for byte") {
  check_round_trips<PaxosRecords>(2, 20000);
}
TEST_CASE("codec: membership: every message survives a round trip, byte for byte") {
  check_round_trips<MembershipMessages>(3, 20000);
}
TEST_CASE("codec: membership: every record survives a round trip, byte for byte") {
  check_round_trips<MembershipRecords>(4, 20000);
}
TEST_CASE("codec: phaser: every message survives a round trip, byte for byte") {
  check_round_trips<PhaserMessages>(5, 20000);
}
TEST_CASE("codec: phaser: every record survives a round trip, byte for byte") {
  check_round_trips<PhaserRecords>(6, 20000);
}

TEST_CASE("codec: paxos: every truncation of a message or a record fails closed") {
  check_truncations<PaxosMessages>(11, 400);
  check_truncations<PaxosRecords>(12, 400);
}
TEST_CASE("codec: membership: every truncation of a message or a record fails closed") {
  check_truncations<MembershipMessages>(13, 400);
  check_truncations<MembershipRecords>(14, 400);
}
TEST_CASE("codec: phaser: every truncation of a write fails closed") {
  Gen gen(derive_seed(seed, 15), small_shape);
  for (int round = 0; round < 200; round++) {
    WritePtr write = gen.write();
    const std::string message = encode(PhaserMessage{write});
    const std::string record = encode(PhaserRecord{RegisterRecord{write}});
    for (size_t size = 0; size < message.size(); size++) {
      REQUIRE(!decode_phaser_message(std::string_view(message).substr(0, size)).value);
    }
    for (size_t size = 0; size < record.size(); size++) {
      REQUIRE(!decode_phaser_record(std::string_view(record).substr(0, size)).value);
    }
  }
  check_truncations<PhaserMessages>(16, 400);
  check_truncations<PhaserRecords>(17, 400);
}

TEST_CASE("codec: phaser: a register read in place is the register read owned") {
  Gen gen(derive_seed(seed, 18), small_shape);
  for (int round = 0; round < 2000; round++) {
    const PhaserRecord record = gen.phaser_record();
    const std::string bytes = encode(record);
    // Appended after what the vector holds.
    std::vector<EntryView> views(round % 3);
    const Decoded<Write> view = decode_register_view(bytes, views);
    const auto* r = std::get_if<RegisterRecord>(&record);
    if (r == nullptr) {
      REQUIRE(!view.value);
      CHECK(std::string(view.error) == "not a register");
      continue;
    }
    REQUIRE(view.value);
    Write rebuilt = *view.value;
    CHECK(rebuilt.entries.empty());
    REQUIRE(views.size() >= static_cast<size_t>(round % 3));
    views.erase(views.begin(), views.begin() + round % 3);
    for (const EntryView& entry : views) {
      // In place: the bytes are the record's own.
      const bool inside = entry.body.empty() ||
                          (entry.body.data() >= bytes.data() &&
                           entry.body.data() + entry.body.size() <= bytes.data() + bytes.size());
      CHECK(inside);
      rebuilt.entries.push_back(entry.owned());
    }
    CHECK(fields(RegisterRecord{std::make_shared<Write>(rebuilt)}) == fields(*r));
    // Every truncation fails.
    for (size_t size = 0; size < bytes.size(); size += 1 + size / 8) {
      std::vector<EntryView> scratch;
      REQUIRE(!decode_register_view(std::string_view(bytes).substr(0, size), scratch).value);
    }
  }
}

TEST_CASE("codec: a changed byte fails with a reason or decodes to exactly those bytes") {
  check_corruptions<PaxosMessages>(21, 3000);
  check_corruptions<PaxosRecords>(22, 3000);
  check_corruptions<MembershipMessages>(23, 3000);
  check_corruptions<MembershipRecords>(24, 3000);
  check_corruptions<PhaserMessages>(25, 3000);
  check_corruptions<PhaserRecords>(26, 3000);
}

TEST_CASE("codec: an unknown tag and a bad version fail with their reason") {
  check_version_and_tags<PaxosMessages>(31, 11);
  check_version_and_tags<PaxosRecords>(32, 4);
  check_version_and_tags<MembershipMessages>(33, 6);
  check_version_and_tags<MembershipRecords>(34, 2);
  check_version_and_tags<PhaserMessages>(35, 7);
  check_version_and_tags<PhaserRecords>(36, 6);
  // A Paxos message inside a membership message: its own tag is checked too.
  const std::string nested = encode(MembershipMessage{Message{CatchUp{5}}});
  REQUIRE(nested.size() == 4);
  std::string changed = nested;
  changed[2] = 12;
  CHECK(std::string_view(decode_membership_message(changed).error) == "unknown tag");
}

TEST_CASE("codec: phaser: a flipped bit in a write's entry fails the checksum") {
  auto write = std::make_shared<Write>();
  write->promise = Promise{57, 2};
  write->first = 1000;
  write->entries.push_back(BucketEntry{"orders/17", ConnectionId{3, 9}, 4, 1, "first body"});
  write->entries.push_back(BucketEntry{"orders/18", ConnectionId{}, 0, 0, "second body"});
  write->checksum = checksum_of(*write);
  // The same write as a message (to a replica) and as a record (on disk).
  const std::string message = encode(PhaserMessage{WritePtr(write)});
  const std::string record = encode(PhaserRecord{RegisterRecord{write}});
  const auto message_error = [](std::string_view b) { return decode_phaser_message(b).error; };
  const auto record_error = [](std::string_view b) { return decode_phaser_record(b).error; };
  for (const auto& [bytes, error_of] :
       {std::pair{message, +message_error}, std::pair{record, +record_error}}) {
    REQUIRE(error_of(bytes) == nullptr);
    for (std::string_view field : {"orders/17", "first body", "orders/18", "second body"}) {
      const size_t at = bytes.find(field);
      REQUIRE(at != std::string::npos);
      for (size_t bit = 0; bit < field.size() * 8; bit++) {
        std::string flipped = bytes;
        flipped[at + bit / 8] = static_cast<char>(flipped[at + bit / 8] ^ (1 << (bit % 8)));
        const char* error = error_of(flipped);
        REQUIRE(error != nullptr);
        CHECK(std::string_view(error) == "checksum mismatch");
      }
    }
  }
  // A log record's own payload checksum covers the same bytes (record.h):
  // decoding it as `covered` skips the recomputation.
  std::string flipped = record;
  flipped[record.find("first body")] ^= 1;
  CHECK(decode_phaser_record(flipped, WriteChecksum::covered).error == nullptr);
  CHECK(decode_phaser_record(record, WriteChecksum::covered).error == nullptr);
  // The checksum field itself: a wrong value fails too.
  auto wrong = std::make_shared<Write>(*write);
  wrong->checksum ^= 1;
  CHECK(std::string_view(decode_phaser_message(encode(PhaserMessage{WritePtr(wrong)})).error) ==
        "checksum mismatch");
}

TEST_CASE("codec: phaser: a message encoder encodes a write once and every message as encode") {
  auto make = [](uint64_t number, std::string body) {
    auto write = std::make_shared<Write>();
    write->promise = Promise{3, 1};
    write->number = number;
    write->entries.push_back(BucketEntry{"orders/17", ConnectionId{3, 9}, 4, 4, std::move(body)});
    write->checksum = checksum_of(*write);
    return WritePtr(write);
  };
  MessageEncoder encoder;
  const WritePtr first = make(1, "first body");
  const PhaserMessage messages[] = {
      PhaserMessage{first}, PhaserMessage{first},
      PhaserMessage{Ack{0, Promise{3, 1}, 1, 1, false, 2}},
      PhaserMessage{first},
      // Another write, even one equal in every field: encoded anew.
      PhaserMessage{make(2, "second body")}, PhaserMessage{make(2, "second body")},
      PhaserMessage{first}};
  for (const PhaserMessage& message : messages) CHECK(encoder.encode(message) == encode(message));
}

TEST_CASE("codec: fields out of range fail with their reason") {
  // A Nack whose promise counter needs 33 bits.
  Writer nack;
  nack.u8(phaser_format_version);
  nack.u8(3);
  nack.u64(7);                      // bucket
  nack.u64(57);                     // promise slot
  nack.u64(uint64_t{1} << 32);      // promise counter
  nack.u64(2);                      // from
  CHECK(std::string_view(decode_phaser_message(nack.data()).error) == "value too large");
  // The same with a 33-bit bucket.
  Writer bucket;
  bucket.u8(phaser_format_version);
  bucket.u8(3);
  bucket.u64(UINT64_C(1) << 32);
  bucket.u64(57);
  bucket.u64(UINT32_MAX);
  bucket.u64(2);
  CHECK(std::string_view(decode_phaser_message(bucket.data()).error) == "value too large");
  // A boolean of 2.
  std::string beat = encode(MembershipMessage{MemberHeartbeat{5, 6, true, 7}});
  REQUIRE(beat[beat.size() - 2] == 1);  // recovering, then the boot in one byte
  beat[beat.size() - 2] = 2;
  CHECK(std::string_view(decode_membership_message(beat).error) == "bad bool");
  // Zero written in two bytes.
  const std::string padded("\x01\x08\x80\x00", 4);  // CatchUp{from: 0, non-minimal}
  CHECK(std::string_view(decode_paxos_message(padded).error) == "non-minimal varint");
  // Eleven continuation bytes.
  const std::string long_varint = std::string("\x01\x08", 2) + std::string(10, '\xff') + '\x01';
  CHECK(std::string_view(decode_paxos_message(long_varint).error) == "varint too long");
  // A Forward that claims a thousand entries in two bytes.
  Writer forward;
  forward.u8(paxos_format_version);
  forward.u8(10);
  forward.u64(1000);
  forward.u8(0);
  forward.u8(0);
  CHECK(std::string_view(decode_paxos_message(forward.data()).error) == "count too large");
  // A snapshot whose schedule keys repeat.
  Writer learn;
  learn.u8(paxos_format_version);
  learn.u8(9);
  learn.u64(4);  // snapshot slot
  learn.bytes("state");
  learn.u64(2);  // two schedule keys, both 1
  for (int i = 0; i < 2; i++) {
    learn.u64(1);
    learn.u64(0);
    learn.ids({1, 2, 3});
  }
  learn.u64(5);  // first
  learn.u64(0);  // no entries
  CHECK(std::string_view(decode_paxos_message(learn.data()).error) == "unsorted keys");
}

TEST_CASE("codec: phaser: a write whose end would wrap fails") {
  auto write = std::make_shared<Write>();
  write->first = UINT64_MAX;
  write->entries.push_back(BucketEntry{"a", ConnectionId{}, 0, 0, "b"});
  write->checksum = checksum_of(*write);
  const std::string bytes = encode(PhaserMessage{WritePtr(write)});
  CHECK(std::string_view(decode_phaser_message(bytes).error) == "position overflow");
}

TEST_CASE("codec: phaser: a 64 MiB body decodes, one byte more does not") {
  auto write = std::make_shared<Write>();
  write->promise = Promise{1, 1};
  write->entries.push_back(BucketEntry{"big", ConnectionId{1, 1}, 1, 1, {}});
  write->entries[0].body.assign(value_bytes_max, 'x');
  write->checksum = checksum_of(*write);
  std::string bytes = encode(PhaserMessage{WritePtr(write)});
  {
    const auto decoded = decode_phaser_message(bytes);
    REQUIRE(decoded.value);
    CHECK(same(*decoded.value, PhaserMessage{WritePtr(write)}));
  }
  // Rewrite the body's length to max + 1 (the same four varint bytes) and
  // add one body byte: the decoder refuses the length before it reads on.
  const size_t at = bytes.find("big") + 3 + 4;  // issuer, counter, series, window: 1 byte each
  Writer length;
  length.u64(value_bytes_max);
  REQUIRE(bytes.substr(at, length.data().size()) == length.data());
  Writer longer;
  longer.u64(value_bytes_max + 1);
  REQUIRE(longer.data().size() == length.data().size());
  bytes.replace(at, longer.data().size(), longer.data());
  bytes.insert(at + longer.data().size(), 1, 'x');
  CHECK(std::string_view(decode_phaser_message(bytes).error) == "bytes too large");
}

TEST_CASE("codec: fixed vectors pin the format") {
  CHECK(hex(encode(Message{Prepare{Ballot{3, 2}, 7}})) == "0101030207");
  CHECK(hex(encode(Message{Forwarded{{ProposalId{1, 2, 300}}}})) == "010b010102ac02");
  CHECK(hex(encode(PersistRecord{PersistBoot{1}})) == "010101");
  CHECK(hex(encode(MembershipMessage{Message{CatchUp{5}}})) == "03010805");
  // Messages are at version 3 (the boot in heartbeats and acks), records at 2.
  CHECK(hex(encode(MembershipMessage{MemberHeartbeat{5, 6, true, 7}})) == "030405060107");
  CHECK(hex(encode(MembershipMessage{MemberAck{5, 6, false, 0, 7}})) == "03050506000007");
  // A peer of the previous format is refused, never misread: its version 2
  // heartbeat (no boot) and a Paxos message it wrapped fail with "bad
  // version", and the version 3 heartbeat with its version byte made 2 too.
  for (const std::string& v2 : {std::string("\x02\x04\x05\x06\x01", 5),
                               std::string("\x02\x01\x08\x05", 4),
                               std::string("\x02\x04\x05\x06\x01\x07", 6)}) {
    CAPTURE(hex(v2));
    CHECK(std::string_view(decode_membership_message(v2).error) == "bad version");
  }
  // Records: version 3 (Identity.void_through, last).
  CHECK(hex(encode(MembershipRecord{Identity{9, 2, 57, true, {}, 0}})) ==
        "0302090239" "01" "00" "00" "00");
  CHECK(hex(encode(MembershipRecord{Identity{9, 2, 0, false, {"a:1"}, 7}})) ==
        "0302090200" "00" "01" "03613a31" "07" "00");
  CHECK(hex(encode(MembershipRecord{Identity{9, 5, 0, false, {}, 0, 5}})) ==
        "0302090500" "00" "00" "00" "05");
  // A version 2 identity is refused, and one whose void_through is above
  // its incarnation is a bad value.
  CHECK(std::string_view(decode_membership_record(std::string("\x02\x02\x09\x02\x39\x01\x00\x00", 8))
                             .error) == "bad version");
  CHECK(std::string_view(
            decode_membership_record(std::string("\x03\x02\x09\x05\x00\x00\x00\x00\x06", 9)).error) ==
        "bad value");
  CHECK(hex(encode(PhaserRecord{CommitRecord{CommitMark{10, 2, 0x7f}, 8}})) ==
        "07030a02" "7f000000" "08");
  // Phaser format 3 (issue 13: a write's times; issue 15: an entry's wrap),
  // 4 (issue 11: verified offers, the reset record).
  // 5 (a write's prior), 6 (the repair record), 7 (a CatchupAck's life).
  // A write: its checksum (computed independently) is CRC32C over prior,
  // first, time, expire_before and each entry's fields as little-endian u64s
  // and raw bytes (the wrap only when it is not 2^53).
  CHECK(hex(encode(PhaserMessage{Nack{4, Promise{57, 2}, 3}})) == "070304390203");
  auto write = std::make_shared<Write>();
  *write = Write{7, Promise{57, 2}, 3, 5, 1000, 400,
                 {BucketEntry{"id", ConnectionId{1, 2}, 3, 3, "hi"}}, 0x01020304, 0,
                 CommitMark{5, 2, 0xdeadbeef}};
  write->checksum = checksum_of(*write);
  CHECK(write->checksum == 0x1dfbd6e8);
  CHECK(hex(encode(PhaserMessage{WritePtr(write)})) ==
        "0701" "07" "3902" "03" "05" "e807" "9003"         // fields, times
        "01" "026964" "01" "04" "0303" "026869"            // entry: counter 2 as 2*2
        "04030201" "e8d6fb1d" "0502" "efbeadde");          // prior, checksum, commit
  // The same entry of a connection with series_wrap 2^32: counter 2*2+1,
  // then the wrap; the checksum covers it.
  write->entries[0].connection.wrap = uint64_t{1} << 32;
  write->checksum = checksum_of(*write);
  CHECK(write->checksum == 0x06900da0);
  CHECK(hex(encode(PhaserMessage{WritePtr(write)})) ==
        "0701" "07" "3902" "03" "05" "e807" "9003"
        "01" "026964" "01" "05" "8080808010" "0303" "026869"
        "04030201" "a00d9006" "0502" "efbeadde");
  // A series at or above its wrap, and a wrap outside [2^32, 2^53), fail.
  std::string bytes = encode(PhaserMessage{WritePtr(write)});
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"0303026869", "8080808010" "03026869"},
                                 std::pair<std::string, std::string>{"8080808010", "ffffffff0f"},
                                 std::pair<std::string, std::string>{"8080808010", "8080808080808010"}}) {
    std::string text = hex(bytes);
    text.replace(text.find(from), from.size(), to);
    std::string changed;
    for (size_t i = 0; i < text.size(); i += 2) changed += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
    CAPTURE(text);
    CHECK(std::string_view(decode_phaser_message(changed).error) == "bad value");
  }
  // The empty write at position 0: the CRC32C of 32 zero bytes.
  auto empty = std::make_shared<Write>();
  empty->checksum = checksum_of(*empty);
  CHECK(hex(encode(PhaserMessage{WritePtr(empty)})) ==
        "0701" "0000000000000000" "00000000" "aa36918a" "0000" "00000000");
  // The reset record (tag 5), a Catchup naming an offer to discard (after
  // its writes), a CatchupAck with an offer (after `from`).
  CHECK(hex(encode(PhaserRecord{ResetRecord{Promise{57, 2}}})) == "0705" "3902");
  // 6: the repair record (tag 6).
  CHECK(hex(encode(PhaserRecord{RepairRecord{Promise{57, 2}}})) == "0706" "3902");
  CHECK(hex(encode(PhaserMessage{Catchup{4, Promise{57, 2}, {}, CommitMark{9, 2, 0x7f}}})) ==
        "0705" "04" "3902" "00" "01" "0902" "7f000000");
  CHECK(hex(encode(PhaserMessage{CatchupAck{4, Promise{57, 2}, 9, 3, CommitMark{9, 2, 0x7f}, {}}})) ==
        "0706" "04" "3902" "09" "03" "01" "0902" "7f000000" "00" "00");
  // 7: the copy's life (boot, resets) after the offer.
  CHECK(hex(encode(PhaserMessage{CatchupAck{4, Promise{57, 2}, 9, 3, std::nullopt, {5, 1}}})) ==
        "0706" "04" "3902" "09" "03" "00" "05" "01");
  // An offer must end where the ack says it does.
  std::string offer = encode(PhaserMessage{CatchupAck{4, Promise{57, 2}, 9, 3, CommitMark{9, 2, 0x7f}, {}}});
  offer[offer.size() - 8] = 8;
  CHECK(std::string_view(decode_phaser_message(offer).error) == "bad value");
  // Formats 1 to 6 are refused, never misread.
  for (char version : {'\x01', '\x02', '\x03', '\x04', '\x05', '\x06'}) {
    CHECK(std::string_view(decode_phaser_message(std::string(1, version) + std::string("\x03\x04\x39\x02\x03", 5)).error) ==
          "bad version");
  }
}

TEST_CASE("codec: a membership checkpoint holds the whole durable state, once") {
  MembershipDurable durable;
  durable.identity = Identity{7, 3, 2, false, {"127.0.0.1:1"}, 9};
  durable.paxos.boots = 4;
  durable.paxos.promised = Ballot{6, 1};
  durable.paxos.snapshot.slot = 10;
  durable.paxos.snapshot.bytes = "state";
  durable.paxos.accepted[11] = AcceptedEntry{11, Ballot{5, 2}, Entry{}};
  durable.paxos.accepted[13] = AcceptedEntry{13, Ballot{6, 1}, Entry{}};
  const std::string bytes = encode_membership_checkpoint(durable);
  const Decoded<MembershipDurable> decoded = decode_membership_checkpoint(bytes);
  REQUIRE(decoded.value.has_value());
  CHECK(decoded.value->identity == durable.identity);
  CHECK(decoded.value->paxos.boots == 4);
  CHECK(decoded.value->paxos.promised == durable.paxos.promised);
  CHECK(decoded.value->paxos.snapshot.bytes == "state");
  REQUIRE(decoded.value->paxos.accepted.size() == 2);
  CHECK(decoded.value->paxos.accepted.at(13).ballot == Ballot{6, 1});
  CHECK(encode_membership_checkpoint(*decoded.value) == bytes);

  // No id and no acceptor state (repair's identity checkpoint) is fine;
  // acceptor state under no id is refused.
  Identity no_id = durable.identity;
  no_id.id = no_participant;
  CHECK(decode_membership_checkpoint(encode_membership_checkpoint(MembershipDurable{no_id, {}}))
            .value.has_value());
  std::string with_state = bytes;
  // The identity's id is its third varint after the version byte (7, 3, 2).
  REQUIRE(with_state[3] == 2);
  with_state[3] = 0;
  CHECK(std::string_view(decode_membership_checkpoint(with_state).error) == "bad value");
}
