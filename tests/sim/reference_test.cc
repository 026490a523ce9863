// The checkers' own folds (phaser_reference.h, membership_reference.h): each
// rule on a small history, and the differences agree() must report.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "bucket/table.h"
#include "consensus/membership_state.h"
#include "tests/sim/membership_reference.h"
#include "tests/sim/phaser_reference.h"

using namespace coworker;
using namespace coworker::sim;
using consensus::CommitMark;
using consensus::PhaserDurable;
using consensus::PhaserRecord;

namespace {

consensus::WritePtr write_at(consensus::Position first, uint64_t slot, std::vector<std::string> bodies) {
  auto write = std::make_shared<consensus::Write>();
  write->bucket = 0;
  write->promise = consensus::Promise{slot, 1};
  write->first = first;
  for (std::string& body : bodies) {
    consensus::BucketEntry entry;
    entry.identifier = "id";
    entry.body = std::move(body);
    write->entries.push_back(std::move(entry));
  }
  write->checksum = consensus::checksum_of(*write);
  return write;
}

CommitMark mark_of(const consensus::WritePtr& write) {
  return CommitMark{write->end(), write->number, write->checksum};
}

// Folds `record` into both, as the simulated disk does.
std::optional<std::string> fold_both(ReplicaReference& reference, PhaserDurable& durable,
                                     const PhaserRecord& record) {
  if (auto why = reference.fold(record)) return why;
  durable.apply(record);
  return reference.agree(durable);
}

}  // namespace

TEST_CASE("phaser reference: registers commit by their mark, and agree() sees a differing fold") {
  ReplicaReference reference;
  PhaserDurable durable;
  durable.keep_log = true;
  const auto w1 = write_at(0, 3, {"a", "b"});
  CHECK_FALSE(fold_both(reference, durable, consensus::RegisterRecord{w1}));
  CHECK(reference.held() == w1);
  CHECK(reference.end() == 0);
  CHECK_FALSE(fold_both(reference, durable, consensus::CommitRecord{mark_of(w1), 0}));
  CHECK(reference.end() == 2);
  CHECK(reference.log()[1].body == "b");
  CHECK(reference.promise() == consensus::Promise{3, 1});
  // A commit at or below the committed end changes nothing (an empty
  // write's); one above it naming no held register is forbidden.
  CHECK_FALSE(reference.fold(consensus::CommitRecord{CommitMark{2, 9, 1234}, 2}));
  const auto w2 = write_at(2, 4, {"c"});
  const auto why = reference.fold(consensus::CommitRecord{mark_of(w2), 2});
  REQUIRE(why);
  CHECK(why->find("register held is none") != std::string::npos);
  // A register away from the committed end is forbidden.
  CHECK(ReplicaReference().fold(consensus::RegisterRecord{w2}));
  // A fold that differs: the image forgot the register's promise.
  ReplicaReference other;
  PhaserDurable forgetful;
  forgetful.keep_log = true;
  CHECK_FALSE(other.fold(consensus::RegisterRecord{w1}));
  forgetful.apply(consensus::RegisterRecord{w1});
  forgetful.promise = consensus::Promise{};
  const auto differs = other.agree(forgetful);
  REQUIRE(differs);
  CHECK(differs->find("promise") != std::string::npos);
}

TEST_CASE("phaser reference: a snapshot above the end starts the log there, below is forbidden") {
  ReplicaReference reference;
  consensus::CommittedState state;
  state.promise = consensus::Promise{5, 1};
  state.commit_end = 10;
  state.last_commit = CommitMark{10, 4, 77};
  state.last_commit_first = 8;
  state.dedup = std::make_shared<consensus::DedupTable>();
  CHECK_FALSE(reference.fold(consensus::CheckpointRecord{state}));
  CHECK(reference.start() == 10);
  CHECK(reference.end() == 10);
  CHECK(reference.log().empty());
  state.commit_end = 9;
  state.last_commit.end = 9;
  CHECK(reference.fold(consensus::CheckpointRecord{state}));
}

namespace {

consensus::MembershipEntry arrive(uint64_t data_dir) {
  return consensus::Arrive{"host" + std::to_string(data_dir), consensus::Nonce{data_dir, 1},
                           consensus::ClusterParams{7, 4, 3}};
}

struct Both {
  consensus::MembershipState state;
  bucket::BucketTable table{4, 3};
  MembershipReference reference{4};
  consensus::Slot slot = 0;

  std::optional<std::string> apply(const consensus::MembershipEntry& value) {
    slot++;
    reference.fold(slot, value, [&](uint32_t b) { return table.target(b); });
    consensus::Entry entry;
    entry.id = consensus::ProposalId{1, 1, slot};
    entry.value = consensus::encode(value);
    const consensus::Effect effect = state.apply(slot, entry, table);
    table.apply(slot, effect, state);
    return reference.agree(state, table);
  }
};

}  // namespace

TEST_CASE("membership reference: arrivals, acks, marks and departures as the log says") {
  Both both;
  CHECK_FALSE(both.apply(arrive(11)));  // slot 1: bootstraps, holds every bucket alone
  CHECK(both.reference.government(2).replicas == std::vector<consensus::ParticipantId>{1});
  CHECK_FALSE(both.apply(arrive(12)));
  CHECK_FALSE(both.apply(arrive(13)));
  CHECK_FALSE(both.apply(arrive(12)));  // a retry: no new member
  CHECK(both.reference.members().size() == 3);
  // Bucket 0 grows to its target.
  const std::vector<consensus::ParticipantId> target = both.table.target(0);
  CHECK_FALSE(both.apply(consensus::Acks{{consensus::MigrationAck{0, 0, target}}}));
  CHECK(both.reference.government(0).replicas == target);
  CHECK(both.reference.government(0).step == 1);
  // A stale ack (step 0 again) is void.
  CHECK_FALSE(both.apply(consensus::Acks{{consensus::MigrationAck{0, 0, {target[0]}}}}));
  CHECK(both.reference.government(0).replicas == target);
  // Participant 1 is alone in bucket 1: its departure marks it instead.
  CHECK_FALSE(both.apply(consensus::Depart{1}));
  CHECK(both.reference.members().at(1).status == consensus::MemberStatus::unreachable);
  CHECK(both.reference.government(1).replicas == std::vector<consensus::ParticipantId>{1});
  // An ack naming the marked member is void.
  const uint64_t step = both.reference.government(1).step;
  CHECK_FALSE(both.apply(consensus::Acks{{consensus::MigrationAck{1, step, {1, 2}}}}));
  CHECK(both.reference.government(1).replicas == std::vector<consensus::ParticipantId>{1});
  CHECK_FALSE(both.apply(consensus::Return{1}));
  CHECK(both.reference.members().at(1).status == consensus::MemberStatus::active);
  CHECK_FALSE(both.apply(consensus::Leave{3}));
  CHECK(both.reference.members().at(3).status == consensus::MemberStatus::leaving);
}

TEST_CASE("membership reference: agree() reports a table that differs from the log") {
  Both both;
  CHECK_FALSE(both.apply(arrive(11)));
  CHECK_FALSE(both.apply(arrive(12)));
  // The same ack applied to the table alone: its government moves, the
  // reference's does not.
  consensus::Effect effect;
  effect.kind = consensus::Effect::Kind::acks;
  effect.acks = {consensus::MigrationAck{0, 0, both.table.target(0)}};
  both.table.apply(both.slot, effect, both.state);
  const auto why = both.reference.agree(both.state, both.table);
  REQUIRE(why);
  CHECK(why->find("bucket 0") != std::string::npos);
}
