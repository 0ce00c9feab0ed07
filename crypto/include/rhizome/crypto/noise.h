// The Noise Protocol Framework, revision 34 (noiseprotocol.org/noise.html), sans-IO.
//
// One implementation driven by pattern tables: CipherState, SymmetricState
// (private) and HandshakeState, the tokens e, s, ee, es, se, ss, psk, pre-messages,
// and the pskN modifiers (any combination, e.g. "XXpsk0+psk3").
//
// Supported protocol names: "Noise_<pattern>_25519_ChaChaPoly_<hash>" where
// - <pattern> is one of the twelve fundamental interactive patterns NN, NK, NX,
//   XN, XK, XX, KN, KK, KX, IN, IK, IX or the one-way patterns N, K, X, each
//   optionally followed by psk modifiers ("NKpsk0", "XKpsk3", "Xpsk1",
//   "NNpsk0+psk2"); fallback, hfs and deferred patterns are not supported;
// - <hash> is BLAKE2b (Rhizome's suite, DESIGN §5) or SHA256 (for the public
//   vectors). HMAC is RFC 2104 HMAC over the unkeyed hash (never keyed BLAKE2b);
//   ChaChaPoly uses the nonce 4 zero bytes || 64-bit little-endian counter.
//
// Nothing here touches a socket or a clock: bytes go in, bytes come out. Framing
// (2-byte length prefix), deadlines and the prologue contents are the protocol
// layer's job (docs/protocol/noise.md).
//
// Invariants and SECURITY rules:
// - A HandshakeState whose WriteMessage or ReadMessage returned an error is
//   failed for good: its secrets are wiped and every later call errors. Noise has
//   no recovery, and a half-mixed state must never be reused.
// - A payload is returned only when every check of its message passed; nothing
//   partially decrypted ever leaves ReadMessage.
// - Every X25519 result is checked: an all-zero shared secret (a small-order
//   peer key) aborts the handshake with kCryptoFailure.
// - All secret state (chaining key, cipher keys, static/ephemeral private keys,
//   PSKs) lives in wiped, sodium_malloc'ed memory; no error message contains
//   peer data or secrets.
// - Every message is at most kNoiseMaxMessageBytes (65535), enforced on write
//   and on read.
//
// Thread safety: no shared state; distinct objects are independent, but one
// HandshakeState or CipherState must not be used from two threads at once.
// A moved-from object must not be used.
//
// Preconditions: crypto::Init() has succeeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {

class RandomSource;

// Largest Noise message, handshake or transport (Noise §3).
inline constexpr std::size_t kNoiseMaxMessageBytes = 65535;
inline constexpr std::size_t kNoiseTagBytes = 16;
// Largest transport plaintext: one message minus the AEAD tag.
inline constexpr std::size_t kNoiseMaxTransportPayloadBytes =
    kNoiseMaxMessageBytes - kNoiseTagBytes;
inline constexpr std::size_t kNoiseKeyBytes = 32;
inline constexpr std::size_t kNoiseDhBytes = 32;
inline constexpr std::size_t kNoisePskBytes = 32;
inline constexpr std::size_t kNoiseMaxHashBytes = 64;
// Noise §8: a protocol name is at most 255 bytes.
inline constexpr std::size_t kNoiseMaxProtocolNameBytes = 255;
// The prologue is ours (DESIGN §5: version, label, role); a generous cap.
inline constexpr std::size_t kNoiseMaxPrologueBytes = 65535;
// psk0..psk3: the most PSK tokens a supported pattern (3 messages) can carry.
inline constexpr std::size_t kNoiseMaxPsks = 4;
// Noise §5.1: the nonce 2^64-1 is reserved; a CipherState whose counter reaches
// it refuses to encrypt or decrypt.
inline constexpr std::uint64_t kNoiseMaxNonce = UINT64_MAX;

enum class NoiseRole : std::uint8_t { kInitiator, kResponder };
enum class NoiseHashFunction : std::uint8_t { kBlake2b, kSha256 };
enum class NoiseToken : std::uint8_t { kE, kS, kEe, kEs, kSe, kSs, kPsk };

struct NoiseMessagePattern {
  bool from_initiator;
  std::vector<NoiseToken> tokens;
};

// A parsed protocol name: the pattern's token table (with psk modifiers applied)
// and the suite. Immutable after Parse; cheap to copy.
class NoiseProtocol {
 public:
  // Parses e.g. "Noise_XK_25519_ChaChaPoly_BLAKE2b".
  // Errors: kMalformed if the name is not Noise_<pattern>_<dh>_<cipher>_<hash>
  // (or longer than kNoiseMaxProtocolNameBytes, or a psk modifier repeats or is
  // out of range for the pattern); kUnsupported for a pattern, modifier, DH,
  // cipher or hash this file does not implement.
  static Result<NoiseProtocol> Parse(std::string_view name);

  const std::string& name() const { return name_; }
  NoiseHashFunction hash() const { return hash_; }
  // 64 for BLAKE2b, 32 for SHA256.
  std::size_t hash_len() const;
  // N, K, X and their psk variants: one message, initiator to responder.
  bool one_way() const { return one_way_; }
  const std::vector<NoiseToken>& initiator_premessage() const { return pre_initiator_; }
  const std::vector<NoiseToken>& responder_premessage() const { return pre_responder_; }
  const std::vector<NoiseMessagePattern>& messages() const { return messages_; }
  std::size_t psk_count() const { return psk_count_; }

  // Whether `role` must be given a static key pair (it sends `s` or has it in a
  // pre-message).
  bool NeedsLocalStatic(NoiseRole role) const;
  // Whether `role` must know the peer's static public key before the handshake
  // (the peer's pre-message has `s`).
  bool NeedsRemoteStatic(NoiseRole role) const;
  // Whether `role` sends an ephemeral key (an `e` token in one of its messages).
  bool SendsEphemeral(NoiseRole role) const;

 private:
  std::string name_;
  NoiseHashFunction hash_ = NoiseHashFunction::kBlake2b;
  bool one_way_ = false;
  std::vector<NoiseToken> pre_initiator_;
  std::vector<NoiseToken> pre_responder_;
  std::vector<NoiseMessagePattern> messages_;
  std::size_t psk_count_ = 0;
};

// A transport CipherState (Noise §5.1) as returned by Split(): a 32-byte key in
// wiped memory and a 64-bit counter nonce. Move-only. A default-constructed
// CipherState has no key and every operation on it fails (it is never a
// plaintext pass-through).
//
// A failed decryption leaves the nonce unchanged and returns an error; a
// stream transport (TCP) must then close the connection.
class NoiseCipherState {
 public:
  NoiseCipherState() noexcept = default;
  NoiseCipherState(NoiseCipherState&&) noexcept = default;
  NoiseCipherState& operator=(NoiseCipherState&&) noexcept = default;
  NoiseCipherState(const NoiseCipherState&) = delete;
  NoiseCipherState& operator=(const NoiseCipherState&) = delete;

  // A CipherState with key `key` (32 bytes) and nonce 0. For tests and for
  // constructions that derive their own keys.
  // Errors: kInvalidArgument if key.size() != 32.
  static Result<NoiseCipherState> FromKey(ByteSpan key);

  bool HasKey() const noexcept { return !key_.empty(); }
  std::uint64_t nonce() const noexcept { return n_; }
  // Noise §5.1 SetNonce. For tests (reaching the nonce limit) and transports
  // that deliver out of order. SECURITY: never encrypt twice under one nonce.
  void SetNonce(std::uint64_t n) noexcept { n_ = n; }

  // Encrypts `plaintext` with associated data `ad` under the current nonce into
  // `out` (plaintext.size() + 16 bytes; may alias plaintext exactly) and
  // increments the nonce.
  // Errors: kInvalidArgument without a key or on a wrong out size;
  // kLimitExceeded if plaintext exceeds kNoiseMaxTransportPayloadBytes or the
  // nonce has reached kNoiseMaxNonce (nothing is encrypted).
  Status EncryptWithAd(ByteSpan ad, ByteSpan plaintext, MutableByteSpan out);
  Result<Bytes> EncryptWithAd(ByteSpan ad, ByteSpan plaintext);

  // Decrypts and authenticates `ciphertext` into `out` (ciphertext.size() - 16
  // bytes) and increments the nonce. On any error `out` holds no plaintext and
  // the nonce is unchanged.
  // Errors: kInvalidArgument without a key or on a wrong out size; kMalformed if
  // shorter than the tag; kLimitExceeded if longer than kNoiseMaxMessageBytes or
  // the nonce has reached kNoiseMaxNonce; kAuthenticationFailed on a bad tag.
  Status DecryptWithAd(ByteSpan ad, ByteSpan ciphertext, MutableByteSpan out);
  Result<Bytes> DecryptWithAd(ByteSpan ad, ByteSpan ciphertext);

  // Noise §4.2/§5.1 Rekey: k = first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero
  // bytes). The nonce is unchanged. Errors: kInvalidArgument without a key.
  Status Rekey();

 private:
  SecretBytes key_;
  std::uint64_t n_ = 0;
};

// The two CipherStates of Split(), oriented for the caller's role: `send`
// encrypts what this side sends, `receive` decrypts what the peer sends. For a
// one-way pattern the initiator's `receive` and the responder's `send` have no
// key (Noise §7.2: that direction must not be used).
struct NoiseTransport {
  NoiseCipherState send;
  NoiseCipherState receive;
};

// The two keys of Split() as bytes (the first 32 bytes of each HKDF output),
// in Noise's order, not oriented by role: k1 is the initiator-to-responder
// key, k2 the other. For constructions that derive their own keys from a
// handshake (DESIGN §6: the ratchet bootstrap takes k2 of Noise_Xpsk1, the
// confirmation mixes k1 || k2 of Noise_KK) rather than run Noise transport
// messages. Both are secrets in wiped memory.
struct NoiseSplitKeys {
  SecretBytes k1;  // 32 bytes
  SecretBytes k2;  // 32 bytes
};

// What a HandshakeState needs. The keys are borrowed for the duration of
// Create() only: they are copied into the handshake's own wiped memory.
// A key a pattern does not use must not be given (kInvalidArgument): a remote
// static key the pattern never checks would be a silent authentication bug.
struct NoiseHandshakeConfig {
  std::string_view protocol_name;  // e.g. "Noise_XK_25519_ChaChaPoly_BLAKE2b"
  NoiseRole role = NoiseRole::kInitiator;
  ByteSpan prologue;                                      // at most kNoiseMaxPrologueBytes
  const X25519KeyPair* local_static = nullptr;            // when NeedsLocalStatic(role)
  std::optional<ByteArray<kNoiseDhBytes>> remote_static;  // when NeedsRemoteStatic(role)
  std::span<const SecretBytes> psks;  // psk_count() keys of 32 bytes, in token order
  // The ephemeral private key to use instead of one drawn from the
  // RandomSource: for tests and known-answer transcripts, and for rebuilding a
  // handshake whose state had to be persisted between two messages (first
  // contact's Noise_KK: the same keys, prologue and payload, so the same
  // messages; protocol/first_contact.h). SECURITY: never for a new handshake
  // with other inputs; a reused ephemeral destroys forward secrecy.
  const SecretBytes* fixed_ephemeral = nullptr;
};

// HandshakeState (Noise §5.3). Move-only.
//
// Lifecycle: Create -> alternate WriteMessage / ReadMessage as the pattern
// dictates (IsMyTurn()) -> IsComplete() -> Split() once. Any error from
// WriteMessage or ReadMessage fails the state for good (IsFailed()).
class NoiseHandshakeState {
 public:
  // Initializes the state: InitializeSymmetric(protocol name), MixHash(prologue),
  // the pre-message keys (initiator's first), and draws the ephemeral key from
  // `rng` (unless config.fixed_ephemeral). `rng` is not kept.
  // Errors: those of NoiseProtocol::Parse; kInvalidArgument if a required key is
  // missing, an unused key is given, a key or PSK has the wrong size, or the
  // number of PSKs does not match the pattern; kLimitExceeded if the prologue is
  // longer than kNoiseMaxPrologueBytes; kCryptoFailure if the fixed ephemeral
  // has an all-zero public key.
  static Result<NoiseHandshakeState> Create(const NoiseHandshakeConfig& config, RandomSource& rng);

  NoiseHandshakeState(NoiseHandshakeState&&) noexcept;
  NoiseHandshakeState& operator=(NoiseHandshakeState&&) noexcept;
  NoiseHandshakeState(const NoiseHandshakeState&) = delete;
  NoiseHandshakeState& operator=(const NoiseHandshakeState&) = delete;
  ~NoiseHandshakeState();

  const NoiseProtocol& protocol() const;
  NoiseRole role() const;

  // True while the handshake is running and the next message is ours to write.
  bool IsMyTurn() const;
  // True once every handshake message has been written or read (also after Split).
  bool IsComplete() const;
  // True after any error from WriteMessage/ReadMessage.
  bool IsFailed() const;

  // Bytes the next message adds around its payload (keys, tags). Meaningful
  // while IsMyTurn() or while waiting for the peer's message.
  std::size_t NextMessageOverhead() const;

  // Writes the next handshake message carrying `payload`.
  // Errors (all of them fail the state): kInvalidArgument if the state failed,
  // is complete, or it is not our turn; kLimitExceeded if the message would
  // exceed kNoiseMaxMessageBytes; kCryptoFailure if a DH gives all zeros (the
  // peer's static key given at Create is a small-order point).
  Result<Bytes> WriteMessage(ByteSpan payload);

  // Reads the peer's next handshake message and returns its payload.
  // Errors (all of them fail the state): kInvalidArgument if the state failed,
  // is complete, or it is our turn to write; kLimitExceeded if the message is
  // longer than kNoiseMaxMessageBytes; kMalformed if it is too short for its
  // tokens; kCryptoFailure if a DH gives all zeros (small-order peer key);
  // kAuthenticationFailed if a static key or the payload fails to decrypt
  // (tampering, wrong PSK, wrong prologue, wrong static key).
  Result<Bytes> ReadMessage(ByteSpan message);

  // Noise §5.2 Split(), once, after IsComplete(): the transport CipherStates
  // oriented for our role. Wipes the chaining key; the handshake hash stays
  // readable. Errors: kInvalidArgument if not complete, failed, or already split.
  Result<NoiseTransport> Split();

  // Split() for a caller that needs the keys rather than CipherStates (see
  // NoiseSplitKeys); also for one-way patterns, whose k2 Split() drops. Either
  // Split() or SplitKeys(), once. SECURITY: the caller must not also use k1/k2
  // as Noise transport keys. Errors: as Split().
  Result<NoiseSplitKeys> SplitKeys();

  // The handshake hash h (hash_len() bytes): a public channel binding, final
  // once IsComplete(). Never a key.
  Bytes HandshakeHash() const;

  // The peer's static public key, once known (given at Create or received in
  // an `s` token); empty after a failure. Callers of XX/XK-responder/IX/... must
  // check it against what they expect.
  std::optional<ByteArray<kNoiseDhBytes>> RemoteStatic() const;

 private:
  struct Impl;
  explicit NoiseHandshakeState(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhizome::crypto
