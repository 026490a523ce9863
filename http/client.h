// Client: one keep-alive HTTP/1.1 connection to a server, on the reactor, for
// the CLI, the load generator and tests. Parses answers with the same Parser
// as the server (Kind::response).
//
// Owned by one task on one core; not shared between cores. Requests are
// queued (serialized into the output buffer), sent by flush(), and answered
// in order by next_response(): any number may be in flight (pipelining).
// request() is the one-at-a-time shortcut. Every wait has a deadline
// (connect_timeout, request_timeout): ETIMEDOUT. A connection the server
// closed after its last answer (Connection: close, or an idle timeout) is
// re-opened by the next request(); one closed with requests in flight fails
// them (ECONNRESET), since they may or may not have been executed.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "http/parser.h"
#include "reactor/net.h"
#include "reactor/ops.h"
#include "reactor/result.h"
#include "reactor/task.h"

namespace coworker::http {

struct ClientConfig {
  reactor::Milliseconds connect_timeout{2000};
  reactor::Milliseconds request_timeout{35000};  // above the 30 s long-poll cap
  uint64_t body_max = 64 << 20;
  size_t buffer_size = 64 << 10;
};

class Client {
 public:
  explicit Client(reactor::Endpoint server, ClientConfig config = {});
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  reactor::Task<Status> connect();
  bool connected() const { return _fd >= 0; }

  // Serializes a request (Content-Length when a body or a POST/PUT);
  // `headers` are extra "Name: value\r\n" lines.
  void queue(Method method, std::string_view target, std::string_view body = {},
             std::string_view headers = {});
  size_t in_flight() const { return _methods.size(); }
  // Sends everything queued (connecting first when needed).
  reactor::Task<Status> flush();
  // The answer to the oldest request in flight; valid until the next call.
  // EPROTO when the answer is malformed (the connection is then closed).
  reactor::Task<Result<Message*>> next_response();
  // queue + flush + next_response; moves the answer out.
  reactor::Task<Result<Message>> request(Method method, std::string_view target,
                                         std::string_view body = {},
                                         std::string_view headers = {});
  reactor::Task<void> close();

  const Error& parse_error() const { return _parser.error(); }

 private:
  reactor::Task<Status> fill();
  void drop();

  reactor::Endpoint _server;
  ClientConfig _config;
  std::string _host;
  int _fd = -1;
  std::string _out;
  std::vector<char> _in;
  std::string_view _pending;
  Parser _parser;
  Message _response;
  std::deque<Method> _methods;  // of the requests in flight, in order
};

}  // namespace coworker::http
