#include "rhizome/protocol/identity.h"

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"

namespace rhizome::protocol {

namespace {
constexpr std::string_view kCertLabel = "rhizome/v1/device-cert";
constexpr std::string_view kFingerprintLabel = "rhizome/v1/fingerprint";
constexpr std::uint16_t kCertVersion = 1;

// Validates UTF-8 (no overlongs, no surrogates, max U+10FFFF).
bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t j = 1; j < len; ++j) {
      auto cc = static_cast<unsigned char>(s[i + j]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}
}  // namespace

Status ValidateDisplayName(std::string_view name) {
  if (name.empty()) return Error{Errc::kInvalidArgument, "display name is empty"};
  if (name.size() > kMaxDisplayNameBytes) {
    return Error{Errc::kInvalidArgument, "display name is longer than 64 bytes"};
  }
  if (!IsValidUtf8(name)) return Error{Errc::kInvalidArgument, "display name is not valid UTF-8"};
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      return Error{Errc::kInvalidArgument, "display name contains control characters"};
    }
  }
  return {};
}

Bytes DeviceCertificateMessage(ByteSpan noise_public_key) {
  Bytes msg;
  Append(msg, AsBytes(kCertLabel));
  msg.push_back(static_cast<std::uint8_t>(kCertVersion >> 8));
  msg.push_back(static_cast<std::uint8_t>(kCertVersion & 0xff));
  Append(msg, noise_public_key);
  return msg;
}

Result<Identity> GenerateIdentity(std::string_view display_name, crypto::RandomSource& rng) {
  RHIZOME_TRY(ValidateDisplayName(display_name));
  Identity id{std::string(display_name), crypto::Ed25519Generate(rng), crypto::X25519Generate(rng),
              {}};
  auto sig = crypto::Ed25519Sign(id.signing.secret_key,
                                 DeviceCertificateMessage(id.noise.public_key));
  if (!sig) return sig.error();
  id.certificate = *sig;
  return id;
}

Status VerifyDeviceCertificate(ByteSpan identity_public_key, ByteSpan noise_public_key,
                               ByteSpan certificate) {
  if (noise_public_key.size() != crypto::kX25519Bytes) {
    return Error{Errc::kInvalidArgument, "Noise key must be 32 bytes"};
  }
  return crypto::Ed25519Verify(identity_public_key, DeviceCertificateMessage(noise_public_key),
                               certificate);
}

std::string IdentityFingerprint(ByteSpan identity_public_key) {
  crypto::Blake2b h(32);
  h.Update(AsBytes(kFingerprintLabel)).Update(identity_public_key);
  ByteArray<32> digest;
  h.Final(digest);
  std::string hex = ToHex(ByteSpan(digest).first(20));
  std::string out;
  for (std::size_t i = 0; i < hex.size(); ++i) {
    if (i > 0 && i % 4 == 0) out.push_back(' ');
    out.push_back(hex[i]);
  }
  return out;
}

}  // namespace rhizome::protocol
