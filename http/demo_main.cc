// coworker-http-demo: the HTTP layer alone, for tests and benchmarks.
//
//   coworker-http-demo --listen 127.0.0.1:7000 [--cores N] [--recv multishot|single]
//                      [--idle-timeout-ms MS] [--request-timeout-ms MS]
//                      [--max-connections N]
//
// Routes: GET /v1/health → 200 {"state": "serving"}; POST /v1/echo → the body
// back; POST /v1/echo-json → {"n": <n>, "name": <name>} read with simdjson;
// GET /v1/buckets/{b}/entries → the decoded parameter and query back (a
// router check). One SO_REUSEPORT listener and one Server per core; SIGINT or
// SIGTERM stop it. Prints "listening on HOST:PORT" once every listener is
// bound (a client still waits for /v1/health before trusting it).
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "http/json.h"
#include "http/server.h"
#include "reactor/smp.h"

using namespace coworker;
using namespace coworker::http;
using reactor::Task;

namespace {

constexpr std::string_view usage =
    "usage: coworker-http-demo --listen HOST:PORT [--cores N] [--recv single|multishot]\n"
    "                          [--idle-timeout-ms MS] [--request-timeout-ms MS]\n"
    "                          [--max-connections N]\n";

Router make_router() {
  Router router;
  router.add(Method::get, "/v1/health", [](Request&) -> Task<Response> {
    co_return Response::json(200, "{\"state\": \"serving\"}\n");
  });
  router.add(Method::post, "/v1/echo", [](Request& request) -> Task<Response> {
    Response response;
    response.content_type = "application/octet-stream";
    response.body = std::move(request.body);
    co_return response;
  });
  router.add(Method::post, "/v1/echo-json", [](Request& request) -> Task<Response> {
    thread_local JsonBody json;
    simdjson::ondemand::object object;
    if (std::optional<Response> error = json.parse_object(request.body, &object)) {
      co_return std::move(*error);
    }
    Result<uint64_t, Response> n = json_uint(object, "n");
    if (!n) co_return n.error();
    Result<std::string_view, Response> name = json_string(object, "name");
    if (!name) co_return name.error();
    std::string body = fmt::format("{{\"n\": {}, \"name\": ", *n);
    json_quote(body, *name);
    body += "}\n";
    co_return Response::json(200, std::move(body));
  }, RouteOptions{.body_max = 16 << 20});
  router.add(Method::get, "/v1/buckets/{b}/entries", [](Request& request) -> Task<Response> {
    Result<uint64_t, Response> from = request.query_uint("from", 0, UINT64_MAX);
    if (!from) co_return from.error();
    Result<uint64_t, Response> limit = request.query_uint("limit", 100, 1000);
    if (!limit) co_return limit.error();
    std::string body = "{\"bucket\": ";
    json_quote(body, request.param("b"));
    fmt::format_to(std::back_inserter(body), ", \"from\": {}, \"limit\": {}}}\n", *from, *limit);
    co_return Response::json(200, std::move(body));
  });
  return router;
}

bool parse_number(std::string_view text, unsigned long* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc{} && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  unsigned long cores = static_cast<unsigned long>(sysconf(_SC_NPROCESSORS_ONLN));
  ServerConfig config;
  for (int i = 1; i < argc; i++) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    unsigned long n = 0;
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage.data(), stdout);
      return 0;
    } else if (arg == "--listen" && has_value) {
      listen = argv[++i];
    } else if (arg == "--cores" && has_value && parse_number(argv[++i], &cores) && cores > 0) {
    } else if (arg == "--recv" && has_value) {
      const std::string_view mode = argv[++i];
      if (mode != "single" && mode != "multishot") {
        std::fprintf(stderr, "coworker-http-demo: --recv is single or multishot\n");
        return 2;
      }
      config.recv_mode = mode == "multishot" ? RecvMode::multishot : RecvMode::single;
    } else if (arg == "--idle-timeout-ms" && has_value && parse_number(argv[++i], &n)) {
      config.idle_timeout = reactor::Milliseconds(n);
    } else if (arg == "--request-timeout-ms" && has_value && parse_number(argv[++i], &n)) {
      config.request_timeout = reactor::Milliseconds(n);
    } else if (arg == "--max-connections" && has_value && parse_number(argv[++i], &n)) {
      config.connections_max = n;
    } else {
      std::fprintf(stderr, "coworker-http-demo: bad argument '%s'\n%s", argv[i], usage.data());
      return 2;
    }
  }
  if (listen.empty()) {
    std::fprintf(stderr, "coworker-http-demo: --listen is required\n%s", usage.data());
    return 2;
  }
  Result<reactor::Endpoint, std::string> endpoint = reactor::Endpoint::parse(listen);
  if (!endpoint) {
    std::fprintf(stderr, "coworker-http-demo: %s\n", endpoint.error().c_str());
    return 2;
  }
  reactor::Endpoint bound;
  Result<std::vector<int>> fds = listen_per_core(*endpoint, static_cast<unsigned>(cores), &bound);
  if (!fds) {
    std::fprintf(stderr, "coworker-http-demo: cannot listen on %s: %s\n", listen.c_str(),
                 fds.error().message());
    return 1;
  }
  const Router router = make_router();
  std::printf("listening on %s (%lu cores)\n", bound.to_string().c_str(), cores);
  std::fflush(stdout);
  reactor::Smp smp(reactor::Smp::Config{.cores = static_cast<unsigned>(cores)});
  const int code = smp.run([&](unsigned core) -> Task<void> {
    Server server(router, config);
    co_await server.serve((*fds)[core]);
  });
  for (int fd : *fds) ::close(fd);
  return code;
}
