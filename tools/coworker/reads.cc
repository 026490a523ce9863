#include "tools/coworker/reads.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <simdjson.h>

#include "consensus/assert.h"
#include "http/json.h"
#include "reactor/loop.h"
#include "reactor/smp.h"
#include "tools/coworker/base64.h"
#include "tools/coworker/connection_text.h"
#include "tools/coworker/participant.h"

namespace coworker::server {

using reactor::Task;
using Clock = std::chrono::steady_clock;

namespace {

ReadAnswer refusal_answer(Core::ReadRefusal refusal) {
  switch (refusal) {
    case Core::ReadRefusal::not_hosted:
    case Core::ReadRefusal::not_leader:
      return read_error(503, "unavailable", "the bucket's replica here is not serving; resubmit");
    case Core::ReadRefusal::retained:  // answered with the start by read_on_core
    case Core::ReadRefusal::corrupt:
      return read_error(500, "corrupt", "this replica's copy is damaged");
    case Core::ReadRefusal::io:
      return read_error(500, "io", "reading the log failed");
  }
  return read_error(500, "io", "reading the log failed");
}

// DESIGN §3: below the retained start, 410 with the start.
ReadAnswer retained_answer(consensus::Position start) {
  std::string body = "{\"error\": \"below the retained start: read from start\", "
                     "\"code\": \"retained\", \"start\": ";
  fmt::format_to(std::back_inserter(body), "{}}}\n", start);
  return ReadAnswer{410, std::move(body)};
}

// On the bucket's core. Pages of up to `limit` positions from `from`; for an
// identifier, only its entries, scanning at most scan_positions_max.
Task<ReadAnswer> read_on_core(Core& core, const ReadHop& q, Core::Serve serve,
                              Clock::time_point wait_until, uint64_t cluster) {
  std::string entries;
  size_t returned = 0;
  consensus::Position at = q.from;
  uint64_t scanned = 0;
  for (;;) {
    if (core.readable_end(q.bucket) <= at && Clock::now() < wait_until && returned == 0) {
      auto wait = core.wait_readable(q.bucket, at, wait_until);  // named: reactor/task.h
      if (!co_await wait) {
        co_return read_error(429, "too_many_waiting", "too many readers wait on this bucket");
      }
    }
    const uint64_t budget = q.identifier ? scan_positions_max - scanned : q.limit;
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(budget, 1000));
    if (chunk == 0) break;
    if (at < core.retained_start(q.bucket) && returned == 0) {
      co_return retained_answer(core.retained_start(q.bucket));
    }
    auto read = core.read(q.bucket, at, chunk, serve);
    Result<Core::Page, Core::ReadRefusal> page = co_await read;
    if (!page && page.error() == Core::ReadRefusal::retained && returned == 0) {
      co_return retained_answer(core.retained_start(q.bucket));
    }
    if (!page && page.error() == Core::ReadRefusal::retained) break;  // what we have
    if (!page) co_return refusal_answer(page.error());
    consensus::Position next = at;
    for (const consensus::EntryView& entry : page->entries.entries) {
      next++;
      if (q.identifier && entry.identifier != *q.identifier) continue;
      if (returned > 0) entries += ", ";
      entry_json(entries, next - 1, entry, cluster);
      if (++returned == q.limit || entries.size() >= answer_bytes_max) break;
    }
    scanned += next - at;
    at = next;
    if (page->entries.empty() || returned == q.limit || !q.identifier) break;
    if (entries.size() >= answer_bytes_max) break;
    if (core.readable_end(q.bucket) <= at && (returned > 0 || Clock::now() >= wait_until)) break;
  }
  std::string body = fmt::format("{{\"bucket\": {}, \"entries\": [", q.bucket);
  body += entries;
  fmt::format_to(std::back_inserter(body), "], \"next\": {}}}\n", at);
  co_return ReadAnswer{200, std::move(body)};
}

}  // namespace

ReadAnswer read_error(int status, std::string_view code, std::string_view words) {
  http::Response response = http::Response::error(status, code, words);
  return ReadAnswer{static_cast<uint16_t>(status), std::move(response.body)};
}

http::Response to_response(ReadAnswer answer) {
  http::Response response = http::Response::json(answer.status, std::move(answer.body));
  if (answer.status == 503) response.headers += "Retry-After: 1\r\n";
  return response;
}

Task<ReadAnswer> read_here(Participant& p, const ReadHop& query, Core::Serve serve,
                           Clock::time_point wait_until) {
  COWORKER_ASSERT(query.limit > 0);
  const unsigned core = p.core_of(query.bucket);
  auto read = [&p, core, &query, serve, wait_until]() -> Task<ReadAnswer> {
    if (!p.has_core(core)) co_return read_error(503, "unavailable", "this participant is starting or stopping");
    auto on_core = read_on_core(p.core(core), query, serve, wait_until, p.cluster_id());
    co_return co_await on_core;
  };
  auto call = reactor::on_core(core, read);
  co_return co_await call;
}

void entry_json(std::string& out, consensus::Position position, const consensus::EntryView& e,
                uint64_t cluster) {
  fmt::format_to(std::back_inserter(out), "{{\"position\": {}, \"identifier\": ", position);
  if (simdjson::validate_utf8(e.identifier.data(), e.identifier.size())) {
    http::json_quote(out, e.identifier);
  } else {
    out += '"';
    base64_encode(out, e.identifier);
    out += '"';  // written before identifiers were checked: never today
  }
  if (e.connection.valid()) {
    fmt::format_to(std::back_inserter(out), ", \"connection\": \"{}\", \"series\": {}",
                   connection_text(e.connection, cluster), e.series);
  } else {
    out += ", \"connection\": null, \"series\": null";
  }
  if (simdjson::validate_utf8(e.body.data(), e.body.size())) {
    out += ", \"body\": ";
    http::json_quote(out, e.body);
  } else {
    out += ", \"body_base64\": ";
    out += '"';
    base64_encode(out, e.body);
    out += '"';
  }
  out += '}';
}

}  // namespace coworker::server
