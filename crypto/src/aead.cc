#include "rhizome/crypto/aead.h"

#include <sodium.h>

namespace rhizome::crypto {

static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kAeadKeyBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == kXChaChaNonceBytes);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == kChaChaIetfNonceBytes);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kAeadTagBytes);

namespace {

using EncryptFn = int (*)(unsigned char*, unsigned long long*, const unsigned char*,
                          unsigned long long, const unsigned char*, unsigned long long,
                          const unsigned char*, const unsigned char*, const unsigned char*);
using DecryptFn = int (*)(unsigned char*, unsigned long long*, unsigned char*, const unsigned char*,
                          unsigned long long, const unsigned char*, unsigned long long,
                          const unsigned char*, const unsigned char*);

Status Seal(EncryptFn fn, std::size_t nonce_len, ByteSpan key, ByteSpan nonce, ByteSpan ad,
            ByteSpan pt, MutableByteSpan out) {
  if (key.size() != kAeadKeyBytes || nonce.size() != nonce_len ||
      out.size() != pt.size() + kAeadTagBytes) {
    return Error{Errc::kInvalidArgument, "AEAD encrypt: wrong key, nonce or output size"};
  }
  fn(out.data(), nullptr, pt.data(), pt.size(), ad.data(), ad.size(), nullptr, nonce.data(),
     key.data());
  return {};
}

Status Open(DecryptFn fn, std::size_t nonce_len, ByteSpan key, ByteSpan nonce, ByteSpan ad,
            ByteSpan ct, MutableByteSpan out) {
  if (key.size() != kAeadKeyBytes || nonce.size() != nonce_len || ct.size() < kAeadTagBytes ||
      out.size() != ct.size() - kAeadTagBytes) {
    return Error{Errc::kInvalidArgument, "AEAD decrypt: wrong key, nonce or size"};
  }
  if (fn(out.data(), nullptr, nullptr, ct.data(), ct.size(), ad.data(), ad.size(), nonce.data(),
         key.data()) != 0) {
    if (!out.empty()) sodium_memzero(out.data(), out.size());
    return Error{Errc::kAuthenticationFailed, "message failed authentication"};
  }
  return {};
}

}  // namespace

Status XChaChaEncrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan plaintext,
                      MutableByteSpan out) {
  return Seal(crypto_aead_xchacha20poly1305_ietf_encrypt, kXChaChaNonceBytes, key, nonce, ad,
              plaintext, out);
}

Status XChaChaDecrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan ciphertext,
                      MutableByteSpan out) {
  return Open(crypto_aead_xchacha20poly1305_ietf_decrypt, kXChaChaNonceBytes, key, nonce, ad,
              ciphertext, out);
}

Status ChaChaIetfEncrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan plaintext,
                         MutableByteSpan out) {
  return Seal(crypto_aead_chacha20poly1305_ietf_encrypt, kChaChaIetfNonceBytes, key, nonce, ad,
              plaintext, out);
}

Status ChaChaIetfDecrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan ciphertext,
                         MutableByteSpan out) {
  return Open(crypto_aead_chacha20poly1305_ietf_decrypt, kChaChaIetfNonceBytes, key, nonce, ad,
              ciphertext, out);
}

}  // namespace rhizome::crypto
