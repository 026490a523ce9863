#include "http/response.h"

#include <charconv>

#include <fmt/format.h>

#include "http/json.h"

namespace coworker::http {

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

Response Response::error(int status, std::string_view code, std::string_view words) {
  Response r;
  r.status = status;
  r.body.reserve(32 + code.size() + words.size());
  r.body += "{\"error\": ";
  json_quote(r.body, words);
  r.body += ", \"code\": ";
  json_quote(r.body, code);
  r.body += "}\n";
  return r;
}

Response& Response::header(std::string_view name, std::string_view value) {
  for (char c : name) COWORKER_ASSERT(c != '\r' && c != '\n' && c != '\0' && c != ':');
  for (char c : value) COWORKER_ASSERT(c != '\r' && c != '\n' && c != '\0');
  headers.append(name).append(": ").append(value).append("\r\n");
  return *this;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

// Every answer's head: plain appends, no formatting library call (fmt's
// back_inserter path showed in the profile of every append).
void write_head(std::string& out, const Response& response, int version_minor, bool keep_alive,
                Framing framing) {
  COWORKER_ASSERT(response.status >= 100 && response.status <= 999);
  COWORKER_ASSERT(version_minor == 0 || version_minor == 1);
  char digits[24];
  out += version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, response.status).ptr);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\nContent-Type: ";
  out += response.content_type;
  out += "\r\n";
  switch (framing) {
    case Framing::sized:
      out += "Content-Length: ";
      out.append(digits, std::to_chars(digits, digits + sizeof digits, response.body.size()).ptr);
      out += "\r\n";
      break;
    case Framing::chunked:
      out += "Transfer-Encoding: chunked\r\n";
      break;
    case Framing::until_close:
      COWORKER_ASSERT(!keep_alive);
      break;
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version_minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += response.headers;
  out += "\r\n";
}

void write_chunk(std::string& out, std::string_view data) {
  if (data.empty()) return;  // an empty chunk would end the body
  fmt::format_to(std::back_inserter(out), "{:x}\r\n", data.size());
  out.append(data);
  out += "\r\n";
}

void write_last_chunk(std::string& out) { out += "0\r\n\r\n"; }

}  // namespace coworker::http
