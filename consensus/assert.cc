#include "consensus/assert.h"

#include <cstdio>
#include <cstdlib>

namespace coworker {

void assert_fail(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "assertion failed: %s at %s:%d\n", condition, file, line);
  if (AssertHook hook = assert_hook()) hook();
  std::fflush(stderr);
  std::abort();
}

}  // namespace coworker
