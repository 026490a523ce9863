// JSON for HTTP bodies: quoting for answers built with fmt, and simdjson
// (on-demand) for request bodies, with errors that become a 400 naming the
// field.
//
// JsonBody is per core (one simdjson parser, reused; it is not thread-safe):
// a server keeps one per core and handlers use it through `Request`'s core.
// Request bodies are parsed in place: the HTTP parser reserves
// SIMDJSON_PADDING bytes after every body, so nothing is copied.
//
//   simdjson::ondemand::object object;
//   if (auto error = json.parse_object(request.body, &object)) co_return *error;
//   Result<uint64_t, Response> n = json_uint(object, "series_wrap");
//   if (!n) co_return n.error();
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/response.h"
#include "reactor/result.h"

namespace coworker::http {

// Appends `text` as a JSON string literal (quotes included); control bytes
// are escaped, other bytes are copied as they are.
void json_quote(std::string& out, std::string_view text);

// 400 {"error": "field '<field>': <what>", "code": "bad_json"}.
Response json_field_error(std::string_view field, std::string_view what);

class JsonBody {
 public:
  // Parses `body` (padding reserved by the HTTP parser; otherwise copied
  // once) and expects an object. Returns the 400 answer on failure.
  std::optional<Response> parse_object(std::string& body, simdjson::ondemand::object* out);

 private:
  simdjson::ondemand::parser _parser;
  simdjson::ondemand::document _document;
  simdjson::padded_string _copy;
};

// Field readers: a missing field or a wrong type is a 400 naming the field.
Result<uint64_t, Response> json_uint(simdjson::ondemand::object& object, std::string_view field);
Result<std::string_view, Response> json_string(simdjson::ondemand::object& object,
                                               std::string_view field);
// Absent → nullopt; present but not an unsigned integer → 400.
Result<std::optional<uint64_t>, Response> json_optional_uint(simdjson::ondemand::object& object,
                                                             std::string_view field);

}  // namespace coworker::http
