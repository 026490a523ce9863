// Router, percent-decoding, query parsing, the response writer and JSON
// quoting: the pure pieces around the parser.
#include <doctest/doctest.h>

#include <string>

#include "http/json.h"
#include "http/router.h"
#include "http/url.h"

using namespace coworker;
using namespace coworker::http;

namespace {

reactor::Task<Response> ok(Request&) { co_return Response::json(200, "{}"); }

Request request_for(Method method, std::string_view path) {
  Request r;
  r.method = method;
  r.path = path;
  return r;
}

}  // namespace

TEST_CASE("url: percent-decoding, with and without plus as space") {
  std::string out;
  CHECK(percent_decode("a%20b%2Fc+d", &out, PlusIsSpace::no));
  CHECK(out == "a b/c+d");
  out.clear();
  CHECK(percent_decode("a+b%2b", &out, PlusIsSpace::yes));
  CHECK(out == "a b+");
  for (std::string_view bad : {"%", "%4", "a%zz", "%g0", "x%"}) {
    std::string ignored;
    CHECK_MESSAGE(!percent_decode(bad, &ignored, PlusIsSpace::no), bad);
  }
}

TEST_CASE("url: query strings split into decoded pairs") {
  std::vector<std::pair<std::string, std::string>> q;
  REQUIRE(parse_query("from=5&&limit=10&wait_ms&x=a%26b=c", &q));
  REQUIRE(q.size() == 4);
  CHECK(q[0] == std::pair<std::string, std::string>{"from", "5"});
  CHECK(q[1] == std::pair<std::string, std::string>{"limit", "10"});
  CHECK(q[2] == std::pair<std::string, std::string>{"wait_ms", ""});
  CHECK(q[3] == std::pair<std::string, std::string>{"x", "a&b=c"});
  q.clear();
  CHECK(!parse_query("a=%zz", &q));
}

TEST_CASE("router: parameters, 404, 405 with Allow, HEAD by the GET route") {
  Router router;
  router.add(Method::get, "/v1/buckets/{b}/entries", ok);
  router.add(Method::post, "/v1/log/{identifier}", ok);
  router.add(Method::get, "/v1/log/{identifier}", ok);
  router.add(Method::get, "/v1/health", ok);

  Request r = request_for(Method::get, "/v1/buckets/17/entries");
  Router::Match m = router.match(r);
  REQUIRE(m.route != nullptr);
  CHECK(r.param("b") == "17");

  r = request_for(Method::post, "/v1/log/a%2Fb%20c");
  m = router.match(r);
  REQUIRE(m.route != nullptr);
  CHECK(m.route->method == Method::post);
  CHECK(r.param("identifier") == "a/b c");

  r = request_for(Method::head, "/v1/health");
  CHECK(router.match(r).route != nullptr);

  r = request_for(Method::get, "/v1/buckets//entries");  // empty parameter
  m = router.match(r);
  REQUIRE(m.error.has_value());
  CHECK(m.error->status == 404);

  r = request_for(Method::delete_, "/v1/log/x");
  m = router.match(r);
  REQUIRE(m.error.has_value());
  CHECK(m.error->status == 405);
  CHECK(m.error->headers == "Allow: POST, GET\r\n");

  r = request_for(Method::get, "/v1/log/%zz");
  m = router.match(r);
  REQUIRE(m.error.has_value());
  CHECK(m.error->status == 400);
  CHECK(m.error->body.find("\"code\": \"bad_path\"") != std::string::npos);

  r = request_for(Method::get, "/v1/health/extra");
  CHECK(router.match(r).error->status == 404);
}

TEST_CASE("router: query_uint bounds and names the parameter") {
  Request r;
  r.query = "from=12&limit=5000&bad=1x&big=99999999999999999999999";
  REQUIRE(!r.decode_query().has_value());
  CHECK(*r.query_uint("from", 0, 100) == 12u);
  CHECK(*r.query_uint("absent", 7, 100) == 7u);
  Result<uint64_t, Response> limit = r.query_uint("limit", 100, 1000);
  REQUIRE(!limit.ok());
  CHECK(limit.error().body.find("'limit' is above 1000") != std::string::npos);
  CHECK(!r.query_uint("bad", 0, 100).ok());
  CHECK(!r.query_uint("big", 0, UINT64_MAX).ok());
}

TEST_CASE("response: heads for sized, chunked and HTTP/1.0 answers") {
  Response r = Response::json(201, "{\"a\": 1}");
  r.header("Retry-After", "1");
  std::string out;
  write_head(out, r, 1, true, Framing::sized);
  CHECK(out ==
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\n"
        "Retry-After: 1\r\n\r\n");
  out.clear();
  write_head(out, Response::text(200, ""), 0, true, Framing::sized);
  CHECK(out.find("Connection: keep-alive\r\n") != std::string::npos);
  out.clear();
  write_head(out, Response::text(200, ""), 1, false, Framing::chunked);
  CHECK(out.find("Transfer-Encoding: chunked\r\nConnection: close\r\n") != std::string::npos);
  out.clear();
  write_chunk(out, "hello, chunks");
  write_chunk(out, "");
  write_last_chunk(out);
  CHECK(out == "d\r\nhello, chunks\r\n0\r\n\r\n");
}

TEST_CASE("json: errors have words and a code; strings are quoted safely") {
  CHECK(Response::error(409, "superseded", "a \"straggler\"\n").body ==
        "{\"error\": \"a \\\"straggler\\\"\\n\", \"code\": \"superseded\"}\n");
  std::string out;
  json_quote(out, std::string_view("\x01\\\t", 3));
  CHECK(out == "\"\\u0001\\\\\\t\"");
}
