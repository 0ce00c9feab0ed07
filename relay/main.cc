// rhizome-relay: the optional store-and-forward relay.
#include <cstdio>

#include "rhizome/crypto/init.h"
#include "rhizome/relay/cli.h"

int main(int argc, char** argv) {
  if (auto st = rhizome::crypto::HardenProcess(); !st) {
    std::fprintf(stderr, "rhizome-relay: error: %s\n", st.error().message);
    return 1;
  }
  return rhizome::relay::RunRelayCli(argc, argv);
}
