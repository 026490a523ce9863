// coworker-cli connect and append: opening a client connection, and sending
// lines as windows of messages with the client's duty of DESIGN §3 — one
// window in flight, series strictly increasing, and a window that was not
// answered 2xx resubmitted unchanged (same series, same bodies) until it is,
// or until the command gives up. Never renumbered, never skipped: the dedup
// rule then logs each message exactly once. Runs on the CLI's one core.
#include <simdjson.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "http/json.h"
#include "tools/cli/commands.h"
#include "tools/cli/text.h"
#include "tools/coworker/base64.h"

namespace coworker::cli_client {
namespace {

// The server's limits (DESIGN §3): a window of at most 1000 messages and 16
// MiB of body, a message body of at most 1 MiB. A window is cut before it
// would pass the byte bound (with room for the JSON around the bodies).
constexpr uint64_t window_messages_max = 1000;
constexpr size_t window_bytes_max = 15 << 20;
constexpr size_t body_bytes_max = 1 << 20;

// The lines of the input, one message each, without the newline. Reads with
// getline(3) so a line may hold any byte, NUL included.
class LineSource {
 public:
  explicit LineSource(std::FILE* file) : _file(file) {}
  LineSource(const LineSource&) = delete;
  LineSource& operator=(const LineSource&) = delete;
  ~LineSource() {
    std::free(_buffer);
    if (_file != stdin) std::fclose(_file);
  }

  // The next line, or nothing at the end of the input.
  std::optional<std::string> next() {
    if (_carried) return std::exchange(_carried, std::nullopt);
    const ssize_t n = ::getline(&_buffer, &_capacity, _file);
    if (n < 0) return std::nullopt;
    size_t length = static_cast<size_t>(n);
    if (length > 0 && _buffer[length - 1] == '\n') length--;
    return std::string(_buffer, length);
  }
  // A line taken but not used yet: next() gives it again.
  void carry(std::string line) { _carried = std::move(line); }
  bool failed() const { return std::ferror(_file) != 0; }

 private:
  std::FILE* _file;
  char* _buffer = nullptr;
  size_t _capacity = 0;
  std::optional<std::string> _carried;
};

struct Window {
  uint64_t first_series = 0;
  uint64_t count = 0;
  std::string json;  // the POST /v1/append body
};

void add_message(Window& window, std::string_view identifier, uint64_t series,
                 std::string_view body) {
  std::string& out = window.json;
  out += window.count == 0 ? "{\"messages\":[" : ",";
  out += "{\"identifier\":";
  http::json_quote(out, identifier);
  fmt::format_to(std::back_inserter(out), ",\"series\":{},", series);
  if (valid_utf8(body)) {
    out += "\"body\":";
    http::json_quote(out, body);
  } else {
    out += "\"body_base64\":\"";
    server::base64_encode(out, body);
    out += '"';
  }
  out += '}';
  window.count++;
}

// The next window from the input, starting at `series`; count 0 at the end.
Result<Window, std::string> take_window(LineSource& lines, const AppendOptions& append,
                                        uint64_t series, uint64_t line_number) {
  Window window{series, 0, {}};
  while (window.count < append.window) {
    std::optional<std::string> line = lines.next();
    if (!line) break;
    if (line->size() > body_bytes_max) {
      return fmt::format("line {} has {} bytes, over the {} byte limit of a message",
                         line_number + window.count + 1, line->size(), body_bytes_max);
    }
    // Base64 grows a body by a third; keep the whole window under the bound.
    if (window.count > 0 && window.json.size() + line->size() * 2 > window_bytes_max) {
      lines.carry(std::move(*line));
      break;
    }
    add_message(window, append.identifier, series + window.count, *line);
  }
  if (lines.failed()) return std::string("reading the input: ") + std::strerror(errno);
  if (window.count > 0) window.json += "]}";
  return window;
}

struct Totals {
  uint64_t messages = 0;
  uint64_t windows = 0;
  uint64_t resubmissions = 0;
};

void print_summary(const Totals& totals) {
  std::fprintf(stderr, "messages: %llu, windows: %llu, resubmissions: %llu\n",
               static_cast<unsigned long long>(totals.messages),
               static_cast<unsigned long long>(totals.windows),
               static_cast<unsigned long long>(totals.resubmissions));
}

std::string series_range(const Window& window) {
  return fmt::format("window of series {}..{}", window.first_series,
                     window.first_series + window.count - 1);
}

// Whether an answer names `superseded`, at its top or in a message's result.
bool mentions_superseded(const std::string& body) {
  return body.find("\"superseded\"") != std::string::npos;
}

// A 2xx answer: one result per message, printed with --json. Empty or why
// the answer does not fit the window.
std::string accept_results(const Answer& answer, const Window& window, cli::Output output) {
  simdjson::dom::parser parser;
  simdjson::dom::array results;
  if (parser.parse(answer.body).get_object()["results"].get_array().get(results)) {
    return "the answer has no results array: " + describe(answer);
  }
  if (results.size() != window.count) {
    return fmt::format("{} results for {} messages: {}", results.size(), window.count,
                       describe(answer));
  }
  for (simdjson::dom::element result : results) {
    if (result["error"].error() != simdjson::NO_SUCH_FIELD) {
      return "a 2xx answer carries an error: " + describe(answer);
    }
    if (output == cli::Output::json) {
      std::string line = simdjson::minify(result);
      line += '\n';
      if (!write_out(line)) return "stdout is closed";
    }
  }
  return {};
}

// Why a window answered with a final 4xx cannot be logged, and whether that
// is our bug or the server's: resubmitting unchanged never meets superseded.
std::string refusal(const Answer& answer, const Window& window) {
  if (answer.status == 409 && mentions_superseded(answer.body)) {
    if (answer.attempts > 1) {
      return fmt::format("BUG: the {} was resubmitted unchanged ({} attempts) and answered {} "
                         "(a resubmission must be logged once or answered duplicate); "
                         "please report this",
                         series_range(window), answer.attempts, describe(answer));
    }
    return fmt::format("the {} was superseded: this connection already sent higher series "
                       "(--series-start must be above them): {}",
                       series_range(window), describe(answer));
  }
  if (answer.status == 409 && answer.body.find("\"connection_expired\"") != std::string::npos) {
    return fmt::format("the connection's state expired before the {} was answered "
                       "(--connection-expiry): an earlier attempt may or may not have logged it, "
                       "so read the log before appending it again with a new connection: {}",
                       series_range(window), describe(answer));
  }
  return fmt::format("the {} was refused: {}", series_range(window), describe(answer));
}

}  // namespace

int fail(std::string_view command, std::string_view reason) {
  std::fprintf(stderr, "coworker-cli %.*s: %.*s\n", static_cast<int>(command.size()),
               command.data(), static_cast<int>(reason.size()), reason.data());
  return exit_failure;
}

reactor::Task<Result<Opened, std::string>> open_connection(Session& session) {
  auto call = session.call(http::Method::post, "/v1/connect", "", "");
  Result<Answer, GaveUp> answer = co_await call;
  if (!answer) co_return "opening a connection: " + answer.error().reason;
  if (answer->status != 201 && answer->status != 200) {
    co_return "opening a connection: " + describe(*answer);
  }
  simdjson::dom::parser parser;
  std::string_view id;
  if (parser.parse(answer->body).get_object()["connection"].get_string().get(id)) {
    co_return "opening a connection: no connection id in " + describe(*answer);
  }
  co_return Opened{std::string(id), answer->body};
}

reactor::Task<int> run_connect(Session& session, GlobalOptions options) {
  auto opening = open_connection(session);
  Result<Opened, std::string> opened = co_await opening;
  if (!opened) co_return fail("connect", opened.error());
  std::string line = options.output == cli::Output::json ? opened->json : opened->connection;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  line += '\n';
  co_return write_out(line) && flush_out() ? exit_ok : exit_failure;
}

reactor::Task<int> run_append(Session& session, GlobalOptions options, AppendOptions append) {
  COWORKER_ASSERT(append.window >= 1 && append.window <= window_messages_max);
  std::FILE* file = stdin;
  if (append.file) {
    file = std::fopen(append.file->c_str(), "rb");
    if (file == nullptr) {
      co_return fail("append", "cannot open " + *append.file + ": " + std::strerror(errno));
    }
  }
  LineSource lines(file);
  if (!append.connection) {
    auto opening = open_connection(session);
    Result<Opened, std::string> opened = co_await opening;
    if (!opened) co_return fail("append", opened.error());
    append.connection = opened->connection;
  }
  const std::string headers = "Coworker-Connection: " + *append.connection +
                              "\r\nContent-Type: application/json\r\n";
  Totals totals;
  uint64_t series = append.series_start;
  for (;;) {
    Result<Window, std::string> window = take_window(lines, append, series, totals.messages);
    if (!window) {
      print_summary(totals);
      co_return fail("append", window.error());
    }
    if (window->count == 0) break;
    // The same body for every attempt: Session::call resubmits it unchanged.
    auto call = session.call(http::Method::post, "/v1/append", window->json, headers);
    Result<Answer, GaveUp> answer = co_await call;
    if (!answer) {
      totals.resubmissions += answer.error().attempts - 1;
      print_summary(totals);
      co_return fail("append", "gave up on the " + series_range(*window) + ": " +
                                   answer.error().reason);
    }
    totals.resubmissions += answer->attempts - 1;
    const bool logged = answer->status >= 200 && answer->status < 300;
    std::string problem = logged ? accept_results(*answer, *window, options.output)
                                 : refusal(*answer, *window);
    if (!problem.empty()) {
      print_summary(totals);
      co_return fail("append", problem);
    }
    totals.messages += window->count;
    totals.windows++;
    series += window->count;
  }
  print_summary(totals);
  co_return flush_out() ? exit_ok : exit_failure;
}

}  // namespace coworker::cli_client
