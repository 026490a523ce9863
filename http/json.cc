#include "http/json.h"

#include <fmt/format.h>

#include "http/parser.h"

namespace coworker::http {

static_assert(body_padding >= simdjson::SIMDJSON_PADDING, "bodies must carry simdjson's padding");

void json_quote(std::string& out, std::string_view text) {
  out += '"';
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

Response json_field_error(std::string_view field, std::string_view what) {
  return Response::error(400, "bad_json", fmt::format("field '{}': {}", field, what));
}

std::optional<Response> JsonBody::parse_object(std::string& body,
                                               simdjson::ondemand::object* out) {
  simdjson::error_code error;
  if (body.capacity() >= body.size() + simdjson::SIMDJSON_PADDING) {
    error = _parser.iterate(body.data(), body.size(), body.capacity()).get(_document);
  } else {
    _copy = simdjson::padded_string(body);
    error = _parser.iterate(_copy).get(_document);
  }
  if (!error) error = _document.get_object().get(*out);
  if (error) {
    return Response::error(400, "bad_json",
                           fmt::format("the body is not a JSON object: {}",
                                       simdjson::error_message(error)));
  }
  return std::nullopt;
}

Result<uint64_t, Response> json_uint(simdjson::ondemand::object& object, std::string_view field) {
  uint64_t value = 0;
  simdjson::error_code error = object.find_field_unordered(field).get_uint64().get(value);
  if (error == simdjson::NO_SUCH_FIELD) return json_field_error(field, "missing");
  if (error) return json_field_error(field, "expected an unsigned integer");
  return value;
}

Result<std::string_view, Response> json_string(simdjson::ondemand::object& object,
                                               std::string_view field) {
  std::string_view value;
  simdjson::error_code error = object.find_field_unordered(field).get_string().get(value);
  if (error == simdjson::NO_SUCH_FIELD) return json_field_error(field, "missing");
  if (error) return json_field_error(field, "expected a string");
  return value;
}

Result<std::optional<uint64_t>, Response> json_optional_uint(simdjson::ondemand::object& object,
                                                             std::string_view field) {
  uint64_t value = 0;
  simdjson::error_code error = object.find_field_unordered(field).get_uint64().get(value);
  if (error == simdjson::NO_SUCH_FIELD) return std::optional<uint64_t>{};
  if (error) return json_field_error(field, "expected an unsigned integer");
  return std::optional<uint64_t>{value};
}

}  // namespace coworker::http
