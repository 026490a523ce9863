// The HTTP parser, fed whole, split at every byte boundary, and byte by byte:
// every way of cutting the input must give the same messages and errors.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"

using namespace coworker::http;
using Step = Parser::Step;

namespace {

std::string describe(const Message& m, Parser::Kind kind) {
  std::string out;
  if (kind == Parser::Kind::request) {
    out += fmt::format("{} {} path={} query={} 1.{}", m.method_text, m.target, m.path, m.query,
                       m.version_minor);
  } else {
    out += fmt::format("{} '{}' 1.{}", m.status, m.reason, m.version_minor);
  }
  for (const Header& h : m.headers) out += fmt::format(" [{}={}]", h.name, h.value);
  out += fmt::format(" keep_alive={} continue={} body='{}'\n", m.keep_alive, m.expect_continue,
                     m.body);
  return out;
}

// Feeds the pieces in order; logs each message and the first error.
std::string drive(Parser::Kind kind, const std::vector<std::string_view>& pieces,
                  uint64_t body_max = 1 << 20, bool eof = false, Limits limits = {}) {
  Parser parser(kind, limits);
  Message m;
  parser.start(&m);
  std::string log;
  for (std::string_view rest : pieces) {
    for (;;) {
      size_t used = 0;
      Step step = parser.feed(rest, &used);
      REQUIRE(used <= rest.size());
      rest.remove_prefix(used);
      if (step == Step::head) {
        step = parser.after_head(body_max);
        if (step == Step::more) continue;
      }
      if (step == Step::done) {
        log += describe(m, kind);
        parser.start(&m);
        continue;
      }
      if (step == Step::error) {
        return log + fmt::format("error {} {}\n", parser.error().status, parser.error().code);
      }
      REQUIRE(rest.empty());
      break;
    }
  }
  if (eof && !parser.idle()) {
    if (parser.eof() == Step::done) {
      log += describe(m, kind);
    } else {
      log += fmt::format("error {} {}\n", parser.error().status, parser.error().code);
    }
  }
  return log;
}

// Parses `input` whole, then at every split point and byte by byte; all must
// agree. Returns the log of the whole parse.
std::string parse(std::string_view input, Parser::Kind kind = Parser::Kind::request,
                  uint64_t body_max = 1 << 20, bool eof = false) {
  const std::string whole = drive(kind, {input}, body_max, eof);
  for (size_t i = 0; i <= input.size(); i++) {
    const std::string split = drive(kind, {input.substr(0, i), input.substr(i)}, body_max, eof);
    REQUIRE_MESSAGE(split == whole, "split at byte " << i);
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < input.size(); i++) bytes.push_back(input.substr(i, 1));
  CHECK(drive(kind, bytes, body_max, eof) == whole);
  return whole;
}

}  // namespace

TEST_CASE("parser: a simple GET") {
  CHECK(parse("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n") ==
        "GET /v1/health path=/v1/health query= 1.1 [Host=x] keep_alive=true continue=false "
        "body=''\n");
}

TEST_CASE("parser: header names are case-insensitive and values trimmed") {
  Parser parser(Parser::Kind::request, {});
  Message m;
  parser.start(&m);
  const std::string_view input =
      "POST /a?x=1 HTTP/1.1\r\nhOsT: h\r\ncontent-LENGTH:  3 \r\nX-Y:\tv v\t\r\n\r\nabc";
  size_t used = 0;
  REQUIRE(parser.feed(input, &used) == Step::head);
  CHECK(m.header("Content-Length") == "3");
  CHECK(m.header("x-y") == "v v");
  CHECK(!m.header("missing"));
  CHECK(m.query == "x=1");
  REQUIRE(parser.after_head(100) == Step::more);
  size_t more = 0;
  CHECK(parser.feed(input.substr(used), &more) == Step::done);
  CHECK(m.body == "abc");
  CHECK(m.body.capacity() >= m.body.size() + body_padding);
}

TEST_CASE("parser: Content-Length body and keep-alive rules") {
  CHECK(parse("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello") ==
        "POST /e path=/e query= 1.1 [Host=h] [Content-Length=5] keep_alive=true "
        "continue=false body='hello'\n");
  CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").find("keep_alive=false") !=
        std::string::npos);
  CHECK(parse("GET / HTTP/1.0\r\n\r\n").find("1.0 keep_alive=false") != std::string::npos);
  CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").find("keep_alive=true") !=
        std::string::npos);
  CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n")
            .find("keep_alive=false") != std::string::npos);
}

TEST_CASE("parser: chunked bodies with extensions and trailers") {
  const std::string log = parse(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n");
  CHECK(log.find("body='hello 0123456789'") != std::string::npos);
}

TEST_CASE("parser: Expect: 100-continue is reported on 1.1 only") {
  CHECK(parse("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nz")
            .find("continue=true body='z'") != std::string::npos);
  CHECK(parse("PUT /x HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").find("continue=false") !=
        std::string::npos);
}

TEST_CASE("parser: many pipelined requests in one buffer are parsed in order") {
  std::string input;
  constexpr int count = 1000;
  for (int i = 0; i < count; i++) {
    if (i % 3 == 0) {
      input += fmt::format("GET /r/{} HTTP/1.1\r\nHost: h\r\n\r\n", i);
    } else if (i % 3 == 1) {
      input += fmt::format("POST /r/{} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{}", i,
                           std::to_string(i).size(), i);
    } else {
      input += fmt::format(
          "POST /r/{} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
          i, std::to_string(i).size(), i);
    }
  }
  const std::string log = drive(Parser::Kind::request, {input});
  std::vector<std::string_view> lines;
  std::string_view rest = log;
  while (!rest.empty()) {
    lines.push_back(rest.substr(0, rest.find('\n')));
    rest.remove_prefix(rest.find('\n') + 1);
  }
  REQUIRE(lines.size() == count);
  for (int i = 0; i < count; i++) {
    CHECK(lines[i].find(fmt::format(" /r/{} ", i)) != std::string_view::npos);
    if (i % 3 != 0) CHECK(lines[i].find(fmt::format("body='{}'", i)) != std::string_view::npos);
  }
  // And the same stream cut into uneven pieces.
  std::vector<std::string_view> pieces;
  for (size_t at = 0, size = 1; at < input.size(); at += size, size = size % 97 + 13) {
    pieces.push_back(std::string_view(input).substr(at, size));
  }
  CHECK(drive(Parser::Kind::request, pieces) == log);
}

TEST_CASE("parser: malformed requests and the status each gets") {
  struct Case {
    std::string input;
    int status;
    std::string_view code;
  };
  const std::string long_target(8200, 'a');
  const std::string big_header = "X: " + std::string(17000, 'v') + "\r\n";
  std::string many_headers;
  for (int i = 0; i < 200; i++) many_headers += fmt::format("H{}: v\r\n", i);
  const Case cases[] = {
      {"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_method"},
      {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "bad_version"},
      {"GET / HTTP/x.1\r\nHost: h\r\n\r\n", 400, "bad_version"},
      {"GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400, "bad_version"},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "unsupported_version"},
      {"GET /\r\n\r\n", 400, "bad_request_line"},
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_target"},
      {"GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_target"},
      {"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_target"},
      {"GET /" + long_target + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, "request_line_too_long"},
      {"GET / HTTP/1.1\r\nHost: h\r\n" + big_header + "\r\n", 431, "headers_too_large"},
      {"GET / HTTP/1.1\r\nHost: h\r\n" + many_headers + "\r\n", 431, "headers_too_large"},
      {"GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "bad_line_ending"},
      {"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400, "bad_line_ending"},
      {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, "header_injection"},
      {std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0z\r\n\r\n", 34), 400, "bad_header_value"},
      {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400, "bad_header"},
      {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "bad_header"},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "bad_header"},
      {"GET / HTTP/1.1\r\n\r\n", 400, "bad_host"},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_host"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400, "bad_content_length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "bad_content_length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400, "bad_content_length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400,
       "bad_content_length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", 400, "bad_content_length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400,
       "duplicate_content_length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", 400,
       "duplicate_content_length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400, "content_length_with_chunked"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
       "unsupported_transfer_encoding"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n",
       501, "unsupported_transfer_encoding"},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "bad_transfer_encoding"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
       "bad_chunk_size"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
       400, "bad_chunk_size"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\n", 400,
       "bad_chunk_size"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", 400,
       "bad_chunk"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", 400,
       "bad_line_ending"},
      {"POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", 417, "expectation_failed"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", 413, "body_too_large"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413,
       "body_too_large"},
      {"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400, "bad_request_line"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input.substr(0, 120));
    const std::string log = parse(c.input);
    CHECK(log == fmt::format("error {} {}\n", c.status, c.code));
  }
}

TEST_CASE("parser: the body limit is the route's, chunks add up against it") {
  const std::string chunked =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
  CHECK(parse(chunked, Parser::Kind::request, 8).find("body='abcdefgh'") != std::string::npos);
  CHECK(parse(chunked, Parser::Kind::request, 7) == "error 413 body_too_large\n");
  CHECK(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n", Parser::Kind::request,
              8) == "error 413 body_too_large\n");
}

TEST_CASE("parser: leading empty lines between pipelined requests are tolerated") {
  CHECK(parse("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
            .find("GET /2") != std::string::npos);
}

TEST_CASE("parser: responses sized, chunked, until close, and without a body") {
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", Parser::Kind::response) ==
        "200 'OK' 1.1 [Content-Length=2] keep_alive=true continue=false body='hi'\n");
  CHECK(parse("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
              Parser::Kind::response)
            .find("body='ok'") != std::string::npos);
  CHECK(parse("HTTP/1.0 200 OK\r\n\r\nuntil the end", Parser::Kind::response, 1 << 20, true) ==
        "200 'OK' 1.0 keep_alive=false continue=false body='until the end'\n");
  CHECK(parse("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", Parser::Kind::response) ==
        "204 'No Content' 1.1 [Content-Length=5] keep_alive=true continue=false body=''\n");
  CHECK(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", Parser::Kind::response) ==
        "200 '' 1.1 [Content-Length=0] keep_alive=true continue=false body=''\n");
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", Parser::Kind::response, 1 << 20,
              true) == "error 400 truncated\n");
  CHECK(parse("HTTP/1.1 2x0 OK\r\n\r\n", Parser::Kind::response) ==
        "error 400 bad_status_line\n");
}

TEST_CASE("parser: a HEAD answer has no body whatever its Content-Length") {
  Parser parser(Parser::Kind::response, {});
  Message m;
  parser.start(&m);
  size_t used = 0;
  const std::string_view input = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  REQUIRE(parser.feed(input, &used) == Step::head);
  CHECK(used == input.size());
  parser.no_body();
  CHECK(parser.after_head(1 << 20) == Step::done);
  CHECK(m.content_length == 5u);
  CHECK(m.body.empty());
}
