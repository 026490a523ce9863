#include "http/parser.h"

#include <cstring>

#include "consensus/assert.h"

namespace coworker::http {

namespace {

// Every error the parser answers with. Codes are stable (clients match them).
constexpr Error line_too_long{414, "request_line_too_long", "the request line exceeds its limit"};
constexpr Error headers_too_large{431, "headers_too_large", "the header bytes exceed their limit"};
constexpr Error too_many_headers{431, "headers_too_large", "too many header fields"};
constexpr Error body_too_large{413, "body_too_large", "the body exceeds this route's limit"};
constexpr Error bad_line_ending{400, "bad_line_ending", "a line does not end in CRLF"};
constexpr Error bad_request_line{400, "bad_request_line",
                                 "the request line is not 'METHOD target HTTP/1.x'"};
constexpr Error bad_method{400, "bad_method", "the method is not a token"};
constexpr Error bad_target{400, "bad_target",
                           "the request target is not an origin-form path of visible ASCII"};
constexpr Error bad_version{400, "bad_version", "the HTTP version is malformed"};
constexpr Error unsupported_version{505, "unsupported_version", "only HTTP/1.0 and 1.1 are served"};
constexpr Error bad_status_line{400, "bad_status_line", "the status line is malformed"};
constexpr Error folded_header{400, "bad_header", "a folded (obs-fold) header line"};
constexpr Error bad_header_name{400, "bad_header",
                                "a header name is not a token followed by a colon"};
constexpr Error header_injection{400, "header_injection", "a bare CR or LF inside a line"};
constexpr Error bad_header_value{400, "bad_header_value", "a control byte in a header value"};
constexpr Error bad_content_length{400, "bad_content_length",
                                   "Content-Length is not a decimal number that fits"};
constexpr Error duplicate_content_length{400, "duplicate_content_length",
                                         "more than one Content-Length"};
constexpr Error length_with_chunked{400, "content_length_with_chunked",
                                    "both Content-Length and Transfer-Encoding: chunked"};
constexpr Error unsupported_coding{501, "unsupported_transfer_encoding",
                                   "the only transfer coding served is chunked"};
constexpr Error bad_transfer_encoding{400, "bad_transfer_encoding",
                                      "Transfer-Encoding on an HTTP/1.0 request"};
constexpr Error expectation_failed{417, "expectation_failed",
                                   "the only expectation served is 100-continue"};
constexpr Error bad_host{400, "bad_host", "an HTTP/1.1 request needs exactly one Host"};
constexpr Error bad_chunk_size{400, "bad_chunk_size",
                               "a chunk size is not a hex number that fits"};
constexpr Error bad_chunk{400, "bad_chunk", "chunk data is not followed by CRLF"};
constexpr Error truncated{400, "truncated", "the connection closed inside a message"};
constexpr Error too_many_empty_lines{400, "bad_request_line", "too many empty lines"};

constexpr size_t empty_lines_max = 8;
constexpr size_t chunk_line_max = 1024;
constexpr size_t method_length_max = 32;
constexpr unsigned chunk_hex_digits_max = 15;  // < 2^60: no overflow, far above any limit
constexpr unsigned length_digits_max = 18;     // < 10^18 < 2^63

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each comma-separated, trimmed, non-empty element.
template <typename Fn>
void for_each_token(std::string_view list, Fn fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// Validates a header (or trailer) line without its CRLF; returns null when
// fine and fills name and value.
const Error* check_header(std::string_view line, std::string_view* name, std::string_view* value) {
  if (is_ows(line.front())) return &folded_header;
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return &bad_header_name;
  for (size_t i = 0; i < colon; i++) {
    if (!is_tchar(static_cast<unsigned char>(line[i]))) return &bad_header_name;
  }
  const std::string_view raw = line.substr(colon + 1);
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r' || c == '\n') return &header_injection;
    if ((c < 0x20 && c != '\t') || c == 0x7f) return &bad_header_value;
  }
  *name = line.substr(0, colon);
  *value = trim(raw);
  return nullptr;
}

bool parse_version(std::string_view text, int* minor, const Error** error) {
  if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || text[6] != '.' || text[5] < '0' ||
      text[5] > '9' || text[7] < '0' || text[7] > '9') {
    *error = &bad_version;
    return false;
  }
  if (text[5] != '1' || text[7] > '1') {
    *error = &unsupported_version;
    return false;
  }
  *minor = text[7] - '0';
  return true;
}

}  // namespace

void Parser::start(Message* out) {
  COWORKER_ASSERT(out != nullptr);
  COWORKER_ASSERT(_state != State::failed);
  _out = out;
  _out->clear();
  _state = State::start_line;
  _error = {};
  _no_body = false;
  _line_start = _line_bytes = _header_bytes = _empty_lines = 0;
  _remaining = _body_max = 0;
  _line.clear();
  _spans.clear();
  _method = _target = _reason = {};
}

Parser::Step Parser::fail(const Error& error) {
  _error = error;
  _state = State::failed;
  return Step::error;
}

Parser::Step Parser::feed(std::string_view input, size_t* consumed) {
  COWORKER_ASSERT(_out != nullptr);
  *consumed = 0;
  for (;;) {
    const std::string_view rest = input.substr(*consumed);
    size_t used = 0;
    Step step = Step::more;
    switch (_state) {
      case State::start_line:
      case State::header_line:
      case State::chunk_size:
      case State::chunk_data_end:
      case State::trailer_line:
        if (rest.empty()) return Step::more;
        step = feed_line(rest, &used);
        break;
      case State::body_length:
      case State::body_eof:
      case State::chunk_data:
        if (rest.empty()) return Step::more;
        step = feed_body(rest, &used);
        break;
      case State::head_complete:
        return Step::head;
      case State::done:
        return Step::done;
      case State::failed:
        return Step::error;
    }
    // Progress: either bytes were consumed or an event is reported.
    COWORKER_ASSERT(used > 0 || step != Step::more);
    *consumed += used;
    if (step != Step::more) return step;
  }
}

Parser::Step Parser::feed_line(std::string_view rest, size_t* used) {
  const bool in_head = _state == State::start_line || _state == State::header_line;
  const auto* newline = static_cast<const char*>(std::memchr(rest.data(), '\n', rest.size()));
  const size_t take = newline != nullptr ? static_cast<size_t>(newline - rest.data()) + 1
                                         : rest.size();
  // Limits are checked before a byte is stored: memory stays bounded.
  const size_t line_bytes = _line_bytes + take;
  switch (_state) {
    case State::start_line:
      if (line_bytes > _limits.request_line_max + 2) return fail(line_too_long);
      break;
    case State::header_line:
    case State::trailer_line:
      if (_header_bytes + line_bytes > _limits.header_bytes_max) return fail(headers_too_large);
      break;
    default:
      if (line_bytes > chunk_line_max) {
        return fail(_state == State::chunk_size ? bad_chunk_size : bad_chunk);
      }
      break;
  }
  if (in_head) {
    _out->head.insert(_out->head.end(), rest.data(), rest.data() + take);
  } else {
    _line.append(rest.data(), take);
  }
  _line_bytes = line_bytes;
  *used = take;
  if (newline == nullptr) return Step::more;

  const Span line{static_cast<uint32_t>(_line_start), static_cast<uint32_t>(_line_bytes)};
  _line_bytes = 0;
  if (in_head) {
    _line_start = _out->head.size();
    return on_line(line);
  }
  const Step step = on_body_line(_line);
  _line.clear();
  return step;
}

Parser::Step Parser::on_body_line(std::string_view text) {
  if (text.size() < 2 || text[text.size() - 2] != '\r') {
    return fail(_state == State::chunk_data_end ? bad_chunk : bad_line_ending);
  }
  text.remove_suffix(2);
  if (text.find('\r') != std::string_view::npos) return fail(header_injection);
  if (_state == State::chunk_size) return on_chunk_size_line(text);
  if (_state == State::trailer_line) return on_trailer_line(text);
  if (!text.empty()) return fail(bad_chunk);  // chunk_data_end: only CRLF
  _state = State::chunk_size;
  return Step::more;
}

Parser::Step Parser::on_line(Span line) {
  std::string_view text = view(line);
  if (text.size() < 2 || text[text.size() - 2] != '\r') return fail(bad_line_ending);
  text.remove_suffix(2);
  if (text.find('\r') != std::string_view::npos) return fail(header_injection);
  if (_state == State::start_line) {
    if (text.empty()) {
      // Tolerate a few CRLFs between pipelined messages (RFC 9112 §2.2).
      if (++_empty_lines > empty_lines_max) return fail(too_many_empty_lines);
      _out->head.clear();
      _line_start = 0;
      return Step::more;
    }
    const Step step = _kind == Kind::request ? on_request_line(text) : on_status_line(text);
    if (step == Step::more) _state = State::header_line;
    return step;
  }
  if (text.empty()) return on_head_complete();
  _header_bytes += line.length;
  return on_header_line(Span{line.offset, line.length - 2});
}

Parser::Step Parser::on_request_line(std::string_view line) {
  const size_t first = line.find(' ');
  const size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) return fail(bad_request_line);
  const std::string_view method = line.substr(0, first);
  const std::string_view target = line.substr(first + 1, last - first - 1);
  if (method.size() > method_length_max) return fail(bad_method);
  for (char c : method) {
    if (!is_tchar(static_cast<unsigned char>(c))) return fail(bad_method);
  }
  const Error* error = nullptr;
  if (!parse_version(line.substr(last + 1), &_out->version_minor, &error)) return fail(*error);
  if (target.empty()) return fail(bad_target);
  for (char ch : target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '#') return fail(bad_target);
  }
  if (target.front() != '/' && !(target == "*" && method == "OPTIONS")) return fail(bad_target);
  _method = Span{0, static_cast<uint32_t>(first)};
  _target = Span{static_cast<uint32_t>(first + 1), static_cast<uint32_t>(target.size())};
  return Step::more;
}

Parser::Step Parser::on_status_line(std::string_view line) {
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    return fail(bad_status_line);
  }
  const Error* error = nullptr;
  if (!parse_version(line.substr(0, 8), &_out->version_minor, &error)) return fail(*error);
  int status = 0;
  for (size_t i = 9; i < 12; i++) {
    if (line[i] < '0' || line[i] > '9') return fail(bad_status_line);
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return fail(bad_status_line);
  for (char ch : line.substr(12)) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(bad_status_line);
  }
  _out->status = status;
  _reason = line.size() > 13 ? Span{13, static_cast<uint32_t>(line.size() - 13)} : Span{};
  return Step::more;
}

Parser::Step Parser::on_header_line(Span line) {
  if (_spans.size() >= _limits.header_count_max) return fail(too_many_headers);
  std::string_view name, value;
  if (const Error* error = check_header(view(line), &name, &value)) return fail(*error);
  const char* base = _out->head.data();
  _spans.push_back({Span{static_cast<uint32_t>(name.data() - base),
                         static_cast<uint32_t>(name.size())},
                    Span{static_cast<uint32_t>(value.data() - base),
                         static_cast<uint32_t>(value.size())}});
  return Step::more;
}

Parser::Step Parser::on_head_complete() {
  // The head is complete and will not grow: views into it are stable now.
  Message& m = *_out;
  m.headers.reserve(_spans.size());
  for (const auto& [name, value] : _spans) m.headers.push_back(Header{view(name), view(value)});
  if (_kind == Kind::request) {
    m.method_text = view(_method);
    m.method = method_from(m.method_text);
    m.target = view(_target);
    const size_t question = m.target.find('?');
    m.path = m.target.substr(0, question);
    m.query = question == std::string_view::npos ? std::string_view{}
                                                 : m.target.substr(question + 1);
  } else {
    m.reason = view(_reason);
  }
  const Step step = framing_headers();
  if (step == Step::error) return step;
  _state = State::head_complete;
  return Step::head;
}

Parser::Step Parser::framing_headers() {
  Message& m = *_out;
  bool close = false, keep_alive = false, chunked = false, other_coding = false;
  size_t hosts = 0;
  for (const Header& h : m.headers) {
    if (iequals(h.name, "content-length")) {
      if (m.content_length) return fail(duplicate_content_length);
      if (h.value.empty() || h.value.size() > length_digits_max) return fail(bad_content_length);
      uint64_t n = 0;
      for (char c : h.value) {
        if (c < '0' || c > '9') return fail(bad_content_length);
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      m.content_length = n;
    } else if (iequals(h.name, "transfer-encoding")) {
      for_each_token(h.value, [&](std::string_view coding) {
        // chunked must be the one and only coding.
        if (iequals(coding, "chunked") && !chunked) {
          chunked = true;
        } else {
          other_coding = true;
        }
      });
      if (h.value.find_first_not_of(" \t,") == std::string_view::npos) other_coding = true;
    } else if (iequals(h.name, "connection")) {
      for_each_token(h.value, [&](std::string_view option) {
        if (iequals(option, "close")) close = true;
        if (iequals(option, "keep-alive")) keep_alive = true;
      });
    } else if (_kind == Kind::request && iequals(h.name, "expect")) {
      if (!iequals(h.value, "100-continue")) return fail(expectation_failed);
      m.expect_continue = m.version_minor == 1;
    } else if (iequals(h.name, "host")) {
      hosts++;
    }
  }
  if (chunked || other_coding) {
    if (_kind == Kind::request && m.version_minor == 0) return fail(bad_transfer_encoding);
    if (m.content_length) return fail(length_with_chunked);
    if (other_coding) return fail(unsupported_coding);
  }
  if (_kind == Kind::request && (hosts > 1 || (hosts == 0 && m.version_minor == 1))) {
    return fail(bad_host);
  }
  m.chunked = chunked;
  m.keep_alive = !close && (m.version_minor == 1 || keep_alive);
  return Step::more;
}

Parser::Step Parser::after_head(uint64_t body_max) {
  COWORKER_ASSERT(_state == State::head_complete);
  Message& m = *_out;
  _body_max = body_max;
  if (_kind == Kind::response &&
      (_no_body || m.status < 200 || m.status == 204 || m.status == 304)) {
    _state = State::done;
    return Step::done;
  }
  if (m.chunked) {
    _state = State::chunk_size;
    return Step::more;
  }
  if (m.content_length) {
    if (*m.content_length > body_max) return fail(body_too_large);
    if (*m.content_length == 0) {
      _state = State::done;
      return Step::done;
    }
    m.body.reserve(*m.content_length + body_padding);
    _remaining = *m.content_length;
    _state = State::body_length;
    return Step::more;
  }
  if (_kind == Kind::request) {
    _state = State::done;
    return Step::done;
  }
  // A response without framing: the body runs until the connection closes.
  m.keep_alive = false;
  _state = State::body_eof;
  return Step::more;
}

Parser::Step Parser::feed_body(std::string_view rest, size_t* used) {
  std::string& body = _out->body;
  if (_state == State::body_eof) {
    if (body.size() + rest.size() > _body_max) return fail(body_too_large);
    body.append(rest);
    *used = rest.size();
    return Step::more;
  }
  const size_t take = rest.size() < _remaining ? rest.size() : static_cast<size_t>(_remaining);
  body.append(rest.data(), take);
  _remaining -= take;
  *used = take;
  if (_remaining > 0) return Step::more;
  if (_state == State::chunk_data) {
    _state = State::chunk_data_end;
    return Step::more;
  }
  _state = State::done;
  return Step::done;
}

Parser::Step Parser::on_chunk_size_line(std::string_view line) {
  uint64_t size = 0;
  unsigned digits = 0;
  size_t i = 0;
  for (; i < line.size(); i++) {
    const char c = line[i];
    unsigned value;
    if (c >= '0' && c <= '9') {
      value = static_cast<unsigned>(c - '0');
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
      value = static_cast<unsigned>((c | 0x20) - 'a' + 10);
    } else {
      break;
    }
    if (++digits > chunk_hex_digits_max) return fail(bad_chunk_size);
    size = size * 16 + value;
  }
  if (digits == 0) return fail(bad_chunk_size);
  // Only whitespace and a chunk extension (";name=value", ignored) may follow.
  std::string_view tail = line.substr(i);
  while (!tail.empty() && is_ows(tail.front())) tail.remove_prefix(1);
  if (!tail.empty() && tail.front() != ';') return fail(bad_chunk_size);
  for (char ch : tail) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(bad_chunk_size);
  }
  if (size == 0) {
    _state = State::trailer_line;
    return Step::more;
  }
  if (_out->body.size() + size > _body_max) return fail(body_too_large);
  _out->body.reserve(_out->body.size() + size + body_padding);
  _remaining = size;
  _state = State::chunk_data;
  return Step::more;
}

Parser::Step Parser::on_trailer_line(std::string_view line) {
  if (line.empty()) {
    _state = State::done;
    return Step::done;
  }
  _header_bytes += line.size() + 2;
  std::string_view name, value;
  if (const Error* error = check_header(line, &name, &value)) return fail(*error);
  return Step::more;  // trailers are checked, not kept
}

Parser::Step Parser::eof() {
  if (_state == State::body_eof) {
    _state = State::done;
    return Step::done;
  }
  if (_state == State::done) return Step::done;
  return fail(truncated);
}

}  // namespace coworker::http
