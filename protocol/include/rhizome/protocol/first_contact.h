// First contact (DESIGN §6): from an invite to a confirmed one-to-one session.
// Byte by byte in docs/protocol/first-contact.md. Sans-IO: bytes, time (Unix
// seconds) and randomness go in; bytes, states and errors come out.
//
//   inviter                                              acceptor
//   MakeInvite -> Invite (out of band) ---------------->
//                                                        BuildContactRequest
//   <------ request: Noise_Xpsk1(payload = reply queue) || ratchet msg "hello"
//   OpenContactRequest
//   ------ ratchet msg: inviter's card ----------------> (checked against the
//                                                         invite fingerprint)
//   <----- ratchet msg (after a DH step): acceptor's card + Noise_KK message 1
//   Noise_KK message 2, mix, confirmed
//   ------ ratchet msg: Noise_KK message 2 ------------> mix, confirmed
//
// The acceptor is ratchet "Alice" and Noise_KK initiator; the inviter is ratchet
// "Bob" and Noise_KK responder. Both KK messages travel inside the ratchet with
// prologue h (the Xpsk1 handshake hash); its Split() keys k1 || k2 are mixed
// into the root key by the sender of KK message 2 right after encrypting it and
// by its receiver right after decrypting it (crypto/double_ratchet.h).
//
// Invariants and SECURITY rules:
// - A contact is confirmed only after Noise_KK between the two cards' Noise
//   keys succeeded; before that a PendingContact encrypts and decrypts nothing
//   but first-contact messages (Encrypt/Decrypt refuse).
// - A call that returns an error changes nothing, with one exception: a
//   message that the ratchet authenticated (so it comes from the session peer)
//   and that proves the peer is not who its card says (the inviter's card does
//   not match the invite fingerprint, or Noise_KK fails) moves the contact to
//   ContactState::kFailed for good and wipes its secrets.
// - The acceptor's per-request Xpsk1 key is fresh, used once and wiped; its
//   identity key never enters the request. The request carries no card.
// - Every secret (invite key and secret, ratchet, KK ephemeral) lives in
//   SecretBytes and is wiped when no longer needed; Serialize() output is a
//   secret too (the client stores it only in its encrypted database).
// - Every input is size-checked before it is parsed (kMax*Bytes below).
//
// Thread safety: value types and pure functions; one PendingContact must not
// be used from two threads at once.
// Preconditions: crypto::Init() has succeeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/double_ratchet.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/protocol/contact_card.h"
#include "rhizome/protocol/invite.h"
#include "rhizome/protocol/padding.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::protocol {

// The first-contact protocol version bound into the Xpsk1 prologue.
inline constexpr std::uint16_t kFirstContactVersion = 1;
// Label at the start of the Xpsk1 prologue (24 bytes, ASCII).
inline constexpr std::string_view kFirstContactPrologueLabel = "rhizome/v1/first-contact";
// label || u16be version || fingerprint.
inline constexpr std::size_t kFirstContactPrologueBytes =
    kFirstContactPrologueLabel.size() + 2 + kInviteFingerprintBytes;
// Xpsk1 message 1 around its payload: e (32) + encrypted s (32 + 16) + payload tag (16).
inline constexpr std::size_t kContactRequestOverheadBytes = 96;
// The acceptor's first ratchet message (HELLO, padded to the smallest class),
// which follows the Xpsk1 message in the request.
inline constexpr std::size_t kHelloMessageBytes =
    crypto::kRatchetMessageOverheadBytes + kSmallestPaddingClass;
// Smallest and largest request: the Xpsk1 payload is one padded block.
inline constexpr std::size_t kMinContactRequestBytes =
    kContactRequestOverheadBytes + kSmallestPaddingClass + kHelloMessageBytes;
inline constexpr std::size_t kMaxContactRequestBytes =
    kContactRequestOverheadBytes + kLargestPaddingClass + kHelloMessageBytes;
// Largest ratchet message during first contact: one padded block inside.
inline constexpr std::size_t kMaxContactMessageBytes =
    crypto::kRatchetMessageOverheadBytes + kLargestPaddingClass;
// A Noise_KK message with an empty payload: e (32) + tag (16).
inline constexpr std::size_t kConfirmationMessageBytes = 48;
// The id of one opened request (replay detection for multi-use invites).
inline constexpr std::size_t kContactRequestIdBytes = 32;
// The most requests one multi-use invite accepts (bounds its replay log).
inline constexpr std::size_t kMaxInviteRequests = 1024;
inline constexpr std::size_t kFirstContactHandshakeHashBytes = 64;

using ContactRequestId = ByteArray<kContactRequestIdBytes>;

// --- Invite keys (DESIGN §6) -------------------------------------------------

// The request queue's send key: HKDF(-, invite_secret, "rhizome/v1/invite-send", 32).
// Errors: kInvalidArgument if invite_secret is not 32 bytes.
Result<crypto::SecretBytes> InviteSendKey(ByteSpan invite_secret);

// The Xpsk1 PSK: HKDF(-, invite_secret, "rhizome/v1/invite-psk", 32).
// Errors: kInvalidArgument if invite_secret is not 32 bytes.
Result<crypto::SecretBytes> InvitePsk(ByteSpan invite_secret);

// "rhizome/v1/first-contact" || u16be(kFirstContactVersion) || fingerprint.
Bytes FirstContactPrologue(const ByteArray<kInviteFingerprintBytes>& fingerprint);

// --- Inviter: making an invite ------------------------------------------------

// What the inviter decides. Copied into the invite.
struct InviteOptions {
  PublicKey identity_key{};  // the inviter's Ed25519 identity key (for the fingerprint only)
  std::uint64_t expires_at = 0;  // Unix seconds
  const RelayAddress* relay = nullptr;  // where the request queue lives (required)
  Id request_queue_id{};                // the request queue's sender id
  bool multi_use = false;
  std::vector<DirectAddress> direct_addresses;  // empty by default (DESIGN §6)
};

// The inviter's private half of one invite. Move-only; secrets wiped on
// destruction. The client persists every field (in its encrypted database).
//
// Bookkeeping (the caller's, in the same transaction that stores the new
// PendingContact): after OpenContactRequest succeeds, call RecordOpenedRequest.
// For a single-use invite that deletes the private key and secret (DESIGN §6.3:
// "Alice deletes a single-use invite's private key after the first request"),
// so every later request, a replay included, fails. For a multi-use invite it
// records the request id, so a replayed request fails with kAlreadyExists.
// Revoking an invite = destroying this object and its stored copy.
struct InviterInvite {
  crypto::X25519KeyPair key_pair;     // the invite key pair; empty secret once consumed
  crypto::SecretBytes invite_secret;  // 32 bytes; empty once consumed
  ByteArray<kInviteFingerprintBytes> fingerprint{};
  std::uint64_t expires_at = 0;
  bool multi_use = false;
  std::vector<ContactRequestId> opened_requests;  // multi-use: at most kMaxInviteRequests

  // True once a single-use invite took its request (its key is gone).
  bool consumed() const noexcept { return key_pair.secret_key.empty(); }
};

struct MadeInvite {
  Invite invite;         // to hand out (FormatInviteCode); holds the secret
  InviterInvite state;   // to keep
};

// A fresh invite: a new X25519 invite key pair and 32-byte secret from `rng`,
// the per-invite fingerprint of options.identity_key.
// Errors: kInvalidArgument if options.relay is null, options.expires_at <= now,
// or the identity key is all zeros; then as ValidateInvite.
Result<MadeInvite> MakeInvite(const InviteOptions& options, std::uint64_t now,
                              crypto::RandomSource& rng);

// See InviterInvite. Errors: kInvalidArgument if the invite is already
// consumed; kAlreadyExists if a multi-use invite already recorded `id`;
// kLimitExceeded if it holds kMaxInviteRequests ids. On error nothing changes.
Status RecordOpenedRequest(InviterInvite& invite, const ContactRequestId& id);

// --- The pending contact -----------------------------------------------------

enum class ContactRole : std::uint8_t {
  kAcceptor = 1,  // sent the request; ratchet "Alice"; KK initiator
  kInviter = 2,   // made the invite; ratchet "Bob"; KK responder
};

enum class ContactState : std::uint8_t {
  kRequestSent = 1,   // acceptor: waiting for the inviter's card
  kAwaitingCard = 2,  // inviter: card sent, waiting for the acceptor's card + KK 1
  kConfirming = 3,    // acceptor: card + KK 1 sent, waiting for KK 2
  kConfirmed = 4,     // KK done and mixed: the session may carry anything
  kFailed = 5,        // the peer failed a check; terminal, secrets wiped
};

// Why a contact failed (kFailed only).
enum class ContactFailure : std::uint8_t {
  kNone = 0,
  kCardDoesNotMatchInvite = 1,  // acceptor: the inviter's card is not the invite's identity
  kConfirmationFailed = 2,      // Noise_KK failed: the peer lacks its card's Noise key
};

// Our own side, passed to every step that may send our card or run Noise_KK.
struct ContactSelf {
  const ContactCard& card;                // our card; card.noise_key == noise_key.public_key
  const crypto::X25519KeyPair& noise_key;  // our Noise static key pair (Identity::noise)
};

// What one step produced.
struct ContactStep {
  Bytes reply;          // a ratchet message to send to the peer; empty if none
  ContactState state;   // the state after the step
};

// Serialized state (docs/protocol/first-contact.md "Stored state").
inline constexpr std::uint8_t kPendingContactStateVersion = 1;
inline constexpr std::size_t kPendingContactFixedBytes = 152;
inline constexpr std::size_t kMaxPendingContactStateBytes =
    kPendingContactFixedBytes + kMaxContactCardBytes + 4 + crypto::kMaxRatchetStateBytes;

class PendingContact {
 public:
  PendingContact(PendingContact&&) noexcept;
  PendingContact& operator=(PendingContact&&) noexcept;
  PendingContact(const PendingContact&) = delete;
  PendingContact& operator=(const PendingContact&) = delete;
  ~PendingContact();

  ContactRole role() const noexcept { return role_; }
  ContactState state() const noexcept { return state_; }
  ContactFailure failure() const noexcept { return failure_; }
  bool confirmed() const noexcept { return state_ == ContactState::kConfirmed; }
  // The Xpsk1 handshake hash h (64 bytes; all zero once failed). Public.
  const ByteArray<kFirstContactHandshakeHashBytes>& handshake_hash() const noexcept { return h_; }
  // The peer's card once received and checked (acceptor: from kConfirming;
  // inviter: at kConfirmed). It proves nothing before kConfirmed.
  const std::optional<ContactCard>& peer_card() const noexcept { return peer_card_; }

  // Handles one first-contact ratchet message from the peer and returns the
  // message to send back (acceptor in kRequestSent: card + KK 1; inviter in
  // kAwaitingCard: KK 2). `rng` is drawn only when a reply is produced.
  // Errors (nothing changed unless noted):
  //   kInvalidArgument: the state takes no first-contact message (kConfirmed,
  //     kFailed), or self.card does not carry self.noise_key;
  //   kLimitExceeded: message longer than kMaxContactMessageBytes;
  //   the ratchet's Decrypt errors (tampered, replayed, foreign message);
  //   kMalformed / kUnsupported: the decrypted content is not the expected step
  //     (bad padding, bad ContactMessage, wrong step, bad card);
  //   kAuthenticationFailed "inviter's card does not match the invite" or
  //     "contact confirmation failed": the state moves to kFailed (see top).
  Result<ContactStep> HandleMessage(ByteSpan message, const ContactSelf& self,
                                    std::uint64_t now, crypto::RandomSource& rng,
                                    PaddingPolicy padding = PaddingPolicy::kSmallestFitting);

  // After confirmation: the session itself. The caller passes its own padded
  // envelopes (envelope.md). Errors: kInvalidArgument "contact is not
  // confirmed" in any other state; else as DoubleRatchet::Encrypt/Decrypt.
  Result<Bytes> Encrypt(ByteSpan plaintext, crypto::RandomSource& rng);
  Result<Bytes> Decrypt(ByteSpan message, std::uint64_t now);

  // Moves the confirmed session out (the contact becomes kFailed with
  // ContactFailure::kNone and holds nothing). Errors: kInvalidArgument if not
  // confirmed.
  Result<crypto::DoubleRatchet> TakeSession();

  // The whole state for the client's database. At most
  // kMaxPendingContactStateBytes. Throws std::bad_alloc only if secure memory
  // runs out.
  crypto::SecretBytes Serialize() const;

  // Reads a Serialize() output; Serialize(Parse(x)) == x.
  // Errors: kLimitExceeded if longer than kMaxPendingContactStateBytes;
  // kUnsupported for another version byte; kMalformed for a wrong length,
  // unknown role, state or failure values, or non-zero bytes in a field the
  // state does not use; kCorrupt for a role/state pair no run reaches, a stored
  // card that does not validate, or a ratchet that does not belong to h (and
  // the ratchet parser's own errors).
  static Result<PendingContact> Parse(ByteSpan serialized);

 private:
  friend struct FirstContactAccess;
  PendingContact();
  Result<PendingContact> Clone() const;

  ContactRole role_ = ContactRole::kAcceptor;
  ContactState state_ = ContactState::kFailed;
  ContactFailure failure_ = ContactFailure::kNone;
  ByteArray<kFirstContactHandshakeHashBytes> h_{};
  ByteArray<kInviteFingerprintBytes> fingerprint_{};  // acceptor
  crypto::SecretBytes invite_secret_;                 // acceptor, kRequestSent only
  crypto::SecretBytes kk_ephemeral_;                  // acceptor, kConfirming only
  std::optional<ContactCard> peer_card_;
  std::optional<crypto::DoubleRatchet> ratchet_;
};

// --- Acceptor ------------------------------------------------------------------

struct BuiltContactRequest {
  Bytes request;           // send to the invite's request queue
  PendingContact contact;  // kRequestSent; store before sending
};

// Builds the one Noise_Xpsk1 message of DESIGN §6.1 to the invite key, with a
// fresh per-request static key (wiped on return), and starts the session as
// ratchet "Alice". `reply_queue` is where the inviter answers (a fresh queue of
// the acceptor's; its send key is a capability and travels only encrypted).
// Errors: kInvalidArgument "invite has expired" if InviteExpired(invite, now);
// the errors of ValidateInvite and ValidateMessageQueue; kLimitExceeded if the
// reply queue does not fit one padded block.
Result<BuiltContactRequest> BuildContactRequest(
    const Invite& invite, const MessageQueue& reply_queue, std::uint64_t now,
    crypto::RandomSource& rng, PaddingPolicy padding = PaddingPolicy::kSmallestFitting);

// --- Inviter -------------------------------------------------------------------

struct OpenedContactRequest {
  MessageQueue reply_queue;  // where to send `reply` (and every later message)
  ContactRequestId request_id;  // pass to RecordOpenedRequest
  Bytes reply;               // ratchet message carrying the inviter's card
  PendingContact contact;    // kAwaitingCard; store (with the bookkeeping) before sending
};

// Reads a request to `invite`, starts the session as ratchet "Bob" with the
// invite key pair, decrypts the acceptor's first ratchet message and encrypts
// the reply carrying self.card. `invite` is not changed: see InviterInvite for
// the bookkeeping the caller must do.
// Errors (in this order of checks):
//   kNotFound "invite has been used" (consumed) / "invite has expired" (now >= expires_at);
//   kLimitExceeded: request longer than kMaxContactRequestBytes, or a multi-use
//     invite that holds kMaxInviteRequests ids;
//   kInvalidArgument if self.card does not carry self.noise_key;
//   kMalformed / kAuthenticationFailed / kCryptoFailure: the Xpsk1 message does
//     not verify (tampered, another invite, wrong secret, truncated);
//   kAlreadyExists "contact request was already received" (a replay on a
//     multi-use invite);
//   kMalformed / kUnsupported: bad payload, reply queue or first ratchet message.
Result<OpenedContactRequest> OpenContactRequest(
    const InviterInvite& invite, ByteSpan request, const ContactSelf& self, std::uint64_t now,
    crypto::RandomSource& rng, PaddingPolicy padding = PaddingPolicy::kSmallestFitting);

}  // namespace rhizome::protocol
