// Small text helpers of coworker-cli: percent-encoding of path segments,
// UTF-8 checks, and writing answers to stdout. Pure functions (the writers
// touch only stdout), on the CLI's one core.
#pragma once

#include <string>
#include <string_view>

namespace coworker::cli_client {

// Appends `bytes` as one path segment: RFC 3986 unreserved bytes as they
// are, every other byte %XX (so '/' and '?' in an identifier stay in it).
void percent_encode(std::string& out, std::string_view bytes);

bool valid_utf8(std::string_view bytes);

// Writes the bytes to stdout. False once stdout is gone (a closed pipe): the
// reader has left, and the command should stop.
bool write_out(std::string_view bytes);
// Flushes stdout, for a reader that follows us live. False as above.
bool flush_out();
// Whether stdout is a pipe whose reader has gone (`| head`), seen without
// writing: a follower that prints nothing for a while still stops.
bool stdout_gone();

}  // namespace coworker::cli_client
