// The Double Ratchet with header encryption: Rhizome's one-to-one session
// cipher (DESIGN §6 step 2, §7; byte formats in docs/protocol/double-ratchet.md).
//
// Signal's "The Double Ratchet Algorithm" (revision 1, 2016), section 4 "Double
// Ratchet with header encryption", built from Rhizome's wrappers: X25519 (every
// DH output checked for all-zero), HKDF-SHA256 for the root chain, Signal's
// HMAC-SHA256 KDF_CK for the symmetric chains (its message-key output is the
// body key), XChaCha20-Poly1305 with random 24-byte nonces for headers and
// bodies. Sans-IO and pure: bytes, randomness (RandomSource&) and time (`now`,
// Unix seconds) go in; bytes come out.
//
// One deliberate difference from the specification's pseudocode, which changes
// no byte on the wire: the sending half of a DH ratchet step is taken lazily, at
// the first Encrypt after a new ratchet key was received, instead of eagerly in
// Decrypt (as in the specification's early "ratchet_flag" form and in olm). So
// Decrypt needs no randomness, the previous ratchet private key is wiped as soon
// as the receiving half is done, and whenever no message is in flight both sides
// hold the same root key, which is what MixConfirmation needs (see there).
//
// Invariants:
// - SECURITY: a call that returns an error changes no state at all: Decrypt and
//   Encrypt derive everything into temporaries, authenticate, and only then
//   commit (with operations that cannot fail). Serialize() before and after a
//   failed call is identical.
// - A message key is used once: a replayed message finds its key gone.
// - Attacker-chosen work is capped: at most kMaxSkip keys are skipped per chain
//   and message, at most kMaxSkippedKeys are stored (oldest evicted), and
//   stored keys expire after kSkippedKeyMaxAgeSeconds.
// - Every secret (root, chain, header and message keys, the ratchet private key)
//   lives in SecretBytes or StackSecret and is wiped when replaced or destroyed.
//   The object is move-only; a moved-from object returns kInvalidArgument from
//   every fallible call.
//
// Thread safety: none. One DoubleRatchet must not be used from two threads at
// once; distinct objects are independent.
//
// Preconditions: crypto::Init() has succeeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {

class RandomSource;

inline constexpr std::size_t kRatchetKeyBytes = 32;
inline constexpr std::size_t kRatchetAssociatedDataBytes = 32;
// Header plaintext: ratchet public key (32) ‖ PN u32be ‖ N u32be.
inline constexpr std::size_t kRatchetHeaderBytes = 40;
inline constexpr std::size_t kRatchetNonceBytes = 24;
inline constexpr std::size_t kRatchetTagBytes = 16;
// Encrypted header: nonce (24) ‖ header ciphertext (40) ‖ tag (16).
inline constexpr std::size_t kRatchetEncryptedHeaderBytes =
    kRatchetNonceBytes + kRatchetHeaderBytes + kRatchetTagBytes;
// A message is the encrypted header, then nonce (24) ‖ body ciphertext ‖ tag (16).
inline constexpr std::size_t kRatchetMessageOverheadBytes =
    kRatchetEncryptedHeaderBytes + kRatchetNonceBytes + kRatchetTagBytes;
// Largest plaintext one message carries (an envelope is far smaller, DESIGN §10).
inline constexpr std::size_t kMaxRatchetPlaintextBytes = 64 * 1024;
inline constexpr std::size_t kMaxRatchetMessageBytes =
    kRatchetMessageOverheadBytes + kMaxRatchetPlaintextBytes;
// MAX_SKIP: the most message keys one received message may make us skip in one
// chain (the previous chain up to PN, and the current chain up to N, each).
inline constexpr std::uint32_t kMaxSkip = 1000;
// The most skipped message keys stored at once, over all chains; beyond it the
// oldest are evicted.
inline constexpr std::size_t kMaxSkippedKeys = 2000;
// The most chains (distinct header keys) with stored skipped keys; beyond it
// the oldest chain's keys are evicted. Every incoming message costs one trial
// header decryption per stored chain, so this bounds what a peer that leaves
// one gap in each of many chains can make every later message cost
// (libsignal and olm keep about five).
inline constexpr std::size_t kMaxSkippedChains = 16;
// A skipped key older than this (by the `now` passed to Decrypt) is no longer
// used and is dropped.
inline constexpr std::uint64_t kSkippedKeyMaxAgeSeconds = 30ULL * 24 * 3600;
// The Noise handshake hash bound into the session: 32 (SHA-256) to 64 (BLAKE2b).
inline constexpr std::size_t kMinHandshakeHashBytes = 32;
inline constexpr std::size_t kMaxHandshakeHashBytes = 64;

// Serialized state (docs/protocol/double-ratchet.md "Stored state").
inline constexpr std::uint8_t kRatchetStateVersion = 1;
inline constexpr std::size_t kRatchetStateFixedBytes = 338;
inline constexpr std::size_t kRatchetSkippedEntryBytes = 76;
inline constexpr std::size_t kMaxRatchetStateBytes =
    kRatchetStateFixedBytes + kMaxSkippedKeys * kRatchetSkippedEntryBytes;

static_assert(2 * static_cast<std::size_t>(kMaxSkip) <= kMaxSkippedKeys,
              "one message may add 2 * kMaxSkip skipped keys; the store must hold them");

// What both sides derive from the first-contact handshake (DESIGN §6 step 2).
struct RatchetBootstrap {
  SecretBytes shared_key;                                    // SK, 32 bytes
  SecretBytes header_key_a;                                  // HKa, 32 bytes
  SecretBytes next_header_key_b;                             // NHKb, 32 bytes
  ByteArray<kRatchetAssociatedDataBytes> associated_data{};  // AD (public)
};

// From the Noise Split() second key k2 and the handshake hash h:
//   SK        = HKDF(-, k2, "rhizome/v1/dr-sk" ‖ h, 32)
//   HKa ‖ NHKb = HKDF(-, SK, "rhizome/v1/dr-hk", 64)
//   AD        = BLAKE2b-256("rhizome/v1/dr-ad" ‖ h)
// ("-" = 32 zero bytes of salt). h is public: a binding, never a key.
// Errors: kInvalidArgument if k2 is not 32 bytes or h is not 32..64 bytes.
Result<RatchetBootstrap> DeriveRatchetBootstrap(ByteSpan noise_k2, ByteSpan handshake_hash);

class DoubleRatchet {
 public:
  // The acceptor of an invite starts as ratchet "Alice" (RatchetInitAliceHE):
  // `peer_ratchet_public_key` is the invite's public key. The first Encrypt
  // performs Alice's initial DH step. It sends first; it cannot decrypt anything
  // before its first Encrypt.
  // Errors: kInvalidArgument if the bootstrap keys are not 32 bytes or the
  // public key is not 32 bytes or all zeros. (A small-order key is caught by the
  // first Encrypt: kCryptoFailure.)
  static Result<DoubleRatchet> InitAlice(const RatchetBootstrap& bootstrap,
                                         ByteSpan peer_ratchet_public_key);

  // The inviter starts as ratchet "Bob" (RatchetInitBobHE) with the invite key
  // pair; the secret is copied (the caller deletes its own copy as the invite
  // rules say) and wiped from this state at the first DH step. Bob cannot
  // Encrypt before he has decrypted a message.
  // Errors: kInvalidArgument on key sizes, or if the public key does not belong
  // to the secret.
  static Result<DoubleRatchet> InitBob(const RatchetBootstrap& bootstrap,
                                       const X25519KeyPair& own_ratchet_key_pair);

  ~DoubleRatchet();
  DoubleRatchet(DoubleRatchet&&) noexcept;
  DoubleRatchet& operator=(DoubleRatchet&&) noexcept;
  DoubleRatchet(const DoubleRatchet&) = delete;
  DoubleRatchet& operator=(const DoubleRatchet&) = delete;

  // Encrypts one message (RatchetEncryptHE). Draws from `rng`, in this order:
  // a 32-byte ratchet private key (one Fill call) if this message starts a new
  // sending chain, then both nonces in one 48-byte Fill call (the header nonce
  // first, then the body nonce).
  // Returns kRatchetMessageOverheadBytes + plaintext.size() bytes.
  // Errors (state unchanged): kLimitExceeded if plaintext is longer than
  // kMaxRatchetPlaintextBytes or the sending chain reached 2^32 - 1 messages;
  // kInvalidArgument if this side cannot send yet (Bob before his first
  // message in) or the object was moved from; kCryptoFailure if the peer's
  // ratchet key is a small-order point.
  Result<Bytes> Encrypt(ByteSpan plaintext, RandomSource& rng);

  // Decrypts one message (RatchetDecryptHE): stored skipped keys first, then the
  // current receiving header key, then the next header key (a DH ratchet
  // step). `now` (Unix seconds) stamps newly skipped keys and decides which
  // stored ones have expired. Succeeds at most once per message.
  // Errors, each leaving the state exactly as it was:
  //   kMalformed if the message is shorter than kRatchetMessageOverheadBytes;
  //   kLimitExceeded if it is longer than kMaxRatchetMessageBytes, or it would
  //     skip more than kMaxSkip keys in a chain;
  //   kAuthenticationFailed if the header decrypts under no key, the body does
  //     not authenticate, the message's key was already used, evicted or
  //     expired (a replay or a very late message), a header of the current
  //     chain names another ratchet key, or a new chain arrives that this
  //     side cannot accept (Alice before her first Encrypt);
  //   kCryptoFailure if the peer's new ratchet key is a small-order point;
  //   kInvalidArgument if the object was moved from.
  Result<Bytes> Decrypt(ByteSpan message, std::uint64_t now);

  // Confirmation mixing (DESIGN §6 step 4): RK = HKDF(RK, k1 ‖ k2,
  // "rhizome/v1/confirm", 32), with k1, k2 the two keys of the Noise_KK Split().
  // Affects only the next DH ratchet step. Both sides must mix at the same point
  // of the root chain: when every message sent so far (in either direction) has
  // been decrypted by its receiver and neither side has encrypted since; then
  // both hold the same root key (a property of the lazy sending step above).
  // In the contact flow: the sender of the last KK message mixes right after
  // encrypting it, the receiver right after decrypting it.
  // Errors: kInvalidArgument if k1 or k2 is not 32 bytes, or moved-from.
  Status MixConfirmation(ByteSpan k1, ByteSpan k2);

  // Drops stored skipped keys older than kSkippedKeyMaxAgeSeconds at `now`
  // (or stamped more than that far ahead of it). Decrypt does the same on
  // every success; a client also calls it when it opens a session and on a
  // timer, then stores the state, so a quiet conversation does not keep old
  // keys (forward secrecy).
  void DropExpiredSkippedKeys(std::uint64_t now) noexcept;

  // The whole state, for the client's database (format: docs/protocol/
  // double-ratchet.md). At most kMaxRatchetStateBytes; empty for a moved-from
  // object. Throws std::bad_alloc only if secure memory runs out.
  SecretBytes Serialize() const;

  // Parses a Serialize() output. Canonical: Serialize(Parse(x)) == x.
  // Errors: kLimitExceeded if longer than kMaxRatchetStateBytes; kUnsupported
  // for another version byte; kMalformed for a wrong length, unknown flag bits,
  // a skipped-key count above kMaxSkippedKeys or non-zero bytes in an absent
  // field; kCorrupt for flags that no reachable state has or an unusable
  // ratchet key.
  static Result<DoubleRatchet> Parse(ByteSpan serialized);

  // Whether Encrypt can succeed now (Alice always; Bob after his first message in).
  bool CanSend() const noexcept;
  std::size_t skipped_key_count() const noexcept { return skipped_count_; }
  const ByteArray<kRatchetAssociatedDataBytes>& associated_data() const noexcept { return ad_; }

 private:
  DoubleRatchet();

  bool Has(std::uint8_t flag) const noexcept { return (flags_ & flag) != 0; }
  std::span<std::uint8_t, kRatchetKeyBytes> Key(std::size_t slot) noexcept;
  std::span<const std::uint8_t, kRatchetKeyBytes> Key(std::size_t slot) const noexcept;

  // Skipped-key store: entries of kRatchetSkippedEntryBytes in insertion order.
  std::uint8_t* Entry(std::size_t index) noexcept;
  const std::uint8_t* Entry(std::size_t index) const noexcept;
  void ReserveSkipped(std::size_t entries);
  void RemoveSkipped(std::size_t index) noexcept;
  // Appends the message keys in `keys` (32 bytes each) for chain `hk`,
  // numbered from `first_n` and stamped `now`, evicting the oldest entries when
  // the store is full. Capacity must have been reserved.
  // End (exclusive) of the run of entries sharing entry `begin`'s header key.
  std::size_t RunEnd(std::size_t begin) const noexcept;
  std::size_t CountSkippedChains() const noexcept;
  void AppendSkipped(std::span<const std::uint8_t, kRatchetKeyBytes> hk, std::uint32_t first_n,
                     ByteSpan keys, std::uint64_t now) noexcept;

  SecretBytes keys_;     // fixed slots of kRatchetKeyBytes (see the .cc)
  SecretBytes skipped_;  // capacity * kRatchetSkippedEntryBytes
  std::size_t skipped_count_ = 0;
  ByteArray<kRatchetAssociatedDataBytes> ad_{};
  ByteArray<kX25519Bytes> dhs_public_{};
  ByteArray<kX25519Bytes> dhr_{};
  std::uint8_t flags_ = 0;
  std::uint32_t ns_ = 0;
  std::uint32_t nr_ = 0;
  std::uint32_t pn_ = 0;
};

namespace internal {

// Signal's KDF_CK: message_key = HMAC-SHA256(ck, 0x01), next_ck =
// HMAC-SHA256(ck, 0x02). The message key is the body's XChaCha20-Poly1305 key
// as it is (no further derivation). `ck` is used as the HMAC key (the ratchet
// always passes 32 bytes); outputs may alias `ck`. Exposed for the published
// chain vector.
void KdfChainStep(ByteSpan ck, std::span<std::uint8_t, 32> message_key,
                  std::span<std::uint8_t, 32> next_ck) noexcept;

// KDF_RK(rk, dh_out) = HKDF(rk, dh_out, "rhizome/v1/dr-rk", 96) = RK ‖ CK ‖ NHK.
void KdfRootStep(ByteSpan rk, ByteSpan dh_out, std::span<std::uint8_t, 96> out) noexcept;

}  // namespace internal

}  // namespace rhizome::crypto
