#include "consensus/membership_entry.h"

#include <utility>

#include "consensus/codec.h"
#include "consensus/overloaded.h"
#include "consensus/assert.h"

namespace coworker::consensus {

namespace {

// Tags are part of the format: never renumber, only append.
enum class Tag : uint8_t {
  arrive = 1,
  leave = 2,
  depart = 3,
  unreachable = 4,
  returned = 5,
  acks = 6,
  reconfigure = 7,
};

constexpr uint8_t format_version = 1;

void write_ack(Writer& writer, const MigrationAck& ack) {
  writer.u64(ack.bucket);
  writer.u64(ack.step);
  writer.ids(ack.government);
}

std::optional<MigrationAck> read_ack(Reader& reader) {
  MigrationAck ack;
  const uint64_t bucket = reader.u64();
  if (bucket > UINT32_MAX) return std::nullopt;
  ack.bucket = static_cast<uint32_t>(bucket);
  ack.step = reader.u64();
  ack.government = reader.ids();
  if (!reader.ok() || ack.government.size() > government_size_max) return std::nullopt;
  return ack;
}

}  // namespace

std::string encode(const MembershipEntry& entry) {
  Writer writer;
  writer.u8(format_version);
  std::visit(Overloaded{
                 [&](const Arrive& arrive) {
                   COWORKER_ASSERT(arrive.address.size() <= address_bytes_max);
                   writer.u8(static_cast<uint8_t>(Tag::arrive));
                   writer.bytes(arrive.address);
                   writer.u64(arrive.nonce.data_dir);
                   writer.u64(arrive.nonce.incarnation);
                   writer.u64(arrive.params.cluster);
                   writer.u64(arrive.params.buckets);
                   writer.u64(arrive.params.replicas);
                 },
                 [&](const Leave& leave) {
                   writer.u8(static_cast<uint8_t>(Tag::leave));
                   writer.u64(leave.id);
                 },
                 [&](const Depart& depart) {
                   writer.u8(static_cast<uint8_t>(Tag::depart));
                   writer.u64(depart.id);
                 },
                 [&](const Unreachable& unreachable) {
                   writer.u8(static_cast<uint8_t>(Tag::unreachable));
                   writer.u64(unreachable.id);
                 },
                 [&](const Return& returned) {
                   writer.u8(static_cast<uint8_t>(Tag::returned));
                   writer.u64(returned.id);
                 },
                 [&](const Acks& acks) {
                   COWORKER_ASSERT(acks.acks.size() <= acks_max);
                   writer.u8(static_cast<uint8_t>(Tag::acks));
                   writer.u64(acks.acks.size());
                   for (const MigrationAck& ack : acks.acks) {
                     COWORKER_ASSERT(ack.government.size() <= government_size_max);
                     write_ack(writer, ack);
                   }
                 },
                 [&](const Reconfigure& reconfigure) {
                   writer.u8(static_cast<uint8_t>(Tag::reconfigure));
                   writer.u64(reconfigure.basis);
                 },
             },
             entry);
  return writer.take();
}

std::optional<MembershipEntry> decode_entry(std::string_view bytes) {
  Reader reader(bytes);
  if (reader.u8() != format_version) return std::nullopt;
  std::optional<MembershipEntry> entry;
  switch (static_cast<Tag>(reader.u8())) {
    case Tag::arrive: {
      Arrive arrive;
      arrive.address = reader.bytes();
      arrive.nonce.data_dir = reader.u64();
      arrive.nonce.incarnation = reader.u64();
      arrive.params.cluster = reader.u64();
      const uint64_t buckets = reader.u64();
      const uint64_t replicas = reader.u64();
      if (buckets > UINT32_MAX || replicas > UINT32_MAX) return std::nullopt;
      if (arrive.address.size() > address_bytes_max) return std::nullopt;
      arrive.params.buckets = static_cast<uint32_t>(buckets);
      arrive.params.replicas = static_cast<uint32_t>(replicas);
      entry = std::move(arrive);
      break;
    }
    case Tag::leave:
      entry = Leave{reader.u64()};
      break;
    case Tag::depart:
      entry = Depart{reader.u64()};
      break;
    case Tag::unreachable:
      entry = Unreachable{reader.u64()};
      break;
    case Tag::returned:
      entry = Return{reader.u64()};
      break;
    case Tag::acks: {
      Acks acks;
      const uint64_t count = reader.count(3);  // bucket, step, government count
      if (count > acks_max) return std::nullopt;
      for (uint64_t i = 0; i < count && reader.ok(); i++) {
        auto ack = read_ack(reader);
        if (!ack) return std::nullopt;
        acks.acks.push_back(std::move(*ack));
      }
      entry = std::move(acks);
      break;
    }
    case Tag::reconfigure:
      entry = Reconfigure{reader.u64()};
      break;
    default:
      return std::nullopt;
  }
  if (!reader.done()) return std::nullopt;
  return entry;
}

const char* entry_name(const MembershipEntry& entry) {
  static constexpr const char* names[] = {"arrive", "leave",  "depart",     "unreachable",
                                          "return", "acks", "reconfigure"};
  static_assert(std::size(names) == std::variant_size_v<MembershipEntry>);
  return names[entry.index()];
}

std::string describe(const MembershipEntry& entry) {
  return std::visit(
      Overloaded{
          [](const Arrive& arrive) {
            return "arrive " + arrive.address + " nonce " + std::to_string(arrive.nonce.data_dir) +
                   "." + std::to_string(arrive.nonce.incarnation);
          },
          [](const Leave& leave) { return "leave " + std::to_string(leave.id); },
          [](const Depart& depart) { return "depart " + std::to_string(depart.id); },
          [](const Unreachable& u) { return "unreachable " + std::to_string(u.id); },
          [](const Return& returned) { return "return " + std::to_string(returned.id); },
          [](const Acks& acks) {
            std::string text = "acks";
            for (const MigrationAck& ack : acks.acks) {
              text += " " + std::to_string(ack.bucket) + "@" + std::to_string(ack.step) + "[";
              for (size_t i = 0; i < ack.government.size(); i++) {
                text += (i ? " " : "") + std::to_string(ack.government[i]);
              }
              text += "]";
            }
            return text;
          },
          [](const Reconfigure& r) { return "reconfigure basis " + std::to_string(r.basis); },
      },
      entry);
}

}  // namespace coworker::consensus
