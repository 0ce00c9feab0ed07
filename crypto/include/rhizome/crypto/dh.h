// X25519 Diffie-Hellman (RFC 7748).
//
// SECURITY: an all-zero shared secret (the peer sent a small-order point) is
// always an error, never a key (DESIGN §5).
// Thread safety: pure functions.
#pragma once

#include <cstddef>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {

class RandomSource;

inline constexpr std::size_t kX25519Bytes = 32;

struct X25519KeyPair {
  ByteArray<32> public_key;
  SecretBytes secret_key;  // 32 bytes
};

X25519KeyPair X25519Generate(RandomSource& rng);
// Derives the public half from a 32-byte secret. Errors: kInvalidArgument on size.
Result<X25519KeyPair> X25519FromSecret(ByteSpan secret_key);
// Public key of a secret. Errors: kInvalidArgument on size, kCryptoFailure if
// the result is all-zero.
Status X25519PublicKey(ByteSpan secret_key, std::span<std::uint8_t, 32> public_key);

// out = X25519(secret_key, public_key).
// Errors: kInvalidArgument on sizes; kCryptoFailure if the result is all zeros.
Status X25519(ByteSpan secret_key, ByteSpan public_key, std::span<std::uint8_t, 32> out);

}  // namespace rhizome::crypto
