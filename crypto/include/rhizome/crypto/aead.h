// Authenticated encryption: XChaCha20-Poly1305 (24-byte nonce, random nonces
// are safe) and ChaCha20-Poly1305-IETF (12-byte nonce, counters only: Noise).
//
// Output goes into caller-provided spans: ciphertext = plaintext + 16-byte tag.
// In-place operation (out aliasing the input exactly) is allowed. No copies are
// made, so the wrappers cost what libsodium costs.
//
// Decryption failure writes nothing meaningful to `out` (it is zeroed) and
// returns kAuthenticationFailed; the caller must change no state on failure.
// Thread safety: pure functions.
#pragma once

#include <cstddef>

#include "rhizome/crypto/bytes.h"

namespace rhizome::crypto {

inline constexpr std::size_t kAeadKeyBytes = 32;
inline constexpr std::size_t kAeadTagBytes = 16;
inline constexpr std::size_t kXChaChaNonceBytes = 24;
inline constexpr std::size_t kChaChaIetfNonceBytes = 12;

// Errors: kInvalidArgument on a wrong key/nonce size or out.size() != pt.size() + 16.
Status XChaChaEncrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan plaintext,
                      MutableByteSpan out);
// Errors: kInvalidArgument on sizes (incl. ct shorter than the tag, or
// out.size() != ct.size() - 16); kAuthenticationFailed when the tag does not verify.
Status XChaChaDecrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan ciphertext,
                      MutableByteSpan out);

Status ChaChaIetfEncrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan plaintext,
                         MutableByteSpan out);
Status ChaChaIetfDecrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan ciphertext,
                         MutableByteSpan out);

}  // namespace rhizome::crypto
