// Fuzzes the parsers of end-to-end plaintexts: ParseEnvelope and
// ParseContactCard (protobuf decoding plus Rhizome's own validation), and
// Unpad in front of them as a receiver runs it.
//
// Invariants (a violation aborts): whatever parses also serialises, and
// parsing that serialisation gives the same value and the same bytes again
// (unknown fields dropped, nothing else lost); unpadding never yields more
// bytes than it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rhizome/crypto/init.h"
#include "rhizome/protocol/contact_card.h"
#include "rhizome/protocol/envelope.h"
#include "rhizome/protocol/padding.h"

using rhizome::ByteSpan;
namespace p = rhizome::protocol;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckEnvelope(ByteSpan bytes) {
  auto envelope = p::ParseEnvelope(bytes);
  if (!envelope) return;
  auto again = p::SerializeEnvelope(*envelope);
  Check(again.ok() && again->size() <= p::kMaxEnvelopeBytes);
  auto reparsed = p::ParseEnvelope(*again);
  Check(reparsed.ok() && *reparsed == *envelope);
  Check(p::SerializeEnvelope(*reparsed).value() == *again);
  // Every valid envelope fits one padded block.
  auto padded = p::Pad(*again, p::PaddingPolicy::kSmallestFitting);
  Check(padded.ok() && p::Unpad(*padded).value() == *again);
}

void CheckCard(ByteSpan bytes) {
  auto card = p::ParseContactCard(bytes);
  if (!card) return;
  auto again = p::SerializeContactCard(*card);
  Check(again.ok());
  auto reparsed = p::ParseContactCard(*again);
  Check(reparsed.ok());
  Check(p::SerializeContactCard(*reparsed).value() == *again);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!rhizome::crypto::Init()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan input(data, size);
  CheckEnvelope(input);
  CheckCard(input);
  if (p::IsPaddingClass(size)) {
    auto unpadded = p::Unpad(input);
    if (unpadded) {
      Check(unpadded->size() < size);
      CheckEnvelope(*unpadded);
    }
  }
  return 0;
}
