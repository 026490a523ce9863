#include "tools/coworker/hop.h"

#include "consensus/assert.h"
#include "consensus/dedup.h"
#include "consensus/phaser_codec.h"

namespace coworker::server {

using consensus::Reader;
using consensus::Writer;

namespace {

enum Kind : uint8_t { append_request = 1, read_request = 2, append_answer = 3, read_answer = 4 };
constexpr uint8_t outcome_max = static_cast<uint8_t>(consensus::Outcome::expired);
constexpr uint64_t status_min = 100;
constexpr uint64_t status_max = 599;

void write_route(Writer& out, const HopRoute& route) {
  out.u64(route.slot);
  out.u32(route.hops);
  out.u32(route.deadline_ms);
}

HopRoute read_route(Reader& in) {
  HopRoute route;
  route.slot = in.u64();
  route.hops = in.u32();
  route.deadline_ms = in.u32();
  if (in.ok() && (route.hops == 0 || route.hops > hops_max)) in.fail("bad hops");
  return route;
}

AppendHop read_append(Reader& in) {
  AppendHop hop;
  hop.route = read_route(in);
  hop.bucket = in.u32();
  const uint64_t n = in.count(6);  // an empty entry takes six bytes
  if (in.ok() && n == 0) in.fail("empty append");
  if (in.ok() && n > hop_messages_max) in.fail("count too large");
  for (uint64_t i = 0; i < n && in.ok(); i++) hop.messages.push_back(consensus::read_bucket_entry(in));
  // A bucket's part of one window: one connection, its series in the
  // window's order (consensus::WindowOrder), as the sender's HTTP layer
  // checked — a peer that sends anything else is refused here, never
  // handed to a phaser, which asserts the order.
  const consensus::BucketEntry* first = nullptr;
  for (const consensus::BucketEntry& entry : hop.messages) {
    if (entry.connection.valid()) {
      first = &entry;
      break;
    }
  }
  if (first != nullptr && in.ok()) {
    consensus::WindowOrder order(first->connection.wrap);
    for (const consensus::BucketEntry& entry : hop.messages) {
      if (!entry.connection.valid()) continue;
      if (entry.connection != first->connection || !order.next(entry.series)) {
        in.fail("bad value");
        break;
      }
    }
  }
  return hop;
}

ReadHop read_read(Reader& in) {
  ReadHop hop;
  hop.route = read_route(in);
  hop.bucket = in.u32();
  hop.from = in.u64();
  hop.limit = in.u32();
  hop.wait_ms = in.u32();
  if (in.boolean()) hop.identifier = in.bytes();
  return hop;
}

AppendAnswer read_append_answer(Reader& in) {
  AppendAnswer answer;
  const uint64_t n = in.count(2);
  if (in.ok() && n > hop_messages_max) in.fail("count too large");
  for (uint64_t i = 0; i < n && in.ok(); i++) {
    consensus::MessageResult result;
    const uint8_t outcome = in.u8();
    if (in.ok() && outcome > outcome_max) in.fail("bad outcome");
    result.outcome = static_cast<consensus::Outcome>(outcome);
    result.position = in.u64();
    answer.results.push_back(result);
  }
  return answer;
}

ReadAnswer read_read_answer(Reader& in) {
  ReadAnswer answer;
  const uint64_t status = in.u64();
  if (in.ok() && (status < status_min || status > status_max)) in.fail("bad status");
  answer.status = static_cast<uint16_t>(status);
  answer.body = in.bytes();
  return answer;
}

}  // namespace

std::string encode_hop(const Hop& hop) {
  Writer out;
  out.u8(hop_format_version);
  if (const auto* append = std::get_if<AppendHop>(&hop.content)) {
    COWORKER_ASSERT(!append->messages.empty() && append->messages.size() <= hop_messages_max);
    COWORKER_ASSERT(append->route.hops >= 1 && append->route.hops <= hops_max);
    out.u8(append_request);
    out.u64(hop.call);
    write_route(out, append->route);
    out.u32(append->bucket);
    out.u64(append->messages.size());
    for (const consensus::BucketEntry& entry : append->messages) {
      consensus::write_bucket_entry(out, entry);
    }
  } else if (const auto* read = std::get_if<ReadHop>(&hop.content)) {
    COWORKER_ASSERT(read->route.hops >= 1 && read->route.hops <= hops_max);
    out.u8(read_request);
    out.u64(hop.call);
    write_route(out, read->route);
    out.u32(read->bucket);
    out.u64(read->from);
    out.u32(read->limit);
    out.u32(read->wait_ms);
    out.boolean(read->identifier.has_value());
    if (read->identifier) {
      COWORKER_ASSERT(read->identifier->size() <= consensus::value_bytes_max);
      out.bytes(*read->identifier);
    }
  } else if (const auto* answer = std::get_if<AppendAnswer>(&hop.content)) {
    COWORKER_ASSERT(answer->results.size() <= hop_messages_max);
    out.u8(append_answer);
    out.u64(hop.call);
    out.u64(answer->results.size());
    for (const consensus::MessageResult& result : answer->results) {
      COWORKER_ASSERT(static_cast<uint8_t>(result.outcome) <= outcome_max);
      out.u8(static_cast<uint8_t>(result.outcome));
      out.u64(result.position);
    }
  } else {
    const auto& read_answered = std::get<ReadAnswer>(hop.content);
    COWORKER_ASSERT(read_answered.status >= status_min && read_answered.status <= status_max);
    COWORKER_ASSERT(read_answered.body.size() <= consensus::value_bytes_max);
    out.u8(read_answer);
    out.u64(hop.call);
    out.u64(read_answered.status);
    out.bytes(read_answered.body);
  }
  return out.take();
}

consensus::Decoded<Hop> decode_hop(std::string_view bytes) {
  return consensus::decode_versioned<Hop>(bytes, hop_format_version, [](Reader& in) {
    Hop hop;
    const uint8_t kind = in.u8();
    hop.call = in.u64();
    if (!in.ok()) return hop;
    switch (kind) {
      case append_request: hop.content = read_append(in); break;
      case read_request: hop.content = read_read(in); break;
      case append_answer: hop.content = read_append_answer(in); break;
      case read_answer: hop.content = read_read_answer(in); break;
      default: in.fail("unknown kind"); break;
    }
    return hop;
  });
}

}  // namespace coworker::server
