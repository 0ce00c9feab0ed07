// rhizome: the Rhizome client.
#include <cstdio>

#include "rhizome/client/cli.h"
#include "rhizome/crypto/init.h"

int main(int argc, char** argv) {
  if (auto st = rhizome::crypto::HardenProcess(); !st) {
    std::fprintf(stderr, "rhizome: error: %s\n", st.error().message);
    return 1;
  }
  return rhizome::client::RunCli(argc, argv);
}
