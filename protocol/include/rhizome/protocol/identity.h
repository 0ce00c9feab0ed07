// A device identity (DESIGN §4; one device per identity in v1).
//
// - signing: the Ed25519 identity key. SECURITY: it signs only the device key
//   certificate below, never messages or group events (deniability).
// - noise: the X25519 Noise static key used for direct links and KK confirmation.
// - certificate: Ed25519 signature by the identity key over
//     "rhizome/v1/device-cert" || u16be(version=1) || noise_public_key
//   (docs/protocol/identity.md).
// Thread safety: value type.
#pragma once

#include <string>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/sign.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::protocol {

inline constexpr std::size_t kMaxDisplayNameBytes = 64;

struct Identity {
  std::string display_name;
  crypto::Ed25519KeyPair signing;
  crypto::X25519KeyPair noise;
  ByteArray<64> certificate{};
};

// Errors: kInvalidArgument if the name is empty, too long, not UTF-8, holds
// control characters (C0, DEL, C1) or invisible / direction-changing
// characters (zero-width spaces and joiners, bidi marks, embeddings,
// overrides and isolates, variation selectors, tags, fillers: the list is in
// identity.cc), or starts or ends with a space. Peers' cards are checked with
// it too: one name must not be able to pass for another.
Status ValidateDisplayName(std::string_view name);

// Fresh identity. Errors: as ValidateDisplayName.
Result<Identity> GenerateIdentity(std::string_view display_name, crypto::RandomSource& rng);

// The bytes the certificate signs.
Bytes DeviceCertificateMessage(ByteSpan noise_public_key);

// Errors: kInvalidArgument on sizes; kAuthenticationFailed if the signature is invalid.
Status VerifyDeviceCertificate(ByteSpan identity_public_key, ByteSpan noise_public_key,
                               ByteSpan certificate);

// Short identity fingerprint for display: the first 20 bytes of
// BLAKE2b-256("rhizome/v1/fingerprint" || identity_public_key), hex in groups of 4.
std::string IdentityFingerprint(ByteSpan identity_public_key);

}  // namespace rhizome::protocol
