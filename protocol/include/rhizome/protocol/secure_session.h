// SecureSession: the sans-IO secure channel (DESIGN §5). Bytes in, bytes out;
// no sockets, no clocks (deadlines are the I/O shell's job: net/).
//
// One session = one TCP connection: a Noise handshake carried in frames
// (frame.h), then transport frames each holding one Noise transport message.
//
//   kind            pattern                               who proves what
//   kClientToRelay  Noise_NKpsk0_25519_ChaChaPoly_BLAKE2b  relay proves its pinned static key;
//                                                         client stays anonymous; psk = access key
//   kPeerLink       Noise_XK_25519_ChaChaPoly_BLAKE2b      both prove static keys; the responder
//                                                         drops unknown initiators after message 3
//
// Versions: no cleartext preamble. The initiator picks the highest version both
// sides speak (the responder's versions come from its address or contact card)
// and binds it in the prologue:
//   prologue = "rhizome" (7 bytes) || u16be version || u8 kind
// The responder tries each version it speaks (and, during a key rotation, each
// of its static keys) against the first message; the one that authenticates
// wins. A downgrade or a cross-protocol replay therefore fails the handshake.
//
// SECURITY invariants:
// - Every handshake payload must be empty: NKpsk0's first message is
//   replayable, so nothing may ride on it; commands flow only after the
//   handshake (DESIGN §5).
// - Any error fails the session for good (sticky); the caller must close the
//   connection. Nothing is delivered from a frame that did not authenticate.
// - Handshake frames are capped at kMaxHandshakeFrameBytes.
// - Cipher states live only in memory and are never persisted.
//
// Memory: once established, a session keeps its two cipher states (keys in
// the secure pool), the handshake hash and, only while a transport frame is
// split across OnBytes() calls, that frame's bytes: about 250 bytes in all.
// The handshake's own state (candidates, Noise handshake state, framing
// buffer) is freed, and its secrets wiped, as soon as it completes or fails.
//
// Thread safety: one session per connection, used from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/noise.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::protocol {

enum class ChannelKind : std::uint8_t { kClientToRelay = 1, kPeerLink = 2 };

// A handshake frame is never larger than this (ours are at most 96 bytes).
inline constexpr std::size_t kMaxHandshakeFrameBytes = 1024;
// Largest plaintext one transport frame carries.
inline constexpr std::size_t kMaxSessionPayloadBytes = crypto::kNoiseMaxTransportPayloadBytes;
// The prologue label (DESIGN §5).
inline constexpr std::string_view kPrologueLabel = "rhizome";

struct SecureSessionConfig {
  ChannelKind kind = ChannelKind::kClientToRelay;
  crypto::NoiseRole role = crypto::NoiseRole::kInitiator;
  // Our static keys. Initiator (peer link): exactly one. Responder: one or more
  // (a relay in a key rotation accepts its old and new key). Borrowed for
  // Create() only. Unused by a client-to-relay initiator (anonymous).
  std::vector<const crypto::X25519KeyPair*> local_statics;
  // Initiator only: the responder's static public key (pinned from the relay
  // address or the contact card).
  std::optional<ByteArray<32>> remote_static;
  // kClientToRelay only: the relay's 32-byte access key (all zeros = open relay).
  // Borrowed for Create() only.
  const crypto::SecretBytes* psk = nullptr;
  // Initiator only: the versions the responder advertises. Empty = ours.
  std::vector<std::uint16_t> peer_versions;
  // kPeerLink responder only: decides, after message 3, whether this initiator
  // static key is a known contact. Required for that role.
  std::function<bool(ByteSpan initiator_static)> authorize_initiator;
  // Tests only: fixed ephemeral private key (known-answer transcripts).
  const crypto::SecretBytes* fixed_ephemeral = nullptr;
};

class SecureSession {
 public:
  // Errors: kInvalidArgument if the config does not fit the kind and role
  // (missing or superfluous keys, no authorize_initiator for a peer-link
  // responder, PSK not 32 bytes); kUnsupported if no version is shared with
  // peer_versions; errors of NoiseHandshakeState::Create.
  static Result<SecureSession> Create(const SecureSessionConfig& config,
                                      crypto::RandomSource& rng);

  SecureSession(SecureSession&&) noexcept;
  SecureSession& operator=(SecureSession&&) noexcept;
  SecureSession(const SecureSession&) = delete;
  SecureSession& operator=(const SecureSession&) = delete;
  ~SecureSession();

  // Initiator: appends the first handshake frame to `out`. Call once, first.
  // Responder: does nothing. Errors: kInvalidArgument if called twice.
  Status Start(Bytes& out);

  // Feeds received bytes (any split). Appends frames to send to `out`
  // (handshake replies) and complete received plaintexts to `received`.
  // Errors (each fails the session; close the connection):
  //   kLimitExceeded / kMalformed from framing (oversized, zero-length frame,
  //   a frame above kMaxHandshakeFrameBytes during the handshake);
  //   kAuthenticationFailed "handshake failed" (wrong key, PSK, prologue or
  //   version; tampering); kAuthenticationFailed "unknown peer" (peer link:
  //   authorize_initiator said no); kMalformed "handshake payload must be
  //   empty"; kAuthenticationFailed from a transport frame that does not decrypt.
  Status OnBytes(ByteSpan data, Bytes& out, std::vector<Bytes>& received);

  // Encrypts one plaintext (1..kMaxSessionPayloadBytes) as one frame appended
  // to `out`. Errors: kInvalidArgument before the handshake is complete or
  // after a failure; kLimitExceeded if too large or the nonce is exhausted.
  Status Seal(ByteSpan plaintext, Bytes& out);

  crypto::NoiseRole role() const;
  bool established() const;
  bool failed() const;
  // The agreed wire version (0 until known).
  std::uint16_t version() const;
  // The Noise handshake hash h, once established (64 bytes): the channel
  // binding that relay commands are authorized against (DESIGN §9).
  ByteSpan handshake_hash() const;
  // The peer's static public key, once known (peer links; the relay's key for
  // a client). Responders of kClientToRelay never learn one.
  std::optional<ByteArray<32>> remote_static() const;
  // Responder: the index into local_statics of the key the initiator used.
  std::size_t local_static_index() const;

 private:
  struct Impl;
  explicit SecureSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The prologue bytes for a version and kind (exposed for docs and tests).
Bytes SessionPrologue(std::uint16_t version, ChannelKind kind);

}  // namespace rhizome::protocol
