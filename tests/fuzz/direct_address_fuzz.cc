// Fuzz target: protocol::ParseDirectAddress, what a person types for
// `rhizome daemon --listen` / `--advertise` (protocol/wire_types.h).
// Invariants (abort on violation): text above kMaxDirectAddressTextBytes is
// refused with kLimitExceeded; whatever parses is valid (ValidateDirectAddress)
// and its text form parses back to the same address.
// Corpus: tests/fuzz/corpus/direct_address/.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "rhizome/protocol/wire_types.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rhizome;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = protocol::ParseDirectAddress(text);
  if (size > protocol::kMaxDirectAddressTextBytes &&
      (parsed.ok() || parsed.error().code != Errc::kLimitExceeded)) {
    std::abort();
  }
  if (!parsed) return 0;
  if (!protocol::ValidateDirectAddress(*parsed).ok()) std::abort();
  auto again = protocol::ParseDirectAddress(protocol::FormatDirectAddress(*parsed));
  if (!again.ok() || !(*again == *parsed)) std::abort();
  return 0;
}
