// The client API of a participant (DESIGN §3), as HTTP routes.
//
// One Router for the process, built before the cores start and read-only
// after; each handler runs on the core of the connection that carried the
// request and reaches other cores only through submit_to / broadcast:
//   GET  /, /index.html             the live status page (status_page.h)
//   GET  /v1/health                 core 0's view of this participant
//   GET  /v1/cluster                core 0's table + every core's buckets
//   POST /v1/connect                a connection id, from core 0's blocks
//   POST /v1/log/{identifier}       one message, on the bucket's core
//   POST /v1/append                 a window, split per bucket (dispatch.h)
//   GET  /v1/buckets/{b}/entries    committed entries, at the leader or here
//   GET  /v1/log/{identifier}       one identifier's entries in its bucket
//   GET  /metrics                   Prometheus text (metrics_view.cc)
// A request for a bucket another participant leads is hopped there
// (dispatch.h); the answer is the leader's.
// Errors are {"error": words, "code": word} (http/response.h).
#pragma once

#include <memory>

#include "http/router.h"
#include "reactor/task.h"

namespace coworker::server {

class Participant;

std::unique_ptr<http::Router> make_router(Participant& participant);
reactor::Task<http::Response> metrics_response(Participant& participant);
// The `code` word of an answer for /metrics: "ok" for 2xx, else the code of
// its error body (every error body is Response::error's), "none" without.
std::string_view answer_code(const http::Response& response);

}  // namespace coworker::server
