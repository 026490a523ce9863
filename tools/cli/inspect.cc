// coworker-cli status and health: the cluster as one participant sees it
// (GET /v1/cluster, as a table), and each --server's readiness (GET
// /v1/health). Runs on the CLI's one core.
#include <simdjson.h>

#include <map>

#include <fmt/format.h>

#include "http/json.h"
#include "tools/cli/commands.h"
#include "tools/cli/text.h"

namespace coworker::cli_client {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

std::string number_or(element value, std::string_view otherwise) {
  uint64_t n = 0;
  if (value.get_uint64().get(n)) return std::string(otherwise);
  return std::to_string(n);
}

std::string text_or(element value, std::string_view otherwise) {
  std::string_view text;
  if (value.get_string().get(text)) return std::string(otherwise);
  return std::string(text);
}

// "[1,2,3]" of an array of numbers, as the JSON has it.
std::string numbers(element value) {
  array items;
  if (value.get_array().get(items)) return "[]";
  std::string out = "[";
  for (element item : items) {
    out += out.size() > 1 ? "," : "";
    out += number_or(item, "?");
  }
  return out + "]";
}

void members_table(object view, std::string& out) {
  array members;
  if (view["members"].get_array().get(members)) return;
  fmt::format_to(std::back_inserter(out), "members:\n  {:<4} {:<22} {:<22} {}\n", "id", "http",
                 "peer", "state");
  for (element member : members) {
    fmt::format_to(std::back_inserter(out), "  {:<4} {:<22} {:<22} {}\n",
                   number_or(member["id"], "?"), text_or(member["http"], "-"),
                   text_or(member["peer"], "-"), text_or(member["state"], "?"));
  }
}

// How many buckets each participant leads, and the buckets whose
// government is not yet their target (a migration in progress).
void buckets_summary(object view, std::string& out) {
  array buckets;
  if (view["buckets"].get_array().get(buckets)) return;
  std::map<std::string, uint64_t> led;  // leader id (or "none") → buckets
  std::string migrating;
  for (element bucket : buckets) {
    led[number_or(bucket["leader"], "none")]++;
    const std::string replicas = numbers(bucket["replicas"]);
    const std::string target = numbers(bucket["target"]);
    if (replicas != target) {
      fmt::format_to(std::back_inserter(migrating), "  bucket {:<5} replicas {} target {}\n",
                     number_or(bucket["bucket"], "?"), replicas, target);
    }
  }
  out += "buckets led:\n";
  for (const auto& [leader, count] : led) {
    fmt::format_to(std::back_inserter(out), "  {:<4} {}\n", leader, count);
  }
  out += migrating.empty() ? "migrating: none\n" : "migrating:\n" + migrating;
}

std::string status_table(const std::string& body, std::string* error) {
  simdjson::dom::parser parser;
  object view;
  if (parser.parse(body).get(view)) {
    *error = "the answer is not a JSON object";
    return {};
  }
  std::string out = fmt::format(
      "cluster {}  self {}  buckets {}  replicas {}\n", text_or(view["cluster"], "?"),
      number_or(view["self"], "?"), number_or(view["buckets_total"], "?"),
      number_or(view["replicas"], "?"));
  fmt::format_to(std::back_inserter(out), "membership: leader {}  slot {}  voters {}\n",
                 number_or(view.at_pointer("/membership/leader"), "none"),
                 number_or(view.at_pointer("/membership/slot"), "?"),
                 numbers(view.at_pointer("/membership/voters")));
  members_table(view, out);
  buckets_summary(view, out);
  return out;
}

}  // namespace

reactor::Task<int> run_status(Session& session, GlobalOptions options) {
  auto call = session.call(http::Method::get, "/v1/cluster", "", "");
  Result<Answer, GaveUp> answer = co_await call;
  if (!answer) co_return fail("status", answer.error().reason);
  if (answer->status != 200) co_return fail("status", describe(*answer));
  std::string out;
  if (options.output == cli::Output::json) {
    out = answer->body;
    if (out.empty() || out.back() != '\n') out += '\n';
  } else {
    std::string error;
    out = status_table(answer->body, &error);
    if (!error.empty()) co_return fail("status", error + ": " + describe(*answer));
  }
  co_return write_out(out) && flush_out() ? exit_ok : exit_failure;
}

reactor::Task<int> run_health(Session& session, GlobalOptions options) {
  int code = exit_ok;
  std::string out;
  for (size_t index = 0; index < session.server_count(); index++) {
    auto asking = session.attempt_at(index, http::Method::get, "/v1/health");
    Result<Answer, std::string> answer = co_await asking;
    std::string state = "unreachable";
    int status = 0;
    if (answer) {
      status = answer->status;
      simdjson::dom::parser parser;
      std::string_view word;
      if (parser.parse(answer->body)["state"].get_string().get(word)) {
        state = fmt::format("http-{}", status);
      } else {
        state = std::string(word);
      }
    }
    if (state != "serving" || status != 200) code = exit_failure;
    const std::string server = session.server_name(index);
    if (options.output == cli::Output::json) {
      out += "{\"server\":";
      http::json_quote(out, server);
      out += ",\"status\":" + std::to_string(status) + ",\"state\":";
      http::json_quote(out, state);
      if (!answer) {
        out += ",\"error\":";
        http::json_quote(out, answer.error());
      }
      out += "}\n";
    } else {
      out += server + " " + state + (answer ? "" : " (" + answer.error() + ")") + "\n";
    }
  }
  if (!write_out(out) || !flush_out()) code = exit_failure;
  co_return code;
}

}  // namespace coworker::cli_client
