// Base64 (RFC 4648 §4, with padding) for bodies that are not UTF-8: entries
// answered as "body_base64" and windows sent with "body_base64" (DESIGN §3).
// Pure functions, any core.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace coworker::server {

// Appends the encoding of `bytes` to `out`.
void base64_encode(std::string& out, std::string_view bytes);
// The bytes, or nothing for input that is not canonical padded base64
// (length a multiple of 4, only the alphabet, '=' only at the end, zero
// bits after the last symbol).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace coworker::server
