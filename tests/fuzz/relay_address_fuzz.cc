// Fuzzes the relay address text parser (ParseRelayAddress) and the host
// normaliser behind it.
//
// Invariants (a violation aborts): a parsed address formats; the formatted
// text parses to an address that formats to the same text (canonical form is
// a fixed point); NormalizeHost is idempotent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rhizome/crypto/init.h"
#include "rhizome/protocol/relay_address.h"

namespace p = rhizome::protocol;

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!rhizome::crypto::Init()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto address = p::ParseRelayAddress(text)) {
    auto formatted = p::FormatRelayAddress(*address);
    Check(formatted.ok() && formatted->size() <= p::kMaxRelayAddressChars);
    auto reparsed = p::ParseRelayAddress(*formatted);
    Check(reparsed.ok());
    Check(p::FormatRelayAddress(*reparsed).value() == *formatted);
  }
  if (auto host = p::NormalizeHost(text)) {
    auto again = p::NormalizeHost(*host);
    Check(again.ok() && *again == *host);
    Check(p::IsCanonicalHost(*host));
  }
  return 0;
}
