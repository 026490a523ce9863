// The live status page of a participant, served at GET / (routes.cc).
//
// The page is tools/coworker/status_page.html, one self-contained file (inline
// CSS and JS) that polls /v1/cluster and /metrics of the participant it came
// from. Its bytes are compiled in at build time (embed_file.cmake writes
// status_page_html.cc in the build tree; a change to the HTML rebuilds it), so
// the binary needs no file at run time. Read-only, shared by every core.
#pragma once

#include <string_view>

namespace coworker::server {

// The bytes of status_page.html as built; static storage, valid for the process.
std::string_view status_page_html();

}  // namespace coworker::server
