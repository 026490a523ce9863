#include "http/url.h"

namespace coworker::http {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool percent_decode(std::string_view in, std::string* out, PlusIsSpace plus) {
  out->reserve(out->size() + in.size());
  for (size_t i = 0; i < in.size(); i++) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int high = hex_value(in[i + 1]);
      const int low = hex_value(in[i + 2]);
      if (high < 0 || low < 0) return false;
      *out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus == PlusIsSpace::yes) {
      *out += ' ';
    } else {
      *out += c;
    }
  }
  return true;
}

bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>* out) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    if (!item.empty()) {
      const size_t eq = item.find('=');
      std::pair<std::string, std::string> kv;
      if (!percent_decode(item.substr(0, eq), &kv.first, PlusIsSpace::yes)) return false;
      if (eq != std::string_view::npos &&
          !percent_decode(item.substr(eq + 1), &kv.second, PlusIsSpace::yes)) {
        return false;
      }
      out->push_back(std::move(kv));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return true;
}

}  // namespace coworker::http
