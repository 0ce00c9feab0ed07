#include "rhizome/crypto/hash.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {

static_assert(sizeof(crypto_generichash_state) <= 384, "Blake2b state buffer too small");
static_assert(sizeof(crypto_auth_hmacsha256_state) <= 256 &&
                  alignof(crypto_auth_hmacsha256_state) <= 16,
              "HmacSha256Key state buffer too small");

namespace {
void GenericHash(MutableByteSpan out, ByteSpan data) {
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
}

// HMAC-SHA256 keyed with HKDF's default salt (32 zero bytes), pads absorbed.
// The key is public, and so is this state; it is never written after the first
// call initialises it (a thread-safe function-local static).
const crypto_auth_hmacsha256_state& ZeroSaltHmacState() {
  static const crypto_auth_hmacsha256_state state = [] {
    static constexpr unsigned char kZeroSalt[kSha256Bytes] = {};
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, kZeroSalt, sizeof(kZeroSalt));
    return st;
  }();
  return state;
}
}  // namespace

ByteArray<32> Blake2b256(ByteSpan data) {
  ByteArray<32> out;
  GenericHash(out, data);
  return out;
}

ByteArray<64> Blake2b512(ByteSpan data) {
  ByteArray<64> out;
  GenericHash(out, data);
  return out;
}

ByteArray<32> Sha256(ByteSpan data) {
  ByteArray<32> out;
  crypto_hash_sha256(out.data(), data.data(), data.size());
  return out;
}

ByteArray<64> Sha512(ByteSpan data) {
  ByteArray<64> out;
  crypto_hash_sha512(out.data(), data.data(), data.size());
  return out;
}

Status Blake2bKeyed(ByteSpan key, ByteSpan data, MutableByteSpan out) {
  if (key.size() < crypto_generichash_KEYBYTES_MIN || key.size() > crypto_generichash_KEYBYTES_MAX ||
      out.size() < crypto_generichash_BYTES_MIN || out.size() > crypto_generichash_BYTES_MAX) {
    return Error{Errc::kInvalidArgument, "keyed BLAKE2b: key or output size out of range"};
  }
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
  return {};
}

Blake2b::Blake2b(std::size_t out_len)
    : out_len_(std::clamp<std::size_t>(out_len, 1, kBlake2b512Bytes)) {
  auto* st = reinterpret_cast<crypto_generichash_state*>(state_);
  crypto_generichash_init(st, nullptr, 0, out_len_);
}

Blake2b::~Blake2b() { sodium_memzero(state_, sizeof(state_)); }

Blake2b& Blake2b::Update(ByteSpan data) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), data.data(),
                            data.size());
  return *this;
}

void Blake2b::Final(MutableByteSpan out) {
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), out.data(),
                           out.size());
  sodium_memzero(state_, sizeof(state_));
}

void HmacSha256(ByteSpan key, ByteSpan data, std::span<std::uint8_t, kSha256Bytes> out) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, data.data(), data.size());
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof(st));
}

HmacSha256Key::HmacSha256Key(ByteSpan key) noexcept {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  std::memcpy(state_, &st, sizeof(st));
  sodium_memzero(&st, sizeof(st));
}

HmacSha256Key::~HmacSha256Key() { sodium_memzero(state_, sizeof(state_)); }

void HmacSha256Key::Mac(ByteSpan data, std::span<std::uint8_t, kSha256Bytes> out) const noexcept {
  crypto_auth_hmacsha256_state st;
  std::memcpy(&st, state_, sizeof(st));
  crypto_auth_hmacsha256_update(&st, data.data(), data.size());
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof(st));
}

void HmacSha512(ByteSpan key, ByteSpan data, std::span<std::uint8_t, kSha512Bytes> out) {
  crypto_auth_hmacsha512_state st;
  crypto_auth_hmacsha512_init(&st, key.data(), key.size());
  crypto_auth_hmacsha512_update(&st, data.data(), data.size());
  crypto_auth_hmacsha512_final(&st, out.data());
  sodium_memzero(&st, sizeof(st));
}

void HmacBlake2b512(ByteSpan key, ByteSpan data,
                    std::span<std::uint8_t, kBlake2b512Bytes> out) {
  // RFC 2104 with H = unkeyed BLAKE2b-512, B = 128.
  StackSecret<kBlake2bBlockBytes> block;  // K padded with zeros to B bytes
  auto k = block.expose_mut();
  if (key.size() > kBlake2bBlockBytes) {
    crypto_generichash(k.data(), kBlake2b512Bytes, key.data(), key.size(), nullptr, 0);
  } else if (!key.empty()) {
    std::memcpy(k.data(), key.data(), key.size());
  }
  StackSecret<kBlake2bBlockBytes> pad;
  auto p = pad.expose_mut();
  for (std::size_t i = 0; i < kBlake2bBlockBytes; ++i) p[i] = static_cast<std::uint8_t>(k[i] ^ 0x36);

  StackSecret<kBlake2b512Bytes> inner;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, kBlake2b512Bytes);
  crypto_generichash_update(&st, p.data(), p.size());
  crypto_generichash_update(&st, data.data(), data.size());
  crypto_generichash_final(&st, inner.expose_mut().data(), kBlake2b512Bytes);

  for (std::size_t i = 0; i < kBlake2bBlockBytes; ++i) p[i] = static_cast<std::uint8_t>(k[i] ^ 0x5c);
  crypto_generichash_init(&st, nullptr, 0, kBlake2b512Bytes);
  crypto_generichash_update(&st, p.data(), p.size());
  crypto_generichash_update(&st, inner.expose().data(), kBlake2b512Bytes);
  crypto_generichash_final(&st, out.data(), kBlake2b512Bytes);
  sodium_memzero(&st, sizeof(st));
}

Status HkdfSha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, MutableByteSpan out) {
  if (out.empty() || out.size() > kHkdfSha256MaxOutput) {
    return Error{Errc::kInvalidArgument, "HKDF output length out of range"};
  }
  // Extract: PRK = HMAC(salt, IKM). The default salt's key schedule is shared.
  StackSecret<kSha256Bytes> prk;
  crypto_auth_hmacsha256_state st;
  if (salt.empty()) {
    st = ZeroSaltHmacState();
  } else {
    crypto_auth_hmacsha256_init(&st, salt.data(), salt.size());
  }
  crypto_auth_hmacsha256_update(&st, ikm.data(), ikm.size());
  crypto_auth_hmacsha256_final(&st, prk.expose_mut().data());

  // Expand: T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), the PRK's key schedule
  // computed once for all blocks.
  crypto_auth_hmacsha256_state prk_st;
  crypto_auth_hmacsha256_init(&prk_st, prk.expose().data(), kSha256Bytes);
  StackSecret<kSha256Bytes> t;
  std::size_t t_len = 0;
  std::size_t done = 0;
  for (std::uint8_t counter = 1; done < out.size(); ++counter) {
    st = prk_st;
    crypto_auth_hmacsha256_update(&st, t.expose().data(), t_len);
    crypto_auth_hmacsha256_update(&st, info.data(), info.size());
    crypto_auth_hmacsha256_update(&st, &counter, 1);
    crypto_auth_hmacsha256_final(&st, t.expose_mut().data());
    t_len = kSha256Bytes;
    std::size_t n = std::min(kSha256Bytes, out.size() - done);
    std::memcpy(out.data() + done, t.expose().data(), n);
    done += n;
  }
  sodium_memzero(&st, sizeof(st));
  sodium_memzero(&prk_st, sizeof(prk_st));
  return {};
}

}  // namespace rhizome::crypto
