// The per-path seal (DESIGN §9, §11): the outer encryption layer a sender puts
// around every copy of a message it hands to one path (a relay queue, a board,
// a direct link), to the queue's recipient X25519 key (the card's `seal_key`).
// Byte by byte in docs/protocol/path-seal.md.
//
//   blob = eph_pk (32) || XChaCha20-Poly1305(key, nonce, ad, inner)
//   inner = u32be(len(payload)) || payload || 0x00 * fill
//
// with a fresh ephemeral X25519 key per seal and key and nonce from
// HKDF-SHA256 over the X25519 shared secret. The blob is exactly one of
// kRelayBlobSizes (relay_messages.h): the smallest that holds the payload plus
// kPathSealOverheadBytes.
//
// What it is for: the same end-to-end ciphertext sent over two paths (two
// relays, a retry) is two unrelated byte strings, so relays cannot match copies
// with each other, and a relay cannot strip the layer: only the holder of the
// recipient's secret key opens it. The payload is itself ciphertext (a Double
// Ratchet message or a first-contact request), so the layer adds unlinkability
// and size hiding, not confidentiality of the content; that is why OpenPathSeal
// returns plain Bytes, not a SecretBytes.
//
// Invariants:
// - len(SealForPath(p, ...)) == RelayBlobSizeFor(len(p) + kPathSealOverheadBytes),
//   and OpenPathSeal(SealForPath(p, pk, rng), (pk, sk)) == p.
// - Two seals of one payload to one key differ (fresh ephemeral key each time).
// - The fill is zero bytes inside the encryption; OpenPathSeal refuses a blob
//   whose fill is not all zero or whose length prefix points past the blob, so
//   there is exactly one opened form per sealed blob.
// - SECURITY: an all-zero X25519 result (a low-order key on either side) is
//   never used as a key (DESIGN §5). The shared secret, the derived key and
//   nonce and the ephemeral secret are wiped before returning.
//
// Thread safety: pure functions (the RandomSource passed in is the caller's).
// Preconditions: crypto::Init() has succeeded.
#pragma once

#include <cstddef>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/relay_messages.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::protocol {

// Domain-separation label at the start of the HKDF info and the AEAD
// associated data (20 ASCII bytes, no terminator).
inline constexpr std::string_view kPathSealLabel = "rhizome/v1/path-seal";
// Ephemeral public key (32) + AEAD tag (16) + length prefix (4).
inline constexpr std::size_t kPathSealOverheadBytes = 32 + 16 + 4;
// The largest payload one blob holds (17356 bytes).
inline constexpr std::size_t kMaxPathSealPayloadBytes = kMaxBlobBytes - kPathSealOverheadBytes;

// Seals `payload` for the holder of the X25519 secret key behind
// `recipient_seal_key`, drawing a fresh ephemeral key from `rng`. Returns the
// blob: exactly RelayBlobSizeFor(payload.size() + kPathSealOverheadBytes) bytes.
// Errors: kInvalidArgument "seal key must be 32 bytes" on a key of another
// size; kLimitExceeded "payload too large for a relay blob" when
// payload.size() > kMaxPathSealPayloadBytes; kInvalidArgument "seal key is a
// low-order point" when the X25519 result is all zero (e.g. an all-zero key).
Result<Bytes> SealForPath(ByteSpan payload, ByteSpan recipient_seal_key, crypto::RandomSource& rng);

// Opens a blob sealed to `recipient` and returns the payload. A pure
// function: a failed open changes nothing and leaves nothing behind.
// Checks, in this order:
// - blob.size() > kMaxBlobBytes: kLimitExceeded "blob is too large";
// - blob.size() not in kRelayBlobSizes: kMalformed "blob size is not a relay
//   blob size";
// - recipient.secret_key not 32 bytes: kInvalidArgument "recipient secret key
//   must be 32 bytes";
// - the AEAD does not verify (wrong recipient, any damaged byte, a low-order
//   ephemeral key): kAuthenticationFailed "sealed blob does not open", with no
//   finer detail;
// - the length prefix exceeds blob.size() - kPathSealOverheadBytes: kMalformed
//   "path seal length prefix is too large";
// - a fill byte is not zero: kMalformed "path seal fill is not zero".
// A payload shorter than its blob class needs is accepted (a sender may pick a
// larger class than the smallest, e.g. to hide a size).
Result<Bytes> OpenPathSeal(ByteSpan blob, const crypto::X25519KeyPair& recipient);

}  // namespace rhizome::protocol
