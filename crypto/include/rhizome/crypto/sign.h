// Ed25519 signatures (libsodium: RFC 8032, cofactorless verification that
// rejects small-order R and A, non-canonical A and S >= l).
//
// SECURITY: in Rhizome the identity key signs only the device's key certificate;
// per-group and per-queue keys sign their own narrow statements (DESIGN §4).
// Thread safety: pure functions.
#pragma once

#include <cstddef>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {

class RandomSource;

inline constexpr std::size_t kEd25519PublicKeyBytes = 32;
inline constexpr std::size_t kEd25519SecretKeyBytes = 64;  // seed || public key
inline constexpr std::size_t kEd25519SeedBytes = 32;
inline constexpr std::size_t kEd25519SignatureBytes = 64;

struct Ed25519KeyPair {
  ByteArray<32> public_key;
  SecretBytes secret_key;  // 64 bytes
};

Ed25519KeyPair Ed25519Generate(RandomSource& rng);
// Errors: kInvalidArgument if seed is not 32 bytes.
Result<Ed25519KeyPair> Ed25519FromSeed(ByteSpan seed);

// Errors: kInvalidArgument if secret_key is not 64 bytes.
Result<ByteArray<64>> Ed25519Sign(const SecretBytes& secret_key, ByteSpan message);

// Errors: kInvalidArgument on sizes; kAuthenticationFailed if the signature is invalid.
Status Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature);

// True iff `public_key` is a canonical encoding of a point that is not of small
// order and lies in the prime-order subgroup (l·A = identity), checked
// explicitly so builds without the CVE-2025-69277 fix agree (POLLS.md §1).
bool Ed25519IsStrictPublicKey(ByteSpan public_key) noexcept;

}  // namespace rhizome::crypto
