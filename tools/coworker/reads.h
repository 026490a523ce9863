// Reads served here: a page of a bucket's committed entries, or of one
// identifier's entries in it, as the JSON of DESIGN §3, with the long-poll
// of wait_ms. Used for client reads this participant serves itself and for
// reads peers hop to it (dispatch.h decides which).
//
// Runs on any core; the bucket's core does the reading. The answer is an
// HTTP status and body (hop.h ReadAnswer), so a hopped read carries back
// exactly what the leader answered.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "consensus/phaser_messages.h"
#include "http/response.h"
#include "reactor/task.h"
#include "tools/coworker/core.h"
#include "tools/coworker/hop.h"

namespace coworker::server {

class Participant;

// One request scans at most this many positions (GET /v1/log/{identifier}:
// "a bounded number of positions", then `next` where it stopped).
inline constexpr uint64_t scan_positions_max = 10000;
// A page stops growing once its entries take this many bytes of JSON (one
// entry more at most: a 1 MiB body escapes to 6 MiB at worst), far below
// what a hop answer may carry (consensus::value_bytes_max, 64 MiB).
inline constexpr size_t answer_bytes_max = size_t{8} << 20;

// `serve`: the leader's copy (the caller checked the read lease) or this
// replica's own (local=1). Waits for entries at `from` until `wait_until`.
reactor::Task<ReadAnswer> read_here(Participant& p, const ReadHop& query, Core::Serve serve,
                                    std::chrono::steady_clock::time_point wait_until);

// DESIGN §3 error shapes as a ReadAnswer, and back to a Response.
ReadAnswer read_error(int status, std::string_view code, std::string_view words);
http::Response to_response(ReadAnswer answer);

// One entry as DESIGN §3 shows it (body or body_base64; the connection in
// its client text form, connection_text.h, checked with `cluster`).
void entry_json(std::string& out, consensus::Position position, const consensus::EntryView& e,
                uint64_t cluster);

}  // namespace coworker::server
