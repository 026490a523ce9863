#include "reactor/net.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>

namespace coworker::reactor {

Result<Endpoint, std::string> Endpoint::parse(std::string_view host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos) {
    return std::string("expected HOST:PORT, got '") + std::string(host_port) + "'";
  }
  const std::string host(host_port.substr(0, colon));
  const std::string_view port_text = host_port.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    return std::string("bad port in '") + std::string(host_port) + "'";
  }
  Endpoint endpoint;
  endpoint.address.sin_family = AF_INET;
  endpoint.address.sin_port = htons(static_cast<uint16_t>(port));
  const char* name = host == "localhost" ? "127.0.0.1" : host.c_str();
  if (inet_pton(AF_INET, name, &endpoint.address.sin_addr) != 1) {
    return std::string("bad IPv4 address in '") + std::string(host_port) + "'";
  }
  return endpoint;
}

std::string Endpoint::to_string() const {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text));
  return std::string(text) + ":" + std::to_string(port());
}

uint16_t Endpoint::port() const { return ntohs(address.sin_port); }

Endpoint Endpoint::host_only() const {
  Endpoint e = *this;
  e.address.sin_port = 0;
  return e;
}

Result<int> listen_tcp(const Endpoint& endpoint, ReusePort reuse, int backlog) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno{errno};
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse == ReusePort::yes) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&endpoint.address), sizeof(endpoint.address)) <
          0 ||
      ::listen(fd, backlog) < 0) {
    const int error = errno;
    ::close(fd);
    return Errno{error};
  }
  return fd;
}

Result<Endpoint> local_endpoint(int fd) {
  Endpoint endpoint;
  socklen_t length = sizeof(endpoint.address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&endpoint.address), &length) < 0) {
    return Errno{errno};
  }
  return endpoint;
}

void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

Task<Result<int>> connect_tcp(Endpoint remote, const Endpoint* local, Milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) co_return Errno{errno};
  if (local != nullptr) {
    const Endpoint bind_to = local->host_only();
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&bind_to.address),
               sizeof(bind_to.address)) < 0) {
      const int error = errno;
      ::close(fd);
      co_return Errno{error};
    }
  }
  Status connected = co_await Connect{fd, remote.address, timeout};
  if (!connected) {
    ::close(fd);
    co_return connected.error();
  }
  set_nodelay(fd);
  co_return fd;
}

}  // namespace coworker::reactor
