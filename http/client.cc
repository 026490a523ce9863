#include "http/client.h"

#include <unistd.h>

#include <fmt/format.h>

namespace coworker::http {

using Step = Parser::Step;

Client::Client(reactor::Endpoint server, ClientConfig config)
    : _server(server),
      _config(config),
      _host(server.to_string()),
      _parser(Parser::Kind::response, Limits{.request_line_max = 8 << 10,
                                             .header_bytes_max = 64 << 10,
                                             .header_count_max = 256,
                                             .body_max = config.body_max}) {}

Client::~Client() {
  // close() is the way out; a client dropped while connected closes here.
  if (_fd >= 0) ::close(_fd);
}

reactor::Task<Status> Client::connect() {
  COWORKER_ASSERT(_fd < 0);
  Result<int> fd = co_await reactor::connect_tcp(_server, nullptr, _config.connect_timeout);
  if (!fd) co_return fd.error();
  _fd = *fd;
  _pending = {};
  if (_in.size() != _config.buffer_size) _in.resize(_config.buffer_size);
  co_return Status{};
}

void Client::drop() {
  if (_fd >= 0) ::close(_fd);
  _fd = -1;
  _pending = {};
  _methods.clear();
  _out.clear();
}

reactor::Task<void> Client::close() {
  if (_fd >= 0) (void)co_await reactor::Close{_fd};
  _fd = -1;
  _pending = {};
  _methods.clear();
  _out.clear();
}

void Client::queue(Method method, std::string_view target, std::string_view body,
                   std::string_view headers) {
  COWORKER_ASSERT(method != Method::other);
  COWORKER_ASSERT(!target.empty() && target.front() == '/');
  auto out = std::back_inserter(_out);
  fmt::format_to(out, "{} {} HTTP/1.1\r\nHost: {}\r\n", method_name(method), target, _host);
  if (!body.empty() || method == Method::post || method == Method::put) {
    fmt::format_to(out, "Content-Length: {}\r\n", body.size());
  }
  _out += headers;
  _out += "\r\n";
  _out += body;
  _methods.push_back(method);
}

reactor::Task<Status> Client::flush() {
  if (_out.empty()) co_return Status{};
  if (_fd < 0) {
    Status connected = co_await connect();
    if (!connected) {
      _methods.clear();
      _out.clear();
      co_return connected;
    }
  }
  Result<size_t> sent = co_await reactor::Send{_fd, _out, _config.request_timeout};
  _out.clear();
  if (!sent) {
    drop();
    co_return sent.error();
  }
  co_return Status{};
}

reactor::Task<Status> Client::fill() {
  Result<size_t> n = co_await reactor::Recv{_fd, _in, _config.request_timeout};
  if (!n) co_return n.error();
  _pending = std::string_view(_in.data(), *n);
  co_return Status{};
}

reactor::Task<Result<Message*>> Client::next_response() {
  COWORKER_ASSERT(!_methods.empty());
  if (_fd < 0) co_return Errno{ENOTCONN};
  _parser.start(&_response);
  for (;;) {
    bool eof = false;
    if (_pending.empty()) {
      Status filled = co_await fill();
      if (!filled) {
        drop();
        co_return filled.error();
      }
      eof = _pending.empty();
    }
    Step step;
    if (eof) {
      step = _parser.idle() ? Step::error : _parser.eof();
      if (step == Step::error) {
        drop();
        co_return Errno{ECONNRESET};  // closed before (or inside) the answer
      }
    } else {
      size_t used = 0;
      step = _parser.feed(_pending, &used);
      _pending.remove_prefix(used);
    }
    if (step == Step::head) {
      if (_response.status < 200) {  // 100 Continue and friends: skip
        (void)_parser.after_head(0);
        _parser.start(&_response);
        continue;
      }
      if (_methods.front() == Method::head) _parser.no_body();
      step = _parser.after_head(_config.body_max);
    }
    if (step == Step::more) continue;
    if (step == Step::error) {
      drop();
      co_return Errno{EPROTO};
    }
    _methods.pop_front();
    if (!_response.keep_alive) {
      // The server closes after this answer: anything still in flight is
      // lost (in_flight() drops to 0) and the next flush reconnects.
      drop();
    }
    co_return &_response;
  }
}

reactor::Task<Result<Message>> Client::request(Method method, std::string_view target,
                                               std::string_view body, std::string_view headers) {
  COWORKER_ASSERT(_methods.empty());
  queue(method, target, body, headers);
  Status sent = co_await flush();
  if (!sent) co_return sent.error();
  Result<Message*> answer = co_await next_response();
  if (!answer) co_return answer.error();
  co_return std::move(**answer);
}

}  // namespace coworker::http
