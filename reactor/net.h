// Socket setup helpers: addresses, listeners, outgoing connections.
//
// Creating and binding sockets are rare, synchronous system calls; only the
// connect that may wait on the network goes through the ring.
#pragma once

#include <netinet/in.h>

#include <string>
#include <string_view>

#include "reactor/ops.h"
#include "reactor/result.h"
#include "reactor/task.h"

namespace coworker::reactor {

struct Endpoint {
  sockaddr_in address{};

  static Result<Endpoint, std::string> parse(std::string_view host_port);
  std::string to_string() const;
  uint16_t port() const;
  // The same host with port 0: what an outgoing socket binds to.
  Endpoint host_only() const;
};

enum class ReusePort : bool { no, yes };

// socket + bind + listen, nonblocking, SO_REUSEADDR (and SO_REUSEPORT when
// asked, so every core can own a listener on the same port).
Result<int> listen_tcp(const Endpoint& endpoint, ReusePort reuse, int backlog = 4096);
// The port the kernel chose for a socket bound to port 0.
Result<Endpoint> local_endpoint(int fd);

// Connects to `remote`, binding first to `local` when given (so a packet
// filter on the source address sees our host), with TCP_NODELAY set.
Task<Result<int>> connect_tcp(Endpoint remote, const Endpoint* local, Milliseconds timeout);

// TCP_NODELAY on an accepted socket.
void set_nodelay(int fd);

}  // namespace coworker::reactor
