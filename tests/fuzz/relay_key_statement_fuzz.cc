// Fuzzes the relay key statement parser (ParseRelayKeyStatement), its
// verification and ApplyKeyStatement (docs/protocol/relay-key-statement.md).
//
// Invariants (a violation aborts):
// - a parsed statement encodes back to exactly the input (the format is
//   byte-exact: there is one encoding per statement);
// - a statement that verifies under the test signing key (seed 42 x 32; the
//   corpus holds two) applies to an address of that relay with serial 0,
//   giving its noise key and psk, and is ignored (kAlreadyExists) at its own
//   serial; under another relay's address it is kAuthenticationFailed;
// - damaged => must fail: the verified input with one bit flipped (position
//   taken from the input) is rejected by the parser or by verification.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_key_statement.h"

namespace p = rhizome::protocol;
namespace c = rhizome::crypto;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Fixture {
  c::Ed25519KeyPair signing;
  p::RelayAddress address;
  p::RelayAddress other;
};

const Fixture& Get() {
  static const Fixture* f = [] {
    auto* x = new Fixture;
    x->signing = c::Ed25519FromSeed(std::vector<std::uint8_t>(32, 42)).value();
    x->address.noise_key.fill(9);
    x->address.signing_key = x->signing.public_key;
    x->address.host = "relay.example.org";
    x->address.port = 4433;
    x->address.versions = {1};
    x->other = x->address.Clone();
    x->other.signing_key = c::Ed25519FromSeed(std::vector<std::uint8_t>(32, 43)).value().public_key;
    return x;
  }();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!rhizome::crypto::Init()) std::abort();
  (void)Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const rhizome::ByteSpan input(data, size);
  auto statement = p::ParseRelayKeyStatement(input);
  if (!statement) return 0;
  auto encoded = p::EncodeRelayKeyStatement(*statement);
  Check(encoded.ok() && encoded->size() == size &&
        std::equal(input.begin(), input.end(), encoded->expose().begin()));

  const Fixture& f = Get();
  if (!p::VerifyRelayKeyStatement(*statement, f.signing.public_key)) return 0;
  auto applied = p::ApplyKeyStatement(f.address, *statement, 0);
  Check(applied.ok());
  Check(applied->noise_key == statement->noise_key);
  Check(applied->psk.ConstantTimeEquals(statement->psk));
  Check(applied->signing_key == f.address.signing_key && applied->host == f.address.host);
  auto again = p::ApplyKeyStatement(*applied, *statement, statement->serial);
  Check(!again.ok() && again.error().code == rhizome::Errc::kAlreadyExists);
  auto elsewhere = p::ApplyKeyStatement(f.other, *statement, 0);
  Check(!elsewhere.ok() && elsewhere.error().code == rhizome::Errc::kAuthenticationFailed);

  std::vector<std::uint8_t> damaged(input.begin(), input.end());
  std::size_t bit = 0;
  for (std::uint8_t b : input) bit = bit * 31 + b;
  bit %= size * 8;
  damaged[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  auto bad = p::ParseRelayKeyStatement(damaged);
  Check(!bad.ok() || !p::VerifyRelayKeyStatement(*bad, f.signing.public_key).ok());
  return 0;
}
