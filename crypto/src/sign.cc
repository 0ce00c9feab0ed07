#include "rhizome/crypto/sign.h"

#include <sodium.h>

#include "rhizome/crypto/random.h"

namespace rhizome::crypto {

static_assert(crypto_sign_PUBLICKEYBYTES == kEd25519PublicKeyBytes);
static_assert(crypto_sign_SECRETKEYBYTES == kEd25519SecretKeyBytes);
static_assert(crypto_sign_SEEDBYTES == kEd25519SeedBytes);
static_assert(crypto_sign_BYTES == kEd25519SignatureBytes);

Result<Ed25519KeyPair> Ed25519FromSeed(ByteSpan seed) {
  if (seed.size() != kEd25519SeedBytes) {
    return Error{Errc::kInvalidArgument, "Ed25519 seed must be 32 bytes"};
  }
  Ed25519KeyPair kp{{}, SecretBytes(kEd25519SecretKeyBytes)};
  crypto_sign_seed_keypair(kp.public_key.data(), kp.secret_key.expose_mut().data(), seed.data());
  return kp;
}

Ed25519KeyPair Ed25519Generate(RandomSource& rng) {
  StackSecret<kEd25519SeedBytes> seed;
  rng.Fill(seed.expose_mut());
  return std::move(Ed25519FromSeed(seed.expose()).value());
}

Result<ByteArray<64>> Ed25519Sign(const SecretBytes& secret_key, ByteSpan message) {
  if (secret_key.size() != kEd25519SecretKeyBytes) {
    return Error{Errc::kInvalidArgument, "Ed25519 secret key must be 64 bytes"};
  }
  ByteArray<64> sig;
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(),
                       secret_key.expose().data());
  return sig;
}

Status Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (public_key.size() != kEd25519PublicKeyBytes || signature.size() != kEd25519SignatureBytes) {
    return Error{Errc::kInvalidArgument, "Ed25519: wrong key or signature size"};
  }
  if (crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                  public_key.data()) != 0) {
    return Error{Errc::kAuthenticationFailed, "invalid signature"};
  }
  return {};
}

bool Ed25519IsStrictPublicKey(ByteSpan public_key) noexcept {
  if (public_key.size() != kEd25519PublicKeyBytes) return false;
  if (crypto_core_ed25519_is_valid_point(public_key.data()) != 1) return false;
  // Explicit prime-order-subgroup check, independent of is_valid_point's
  // version: (l-1)·A + A must be the identity. scalarmult_ed25519 itself
  // refuses non-canonical, small-order and (1.0.18) off-subgroup points.
  static constexpr ByteArray<32> kLMinusOne = {
      0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
  ByteArray<32> neg;
  if (crypto_scalarmult_ed25519_noclamp(neg.data(), kLMinusOne.data(), public_key.data()) != 0) {
    return false;
  }
  ByteArray<32> sum;
  if (crypto_core_ed25519_add(sum.data(), neg.data(), public_key.data()) != 0) return false;
  static constexpr ByteArray<32> kIdentity = {1};
  return sum == kIdentity;
}

}  // namespace rhizome::crypto
