// The `rhizome-relay` command line.
//
// Returns the process exit code: 0 success, 1 failure, 2 usage error.
// Thread safety: call from main() only.
#pragma once

namespace rhizome::relay {

int RunRelayCli(int argc, char** argv);

}  // namespace rhizome::relay
