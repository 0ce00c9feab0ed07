// The `rhizome` command line.
//
// RunCli parses argv, runs one command and returns the process exit code:
//   0 success, 1 the command failed (message on stderr), 2 usage error.
// Command form: rhizome [--profile DIR] [--passphrase-file FILE] COMMAND [ARGS...]
// Errors go to stderr; with --json, results go to stdout as one JSON object.
// Thread safety: call from main() only.
#pragma once

namespace rhizome::client {

int RunCli(int argc, char** argv);

}  // namespace rhizome::client
