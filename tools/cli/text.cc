// Text helpers of coworker-cli (see text.h).
#include "tools/cli/text.h"

#include <simdjson.h>

#include <poll.h>
#include <unistd.h>

#include <cstdio>

namespace coworker::cli_client {

void percent_encode(std::string& out, std::string_view bytes) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                            c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
}

bool valid_utf8(std::string_view bytes) {
  return simdjson::validate_utf8(bytes.data(), bytes.size());
}

bool write_out(std::string_view bytes) {
  if (bytes.empty()) return std::ferror(stdout) == 0;
  return std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size();
}

bool flush_out() { return std::fflush(stdout) == 0; }

bool stdout_gone() {
  // No events asked: POLLERR (a pipe without reader) and POLLHUP always come.
  pollfd out{STDOUT_FILENO, 0, 0};
  return ::poll(&out, 1, 0) == 1 && (out.revents & (POLLERR | POLLHUP)) != 0;
}

}  // namespace coworker::cli_client
