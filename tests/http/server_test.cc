// The server and the client over real loopback sockets, in one process on
// one loop: routing, pipelining, limits and error answers on the wire,
// 100-continue, HTTP/1.0, timeouts (idle and slowloris, memory back to
// baseline), the connection bound, streamed answers — in both recv modes.
#include <doctest/doctest.h>
#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "http/client.h"
#include "http/json.h"
#include "http/server.h"
#include "reactor/block_on.h"
#include "reactor/smp.h"

using namespace coworker;
using namespace coworker::http;
using namespace coworker::reactor;
using namespace std::chrono_literals;

namespace {

Router test_router() {
  Router router;
  router.add(Method::get, "/v1/health", [](Request&) -> Task<Response> {
    co_return Response::json(200, "{\"state\": \"serving\"}\n");
  });
  router.add(Method::post, "/v1/echo", [](Request& request) -> Task<Response> {
    co_return Response::text(200, std::move(request.body));
  });
  router.add(Method::post, "/v1/window", [](Request& request) -> Task<Response> {
    co_return Response::json(200, fmt::format("{{\"bytes\": {}}}", request.body.size()));
  }, RouteOptions{.body_max = 16 << 20});
  router.add(Method::get, "/v1/slow", [](Request&) -> Task<Response> {
    (void)co_await Timeout{300ms};  // a long-poll stand-in
    co_return Response::json(200, "{}");
  });
  router.add(Method::get, "/v1/stream", [](Request&) -> Task<Response> {
    Response response = Response::text(200, "");
    auto count = std::make_shared<int>(0);
    response.stream = [count]() -> Task<std::optional<std::string>> {
      if (*count == 3) co_return std::nullopt;
      co_await Yield{};
      co_return fmt::format("part{};", (*count)++);
    };
    co_return response;
  });
  router.add(Method::get, "/v1/buckets/{b}/entries", [](Request& request) -> Task<Response> {
    Result<uint64_t, Response> from = request.query_uint("from", 0, UINT64_MAX);
    if (!from) co_return from.error();
    co_return Response::text(200, fmt::format("{}|{}|{}", request.param("b"), *from,
                                              request.query_param("q").value_or("-")));
  });
  router.add(Method::post, "/v1/json", [](Request& request) -> Task<Response> {
    thread_local JsonBody json;
    simdjson::ondemand::object object;
    if (auto error = json.parse_object(request.body, &object)) co_return std::move(*error);
    Result<uint64_t, Response> n = json_uint(object, "n");
    if (!n) co_return n.error();
    co_return Response::json(200, fmt::format("{{\"n\": {}}}", *n));
  });
  return router;
}

const Router& router() {
  static const Router r = test_router();
  return r;
}

// Runs body(endpoint, server) on a fresh loop with a Server listening on a
// loopback port; the loop (and the server) stop when body returns.
template <typename T>
T with_server(ServerConfig config, std::function<Task<T>(Endpoint, Server&)> body) {
  return block_on([](ServerConfig config, std::function<Task<T>(Endpoint, Server&)> body)
                      -> Task<T> {
    Result<int> fd = listen_tcp(*Endpoint::parse("127.0.0.1:0"), ReusePort::yes);
    COWORKER_ASSERT(fd.ok());
    const Endpoint where = *local_endpoint(*fd);
    Server* server = nullptr;
    Loop::current().spawn([](ServerConfig config, int fd, Server** out) -> Task<void> {
      Server s(router(), config);
      *out = &s;
      co_await s.serve(fd);
      ::close(fd);
    }(config, *fd, &server));
    while (server == nullptr) co_await Yield{};
    co_return co_await body(where, *server);
  }(config, std::move(body)));
}

// Sends raw bytes, then reads until the server closes (or 5 s pass).
Task<std::string> raw_exchange(Endpoint where, std::string bytes, bool half_close = false) {
  Result<int> fd = co_await connect_tcp(where, nullptr, 2000ms);
  COWORKER_ASSERT(fd.ok());
  Result<size_t> sent = co_await Send{*fd, bytes};
  COWORKER_ASSERT(sent.ok());
  if (half_close) ::shutdown(*fd, SHUT_WR);
  std::string out;
  char buffer[4096];
  for (;;) {
    Result<size_t> n = co_await Recv{*fd, buffer, 5000ms};
    if (!n || *n == 0) break;
    out.append(buffer, *n);
  }
  (void)co_await Close{*fd};
  co_return out;
}

ServerConfig config_for(RecvMode mode) {
  ServerConfig config;
  config.recv_mode = mode;
  config.buffer_count = 64;
  config.buffer_size = 1024;
  return config;
}

const RecvMode modes[] = {RecvMode::single, RecvMode::multishot};

}  // namespace

TEST_CASE("server: routes, parameters, query, JSON, 404 and 405 through the client") {
  for (RecvMode mode : modes) {
    CAPTURE(static_cast<int>(mode));
    const std::vector<std::string> got = with_server<std::vector<std::string>>(
        config_for(mode), [](Endpoint where, Server&) -> Task<std::vector<std::string>> {
          Client client(where);
          std::vector<std::string> out;
          auto add = [&out](Result<Message> r) {
            out.push_back(r ? fmt::format("{} {}", r->status, r->body) : "error");
          };
          add(co_await client.request(Method::get, "/v1/health"));
          add(co_await client.request(Method::post, "/v1/echo", "hello"));
          add(co_await client.request(Method::get, "/v1/buckets/a%2Fb%20c/entries?from=7&q=x+y"));
          add(co_await client.request(Method::get, "/v1/buckets/x/entries?from=-1"));
          add(co_await client.request(Method::post, "/v1/json", "{\"n\": 42}"));
          add(co_await client.request(Method::post, "/v1/json", "{\"n\": \"no\"}"));
          add(co_await client.request(Method::post, "/v1/json", "not json"));
          add(co_await client.request(Method::get, "/v1/nothing"));
          add(co_await client.request(Method::delete_, "/v1/health"));
          Result<Message> head = co_await client.request(Method::head, "/v1/health");
          out.push_back(fmt::format("{} {} [{}]", head->status,
                                    head->header("content-length").value_or("?"), head->body));
          add(co_await client.request(Method::get, "/v1/stream"));
          co_await client.close();
          co_return out;
        });
    REQUIRE(got.size() == 11);
    CHECK(got[0] == "200 {\"state\": \"serving\"}\n");
    CHECK(got[1] == "200 hello");
    CHECK(got[2] == "200 a/b c|7|x y");
    CHECK(got[3] ==
          "400 {\"error\": \"query parameter 'from' is not an unsigned integer\", \"code\": "
          "\"bad_query\"}\n");
    CHECK(got[4] == "200 {\"n\": 42}");
    CHECK(got[5] ==
          "400 {\"error\": \"field 'n': expected an unsigned integer\", \"code\": \"bad_json\"}\n");
    CHECK(got[6].rfind("400 {\"error\": \"the body is not a JSON object", 0) == 0);
    CHECK(got[7] == "404 {\"error\": \"no such route\", \"code\": \"not_found\"}\n");
    CHECK(got[8].rfind("405 ", 0) == 0);
    CHECK(got[9] == "200 21 []");
    CHECK(got[10] == "200 part0;part1;part2;");
  }
}

TEST_CASE("server: many pipelined requests on one connection are answered in order") {
  for (RecvMode mode : modes) {
    CAPTURE(static_cast<int>(mode));
    const size_t in_order = with_server<size_t>(
        config_for(mode), [](Endpoint where, Server& server) -> Task<size_t> {
          Client client(where);
          constexpr size_t count = 500;
          for (size_t i = 0; i < count; i++) {
            if (i % 2) {
              client.queue(Method::post, "/v1/echo", fmt::format("body-{}", i));
            } else {
              client.queue(Method::get, fmt::format("/v1/buckets/{}/entries", i));
            }
          }
          Status sent = co_await client.flush();
          COWORKER_ASSERT(sent.ok());
          size_t ok = 0;
          for (size_t i = 0; i < count; i++) {
            Result<Message*> r = co_await client.next_response();
            COWORKER_ASSERT(r.ok());
            const std::string want = i % 2 ? fmt::format("body-{}", i) : fmt::format("{}|0|-", i);
            if ((*r)->body == want) ok++;
          }
          COWORKER_ASSERT(server.stats().connections_accepted == 1);
          co_await client.close();
          co_return ok;
        });
    CHECK(in_order == 500);
  }
}

TEST_CASE("server: malformed requests get their status, a JSON error, and a close") {
  struct Case {
    std::string request;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"BAD@ / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_method"},
      {"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505, "unsupported_version"},
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n", 414, "request_line_too_long"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(17000, 'b') + "\r\n\r\n", 431,
       "headers_too_large"},
      {"POST /v1/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413,
       "body_too_large"},
      {"POST /v1/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
       "duplicate_content_length"},
      {"POST /v1/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nTransfer-Encoding: "
       "chunked\r\n\r\n",
       400, "content_length_with_chunked"},
      {"POST /v1/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400,
       "bad_chunk_size"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400, "header_injection"},
      {"POST /v1/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n", 400,
       "bad_content_length"},
  };
  for (RecvMode mode : modes) {
    const std::vector<std::string> answers = with_server<std::vector<std::string>>(
        config_for(mode), [&cases](Endpoint where, Server&) -> Task<std::vector<std::string>> {
          std::vector<std::string> out;
          for (const Case& c : cases) out.push_back(co_await raw_exchange(where, c.request));
          co_return out;
        });
    for (size_t i = 0; i < cases.size(); i++) {
      CAPTURE(cases[i].code);
      const std::string& a = answers[i];
      CHECK(a.rfind(fmt::format("HTTP/1.1 {} ", cases[i].status), 0) == 0);
      CHECK(a.find("Connection: close\r\n") != std::string::npos);
      CHECK(a.find(fmt::format("\"code\": \"{}\"", cases[i].code)) != std::string::npos);
      CHECK(a.find("\"error\": \"") != std::string::npos);
    }
  }
}

TEST_CASE("server: the body limit is per route") {
  const std::vector<int> statuses = with_server<std::vector<int>>(
      config_for(RecvMode::single), [](Endpoint where, Server&) -> Task<std::vector<int>> {
        Client client(where);
        const std::string two_mib(2 << 20, 'w');
        std::vector<int> out;
        Result<Message> window = co_await client.request(Method::post, "/v1/window", two_mib);
        out.push_back(window ? window->status : -1);
        Result<Message> single = co_await client.request(Method::post, "/v1/echo", two_mib);
        out.push_back(single ? single->status : -1);
        co_await client.close();
        co_return out;
      });
  CHECK(statuses == std::vector<int>{200, 413});
}

TEST_CASE("server: Expect: 100-continue, HTTP/1.0 and chunked request bodies") {
  const std::vector<std::string> got = with_server<std::vector<std::string>>(
      config_for(RecvMode::multishot), [](Endpoint where, Server&) -> Task<std::vector<std::string>> {
        std::vector<std::string> out;
        // 100-continue: the interim answer comes before we send the body.
        Result<int> fd = co_await connect_tcp(where, nullptr, 2000ms);
        COWORKER_ASSERT(fd.ok());
        std::string head =
            "POST /v1/echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        (void)co_await Send{*fd, head};
        char buffer[1024];
        Result<size_t> n = co_await Recv{*fd, buffer, 2000ms};
        out.emplace_back(buffer, n ? *n : 0);
        (void)co_await Send{*fd, std::string_view("ping")};
        n = co_await Recv{*fd, buffer, 2000ms};
        out.emplace_back(buffer, n ? *n : 0);
        (void)co_await Close{*fd};
        out.push_back(co_await raw_exchange(where, "GET /v1/health HTTP/1.0\r\n\r\n"));
        out.push_back(co_await raw_exchange(
            where,
            "POST /v1/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: "
            "close\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"));
        co_return out;
      });
  REQUIRE(got.size() == 4);
  CHECK(got[0] == "HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(got[1].rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(got[1].substr(got[1].size() - 4) == "ping");
  CHECK(got[2].rfind("HTTP/1.0 200 OK\r\n", 0) == 0);  // and the server closed it
  CHECK(got[2].find("Connection: close") != std::string::npos);
  CHECK(got[3].substr(got[3].size() - 5) == "abcde");
}

TEST_CASE("server: an idle keep-alive connection is closed after the idle timeout") {
  ServerConfig config = config_for(RecvMode::multishot);
  config.idle_timeout = 200ms;
  config.tick = 20ms;
  const bool closed = with_server<bool>(config, [](Endpoint where, Server& server) -> Task<bool> {
    Client client(where);
    Result<Message> first = co_await client.request(Method::get, "/v1/health");
    COWORKER_ASSERT(first.ok());
    // Wait (bounded) for the server to drop the connection.
    for (int i = 0; i < 200 && server.stats().connections_open > 0; i++) (void)co_await Timeout{10ms};
    const bool dropped = server.stats().connections_open == 0 &&
                         server.stats().connections_timed_out == 1;
    // The next request fails on the stale connection: ECONNRESET.
    Result<Message> second = co_await client.request(Method::get, "/v1/health");
    // ... and the one after reconnects.
    Result<Message> third = co_await client.request(Method::get, "/v1/health");
    co_await client.close();
    co_return dropped && !second.ok() && third.ok() && third->status == 200;
  });
  CHECK(closed);
}

TEST_CASE("server: slowloris clients are cut off and memory returns to its baseline") {
  for (RecvMode mode : modes) {
    CAPTURE(static_cast<int>(mode));
    ServerConfig config = config_for(mode);
    config.request_timeout = 250ms;
    config.tick = 20ms;
    const std::vector<size_t> rounds = with_server<std::vector<size_t>>(
        config, [](Endpoint where, Server& server) -> Task<std::vector<size_t>> {
          constexpr int clients = 20;
          std::vector<size_t> out;  // per round: cut off count, then heap bytes in use
          for (int round = 0; round < 3; round++) {
            int cut = 0;
            int finished = 0;
            for (int i = 0; i < clients; i++) {
              Loop::current().spawn([](Endpoint where, int* cut, int* finished) -> Task<void> {
                Result<int> fd = co_await connect_tcp(where, nullptr, 2000ms);
                COWORKER_ASSERT(fd.ok());
                const std::string request = "GET /v1/health HTTP/1.1\r\nHost: slow\r\n\r\n";
                // One byte every 30 ms: the request would take 1.2 s.
                for (size_t at = 0; at < request.size(); at++) {
                  Result<size_t> sent = co_await Send{*fd, std::string_view(request).substr(at, 1)};
                  if (!sent) break;
                  char byte;
                  Result<size_t> n = co_await Recv{*fd, std::span<char>(&byte, 1), 30ms};
                  if (n.ok() || n.error().code != ETIMEDOUT) {  // EOF or reset: cut off
                    (*cut)++;
                    break;
                  }
                }
                (void)co_await Close{*fd};
                (*finished)++;
              }(where, &cut, &finished));
            }
            while (finished < clients) co_await Yield{};
            while (server.stats().connections_open > 0) (void)co_await Timeout{5ms};
            out.push_back(static_cast<size_t>(cut));
            out.push_back(mallinfo2().uordblks);
          }
          co_return out;
        });
    REQUIRE(rounds.size() == 6);
    CHECK(rounds[0] == 20);
    CHECK(rounds[2] == 20);
    CHECK(rounds[4] == 20);
    // Round 1 warms caches (coroutine frames, buffers); rounds 2 and 3 must not grow.
    CHECK(rounds[5] <= rounds[3] + (64 << 10));
  }
}

TEST_CASE("server: connections beyond the per-core bound get 503 and a close") {
  ServerConfig config = config_for(RecvMode::single);
  config.connections_max = 2;
  const std::string answer =
      with_server<std::string>(config, [](Endpoint where, Server& server) -> Task<std::string> {
        Client a(where), b(where);
        COWORKER_ASSERT((co_await a.request(Method::get, "/v1/health")).ok());
        COWORKER_ASSERT((co_await b.request(Method::get, "/v1/health")).ok());
        std::string third = co_await raw_exchange(where, "GET /v1/health HTTP/1.1\r\nHost: h\r\n\r\n");
        COWORKER_ASSERT(server.stats().connections_rejected == 1);
        co_await a.close();
        co_await b.close();
        co_return third;
      });
  CHECK(answer.rfind("HTTP/1.1 503 ", 0) == 0);
  CHECK(answer.find("\"code\": \"too_many_connections\"") != std::string::npos);
}

TEST_CASE("client: a request past its deadline fails with ETIMEDOUT") {
  const int code = with_server<int>(config_for(RecvMode::single),
                                    [](Endpoint where, Server&) -> Task<int> {
    ClientConfig config;
    config.request_timeout = 50ms;
    Client client(where, config);
    Result<Message> r = co_await client.request(Method::get, "/v1/slow");
    co_await client.close();
    co_return r ? 0 : r.error().code;
  });
  CHECK(code == ETIMEDOUT);
}

TEST_CASE("server: one listener per core; a handler may hop to another core and back") {
  // Two cores, each with its own SO_REUSEPORT listener and Server; the
  // handler answers from the other core through submit_to.
  Router hop_router;
  hop_router.add(Method::get, "/v1/where", [](Request& request) -> Task<Response> {
    const unsigned here = request.core;
    const unsigned there = (here + 1) % Smp::current().cores();
    const unsigned answered = co_await submit_to(there, [] { return Loop::current().core(); });
    co_return Response::text(200, fmt::format("{}>{}", here, answered));
  });
  Endpoint bound;
  Result<std::vector<int>> fds = listen_per_core(*Endpoint::parse("127.0.0.1:0"), 2, &bound);
  REQUIRE(fds.ok());
  Smp smp(Smp::Config{.cores = 2, .pin = false});
  std::vector<std::string> answers;
  std::thread clients([&] {
    answers = block_on([](Endpoint where) -> Task<std::vector<std::string>> {
      std::vector<std::string> out;
      for (int i = 0; i < 32; i++) {
        Client client(where);  // a new connection each time: spread by the kernel
        Result<Message> r = co_await client.request(Method::get, "/v1/where");
        out.push_back(r ? r->body : "error");
        co_await client.close();
      }
      co_return out;
    }(bound));
    smp.request_stop();
  });
  smp.run([&](unsigned core) -> Task<void> {
    Server server(hop_router, ServerConfig{});
    co_await server.serve((*fds)[core]);
  });
  clients.join();
  for (int fd : *fds) ::close(fd);
  REQUIRE(answers.size() == 32);
  size_t on_core[2] = {0, 0};
  for (const std::string& a : answers) {
    CHECK((a == "0>1" || a == "1>0"));
    on_core[a == "1>0" ? 1 : 0]++;
  }
  CHECK(on_core[0] > 0);  // both cores accepted connections (2^-31 to fail by chance)
  CHECK(on_core[1] > 0);
}
