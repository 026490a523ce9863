// COWORKER_ASSERT: a programmer error crashes the process, in every build.
//
// Header-only and free of I/O beyond the final message on stderr, so that the
// pure layers (consensus/) may include it too. Operating errors are values
// (see result.h); this is only for "this cannot happen unless we have a bug".
#pragma once

namespace coworker {

// Called before abort(); the simulator sets it to print the failing seed.
using AssertHook = void (*)();
inline AssertHook& assert_hook() {
  static AssertHook hook = nullptr;
  return hook;
}

[[noreturn]] void assert_fail(const char* condition, const char* file, int line);

}  // namespace coworker

#define COWORKER_ASSERT(condition)                                          \
  (__builtin_expect(static_cast<bool>(condition), 1)                        \
       ? static_cast<void>(0)                                               \
       : ::coworker::assert_fail(#condition, __FILE__, __LINE__))
