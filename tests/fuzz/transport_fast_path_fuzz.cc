// Differential fuzzing of the relay's hand-written frame paths (transport.h):
// ParseTransportMessage, which reads a canonically encoded SEND or ACK itself,
// against the protobuf-only parser; and SerializeTransportMessage, which
// writes Ok and QueueMessage replies itself, against protobuf's serializer.
//
// Invariants (a violation aborts): both parsers accept or refuse the same
// input, with the same error, and accept it as the same value; every parsed
// message serializes to the same bytes on both paths.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rhizome/crypto/init.h"
#include "rhizome/protocol/transport.h"

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
  const rhizome::ByteSpan bytes(data, size);
  auto fast = p::ParseTransportMessage(bytes);
  auto reference = p::internal::ParseTransportMessageWithProtobuf(bytes);
  Check(fast.ok() == reference.ok());
  if (!fast.ok()) {
    Check(fast.error().code == reference.error().code);
    Check(std::string(fast.error().message) == std::string(reference.error().message));
    return 0;
  }
  auto fast_bytes = p::SerializeTransportMessage(*fast);
  auto reference_bytes = p::internal::SerializeTransportMessageWithProtobuf(*reference);
  Check(fast_bytes.ok() == reference_bytes.ok());
  if (fast_bytes.ok()) Check(*fast_bytes == *reference_bytes);
  return 0;
}
