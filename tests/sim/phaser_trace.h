// Trace digests and descriptions of phaser messages (trace.h dispatches here).
#pragma once

#include <cstdint>
#include <string>

#include "consensus/phaser_messages.h"

namespace coworker::sim {

uint64_t digest_phaser_message(const consensus::PhaserMessage& message);
const char* phaser_message_name(const consensus::PhaserMessage& message);
std::string describe_phaser_message(const consensus::PhaserMessage& message);

}  // namespace coworker::sim
