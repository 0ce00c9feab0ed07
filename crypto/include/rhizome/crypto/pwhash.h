// Argon2id password hashing (libsodium crypto_pwhash, ALG_ARGON2ID13).
//
// Parameters are stored beside what they protect (the profile key file), so a
// profile made with one cost level still opens after defaults change.
// SECURITY: this is deliberately slow (about a second at kModerate) and uses
// hundreds of MiB: never call it on a network thread.
// Thread safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rhizome/crypto/bytes.h"

namespace rhizome::crypto {

inline constexpr std::size_t kArgon2SaltBytes = 16;
// Caps on stored parameters we accept from a file, so a damaged or hostile key
// file cannot make us allocate unbounded memory or spin forever.
inline constexpr std::uint64_t kArgon2MaxOpsLimit = 16;
inline constexpr std::uint64_t kArgon2MaxMemLimit = 2ull << 30;  // 2 GiB

struct Argon2idParams {
  std::uint64_t ops_limit;
  std::uint64_t mem_limit;  // bytes

  static Argon2idParams Interactive();  // libsodium INTERACTIVE: 2 passes, 64 MiB
  static Argon2idParams Moderate();     // libsodium MODERATE: 3 passes, 256 MiB (default)
  static Argon2idParams Sensitive();    // libsodium SENSITIVE: 4 passes, 1 GiB

  // Looks up "interactive" | "moderate" | "sensitive". Errors: kInvalidArgument.
  static Result<Argon2idParams> FromName(std::string_view name);

  // Errors: kInvalidArgument if below libsodium's minimum or above our caps.
  Status Validate() const;
};

// Derives out.size() bytes (16..64) from passphrase and a 16-byte salt.
// Errors: kInvalidArgument on sizes or parameters; kInternal if out of memory.
Status Argon2id(ByteSpan passphrase, ByteSpan salt, const Argon2idParams& params,
                MutableByteSpan out);

}  // namespace rhizome::crypto
