// Hashes, MACs and key derivation.
//
// - BLAKE2b (unkeyed, 1..64-byte output) one-shot and incremental.
// - SHA-256 / SHA-512.
// - HMAC-SHA256, HMAC-SHA512 (libsodium's crypto_auth_hmacsha*).
// - HMAC-BLAKE2b-512 built per RFC 2104 over *unkeyed* BLAKE2b-512, block 128
//   bytes, keys longer than 128 bytes hashed first. This is what Noise's
//   BLAKE2b suite needs. SECURITY: BLAKE2b's keyed mode is a different function
//   and must not be substituted.
// - HKDF-SHA256 (RFC 5869), built on HMAC-SHA256 (libsodium 1.0.18 has none).
// - HmacSha256Key: HMAC-SHA256 under one key for several messages, the key
//   schedule computed once.
//
// MAC and HKDF outputs may be secrets: they are written into caller-provided
// spans so the caller chooses wiped memory. Thread safety: pure functions.
#pragma once

#include <cstddef>

#include "rhizome/crypto/bytes.h"

namespace rhizome::crypto {

inline constexpr std::size_t kBlake2b256Bytes = 32;
inline constexpr std::size_t kBlake2b512Bytes = 64;
inline constexpr std::size_t kBlake2bBlockBytes = 128;
inline constexpr std::size_t kSha256Bytes = 32;
inline constexpr std::size_t kSha512Bytes = 64;
inline constexpr std::size_t kHkdfSha256MaxOutput = 255 * kSha256Bytes;

ByteArray<32> Blake2b256(ByteSpan data);
ByteArray<64> Blake2b512(ByteSpan data);
ByteArray<32> Sha256(ByteSpan data);
ByteArray<64> Sha512(ByteSpan data);

// Keyed BLAKE2b (a MAC, *not* HMAC): out.size() in [16, 64], key.size() in [16, 64].
// Used for the relay's per-message authorizers (DESIGN §9).
// Errors: kInvalidArgument on sizes out of range.
Status Blake2bKeyed(ByteSpan key, ByteSpan data, MutableByteSpan out);

// Incremental unkeyed BLAKE2b with output length fixed at construction (1..64;
// other values are clamped into that range). Copyable, so a common prefix can be
// absorbed once and the state copied. The state may hold secret input: it is
// wiped on Final() and on destruction.
class Blake2b {
 public:
  explicit Blake2b(std::size_t out_len = kBlake2b512Bytes);
  ~Blake2b();
  Blake2b(const Blake2b&) = default;
  Blake2b& operator=(const Blake2b&) = default;
  Blake2b& Update(ByteSpan data);
  // Writes out_len bytes. Precondition: out.size() == out_len. The object may
  // not be updated afterwards.
  void Final(MutableByteSpan out);
  std::size_t out_len() const { return out_len_; }

 private:
  alignas(64) unsigned char state_[384];
  std::size_t out_len_;
};

void HmacSha256(ByteSpan key, ByteSpan data, std::span<std::uint8_t, kSha256Bytes> out);
// HMAC-SHA256 under one key for several messages. The key's inner and outer
// padded blocks are hashed once, at construction (the precomputation of RFC
// 2104 §4); each Mac() then hashes only its message and the inner digest, two
// SHA-256 blocks fewer than HmacSha256() for a key of at most 64 bytes.
// Mac(data) equals HmacSha256(key, data) byte for byte.
// The stored state is derived from the key and as secret as it: not copyable,
// wiped on destruction. Thread safety: Mac() only reads the object, so
// concurrent Mac() calls on one object are safe; nothing else is.
class HmacSha256Key {
 public:
  explicit HmacSha256Key(ByteSpan key) noexcept;
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  // out = HMAC-SHA256(key, data). `out` may alias the key the object was made from.
  void Mac(ByteSpan data, std::span<std::uint8_t, kSha256Bytes> out) const noexcept;

 private:
  alignas(16) unsigned char state_[256];
};

void HmacSha512(ByteSpan key, ByteSpan data, std::span<std::uint8_t, kSha512Bytes> out);
void HmacBlake2b512(ByteSpan key, ByteSpan data, std::span<std::uint8_t, kBlake2b512Bytes> out);

// RFC 5869. An empty salt means 32 zero bytes (DESIGN §5 notation); its HMAC
// key schedule is computed once per process (the key is public), and the PRK's
// once per call, whatever the output length.
// Errors: kInvalidArgument if out.size() is 0 or above kHkdfSha256MaxOutput.
Status HkdfSha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, MutableByteSpan out);

}  // namespace rhizome::crypto
