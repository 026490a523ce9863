# Writes a C++ source that holds the bytes of one file, for files the binary
# serves as they are (the status page, status_page.h). Run at build time by
# tools/coworker/CMakeLists.txt whenever the file or this script changes:
#
#   cmake -DINPUT=page.html -DOUTPUT=page_html.cc -DHEADER=tools/coworker/status_page.h
#         -DNAMESPACE=coworker::server -DFUNCTION=status_page_html -P embed_file.cmake
#
# The bytes go in as a hex array rather than a raw string literal, so that no
# content (a ")delimiter\"", a NUL, bytes that are not UTF-8) can break the
# source. FUNCTION() returns them as a std::string_view over static storage.
foreach(variable INPUT OUTPUT HEADER NAMESPACE FUNCTION)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "embed_file.cmake: -D${variable}=... is missing")
  endif()
endforeach()

file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
# Every byte as 0xNN, then sixteen of them a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
get_filename_component(input_name "${INPUT}" NAME)

file(WRITE "${OUTPUT}" "// Generated at build time from ${input_name} by embed_file.cmake: do not edit.
#include \"${HEADER}\"

namespace ${NAMESPACE} {

namespace {

// ${size} bytes and a NUL, which the view leaves out (an array is never empty).
constexpr unsigned char bytes[] = {
    ${bytes}0x00};
static_assert(sizeof bytes == ${size} + 1);

}  // namespace

std::string_view ${FUNCTION}() {
  return {reinterpret_cast<const char*>(bytes), sizeof bytes - 1};
}

}  // namespace ${NAMESPACE}
")
