#include "tools/coworker/routes.h"

#include <charconv>
#include <map>
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
#include "tools/coworker/connection_text.h"
#include "tools/coworker/core.h"
#include "tools/coworker/base64.h"
#include "tools/coworker/dispatch.h"
#include "tools/coworker/participant.h"
#include "tools/coworker/reads.h"
#include "tools/coworker/status_page.h"

namespace coworker::server {

using http::Request;
using http::Response;
using reactor::Task;
using reactor::on_core;

namespace {

constexpr size_t identifier_bytes_max = 1024;
constexpr uint64_t window_body_bytes_max = uint64_t{16} << 20;  // DESIGN §3

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

// The Coworker-Connection header (connection_text.h), or the answer that
// refuses it: 400 malformed, 409 another cluster's, 503 while we do not
// know our cluster yet (we do not serve then either).
Result<consensus::ConnectionId, Response> connection_header(Participant& p, std::string_view text) {
  const uint64_t cluster = p.cluster_id();
  if (cluster == 0) return unavailable("this participant does not serve yet");
  Result<consensus::ConnectionId, ConnectionRefusal> id = parse_connection(text, cluster);
  if (id) return *id;
  if (id.error() == ConnectionRefusal::unknown) {
    return Response::error(409, "unknown_connection",
                           "Coworker-Connection was not issued by this cluster; connect again");
  }
  return Response::error(400, "bad_header", "Coworker-Connection is not an id");
}

std::string series_words(const consensus::ConnectionId& id) {
  return id.wrap == consensus::series_wrap_default
             ? std::string("2^53")
             : fmt::format("the connection's series_wrap ({})", id.wrap);
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

Task<Response> health(Participant& p) {
  auto ask = [&p] {
    return p.has_cluster() ? std::string(p.cluster().health()) : std::string("recovering");
  };
  auto asked = on_core(0, ask);
  const std::string state = co_await asked;
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
  auto built = on_core(0, build);
  std::string body = co_await built;
  if (body.empty()) co_return unavailable("this participant is starting");
  co_return Response::json(200, std::move(body));
}

// The live status page (status_page.h): the same bytes on every request, and
// no-cache, so that a rebuilt binary serves its own page at the next load.
Task<Response> status_page() {
  Response response;
  response.content_type = "text/html; charset=utf-8";
  response.body = std::string(status_page_html());
  response.header("Cache-Control", "no-cache");
  co_return response;
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
    if (*asked && (**asked < consensus::series_wrap_min || **asked > consensus::series_wrap_default)) {
      co_return Response::error(400, "bad_series_wrap", "series_wrap is in [2^32, 2^53]");
    }
    if (*asked) wrap = **asked;  // the id carries it to every bucket
  }
  using Refusal = ClusterNode::ConnectRefusal;
  auto issue = [&p]() -> Task<Result<consensus::ConnectionId, Refusal>> {
    if (!p.has_cluster()) co_return Refusal::not_serving;
    co_return co_await p.cluster().connect();
  };
  auto call = on_core(0, issue);
  Result<consensus::ConnectionId, Refusal> id = co_await call;
  if (!id && id.error() == Refusal::too_many) {
    co_return Response::error(
        429, "too_many_connections",
        fmt::format("this participant issued --max-connections ({}) connections within "
                    "--connection-expiry; reuse a connection, or connect at another participant",
                    p.flags().max_connections));
  }
  const uint64_t cluster = p.cluster_id();
  if (!id || cluster == 0) co_return unavailable("this participant does not serve yet");
  id->wrap = wrap;
  co_return Response::json(201, fmt::format("{{\"connection\": \"{}\", \"series_wrap\": {}}}\n",
                                            connection_text(*id, cluster), wrap));
}

// `{"bucket": B, "position": P, "duplicate": D}` of an appended or duplicate
// message, at the end of `out`: every answer's hot path, so no formatting
// library call (fmt's back_inserter path was 1.6% of a participant's CPU
// with windows of 64).
void append_result(std::string& out, uint32_t bucket, const consensus::MessageResult& result) {
  COWORKER_ASSERT(result.outcome == consensus::Outcome::appended ||
                  result.outcome == consensus::Outcome::duplicate);
  char digits[24];
  out += "{\"bucket\": ";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, bucket).ptr);
  out += ", \"position\": ";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, result.position).ptr);
  out += result.outcome == consensus::Outcome::duplicate ? ", \"duplicate\": true}"
                                                          : ", \"duplicate\": false}";
}

Response append_answer(uint32_t bucket, const consensus::MessageResult& result) {
  switch (result.outcome) {
    case consensus::Outcome::appended:
    case consensus::Outcome::duplicate: {
      std::string body;
      append_result(body, bucket, result);
      body += '\n';
      return Response::json(200, std::move(body));
    }
    case consensus::Outcome::superseded:
      return Response::error(409, "superseded",
                             "a straggler of an abandoned window: not logged by this attempt");
    case consensus::Outcome::expired:
      return Response::error(409, "connection_expired",
                             "the connection's state in this bucket expired: not logged by this "
                             "attempt; connect again");
    case consensus::Outcome::overloaded:
      return Response::error(429, "overloaded", "the bucket's queue is full; resubmit later");
    case consensus::Outcome::unavailable:
      break;
    case consensus::Outcome::handed_back:
      COWORKER_ASSERT(!"dispatch_append places or fails every handed-back message");
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
    Result<consensus::ConnectionId, Response> id = connection_header(p, *connection);
    if (!id) co_return std::move(id.error());
    if (!parse_decimal(*series, &entry.series) || entry.series >= id->wrap) {
      co_return Response::error(400, "bad_header",
                                "Coworker-Series is an integer below " + series_words(*id));
    }
    entry.connection = *id;
    entry.window = entry.series;  // a window of one
  }
  const uint32_t bucket = bucket::bucket_of(identifier, p.buckets());
  entry.identifier = identifier;
  entry.body = std::move(request.body);
  std::vector<consensus::BucketEntry> messages;
  messages.push_back(std::move(entry));
  auto dispatch = dispatch_append(p, bucket, std::move(messages), client_budget());
  Placed placed = co_await dispatch;
  COWORKER_ASSERT(placed.results.size() == 1);
  if (placed.unreachable != consensus::no_participant &&
      placed.results[0].outcome == consensus::Outcome::unavailable) {
    co_return unavailable(unreachable_words(bucket, placed.unreachable));
  }
  co_return append_answer(bucket, placed.results[0]);
}

// ---- windows --------------------------------------------------------------------------

constexpr size_t window_messages_max = hop_messages_max;  // DESIGN §3: 1000

// One message of a window, as parsed, with its place in the window.
struct WindowMessage {
  uint32_t bucket = 0;
  consensus::BucketEntry entry;
};

Response window_field_error(size_t index, std::string_view code, std::string_view what) {
  return Response::error(400, code, fmt::format("messages[{}]: {}", index, what));
}

// Every message checked before anything is dispatched (DESIGN §3: one
// malformed message fails the whole window with 400).
Result<std::vector<WindowMessage>, Response> parse_window(Participant& p, Request& request,
                                                          std::optional<consensus::ConnectionId> connection) {
  thread_local http::JsonBody json;
  simdjson::ondemand::object object;
  if (std::optional<Response> error = json.parse_object(request.body, &object)) {
    return std::move(*error);
  }
  simdjson::ondemand::array array;
  if (object["messages"].get_array().get(array) != simdjson::SUCCESS) {
    return http::json_field_error("messages", "an array of messages");
  }
  std::vector<WindowMessage> window;
  consensus::WindowOrder order(connection ? connection->wrap : consensus::series_wrap_default);
  for (auto element : array) {
    const size_t i = window.size();
    if (i == window_messages_max) {
      return Response::error(400, "too_many_messages",
                             fmt::format("a window holds at most {} messages", window_messages_max));
    }
    simdjson::ondemand::object message;
    if (element.get_object().get(message) != simdjson::SUCCESS) {
      return window_field_error(i, "bad_json", "a message is an object");
    }
    WindowMessage parsed;
    bool has_series = false, has_body = false;
    for (auto field : message) {
      std::string_view key;
      if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
        return window_field_error(i, "bad_json", "a key does not parse");
      }
      simdjson::ondemand::value value = field.value();
      if (key == "identifier") {
        std::string_view text;
        if (value.get_string().get(text) != simdjson::SUCCESS) {
          return window_field_error(i, "bad_identifier", "identifier is a string");
        }
        if (std::optional<Response> bad = check_identifier(text)) return std::move(*bad);
        parsed.entry.identifier = std::string(text);
      } else if (key == "series") {
        const uint64_t wrap = connection ? connection->wrap : consensus::series_wrap_default;
        if (value.get_uint64().get(parsed.entry.series) != simdjson::SUCCESS ||
            parsed.entry.series >= wrap) {
          return window_field_error(
              i, "bad_series",
              "series is an integer below " +
                  (connection ? series_words(*connection) : std::string("2^53")));
        }
        has_series = true;
      } else if (key == "body" || key == "body_base64") {
        std::string_view text;
        if (has_body || value.get_string().get(text) != simdjson::SUCCESS) {
          return window_field_error(i, "bad_body", "one of body (a string) or body_base64");
        }
        if (key == "body") {
          parsed.entry.body = std::string(text);
        } else {
          std::optional<std::string> bytes = base64_decode(text);
          if (!bytes) return window_field_error(i, "bad_body", "body_base64 is not base64");
          parsed.entry.body = std::move(*bytes);
        }
        has_body = true;
      } else {
        return window_field_error(i, "bad_json", fmt::format("unknown field '{}'", key));
      }
    }
    if (parsed.entry.identifier.empty()) {
      return window_field_error(i, "bad_identifier", "identifier is missing");
    }
    if (!has_body) return window_field_error(i, "bad_body", "body or body_base64 is missing");
    if (connection && !has_series) return window_field_error(i, "bad_series", "series is missing");
    if (!connection && has_series) {
      return window_field_error(i, "bad_header", "series needs a Coworker-Connection header");
    }
    if (connection) {
      // Strictly increasing within the wrap, every pair (dedup.h WindowOrder).
      if (!order.next(parsed.entry.series)) {
        return Response::error(400, "series_order",
                               fmt::format("messages[{}]: series must strictly increase, within "
                                           "half the series_wrap of the window's first",
                                           i));
      }
      parsed.entry.connection = *connection;
    }
    parsed.bucket = bucket::bucket_of(parsed.entry.identifier, p.buckets());
    window.push_back(std::move(parsed));
  }
  if (window.empty()) return http::json_field_error("messages", "a window holds a message");
  // The window's id for dedup: its first series (consensus/dedup.h).
  for (WindowMessage& m : window) m.entry.window = window.front().entry.series;
  return window;
}

std::string_view outcome_code(consensus::Outcome outcome) {
  switch (outcome) {
    case consensus::Outcome::superseded: return "superseded";
    case consensus::Outcome::expired: return "connection_expired";
    case consensus::Outcome::overloaded: return "overloaded";
    default: return "unavailable";
  }
}

Task<Response> append_window(Participant& p, Request& request) {
  std::optional<consensus::ConnectionId> connection;
  if (std::optional<std::string_view> header = request.header("Coworker-Connection")) {
    Result<consensus::ConnectionId, Response> id = connection_header(p, *header);
    if (!id) co_return std::move(id.error());
    connection = *id;
  }
  Result<std::vector<WindowMessage>, Response> parsed = parse_window(p, request, connection);
  if (!parsed) co_return std::move(parsed.error());
  std::vector<WindowMessage>& window = *parsed;
  // Split per bucket, each part in window order, all parts at once.
  std::map<uint32_t, std::vector<size_t>> parts;
  for (size_t i = 0; i < window.size(); i++) parts[window[i].bucket].push_back(i);
  const Budget budget = client_budget();
  std::vector<Task<Placed>> sends;
  for (auto& [bucket, indexes] : parts) {
    std::vector<consensus::BucketEntry> messages;
    for (size_t i : indexes) messages.push_back(std::move(window[i].entry));
    sends.push_back(dispatch_append(p, bucket, std::move(messages), budget));
  }
  auto all = reactor::when_all(std::move(sends));  // named: reactor/task.h
  std::vector<Placed> answered = co_await all;
  std::vector<consensus::MessageResult> results(window.size());
  size_t part = 0;
  for (auto& [bucket, indexes] : parts) {
    COWORKER_ASSERT(answered[part].results.size() == indexes.size());
    for (size_t j = 0; j < indexes.size(); j++) results[indexes[j]] = answered[part].results[j];
    part++;
  }
  // The worst outcome sets the status: 503 before 429 before 409.
  int status = 200;
  bool expired = false;
  for (const consensus::MessageResult& r : results) {
    if (r.outcome == consensus::Outcome::unavailable) status = 503;
    if (r.outcome == consensus::Outcome::overloaded && status != 503) status = 429;
    if (r.outcome == consensus::Outcome::superseded && status == 200) status = 409;
    if (r.outcome == consensus::Outcome::expired) expired = true;
  }
  if (expired && status == 200) status = 409;
  std::string body = "{";
  body.reserve(128 + results.size() * 64);
  // A 409 with an expired connection says so first: the client must connect
  // again before anything else it does with this window.
  if (status == 503) {
    body += R"("error": "some messages are not logged; resubmit them", "code": "unavailable", )";
  } else if (status == 429) {
    body += R"("error": "some buckets' queues are full; resubmit later", "code": "overloaded", )";
  } else if (status == 409 && expired) {
    body += R"("error": "the connection's state expired in some buckets; connect again", "code": "connection_expired", )";
  } else if (status == 409) {
    body += R"("error": "some messages are stragglers of an abandoned window", "code": "superseded", )";
  }
  body += "\"results\": [";
  for (size_t i = 0; i < results.size(); i++) {
    if (i > 0) body += ", ";
    const consensus::MessageResult& r = results[i];
    if (r.outcome == consensus::Outcome::appended || r.outcome == consensus::Outcome::duplicate) {
      append_result(body, window[i].bucket, r);
    } else {
      fmt::format_to(std::back_inserter(body), "{{\"error\": \"not logged by this attempt\", \"code\": \"{}\"}}",
                     outcome_code(r.outcome));
    }
  }
  body += "]}\n";
  Response response = Response::json(status, std::move(body));
  if (status == 503) response.headers += "Retry-After: 1\r\n";
  co_return response;
}

// ---- reads ----------------------------------------------------------------------------

// from, limit, wait_ms of DESIGN §3, into `query`.
std::optional<Response> parse_read_query(Request& request, ReadHop* query) {
  Result<uint64_t, Response> from = request.query_uint("from", 0, UINT64_MAX);
  if (!from) return from.error();
  Result<uint64_t, Response> limit = request.query_uint("limit", 100, 1000);
  if (!limit) return limit.error();
  if (*limit == 0) return Response::error(400, "bad_query", "limit is 1 to 1000");
  Result<uint64_t, Response> wait_ms = request.query_uint("wait_ms", 0, 30000);
  if (!wait_ms) return wait_ms.error();
  query->from = *from;
  query->limit = static_cast<uint32_t>(*limit);
  query->wait_ms = static_cast<uint32_t>(*wait_ms);
  return std::nullopt;
}

Task<Response> read(Participant& p, ReadHop query, Core::Serve serve) {
  if (serve == Core::Serve::local) {
    auto ask = [&p, bucket = query.bucket] {
      if (!p.has_cluster() || p.cluster().health() != "serving") return ReadRight::starting;
      return p.cluster().may_read(bucket, /*local=*/true);
    };
    auto asked = on_core(0, ask);
    const ReadRight right = co_await asked;
    if (right == ReadRight::starting) co_return unavailable("this participant does not serve yet");
    if (right == ReadRight::not_replica) {
      co_return Response::error(404, "not_replica",
                                "this participant is not a replica of the bucket's government");
    }
    const auto wait_until = Clock::now() + std::chrono::milliseconds(query.wait_ms);
    auto here = read_here(p, query, Core::Serve::local, wait_until);
    ReadAnswer answer = co_await here;
    co_return to_response(std::move(answer));
  }
  Budget budget = client_budget();
  budget.deadline += std::chrono::milliseconds(query.wait_ms);
  auto dispatch = dispatch_read(p, std::move(query), budget);
  ReadAnswer answer = co_await dispatch;
  co_return to_response(std::move(answer));
}

Task<Response> entries(Participant& p, Request& request) {
  uint64_t bucket = 0;
  if (!parse_decimal(request.param("b"), &bucket) || bucket >= p.buckets()) {
    co_return Response::error(404, "unknown_bucket",
                              fmt::format("buckets are 0 to {}", p.buckets() - 1));
  }
  ReadHop query;
  query.bucket = static_cast<uint32_t>(bucket);
  if (std::optional<Response> bad = parse_read_query(request, &query)) co_return std::move(*bad);
  Result<uint64_t, Response> local = request.query_uint("local", 0, 1);
  if (!local) co_return local.error();
  auto answer = read(p, std::move(query), *local == 1 ? Core::Serve::local : Core::Serve::leader);
  co_return co_await answer;
}

Task<Response> identifier_entries(Participant& p, Request& request) {
  const std::string identifier(request.param("identifier"));
  if (std::optional<Response> bad = check_identifier(identifier)) co_return std::move(*bad);
  ReadHop query;
  query.bucket = bucket::bucket_of(identifier, p.buckets());
  query.identifier = identifier;
  if (std::optional<Response> bad = parse_read_query(request, &query)) co_return std::move(*bad);
  auto answer = read(p, std::move(query), Core::Serve::leader);
  co_return co_await answer;
}

// Appends timed from the request to the answer (the answers themselves are
// counted by the HTTP server's `answered`, participant.cc).
http::Handler timed(Participant* p, std::function<Task<Response>(Participant&, Request&)> handler) {
  return [p, handler = std::move(handler)](Request& request) -> Task<Response> {
    const Clock::time_point started = Clock::now();
    auto handled = handler(*p, request);  // named: reactor/task.h
    Response response = co_await handled;
    p->metrics().append_seconds.observe(
        std::chrono::duration<double>(Clock::now() - started).count());
    co_return response;
  };
}

}  // namespace

std::string_view answer_code(const Response& response) {
  if (response.status < 300) return "ok";
  constexpr std::string_view key = "\"code\": \"";
  const size_t at = response.body.find(key);
  if (at == std::string::npos) return "none";  // /v1/health's 503 {"state": ...}
  const size_t start = at + key.size();
  const size_t end = response.body.find('"', start);
  if (end == std::string::npos) return "none";
  return std::string_view(response.body).substr(start, end - start);
}

std::unique_ptr<http::Router> make_router(Participant& participant) {
  Participant* p = &participant;
  auto router = std::make_unique<http::Router>();
  router->add(http::Method::get, "/", [](Request&) { return status_page(); });
  router->add(http::Method::get, "/index.html", [](Request&) { return status_page(); });
  router->add(http::Method::get, "/v1/health", [p](Request&) { return health(*p); });
  router->add(http::Method::get, "/v1/cluster", [p](Request&) { return cluster(*p); });
  router->add(http::Method::post, "/v1/connect",
              [p](Request& request) { return connect(*p, request); });
  router->add(http::Method::post, "/v1/log/{identifier}", timed(p, append_one));
  router->add(http::Method::post, "/v1/append", timed(p, append_window),
              http::RouteOptions{.body_max = window_body_bytes_max});
  router->add(http::Method::get, "/v1/buckets/{b}/entries",
              [p](Request& request) { return entries(*p, request); });
  router->add(http::Method::get, "/v1/log/{identifier}",
              [p](Request& request) { return identifier_entries(*p, request); });
  router->add(http::Method::get, "/metrics",
              [p](Request&) { return metrics_response(*p); });
  return router;
}

}  // namespace coworker::server
