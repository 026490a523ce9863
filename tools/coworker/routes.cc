#include "tools/coworker/routes.h"

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>

#include "bucket/hash.h"
#include "consensus/assert.h"
#include "consensus/dedup.h"
#include "http/json.h"
#include "reactor/loop.h"
#include "reactor/smp.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/core.h"
#include "tools/coworker/participant.h"

namespace coworker::server {

using http::Request;
using http::Response;
using reactor::Task;

namespace {

constexpr size_t identifier_bytes_max = 1024;
constexpr uint64_t series_wrap_min = uint64_t{1} << 32;

Response unavailable(std::string_view words) {
  Response response = Response::error(503, "unavailable", words);
  response.headers += "Retry-After: 1\r\n";
  return response;
}

bool parse_decimal(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

// "<issuer>-<counter>", as ConnectionId::to_string writes it.
std::optional<consensus::ConnectionId> parse_connection(std::string_view text) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  consensus::ConnectionId id;
  if (!parse_decimal(text.substr(0, dash), &id.issuer)) return std::nullopt;
  if (!parse_decimal(text.substr(dash + 1), &id.counter)) return std::nullopt;
  if (!id.valid()) return std::nullopt;
  return id;
}

std::optional<Response> check_identifier(std::string_view identifier) {
  if (identifier.empty() || identifier.size() > identifier_bytes_max) {
    return Response::error(400, "bad_identifier", "an identifier is 1 to 1024 bytes");
  }
  if (!simdjson::validate_utf8(identifier.data(), identifier.size())) {
    return Response::error(400, "bad_identifier", "an identifier is valid UTF-8");
  }
  return std::nullopt;
}

// The core's answer to core 0's question, wherever we are.
// (Every awaitable here is a named variable: g++ 12 destroys a temporary
// with a destructor twice when it sits in a co_await full-expression, GCC
// PR 99576 — reactor/task.h.)
template <typename F>
auto on_core(unsigned core, F fn) -> Task<decltype(fn())> {
  if (reactor::Loop::current().core() == core) co_return fn();
  auto call = reactor::submit_to(core, std::move(fn));
  co_return co_await call;
}

Task<Response> health(Participant& p) {
  auto ask = [&p] {
    return p.has_cluster() ? std::string(p.cluster().health()) : std::string("recovering");
  };
  const std::string state = co_await on_core(0, ask);
  std::string body = "{\"state\": ";
  http::json_quote(body, state);
  body += "}\n";
  co_return Response::json(state == "serving" ? 200 : 503, std::move(body));
}

Task<Response> cluster(Participant& p) {
  Participant* participant = &p;
  auto gather = reactor::Smp::current().broadcast([participant] {
    const unsigned core = reactor::Loop::current().core();
    return participant->has_core(core) ? participant->core(core).buckets()
                                       : std::vector<BucketView>{};
  });
  std::vector<std::vector<BucketView>> per_core = co_await gather;
  std::vector<BucketView> views;
  for (auto& core : per_core) views.insert(views.end(), core.begin(), core.end());
  auto build = [participant, &views] {
    return participant->has_cluster() ? participant->cluster().cluster_json(views)
                                      : std::string();
  };
  std::string body = co_await on_core(0, build);
  if (body.empty()) co_return unavailable("this participant is starting");
  co_return Response::json(200, std::move(body));
}

Task<Response> connect(Participant& p, Request& request) {
  uint64_t wrap = consensus::series_wrap_default;
  if (!request.body.empty()) {
    thread_local http::JsonBody json;
    simdjson::ondemand::object object;
    if (std::optional<Response> error = json.parse_object(request.body, &object)) {
      co_return std::move(*error);
    }
    Result<std::optional<uint64_t>, Response> asked = http::json_optional_uint(object, "series_wrap");
    if (!asked) co_return asked.error();
    if (*asked && (**asked < series_wrap_min || **asked > consensus::series_wrap_default)) {
      co_return Response::error(400, "bad_series_wrap", "series_wrap is in [2^32, 2^53]");
    }
    // Every bucket compares series within 2^53 today (consensus/dedup.h):
    // a smaller wrap asked for is answered with the one granted.
  }
  auto issue = [&p]() -> Task<std::optional<consensus::ConnectionId>> {
    if (!p.has_cluster()) co_return std::nullopt;
    co_return co_await p.cluster().connect();
  };
  auto call = reactor::submit_to(0, issue);
  std::optional<consensus::ConnectionId> id = co_await call;
  if (!id) co_return unavailable("this participant does not serve yet");
  co_return Response::json(
      201, fmt::format("{{\"connection\": \"{}\", \"series_wrap\": {}}}\n", id->to_string(), wrap));
}

Response append_answer(uint32_t bucket, const consensus::MessageResult& result) {
  switch (result.outcome) {
    case consensus::Outcome::appended:
    case consensus::Outcome::duplicate:
      return Response::json(
          200, fmt::format("{{\"bucket\": {}, \"position\": {}, \"duplicate\": {}}}\n", bucket,
                           result.position,
                           result.outcome == consensus::Outcome::duplicate ? "true" : "false"));
    case consensus::Outcome::superseded:
      return Response::error(409, "superseded",
                             "a straggler of an abandoned window: not logged by this attempt");
    case consensus::Outcome::overloaded:
      return Response::error(429, "overloaded", "the bucket's queue is full; resubmit later");
    case consensus::Outcome::unavailable:
      break;
  }
  return unavailable("the bucket has no leader serving here; resubmit");
}

Task<Response> append_one(Participant& p, Request& request) {
  const std::string identifier(request.param("identifier"));
  if (std::optional<Response> bad = check_identifier(identifier)) co_return std::move(*bad);
  const std::optional<std::string_view> connection = request.header("Coworker-Connection");
  const std::optional<std::string_view> series = request.header("Coworker-Series");
  consensus::BucketEntry entry;
  if (connection.has_value() != series.has_value()) {
    co_return Response::error(400, "bad_header",
                              "Coworker-Connection and Coworker-Series go together");
  }
  if (connection) {
    std::optional<consensus::ConnectionId> id = parse_connection(*connection);
    if (!id) co_return Response::error(400, "bad_header", "Coworker-Connection is not an id");
    if (!parse_decimal(*series, &entry.series) || entry.series >= consensus::series_wrap_default) {
      co_return Response::error(400, "bad_header", "Coworker-Series is an integer below 2^53");
    }
    entry.connection = *id;
    entry.window = entry.series;  // a window of one
  }
  const uint32_t bucket = bucket::bucket_of(identifier, p.buckets());
  entry.identifier = identifier;
  entry.body = std::move(request.body);
  std::vector<consensus::BucketEntry> messages;
  messages.push_back(std::move(entry));
  const unsigned core = p.core_of(bucket);
  std::vector<consensus::MessageResult> results;
  if (reactor::Loop::current().core() == core) {
    auto append = p.core(core).append(bucket, std::move(messages));  // named: reactor/task.h
    results = co_await append;
  } else {
    auto append = [&p, core, bucket, &messages] {
      return p.core(core).append(bucket, std::move(messages));
    };
    auto call = reactor::submit_to(core, append);
    results = co_await call;
  }
  COWORKER_ASSERT(results.size() == 1);
  co_return append_answer(bucket, results[0]);
}

constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64(std::string& out, std::string_view bytes) {
  out += '"';
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                       uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += base64_alphabet[(v >> shift) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += base64_alphabet[(v >> 18) & 63];
    out += base64_alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? base64_alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  out += '"';
}

void entry_json(std::string& out, consensus::Position position, const consensus::BucketEntry& e) {
  fmt::format_to(std::back_inserter(out), "{{\"position\": {}, \"identifier\": ", position);
  if (simdjson::validate_utf8(e.identifier.data(), e.identifier.size())) {
    http::json_quote(out, e.identifier);
  } else {
    base64(out, e.identifier);  // written before identifiers were checked: never today
  }
  if (e.connection.valid()) {
    fmt::format_to(std::back_inserter(out), ", \"connection\": \"{}\", \"series\": {}",
                   e.connection.to_string(), e.series);
  } else {
    out += ", \"connection\": null, \"series\": null";
  }
  if (simdjson::validate_utf8(e.body.data(), e.body.size())) {
    out += ", \"body\": ";
    http::json_quote(out, e.body);
  } else {
    out += ", \"body_base64\": ";
    base64(out, e.body);
  }
  out += '}';
}


Task<Response> entries(Participant& p, Request& request) {
  uint64_t bucket = 0;
  if (!parse_decimal(request.param("b"), &bucket) || bucket >= p.buckets()) {
    co_return Response::error(404, "unknown_bucket",
                              fmt::format("buckets are 0 to {}", p.buckets() - 1));
  }
  Result<uint64_t, Response> from = request.query_uint("from", 0, UINT64_MAX);
  if (!from) co_return from.error();
  Result<uint64_t, Response> limit = request.query_uint("limit", 100, 1000);
  if (!limit) co_return limit.error();
  if (*limit == 0) co_return Response::error(400, "bad_query", "limit is 1 to 1000");
  Result<uint64_t, Response> wait_ms = request.query_uint("wait_ms", 0, 30000);
  if (!wait_ms) co_return wait_ms.error();
  Result<uint64_t, Response> local = request.query_uint("local", 0, 1);
  if (!local) co_return local.error();
  const uint32_t b = static_cast<uint32_t>(bucket);
  auto ask = [&p, b, local = *local == 1] {
    if (!p.has_cluster() || p.cluster().health() != "serving") return ReadRight::starting;
    return p.cluster().may_read(b, local);
  };
  const ReadRight right = co_await on_core(0, ask);
  if (right == ReadRight::starting) co_return unavailable("this participant does not serve yet");
  if (right == ReadRight::not_replica) {
    co_return Response::error(404, "not_replica",
                              "this participant is not a replica of the bucket's government");
  }
  if (right == ReadRight::not_leader) {
    co_return unavailable("this participant does not lead the bucket under a read lease");
  }
  const unsigned core = p.core_of(b);
  const Core::Serve serve = *local == 1 ? Core::Serve::local : Core::Serve::leader;
  auto read = [&p, core, b, from = *from, limit = *limit, serve] {
    return p.core(core).read(b, from, limit, serve);
  };
  std::optional<Result<Core::Page, Core::ReadRefusal>> page;
  if (reactor::Loop::current().core() == core) {
    page.emplace(co_await read());
  } else {
    auto call = reactor::submit_to(core, read);
    page.emplace(co_await call);
  }
  if (!*page) {
    switch (page->error()) {
      case Core::ReadRefusal::not_hosted:
      case Core::ReadRefusal::not_leader:
        co_return unavailable("the bucket's replica here is not serving; resubmit");
      case Core::ReadRefusal::corrupt:
        co_return Response::error(500, "corrupt", "this replica's copy is damaged");
      case Core::ReadRefusal::io:
        co_return Response::error(500, "io", "reading the log failed");
    }
  }
  std::string body = fmt::format("{{\"bucket\": {}, \"entries\": [", b);
  const Core::Page& got = **page;
  for (size_t i = 0; i < got.entries.size(); i++) {
    if (i > 0) body += ", ";
    entry_json(body, *from + i, got.entries[i]);
  }
  fmt::format_to(std::back_inserter(body), "], \"next\": {}}}\n", got.next);
  co_return Response::json(200, std::move(body));
}

}  // namespace

std::unique_ptr<http::Router> make_router(Participant& participant) {
  Participant* p = &participant;
  auto router = std::make_unique<http::Router>();
  router->add(http::Method::get, "/v1/health", [p](Request&) { return health(*p); });
  router->add(http::Method::get, "/v1/cluster", [p](Request&) { return cluster(*p); });
  router->add(http::Method::post, "/v1/connect",
              [p](Request& request) { return connect(*p, request); });
  router->add(http::Method::post, "/v1/log/{identifier}",
              [p](Request& request) { return append_one(*p, request); });
  router->add(http::Method::get, "/v1/buckets/{b}/entries",
              [p](Request& request) { return entries(*p, request); });
  return router;
}

}  // namespace coworker::server
