// Library initialisation.
#pragma once

#include "rhizome/crypto/result.h"

namespace rhizome::crypto {

// Initialises libsodium. Idempotent and thread-safe. Must succeed before any
// other function of this library is called. Errors: kInternal.
Status Init();

// Hardens the current process for holding secrets: no core dumps
// (RLIMIT_CORE = 0, PR_SET_DUMPABLE = 0). Called first thing by every main().
// Errors: kInternal if a setting is refused.
Status HardenProcess();

}  // namespace rhizome::crypto
