// libFuzzer target for the HTTP parser (requests and responses), differential:
// the input is parsed whole and cut into pieces (sizes drawn from the input),
// and both runs must report the same messages and the same error. Parsed
// requests also go through the router and query decoding.
//
// Input: byte 0 = options (bit 0: response; bits 1-2: body limit; bit 3:
// HEAD answer), byte 1 = the cutting seed, the rest = the bytes on the wire.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"
#include "http/router.h"
#include "http/url.h"

using namespace coworker;
using namespace coworker::http;

namespace {

const Router& fuzz_router() {
  static const Router router = [] {
    Router r;
    auto handler = [](Request&) -> reactor::Task<Response> { co_return Response::json(200, ""); };
    r.add(Method::get, "/v1/buckets/{b}/entries", handler);
    r.add(Method::post, "/v1/log/{identifier}", handler);
    r.add(Method::get, "/v1/health", handler);
    return r;
  }();
  return router;
}

void digest(std::string& log, const Message& m) {
  log += m.method_text;
  log += ' ';
  log += m.target;
  log += ' ';
  log += std::to_string(m.status);
  for (const Header& h : m.headers) {
    log += '|';
    log += h.name;
    log += '=';
    log += h.value;
  }
  log += m.keep_alive ? " ka " : " close ";
  log += m.body;
  log += '\n';
}

std::string drive(Parser::Kind kind, std::string_view input, uint64_t body_max, bool head_answer,
                  uint32_t seed) {
  Parser parser(kind, Limits{.request_line_max = 256, .header_bytes_max = 512,
                             .header_count_max = 16, .body_max = body_max});
  Request request;
  parser.start(&request);
  std::string log;
  size_t at = 0;
  while (at < input.size()) {
    size_t piece = input.size() - at;
    if (seed != 0) {
      seed = seed * 1103515245u + 12345u;
      piece = std::min<size_t>(piece, 1 + (seed >> 16) % 37);
    }
    std::string_view rest = input.substr(at, piece);
    at += piece;
    for (;;) {
      size_t used = 0;
      Parser::Step step = parser.feed(rest, &used);
      if (used > rest.size()) __builtin_trap();
      rest.remove_prefix(used);
      if (step == Parser::Step::head) {
        if (kind == Parser::Kind::request) {
          Router::Match match = fuzz_router().match(request);
          (void)request.decode_query();
          if (match.route != nullptr) (void)request.query_uint("from", 0, 1000);
        } else if (head_answer) {
          parser.no_body();
        }
        step = parser.after_head(body_max);
        if (step == Parser::Step::more) continue;
      }
      if (step == Parser::Step::done) {
        digest(log, request);
        parser.start(&request);
        continue;
      }
      if (step == Parser::Step::error) {
        log += "error ";
        log += parser.error().code;
        return log;
      }
      if (!rest.empty()) __builtin_trap();  // more, yet input left over
      break;
    }
  }
  if (kind == Parser::Kind::response && !parser.idle()) {
    log += parser.eof() == Parser::Step::done ? "eof-done" : "eof-error";
  }
  return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t options = data[0];
  const uint32_t seed = data[1] | 0x100u;
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  const Parser::Kind kind = (options & 1) ? Parser::Kind::response : Parser::Kind::request;
  const uint64_t limits[] = {0, 16, 4096, 1 << 20};
  const uint64_t body_max = limits[(options >> 1) & 3];
  const bool head_answer = (options & 8) != 0;
  const std::string whole = drive(kind, input, body_max, head_answer, 0);
  const std::string cut = drive(kind, input, body_max, head_answer, seed);
  if (whole != cut) __builtin_trap();  // cutting the input changed the outcome
  std::string decoded;
  (void)percent_decode(input.substr(0, 64), &decoded, PlusIsSpace::yes);
  return 0;
}
