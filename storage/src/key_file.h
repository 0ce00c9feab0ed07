// Private to the storage module (and its tests and fuzz target): the profile
// key file, `profile.key`, which holds the database key wrapped under a key
// derived from the passphrase. Byte format: docs/protocol/profile-key-file.md.
//
//   offset  size  field
//        0     8  magic "RHZMKEY\0"
//        8     2  format version, u16 big-endian = 1
//       10     8  Argon2id ops limit, u64 big-endian
//       18     8  Argon2id memory limit in bytes, u64 big-endian
//       26    16  Argon2id salt
//       42    24  XChaCha20-Poly1305 nonce
//       66    48  XChaCha20-Poly1305(kek, nonce, ad = bytes 0..65, database key)
//      114    32  BLAKE2b-256(bytes 0..113): detects accidental damage only
//      146        end
//
// Invariants:
// - ParseKeyFile() is pure and cheap: it never runs Argon2id, and a KeyFile it
//   returns always has parameters that pass Argon2idParams::Validate(), so a
//   hostile file cannot make us allocate more than kArgon2MaxMemLimit.
// - The header (magic, version, parameters, salt, nonce) is the AEAD's
//   associated data: changing any of it makes the unwrap fail.
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/pwhash.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/storage/profile.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::storage {

inline constexpr std::array<std::uint8_t, 8> kKeyFileMagic = {'R', 'H', 'Z', 'M',
                                                              'K', 'E', 'Y', 0x00};
inline constexpr std::uint16_t kKeyFileVersion = 1;
inline constexpr std::size_t kKeyFileWrappedKeyBytes = 32;  // the database key
inline constexpr std::size_t kKeyFileVersionOffset = 8;
inline constexpr std::size_t kKeyFileOpsOffset = 10;
inline constexpr std::size_t kKeyFileMemOffset = 18;
inline constexpr std::size_t kKeyFileSaltOffset = 26;
inline constexpr std::size_t kKeyFileNonceOffset = 42;
inline constexpr std::size_t kKeyFileHeaderBytes = 66;  // = associated data
inline constexpr std::size_t kKeyFileCiphertextBytes =
    kKeyFileWrappedKeyBytes + crypto::kAeadTagBytes;  // 48
inline constexpr std::size_t kKeyFileChecksumOffset =
    kKeyFileHeaderBytes + kKeyFileCiphertextBytes;  // 114
inline constexpr std::size_t kKeyFileChecksumBytes = 32;
inline constexpr std::size_t kKeyFileBytes = kKeyFileChecksumOffset + kKeyFileChecksumBytes;  // 146
static_assert(kKeyFileBytes <= kMaxKeyFileBytes);

struct KeyFile {
  crypto::Argon2idParams params{};
  ByteArray<crypto::kArgon2SaltBytes> salt{};
  ByteArray<crypto::kXChaChaNonceBytes> nonce{};
  ByteArray<kKeyFileCiphertextBytes> wrapped_key{};  // ciphertext || tag
};

// Parses and validates a key file's bytes. Checks, in order: size at most
// kMaxKeyFileBytes, room for magic and version, magic, version, exact size,
// checksum, Argon2id parameters.
// Errors: kCorrupt (too large, truncated, bad magic, trailing bytes, checksum
// mismatch, parameters out of range, version 0); kUnsupported (a newer version).
Result<KeyFile> ParseKeyFile(ByteSpan bytes);

// The exact kKeyFileBytes bytes of `file` (checksum included).
Bytes SerializeKeyFile(const KeyFile& file);

// The associated data: header bytes 0..65 of `file`.
ByteArray<kKeyFileHeaderBytes> KeyFileHeader(const KeyFile& file);

// Wraps a 32-byte database key under Argon2id(passphrase, fresh salt) with a
// fresh nonce. Errors: kInvalidArgument (key size, bad params); kInternal
// (Argon2id out of memory).
Result<KeyFile> WrapDatabaseKey(const crypto::SecretBytes& database_key, ByteSpan passphrase,
                                const crypto::Argon2idParams& params, crypto::RandomSource& rng);

// Unwraps the database key. Re-validates the parameters before running
// Argon2id. Errors: kWrongPassphrase ("wrong passphrase or damaged profile")
// when the AEAD rejects (wrong passphrase or a tampered header/ciphertext);
// kCorrupt if the parameters are out of range; kInternal (out of memory).
Result<crypto::SecretBytes> UnwrapDatabaseKey(const KeyFile& file, ByteSpan passphrase);

}  // namespace rhizome::storage
