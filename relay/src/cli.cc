#include "rhizome/relay/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

namespace rhizome::relay {

int RunRelayCli(int argc, char** argv) {
  CLI::App app{
      "rhizome-relay: an untrusted store-and-forward relay for Rhizome.\n"
      "It holds only encrypted, padded blobs in one-way mailboxes and group boards.",
      "rhizome-relay"};
  app.set_version_flag("--version", std::string("rhizome-relay ") + RHIZOME_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help/--version: 0; parse errors: 2
  }
  // Serving arrives with the relay issue; until then say so plainly.
  std::fprintf(stderr,
               "rhizome-relay: this build cannot serve yet (the relay is not implemented in "
               "version %s); see --help\n",
               RHIZOME_VERSION);
  return 1;
}

}  // namespace rhizome::relay
