// Percent-decoding of path segments and query strings (RFC 3986 §2.1).
//
// Pure functions; any core. '+' means a space only in a query string
// (application/x-www-form-urlencoded), never in a path.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coworker::http {

enum class PlusIsSpace : bool { no, yes };

// Appends the decoded `in` to *out. False on a '%' not followed by two hex
// digits (out is then unspecified).
bool percent_decode(std::string_view in, std::string* out, PlusIsSpace plus);

// "a=1&b=x%20y&c" → {{"a","1"},{"b","x y"},{"c",""}}. Empty elements are
// skipped. False on a bad escape.
bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>* out);

}  // namespace coworker::http
