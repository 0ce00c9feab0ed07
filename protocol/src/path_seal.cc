#include "rhizome/protocol/path_seal.h"

#include <algorithm>
#include <cstdint>
#include <span>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::protocol {

namespace {

constexpr std::size_t kEphemeralBytes = crypto::kX25519Bytes;
constexpr std::size_t kLengthPrefixBytes = 4;
constexpr std::size_t kOkmBytes = crypto::kAeadKeyBytes + crypto::kXChaChaNonceBytes;  // 56
constexpr std::size_t kInfoBytes = kPathSealLabel.size() + 2 * crypto::kX25519Bytes;   // 84
constexpr std::size_t kAdBytes = kPathSealLabel.size() + kEphemeralBytes;              // 52
static_assert(kPathSealOverheadBytes ==
              kEphemeralBytes + crypto::kAeadTagBytes + kLengthPrefixBytes);
static_assert(kMaxPathSealPayloadBytes <= 0xffffffffu);

constexpr Error kDoesNotOpen{Errc::kAuthenticationFailed, "sealed blob does not open"};

// label || eph_pk || recipient_pk
ByteArray<kInfoBytes> HkdfInfo(ByteSpan eph_pk, ByteSpan recipient_pk) {
  ByteArray<kInfoBytes> info{};
  auto it = std::copy(kPathSealLabel.begin(), kPathSealLabel.end(), info.begin());
  it = std::copy(eph_pk.begin(), eph_pk.end(), it);
  std::copy(recipient_pk.begin(), recipient_pk.end(), it);
  return info;
}

// label || eph_pk
ByteArray<kAdBytes> AssociatedData(ByteSpan eph_pk) {
  ByteArray<kAdBytes> ad{};
  auto it = std::copy(kPathSealLabel.begin(), kPathSealLabel.end(), ad.begin());
  std::copy(eph_pk.begin(), eph_pk.end(), it);
  return ad;
}

// okm = HKDF-SHA256(salt = empty, ikm = dh, info, 56): key = okm[0:32], nonce = okm[32:56].
Status DeriveKeyAndNonce(ByteSpan dh, ByteSpan eph_pk, ByteSpan recipient_pk,
                         crypto::StackSecret<kOkmBytes>& okm) {
  const auto info = HkdfInfo(eph_pk, recipient_pk);
  return crypto::HkdfSha256({}, dh, info, okm.expose_mut());
}

}  // namespace

Result<Bytes> SealForPath(ByteSpan payload, ByteSpan recipient_seal_key,
                          crypto::RandomSource& rng) {
  if (recipient_seal_key.size() != crypto::kX25519Bytes) {
    return Error{Errc::kInvalidArgument, "seal key must be 32 bytes"};
  }
  if (payload.size() > kMaxPathSealPayloadBytes) {
    return Error{Errc::kLimitExceeded, "payload too large for a relay blob"};
  }
  const std::size_t blob_size = RelayBlobSizeFor(payload.size() + kPathSealOverheadBytes);
  if (blob_size == 0) return Error{Errc::kLimitExceeded, "payload too large for a relay blob"};

  const crypto::X25519KeyPair eph = crypto::X25519Generate(rng);  // secret wiped on scope exit
  crypto::StackSecret<crypto::kX25519Bytes> dh;
  // SECURITY: an all-zero shared secret (low-order recipient key) is refused.
  if (!crypto::X25519(eph.secret_key.expose(), recipient_seal_key, dh.expose_mut())) {
    return Error{Errc::kInvalidArgument, "seal key is a low-order point"};
  }
  crypto::StackSecret<kOkmBytes> okm;
  RHIZOME_TRY(DeriveKeyAndNonce(dh.expose(), eph.public_key, recipient_seal_key, okm));
  const ByteSpan key = okm.expose().subspan(0, crypto::kAeadKeyBytes);
  const ByteSpan nonce = okm.expose().subspan(crypto::kAeadKeyBytes, crypto::kXChaChaNonceBytes);

  // blob = eph_pk || inner || tag; inner is encrypted in place.
  Bytes blob(blob_size, 0);
  std::copy(eph.public_key.begin(), eph.public_key.end(), blob.begin());
  const std::size_t inner_size = blob_size - kEphemeralBytes - crypto::kAeadTagBytes;
  const MutableByteSpan inner(blob.data() + kEphemeralBytes, inner_size);
  const auto len = static_cast<std::uint32_t>(payload.size());
  inner[0] = static_cast<std::uint8_t>(len >> 24);
  inner[1] = static_cast<std::uint8_t>(len >> 16);
  inner[2] = static_cast<std::uint8_t>(len >> 8);
  inner[3] = static_cast<std::uint8_t>(len);
  std::copy(payload.begin(), payload.end(), inner.begin() + kLengthPrefixBytes);
  // The fill after the payload is already zero (Bytes(blob_size, 0)).
  const auto ad = AssociatedData(eph.public_key);
  RHIZOME_TRY(crypto::XChaChaEncrypt(
      key, nonce, ad, inner,
      MutableByteSpan(blob.data() + kEphemeralBytes, inner_size + crypto::kAeadTagBytes)));
  return blob;
}

Result<Bytes> OpenPathSeal(ByteSpan blob, const crypto::X25519KeyPair& recipient) {
  if (blob.size() > kMaxBlobBytes) return Error{Errc::kLimitExceeded, "blob is too large"};
  if (!IsRelayBlobSize(blob.size())) {
    return Error{Errc::kMalformed, "blob size is not a relay blob size"};
  }
  if (recipient.secret_key.size() != crypto::kX25519Bytes) {
    return Error{Errc::kInvalidArgument, "recipient secret key must be 32 bytes"};
  }
  const ByteSpan eph_pk = blob.subspan(0, kEphemeralBytes);
  const ByteSpan ciphertext = blob.subspan(kEphemeralBytes);

  crypto::StackSecret<crypto::kX25519Bytes> dh;
  // SECURITY: a low-order ephemeral key gives an all-zero secret; it is
  // reported like any other blob that does not open (no finer detail).
  if (!crypto::X25519(recipient.secret_key.expose(), eph_pk, dh.expose_mut())) {
    return kDoesNotOpen;
  }
  crypto::StackSecret<kOkmBytes> okm;
  RHIZOME_TRY(DeriveKeyAndNonce(dh.expose(), eph_pk, recipient.public_key, okm));
  const ByteSpan key = okm.expose().subspan(0, crypto::kAeadKeyBytes);
  const ByteSpan nonce = okm.expose().subspan(crypto::kAeadKeyBytes, crypto::kXChaChaNonceBytes);

  Bytes inner(ciphertext.size() - crypto::kAeadTagBytes);
  const auto ad = AssociatedData(eph_pk);
  if (!crypto::XChaChaDecrypt(key, nonce, ad, ciphertext, inner)) return kDoesNotOpen;

  const std::size_t len = (std::size_t{inner[0]} << 24) | (std::size_t{inner[1]} << 16) |
                          (std::size_t{inner[2]} << 8) | std::size_t{inner[3]};
  if (len > blob.size() - kPathSealOverheadBytes) {
    return Error{Errc::kMalformed, "path seal length prefix is too large"};
  }
  std::uint8_t fill_bits = 0;
  for (std::size_t i = kLengthPrefixBytes + len; i < inner.size(); ++i) fill_bits |= inner[i];
  if (fill_bits != 0) return Error{Errc::kMalformed, "path seal fill is not zero"};

  const auto first = inner.begin() + static_cast<std::ptrdiff_t>(kLengthPrefixBytes);
  return Bytes(first, first + static_cast<std::ptrdiff_t>(len));
}

}  // namespace rhizome::protocol
