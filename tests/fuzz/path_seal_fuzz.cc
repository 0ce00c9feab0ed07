// Fuzzes OpenPathSeal (docs/protocol/path-seal.md) with arbitrary blobs, and
// SealForPath with the same bytes as a payload.
//
// The recipient is a fixed key pair (X25519 secret 0x07 x 32). The corpus
// holds blobs sealed to it (docs/protocol/path-seal.md, "Fuzz corpus"): three
// that open (512 and 1280 bytes), one with a correct AEAD around a non-zero
// fill byte, and one truncated by a byte.
//
// Invariants (a violation aborts):
// - an input that opens is a relay blob size, and its payload fits in it;
//   resealing the payload gives a blob of RelayBlobSizeFor(len + 52) bytes
//   (never larger than the input) that opens to the same payload;
// - damaged => must fail: the opened input with one bit flipped (position
//   taken from the input) does not open (kAuthenticationFailed);
// - every input of at most kMaxPathSealPayloadBytes seals as a payload and
//   opens back to itself; an input that does not open fails with one of the
//   documented codes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/path_seal.h"

namespace p = rhizome::protocol;
namespace c = rhizome::crypto;
using rhizome::Errc;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

const c::X25519KeyPair& Recipient() {
  static const c::X25519KeyPair* kp =
      new c::X25519KeyPair(c::X25519FromSecret(std::vector<std::uint8_t>(32, 7)).value());
  return *kp;
}

std::uint64_t SeedOf(rhizome::ByteSpan input) {
  const auto h = c::Blake2b256(input);
  std::uint64_t seed = 0;
  for (std::size_t i = 0; i < 8; ++i) seed = (seed << 8) | h[i];
  return seed;
}

// Seals `payload`, checks the blob's size and that it opens to `payload`.
void CheckRoundTrip(rhizome::ByteSpan payload, c::RandomSource& rng) {
  auto blob = p::SealForPath(payload, Recipient().public_key, rng);
  Check(blob.ok());
  Check(blob->size() == p::RelayBlobSizeFor(payload.size() + p::kPathSealOverheadBytes));
  auto back = p::OpenPathSeal(*blob, Recipient());
  Check(back.ok() && std::equal(back->begin(), back->end(), payload.begin(), payload.end()));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!c::Init()) std::abort();
  (void)Recipient();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const rhizome::ByteSpan input(data, size);
  c::DeterministicRandom rng(SeedOf(input));

  auto opened = p::OpenPathSeal(input, Recipient());
  if (opened.ok()) {
    Check(p::IsRelayBlobSize(size));
    Check(opened->size() <= size - p::kPathSealOverheadBytes);
    const std::size_t resealed_size =
        p::RelayBlobSizeFor(opened->size() + p::kPathSealOverheadBytes);
    Check(resealed_size != 0 && resealed_size <= size);
    CheckRoundTrip(*opened, rng);

    std::vector<std::uint8_t> damaged(input.begin(), input.end());
    std::size_t bit = 0;
    for (std::uint8_t b : input) bit = bit * 31 + b;
    bit %= size * 8;
    damaged[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto bad = p::OpenPathSeal(damaged, Recipient());
    Check(!bad.ok() && bad.error().code == Errc::kAuthenticationFailed);
  } else {
    const Errc code = opened.error().code;
    Check(code == Errc::kLimitExceeded || code == Errc::kMalformed ||
          code == Errc::kAuthenticationFailed);
    Check((code == Errc::kLimitExceeded) == (size > p::kMaxBlobBytes));
  }

  if (size <= p::kMaxPathSealPayloadBytes) CheckRoundTrip(input, rng);
  return 0;
}
