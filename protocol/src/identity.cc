#include "rhizome/protocol/identity.h"

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"

namespace rhizome::protocol {

namespace {
constexpr std::string_view kCertLabel = "rhizome/v1/device-cert";
constexpr std::string_view kFingerprintLabel = "rhizome/v1/fingerprint";
constexpr std::uint16_t kCertVersion = 1;

// Decodes UTF-8 (no overlongs, no surrogates, max U+10FFFF) into `out`.
// False on any invalid sequence.
bool DecodeUtf8(std::string_view s, std::vector<std::uint32_t>& out) {
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
    out.push_back(cp);
    i += len;
  }
  return true;
}

// Code points a name shown to a person must not hold: controls (C0, DEL, C1),
// and invisible or direction-changing characters with which one name can be
// made to look like another ("Alice" + ZERO WIDTH SPACE, a right-to-left
// override that reverses what follows). SECURITY: names choose which contact a
// command acts on.
bool IsForbiddenInName(std::uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) ||  // C0, DEL, C1
         cp == 0x00AD ||                              // soft hyphen
         cp == 0x034F ||                              // combining grapheme joiner
         cp == 0x061C ||                              // Arabic letter mark
         cp == 0x115F || cp == 0x1160 ||              // Hangul fillers
         cp == 0x17B4 || cp == 0x17B5 ||              // Khmer invisible vowels
         cp == 0x180E ||                              // Mongolian vowel separator
         (cp >= 0x200B && cp <= 0x200F) ||            // zero-width space/joiners, LRM, RLM
         (cp >= 0x2028 && cp <= 0x202E) ||            // separators, embeddings, overrides
         (cp >= 0x2060 && cp <= 0x206F) ||            // word joiner, invisible ops, isolates
         cp == 0x3164 || cp == 0xFFA0 ||              // Hangul fillers
         (cp >= 0xFE00 && cp <= 0xFE0F) ||            // variation selectors
         cp == 0xFEFF ||                              // zero-width no-break space
         (cp >= 0xFFF0 && cp <= 0xFFFB) ||            // specials, interlinear annotation
         (cp >= 0xE0000 && cp <= 0xE0FFF);            // tags, variation selectors supplement
}

}  // namespace

Status ValidateDisplayName(std::string_view name) {
  if (name.empty()) return Error{Errc::kInvalidArgument, "display name is empty"};
  if (name.size() > kMaxDisplayNameBytes) {
    return Error{Errc::kInvalidArgument, "display name is longer than 64 bytes"};
  }
  std::vector<std::uint32_t> cps;
  if (!DecodeUtf8(name, cps)) {
    return Error{Errc::kInvalidArgument, "display name is not valid UTF-8"};
  }
  for (std::uint32_t cp : cps) {
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      return Error{Errc::kInvalidArgument, "display name contains control characters"};
    }
    if (IsForbiddenInName(cp)) {
      return Error{Errc::kInvalidArgument,
                   "display name contains invisible or direction-changing characters"};
    }
  }
  if (cps.front() == ' ' || cps.back() == ' ') {
    return Error{Errc::kInvalidArgument, "display name starts or ends with a space"};
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
