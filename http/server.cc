#include "http/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include "http/connection.h"
#include "reactor/multishot.h"

namespace coworker::http {

using reactor::Loop;

namespace {

constexpr std::string_view overload_answer =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 71\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    "{\"error\": \"too many open connections\", \"code\": \"too_many_connections\"}\n";
static_assert(overload_answer.size() - overload_answer.find("\r\n\r\n") - 4 == 71);

}  // namespace

Server::Server(const Router& router, ServerConfig config) : _router(router), _config(config) {}

Server::~Server() {
  COWORKER_ASSERT(_connections == nullptr);
  COWORKER_ASSERT(!_sweeping);
}

void Server::reject(int fd) {
  _stats.connections_rejected++;
  // A fresh socket has room for this: one nonblocking send, then close.
  [[maybe_unused]] ssize_t n =
      ::send(fd, overload_answer.data(), overload_answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::close(fd);
}

reactor::Task<void> Server::run_connection(int fd) {
  Connection connection(*this, fd);
  connection.next = _connections;
  if (_connections != nullptr) _connections->prev = &connection;
  _connections = &connection;
  _stats.connections_open++;
  co_await connection.run();
  if (connection.prev != nullptr) {
    connection.prev->next = connection.next;
  } else {
    _connections = connection.next;
  }
  if (connection.next != nullptr) connection.next->prev = connection.prev;
  COWORKER_ASSERT(_stats.connections_open > 0);
  _stats.connections_open--;
  if (_stats.connections_open == 0) _drained.notify_all();
}

reactor::Task<void> Server::sweep() {
  while (!Loop::current().stopping()) {
    Status slept = co_await reactor::Timeout{_config.tick};
    if (!slept) break;  // the loop is stopping
    const Connection::Clock::time_point now = Connection::Clock::now();
    for (Connection* c = _connections; c != nullptr; c = c->next) c->check_deadline(now);
  }
  _sweeping = false;
  _drained.notify_all();
}

reactor::Task<void> Server::serve(int listen_fd) {
  Loop& loop = Loop::current();
  if (_config.recv_mode == RecvMode::multishot && loop.ring().features().recv_multishot) {
    Result<std::unique_ptr<reactor::BufferRing>> ring =
        reactor::BufferRing::create(_config.buffer_count, _config.buffer_size);
    if (ring) _buffers = std::move(*ring);  // else: single-shot recv
  }
  _sweeping = true;
  loop.spawn(sweep());
  reactor::MultishotAccept accept(listen_fd);
  for (;;) {
    Result<int> fd = co_await accept.next();
    if (!fd) {
      if (fd.error().code == ECANCELED || loop.stopping()) break;
      // EMFILE, ENFILE, ENOMEM, ECONNABORTED: transient; breathe and retry.
      (void)co_await reactor::Timeout{reactor::Milliseconds{10}};
      continue;
    }
    if (_stats.connections_open >= _config.connections_max) {
      reject(*fd);
      continue;
    }
    _stats.connections_accepted++;
    reactor::set_nodelay(*fd);
    loop.spawn(run_connection(*fd));
  }
  co_await accept.close();
  while (_stats.connections_open > 0) co_await _drained.wait_through_stop();
  while (_sweeping) co_await _drained.wait_through_stop();
  _buffers.reset();
}

Result<std::vector<int>> listen_per_core(const reactor::Endpoint& endpoint, unsigned cores,
                                         reactor::Endpoint* bound) {
  std::vector<int> fds;
  reactor::Endpoint where = endpoint;
  for (unsigned core = 0; core < cores; core++) {
    Result<int> fd = reactor::listen_tcp(where, reactor::ReusePort::yes);
    if (!fd) {
      for (int open : fds) ::close(open);
      return fd.error();
    }
    fds.push_back(*fd);
    if (core == 0) {
      Result<reactor::Endpoint> local = reactor::local_endpoint(*fd);
      if (!local) {
        ::close(*fd);
        return local.error();
      }
      where = *local;  // port 0: the others bind the port the first one got
    }
  }
  if (bound != nullptr) *bound = where;
  return fds;
}

}  // namespace coworker::http
