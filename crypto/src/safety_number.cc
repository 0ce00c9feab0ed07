#include "rhizome/crypto/safety_number.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "rhizome/crypto/hash.h"

namespace rhizome::crypto {

namespace {
constexpr std::string_view kSafetyLabel = "rhizome/v1/safety-number";
}

Result<std::string> SafetyCode(ByteSpan identity_public_key) {
  if (identity_public_key.size() != 32) {
    return Error{Errc::kInvalidArgument, "identity key must be 32 bytes"};
  }
  // hash_0 = SHA-512(u16 version=0 || pk || label); hash_{i+1} = SHA-512(hash_i || pk).
  ByteArray<64> hash;
  crypto_hash_sha512_state st;
  static constexpr ByteArray<2> kVersion = {0, 0};
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, kVersion.data(), kVersion.size());
  crypto_hash_sha512_update(&st, identity_public_key.data(), 32);
  crypto_hash_sha512_update(&st, reinterpret_cast<const unsigned char*>(kSafetyLabel.data()),
                            kSafetyLabel.size());
  crypto_hash_sha512_final(&st, hash.data());
  for (int i = 0; i < kSafetyNumberIterations; ++i) {
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, hash.data(), hash.size());
    crypto_hash_sha512_update(&st, identity_public_key.data(), 32);
    crypto_hash_sha512_final(&st, hash.data());
  }
  // Six 5-byte big-endian chunks, each mod 100000, five digits.
  std::string digits;
  digits.reserve(30);
  for (std::size_t chunk = 0; chunk < 6; ++chunk) {
    std::uint64_t v = 0;
    for (std::size_t j = 0; j < 5; ++j) v = (v << 8) | hash[chunk * 5 + j];
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%05u", static_cast<unsigned>(v % 100000));
    digits.append(buf, 5);
  }
  return digits;
}

Result<std::string> SafetyNumber(ByteSpan identity_a, ByteSpan identity_b) {
  auto a = SafetyCode(identity_a);
  if (!a) return a.error();
  auto b = SafetyCode(identity_b);
  if (!b) return b.error();
  return *a < *b ? *a + *b : *b + *a;
}

std::string GroupDigits(std::string_view digits) {
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && i % 5 == 0) out.push_back(' ');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace rhizome::crypto
