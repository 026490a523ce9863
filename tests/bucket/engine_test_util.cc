#include "tests/bucket/engine_test_util.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "consensus/prng.h"

namespace coworker::bucket::testing {

using consensus::PhaserRecord;

std::vector<PhaserRecord> history(uint32_t bucket, uint64_t seed, int writes) {
  consensus::Prng prng(seed);
  std::vector<PhaserRecord> out;
  consensus::Promise promise{1, 1};
  consensus::Position end = 0;
  uint64_t number = 0;
  for (int w = 0; w < writes; w++) {
    if (prng.chance_per_mille(150)) {
      promise.counter++;
      out.push_back(consensus::PromiseRecord{promise});
    }
    auto write = std::make_shared<consensus::Write>();
    write->bucket = bucket;
    write->promise = promise;
    write->number = ++number;
    write->first = end;
    const uint64_t n = 1 + prng.below(5);
    for (uint64_t i = 0; i < n; i++) {
      consensus::BucketEntry entry;
      entry.identifier = "id-" + std::to_string(prng.below(1000));
      entry.connection = consensus::ConnectionId{1 + prng.below(3), prng.below(4)};
      entry.series = number * 10 + i;
      entry.window = number * 10;
      entry.body = std::string(prng.below(300), static_cast<char>('a' + i));
      write->entries.push_back(std::move(entry));
    }
    write->checksum = consensus::checksum_of(*write);
    out.push_back(consensus::RegisterRecord{write});
    if (w + 1 < writes || prng.chance_per_mille(500)) {
      out.push_back(consensus::CommitRecord{{write->end(), write->number, write->checksum},
                                            write->first});
      end = write->end();
    }
  }
  return out;
}

void check_same(const consensus::PhaserDurable& got, const consensus::PhaserDurable& want) {
  CHECK(got.promise == want.promise);
  CHECK(got.commit_end == want.commit_end);
  CHECK(got.last_commit == want.last_commit);
  CHECK(got.last_commit_first == want.last_commit_first);
  REQUIRE((got.register_ == nullptr) == (want.register_ == nullptr));
  if (want.register_) {
    CHECK(got.register_->first == want.register_->first);
    CHECK(got.register_->checksum == want.register_->checksum);
    CHECK(got.register_->entries == want.register_->entries);
  }
  CHECK(got.dedup.connections() == want.dedup.connections());
}

consensus::PhaserDurable fold(const std::vector<PhaserRecord>& records) {
  consensus::PhaserDurable image;
  for (const PhaserRecord& record : records) image.apply(record);
  return image;
}

}  // namespace coworker::bucket::testing
