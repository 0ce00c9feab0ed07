#include "rhizome/crypto/dh.h"

#include <sodium.h>

#include "rhizome/crypto/random.h"

namespace rhizome::crypto {

static_assert(crypto_scalarmult_BYTES == kX25519Bytes);
static_assert(crypto_scalarmult_SCALARBYTES == kX25519Bytes);

Status X25519PublicKey(ByteSpan secret_key, std::span<std::uint8_t, 32> public_key) {
  if (secret_key.size() != kX25519Bytes) {
    return Error{Errc::kInvalidArgument, "X25519 secret key must be 32 bytes"};
  }
  if (crypto_scalarmult_base(public_key.data(), secret_key.data()) != 0) {
    return Error{Errc::kCryptoFailure, "X25519 public key is all zeros"};
  }
  return {};
}

Result<X25519KeyPair> X25519FromSecret(ByteSpan secret_key) {
  X25519KeyPair kp{{}, SecretBytes::CopyFrom(secret_key)};
  RHIZOME_TRY(X25519PublicKey(secret_key, kp.public_key));
  return kp;
}

X25519KeyPair X25519Generate(RandomSource& rng) {
  X25519KeyPair kp{{}, SecretBytes::Random(rng, kX25519Bytes)};
  // A uniformly random clamped scalar never gives the all-zero public key.
  (void)X25519PublicKey(kp.secret_key.expose(), kp.public_key);
  return kp;
}

Status X25519(ByteSpan secret_key, ByteSpan public_key, std::span<std::uint8_t, 32> out) {
  if (secret_key.size() != kX25519Bytes || public_key.size() != kX25519Bytes) {
    return Error{Errc::kInvalidArgument, "X25519: keys must be 32 bytes"};
  }
  // SECURITY: libsodium returns -1 when the output is all zeros (small-order
  // peer point); that must abort, never become a key (DESIGN §5).
  if (crypto_scalarmult(out.data(), secret_key.data(), public_key.data()) != 0) {
    sodium_memzero(out.data(), out.size());
    return Error{Errc::kCryptoFailure, "X25519 produced an all-zero shared secret"};
  }
  return {};
}

}  // namespace rhizome::crypto
