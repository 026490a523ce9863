// coworker-cli read: pages through a bucket (GET /v1/buckets/{b}/entries) or
// one identifier's entries (GET /v1/log/{identifier}) from a position, and
// prints each entry as "position<TAB>identifier<TAB>body" (the bytes as they
// were appended) or as its JSON. Without --follow it stops where a page made
// no progress; with --follow it long-polls from `next` until interrupted or
// stdout closes. Runs on the CLI's one core.
#include <simdjson.h>

#include <fmt/format.h>

#include "tools/cli/commands.h"
#include "tools/cli/text.h"
#include "tools/coworker/base64.h"

namespace coworker::cli_client {
namespace {

// A long-poll waits at most this long on the server (its cap, DESIGN §3).
constexpr uint64_t follow_wait_ms = 30000;

std::string page_target(const ReadOptions& read, uint64_t from) {
  std::string target;
  if (read.bucket) {
    target = fmt::format("/v1/buckets/{}/entries", *read.bucket);
  } else {
    target = "/v1/log/";
    percent_encode(target, *read.identifier);
  }
  fmt::format_to(std::back_inserter(target), "?from={}&limit={}", from, read.limit);
  if (read.follow == Follow::yes) {
    fmt::format_to(std::back_inserter(target), "&wait_ms={}", follow_wait_ms);
  }
  if (read.local == Local::yes) target += "&local=1";
  return target;
}

// One entry as a text line; empty with *error set when it is malformed.
std::string entry_line(simdjson::dom::object entry, std::string* error) {
  uint64_t position = 0;
  std::string_view identifier;
  if (entry["position"].get_uint64().get(position) ||
      entry["identifier"].get_string().get(identifier)) {
    *error = "an entry without position or identifier";
    return {};
  }
  std::string line = fmt::format("{}\t", position);
  line += identifier;
  line += '\t';
  std::string_view body;
  if (!entry["body"].get_string().get(body)) {
    line += body;
  } else if (!entry["body_base64"].get_string().get(body)) {
    std::optional<std::string> bytes = server::base64_decode(body);
    if (!bytes) {
      *error = fmt::format("entry {}: body_base64 is not base64", position);
      return {};
    }
    line += *bytes;
  } else {
    *error = fmt::format("entry {} has no body", position);
    return {};
  }
  line += '\n';
  return line;
}

struct Page {
  uint64_t entries = 0;
  uint64_t next = 0;
};

enum class Printed : uint8_t { ok, malformed, stdout_closed };

// Prints a page's entries; *page gets how many and where the next starts.
Printed print_page(const std::string& body, cli::Output output, Page* page, std::string* error) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  simdjson::dom::array entries;
  if (parser.parse(body).get(object) || object["entries"].get_array().get(entries) ||
      object["next"].get_uint64().get(page->next)) {
    *error = "a page without entries or next";
    return Printed::malformed;
  }
  std::string out;
  for (simdjson::dom::element element : entries) {
    simdjson::dom::object entry;
    if (element.get_object().get(entry)) {
      *error = "an entry that is not an object";
      return Printed::malformed;
    }
    if (output == cli::Output::json) {
      out += simdjson::minify(entry);
      out += '\n';
    } else {
      out += entry_line(entry, error);
      if (!error->empty()) return Printed::malformed;
    }
    page->entries++;
  }
  // A follower reads us live: each page leaves at once.
  if (!write_out(out) || !flush_out()) return Printed::stdout_closed;
  return Printed::ok;
}

}  // namespace

reactor::Task<int> run_read(Session& session, GlobalOptions options, ReadOptions read) {
  uint64_t from = read.from;
  for (;;) {
    std::string target = page_target(read, from);
    auto call = session.call(http::Method::get, target, "", "");
    Result<Answer, GaveUp> answer = co_await call;
    if (!answer) co_return fail("read", answer.error().reason);
    if (answer->status != 200) co_return fail("read", target + ": " + describe(*answer));
    Page page;
    std::string error;
    const Printed printed = print_page(answer->body, options.output, &page, &error);
    if (printed == Printed::stdout_closed) co_return exit_ok;  // the reader left
    if (printed == Printed::malformed) {
      co_return fail("read", target + ": " + error + ": " + describe(*answer));
    }
    // An identifier's page may scan positions without finding any of its
    // entries: only a page that did not move means the end.
    const bool moved = page.next != from;
    from = page.next;
    if (!moved && read.follow == Follow::no) break;
    if (read.follow == Follow::yes && stdout_gone()) break;  // checked once per long-poll
  }
  co_return exit_ok;
}

}  // namespace coworker::cli_client
