// Membership entries (codec), the membership state machine alone, and the
// identity a participant gives up its id with (repair).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "consensus/codec.h"
#include "consensus/membership_entry.h"
#include "consensus/membership_node.h"
#include "consensus/membership_state.h"

using namespace coworker::consensus;

namespace {

std::vector<MembershipEntry> samples() {
  return {
      Arrive{"127.0.0.1:7100", Nonce{0xdeadbeefcafeULL, 3}, ClusterParams{0xc7f3a1, 64, 3}},
      Leave{7},
      Depart{UINT64_MAX},
      Unreachable{12},
      Return{12},
      Acks{{MigrationAck{5, 2, {3, 4, 1}}, MigrationAck{63, 0, {9}}}},
      Acks{},
      Reconfigure{57},
  };
}

// No bucket has anybody alone: departures stay departures.
struct NobodyAlone final : GovernmentView {
  bool sole_member(ParticipantId) const override { return false; }
};
struct Alone final : GovernmentView {
  ParticipantId id = 0;
  bool sole_member(ParticipantId other) const override { return other == id; }
};

Entry entry_of(const MembershipEntry& membership, uint64_t sequence = 1) {
  Entry entry;
  entry.id = ProposalId{1, 1, sequence};
  entry.value = encode(membership);
  return entry;
}

ClusterParams params() { return ClusterParams{42, 64, 3}; }

Arrive arrival(uint64_t data_dir, uint64_t incarnation) {
  return Arrive{"host" + std::to_string(data_dir), Nonce{data_dir, incarnation}, params()};
}

}  // namespace

TEST_CASE("membership: codec: every entry survives a round trip") {
  for (const MembershipEntry& entry : samples()) {
    const std::string bytes = encode(entry);
    const auto decoded = decode_entry(bytes);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == entry);
    CHECK(describe(*decoded) == describe(entry));
  }
}

TEST_CASE("membership: codec: every truncation and a trailing byte are refused") {
  for (const MembershipEntry& entry : samples()) {
    const std::string bytes = encode(entry);
    for (size_t size = 0; size < bytes.size(); size++) {
      CHECK_FALSE(decode_entry(std::string_view(bytes).substr(0, size)).has_value());
    }
    CHECK_FALSE(decode_entry(bytes + '\0').has_value());
  }
}

TEST_CASE("membership: codec: unknown tags, versions and oversized counts are refused") {
  CHECK_FALSE(decode_entry(std::string("\x01\x63", 2)).has_value());
  CHECK_FALSE(decode_entry(std::string("\x02\x02\x07", 3)).has_value());
  // acks claiming 2^20 items in a few bytes.
  CHECK_FALSE(decode_entry(std::string("\x01\x06\x80\x80\x40", 5)).has_value());
  // A varint running past 64 bits.
  const std::string long_varint(11, '\xff');
  Reader reader(long_varint);
  reader.u64();
  CHECK_FALSE(reader.ok());
  Writer writer;
  writer.u64(UINT64_MAX);
  Reader back(writer.data());
  CHECK(back.u64() == UINT64_MAX);
  CHECK(back.done());
}

TEST_CASE("membership: state: the first arrival bootstraps, ids are slots") {
  MembershipState state;
  NobodyAlone view;
  Effect effect = state.apply(1, entry_of(arrival(10, 1)), view);
  CHECK(effect.kind == Effect::Kind::arrived);
  CHECK(effect.id == 1);
  CHECK(state.params() == params());
  state.apply(2, Entry{}, view);  // a noop
  effect = state.apply(3, entry_of(arrival(11, 1)), view);
  CHECK(effect.kind == Effect::Kind::arrived);
  CHECK(effect.id == 3);
  CHECK(state.ids() == std::vector<ParticipantId>{1, 3});
  CHECK(state.member(3)->address == "host11");
  CHECK(state.gone(2));
  CHECK_FALSE(state.gone(3));
}

TEST_CASE("membership: repair: an abandoned identity has no id and remembers the others") {
  MembershipState state;
  NobodyAlone view;
  state.apply(1, entry_of(arrival(10, 1)), view);
  state.apply(2, entry_of(arrival(11, 1)), view);
  state.apply(3, entry_of(arrival(12, 4)), view);
  Writer writer;
  state.encode(writer);
  writer.u8(0x77);  // the application's part follows the state's in a snapshot
  MembershipDurable durable;
  durable.identity = Identity{12, 4, 3, false, {}, 0};
  durable.paxos.snapshot.slot = 3;
  durable.paxos.snapshot.bytes = writer.take();
  durable.paxos.boots = 2;

  const Identity mine = abandoned_identity(durable, false);
  CHECK(mine.id == no_participant);
  CHECK(!mine.arriving);
  CHECK(mine.data_dir == 12);
  CHECK(mine.incarnation == 4);  // start() bumps it before asking
  CHECK(mine.remembered == std::vector<std::string>{"host10", "host11"});
  CHECK(mine.remembered_cluster == 42);
  // No copy of this incarnation (or an earlier one) is a heir's any more.
  CHECK(mine.void_through == 4);

  SUBCASE("damaged membership records: the incarnation jumps past any lost one") {
    const Identity jumped = abandoned_identity(durable, true);
    CHECK(jumped.incarnation == 4 + (uint64_t{1} << 32));
    CHECK(jumped.void_through == jumped.incarnation);
  }
  SUBCASE("a snapshot that does not decode: what the identity remembered") {
    durable.paxos.snapshot.bytes = "garbage";
    durable.identity.remembered = {"host99"};
    CHECK(abandoned_identity(durable, false).remembered == std::vector<std::string>{"host99"});
  }
  SUBCASE("arriving already: the arrival under way is dropped, a new one starts") {
    durable.identity = Identity{12, 5, no_participant, true, {"host10"}, 42};
    durable.paxos = Durable{};
    const Identity again = abandoned_identity(durable, false);
    CHECK(!again.arriving);
    CHECK(again.incarnation == 5);
    CHECK(again.remembered == std::vector<std::string>{"host10"});
  }
}

TEST_CASE("membership: state: a retried arrival is decided once, a re-arrival is new") {
  MembershipState state;
  NobodyAlone view;
  state.apply(1, entry_of(arrival(10, 1)), view);
  CHECK(state.apply(2, entry_of(arrival(11, 4)), view).kind == Effect::Kind::arrived);
  const Effect retried = state.apply(3, entry_of(arrival(11, 4), 2), view);
  CHECK(retried.kind == Effect::Kind::retried);
  CHECK(retried.id == 2);
  CHECK(state.ids().size() == 2);
  const Effect stale = state.apply(4, entry_of(arrival(11, 3), 3), view);
  CHECK(stale.kind == Effect::Kind::refused);
  CHECK(stale.reason.find("older") != std::string::npos);
  CHECK(state.apply(5, entry_of(Depart{2}), view).kind == Effect::Kind::departed);
  const Effect again = state.apply(6, entry_of(arrival(11, 5), 4), view);
  CHECK(again.kind == Effect::Kind::arrived);
  CHECK(again.id == 6);
  CHECK(state.arrival_of(Nonce{11, 5}) == 6u);
  CHECK(state.arrival_of(Nonce{11, 4}) == std::nullopt);
}

TEST_CASE("membership: state: other cluster parameters are refused with a reason") {
  MembershipState state;
  NobodyAlone view;
  state.apply(1, entry_of(arrival(10, 1)), view);
  Arrive other = arrival(11, 1);
  other.params.buckets = 128;
  const Effect effect = state.apply(2, entry_of(other), view);
  CHECK(effect.kind == Effect::Kind::refused);
  CHECK(effect.reason.find("128 buckets") != std::string::npos);
  CHECK(state.ids().size() == 1);
}

TEST_CASE("membership: state: the last survivor of a government is marked, not departed") {
  MembershipState state;
  NobodyAlone nobody;
  for (Slot slot = 1; slot <= 3; slot++) state.apply(slot, entry_of(arrival(slot, 1)), nobody);
  Alone alone;
  alone.id = 2;
  const Effect effect = state.apply(4, entry_of(Depart{2}), alone);
  CHECK(effect.kind == Effect::Kind::unreachable);
  CHECK(effect.converted);
  CHECK(state.member(2)->status == MemberStatus::unreachable);
  CHECK(state.apply(5, entry_of(Return{2}), nobody).kind == Effect::Kind::returned);
  CHECK(state.member(2)->status == MemberStatus::active);
  CHECK(state.apply(6, entry_of(Depart{3}), alone).kind == Effect::Kind::departed);
}

TEST_CASE("membership: state: voters are the first V active members, V odd and at most 5") {
  MembershipState state;
  NobodyAlone view;
  std::vector<std::vector<ParticipantId>> seen;
  for (Slot slot = 1; slot <= 7; slot++) {
    state.apply(slot, entry_of(arrival(slot, 1)), view);
    seen.push_back(state.rule_voters());
  }
  CHECK(seen[0] == std::vector<ParticipantId>{1});
  CHECK(seen[1] == std::vector<ParticipantId>{1});
  CHECK(seen[2] == std::vector<ParticipantId>{1, 2, 3});
  CHECK(seen[4] == std::vector<ParticipantId>{1, 2, 3, 4, 5});
  CHECK(seen[6] == std::vector<ParticipantId>{1, 2, 3, 4, 5});
  state.apply(8, entry_of(Leave{2}), view);
  CHECK(state.rule_voters() == std::vector<ParticipantId>{1, 3, 4, 5, 6});
  state.apply(9, entry_of(Unreachable{4}), view);
  CHECK(state.rule_voters() == std::vector<ParticipantId>{1, 3, 5, 6, 7});
  state.apply(10, entry_of(Depart{5}), view);
  CHECK(state.rule_voters() == std::vector<ParticipantId>{1, 3, 6});
}

TEST_CASE("membership: state: a snapshot decodes to the same state and carries its header") {
  MembershipState state;
  NobodyAlone view;
  for (Slot slot = 1; slot <= 5; slot++) state.apply(slot, entry_of(arrival(slot % 3, slot)), view);
  state.apply(6, entry_of(Leave{4}), view);
  Writer writer;
  state.encode(writer);
  Reader reader(writer.data());
  const auto decoded = MembershipState::decode(reader);
  REQUIRE(decoded.has_value());
  CHECK(reader.done());
  CHECK(*decoded == state);
  const auto header = MembershipState::header(writer.data());
  REQUIRE(header.has_value());
  CHECK(header->slot == 6);
  CHECK(header->chain == state.chain());
  for (size_t size = 0; size < writer.data().size(); size++) {
    Reader truncated(std::string_view(writer.data()).substr(0, size));
    const auto partial = MembershipState::decode(truncated);
    CHECK((!partial || !truncated.done() || size == writer.data().size()));
  }
}

TEST_CASE("membership: state: undecodable values change nothing but the chain") {
  MembershipState state;
  NobodyAlone view;
  Entry garbage;
  garbage.id = ProposalId{1, 1, 1};
  garbage.value = "not an entry";
  const uint64_t before = state.chain();
  CHECK(state.apply(1, garbage, view).kind == Effect::Kind::undecodable);
  CHECK(state.chain() != before);
  CHECK(state.ids().empty());
  CHECK_FALSE(state.bootstrapped());
}
