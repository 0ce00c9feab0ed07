// The one-to-one messenger: relays, invites, contacts, messages and the
// delivery pass over relays (DESIGN §6, §7, §9, §11, §13), on an open profile.
//
// What it keeps (schema in storage/src/schema.cc, described in
// docs/client-storage.md): the profile's relays; open invites with their
// request queues; contacts with their first-contact or Double Ratchet state;
// the queues we read (inbound) and the queues we send to (outbound, from the
// peer's card); messages; the outbox of exact end-to-end ciphertexts; a
// dedup record of every inner ciphertext processed; messages held back because
// they arrived before the state that can read them.
//
// Invariants and SECURITY rules:
// - Sender persists before sending: a message's ratchet state, its row and its
//   outbox ciphertext commit in one transaction before any byte leaves. A
//   relay upload happens only from the outbox.
// - Receiver commits before acknowledging: new session state, the plaintext and
//   the dedup record commit in one transaction, and only then is the relay
//   copy ACKed. A crash in between re-delivers a blob that the dedup record
//   (BLAKE2b of the unsealed payload) then drops without decrypting again.
// - A blob that does not unseal, decrypt or parse changes no session state; it
//   is held (bounded by kMaxHeldPerContact) when it may belong to a later state
//   and dropped otherwise; the relay copy is ACKed either way, so one bad blob
//   never blocks a queue.
// - Text outbox entries stay until the peer's end-to-end receipt arrives and are
//   retried with backoff over every path; each upload is sealed again for its
//   path (protocol/path_seal.h), so two copies are never the same bytes.
// - Error messages are static: never a name, key, id, address or plaintext.
// Thread safety: one Messenger per profile, used from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rhizome/client/peer_port.h"
#include "rhizome/client/relay_port.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/relay_address.h"

namespace rhizome::crypto {
class RandomSource;
struct X25519KeyPair;
}
namespace rhizome::storage {
class Profile;
}

namespace rhizome::client {

// Limits (inputs from people, files and the network).
inline constexpr std::size_t kMaxAliasBytes = 64;
inline constexpr std::size_t kMaxTextBytes = 16000;          // one envelope body (envelope.h)
inline constexpr std::uint32_t kMaxInviteUses = 1024;        // protocol kMaxInviteRequests
inline constexpr std::uint64_t kDefaultInviteSeconds = 7 * 24 * 3600;
inline constexpr std::uint64_t kMaxInviteSeconds = 90 * 24 * 3600;
inline constexpr std::size_t kMaxRelays = 4;                 // protocol kMaxCardQueues
inline constexpr std::size_t kMaxHeldPerContact = 256;
// A pass takes at most this many pushed messages from one relay, so that a
// busy conversation cannot keep a pass (and the daemon's requests behind it)
// going; the rest comes with the next pass.
inline constexpr std::size_t kMaxMessagesPerRelayPerPass = 256;
// How long a one-off pass (`rhizome sync`) waits for the next pushed message
// before it calls a relay quiet: loopback answers in microseconds, a relay
// across the world in ~300 ms. The daemon, which keeps its subscriptions and
// comes back every poll interval, waits much less.
inline constexpr std::chrono::milliseconds kDefaultPushWait{300};
inline constexpr std::uint64_t kHeldExpirySeconds = 30 * 24 * 3600;
// Outbox retry backoff: first retry after kFirstRetrySeconds, doubling, capped.
inline constexpr std::uint64_t kFirstRetrySeconds = 30;
inline constexpr std::uint64_t kMaxRetrySeconds = 6 * 3600;
// An outbox entry is given up after this long (the relay's default expiry):
// the message stays in the conversation as "sent" or "queued".
inline constexpr std::uint64_t kOutboxTtlSeconds = 21 * 24 * 3600;
// A duplicate of a message already stored gets another receipt at most this often.
inline constexpr std::uint64_t kReceiptResendSeconds = 3600;

enum class ContactStatus : std::uint8_t {
  kRequestSent = 1,   // we accepted an invite; waiting for the inviter
  kConfirming = 2,    // cards exchanged; the Noise_KK confirmation is in flight
  kConfirmed = 3,     // a confirmed contact: messages flow
  kFailed = 4,        // the peer failed a check (impostor); nothing is sent
};

enum class MessageState : std::uint8_t {
  kQueued = 1,     // outgoing, in the outbox, not yet on any relay
  kSent = 2,       // outgoing, stored on at least one relay
  kDelivered = 3,  // outgoing, the peer's receipt arrived
  kReceived = 4,   // incoming
};

struct RelayInfo {
  std::string address;  // rhizome-relay://... (updated when the relay rotates its key)
  std::uint64_t added_at = 0;
};

struct InviteInfo {
  std::string id;         // short label for `invite --revoke`
  std::string code;       // the code to hand out (only when just made)
  std::uint64_t expires_at = 0;
  std::uint32_t uses_left = 0;
};

struct ContactInfo {
  std::string alias;
  ContactStatus status = ContactStatus::kRequestSent;
  std::string fingerprint;  // the peer's identity fingerprint once known, else empty
  bool verified = false;
  std::uint64_t expire_seconds = 0;
  std::uint64_t created_at = 0;
  std::string direct_address;  // where the contact's daemon listens (its card), else empty
  // When the contact's device last sent a card with a DIFFERENT identity key
  // (refused: the contact keeps the key it had); 0 = never. Show it loudly.
  std::uint64_t key_refused_at = 0;
};

struct MessageInfo {
  std::int64_t row = 0;  // local, increasing in storage order (for "what is new since")
  std::string contact;
  bool outgoing = false;
  std::uint64_t seq = 0;
  std::string text;
  std::uint64_t sent_at_ms = 0;
  std::uint64_t stored_at = 0;
  MessageState state = MessageState::kQueued;
};

struct SafetyInfo {
  std::string contact;
  std::string safety_number;  // 60 digits, grouped by five
  bool verified = false;
  std::uint64_t key_refused_at = 0;  // as ContactInfo
};

struct SyncReport {
  std::size_t received = 0;        // new messages stored
  std::size_t uploaded = 0;        // outbox uploads a relay accepted or a direct link took
  std::size_t receipts = 0;        // receipts received
  std::size_t contacts_confirmed = 0;
  std::size_t relays_unreachable = 0;
  std::size_t dropped = 0;         // blobs that did not open or decrypt
  std::size_t deferred = 0;        // queues left for the next pass after a local failure
};

class Messenger {
 public:
  using NowFn = std::function<std::uint64_t()>;  // Unix seconds
  // Opens a connection to a relay within the timeout; `followed_serial` is the
  // serial of the last key statement followed for it (0: none; older ones are
  // ignored). A key statement the link follows is persisted by the next pass:
  // the relay's address is replaced everywhere the profile stores it.
  using ConnectFn = std::function<Result<std::unique_ptr<RelayPort>>(
      const protocol::RelayAddress&, std::uint64_t followed_serial, std::chrono::milliseconds)>;

  // `profile` must outlive the Messenger (its database is used in place).
  // `connect` reaches relays: RelayLinkConnector() (relay_link.h) for real
  // ones; the fuzz target passes an in-memory relay. `now` defaults to the
  // system clock.
  // Errors: kInvalidArgument if `connect` is empty; the identity's (kNotFound
  // "the profile has no identity yet", kCorrupt).
  static Result<Messenger> Open(storage::Profile& profile, crypto::RandomSource& rng,
                                ConnectFn connect, NowFn now = {});
  Messenger(Messenger&&) noexcept;
  Messenger& operator=(Messenger&&) noexcept;
  ~Messenger();

  // --- relays -----------------------------------------------------------------
  // Errors: the address parser's (kMalformed, ...); kAlreadyExists; kLimitExceeded
  // beyond kMaxRelays.
  Result<RelayInfo> AddRelay(std::string_view address);
  // Removes by full address or by a unique prefix of at least 20 characters.
  // Errors: kNotFound; kInvalidArgument "several relays match".
  Status RemoveRelay(std::string_view address_or_prefix);
  Result<std::vector<RelayInfo>> ListRelays();

  // --- invites ----------------------------------------------------------------
  // Makes an invite with a request queue on the profile's first relay
  // (connects to it). uses: 1 = single use. Errors: kInvalidArgument (no relay:
  // "add a relay first", uses or lifetime out of range), the relay's errors.
  // `direct`: the invite also names our advertised direct address
  // (SetDirectAddress), and so will our card for whoever uses it (DESIGN §6:
  // anyone holding the code learns it). Errors also: kInvalidArgument "no
  // direct address" when `direct` and none is set.
  Result<InviteInfo> CreateInvite(std::uint32_t uses, std::uint64_t lifetime_seconds,
                                  std::chrono::milliseconds timeout, bool direct = false);
  // Destroys the invite's key and deletes its request queue (best effort on the
  // relay). Errors: kNotFound.
  Status RevokeInvite(std::string_view id, std::chrono::milliseconds timeout);
  Result<std::vector<InviteInfo>> ListInvites();

  // --- contacts ----------------------------------------------------------------
  // Accepts an invite code: reply queues on the profile's relays, the contact
  // request (Noise_Xpsk1), stored, then sent (or left in the outbox).
  // Errors: the code parser's (kMalformed, kUnsupported, kLimitExceeded),
  // kInvalidArgument "invite has expired" / "add a relay first" / bad alias,
  // kAlreadyExists (alias taken), the relays' errors.
  Result<ContactInfo> AcceptInvite(std::string_view code, std::string_view alias,
                                   std::chrono::milliseconds timeout);
  Result<std::vector<ContactInfo>> ListContacts();
  // Errors: kNotFound; kInvalidArgument "contact is not confirmed yet".
  Result<SafetyInfo> Safety(std::string_view contact, bool confirm);
  // Disappearing messages for a conversation (0 = off). Applies to messages
  // stored from now on. Errors: kNotFound.
  Status SetExpiry(std::string_view contact, std::uint64_t seconds);

  // --- messages ----------------------------------------------------------------
  // Errors: kNotFound; kInvalidArgument "contact is not confirmed yet", empty
  // text; kLimitExceeded (above kMaxTextBytes).
  Result<MessageInfo> Send(std::string_view contact, std::string_view text);
  // Conversations, grouped by contact in storage order, with the incoming
  // messages in the sender's order (by seq: with several relays they may
  // arrive out of order). Removes expired messages first.
  Result<std::vector<MessageInfo>> Read(std::optional<std::string_view> contact);
  // Incoming messages stored after local row `row` (0: all), in storage order,
  // at most `limit`. For the daemon's events.
  Result<std::vector<MessageInfo>> IncomingAfter(std::int64_t row, std::size_t limit);
  // The largest message row so far (0 if none).
  Result<std::int64_t> LastMessageRow();

  // One delivery pass: fetch and process every inbound queue, upload what the
  // outbox holds that is due, repeat (at most `max_rounds` times) while
  // something new happened and the timeout allows. Unreachable relays are
  // counted, not fatal. The daemon runs single rounds often; `rhizome sync`
  // runs several.
  // `push_wait`: how long a round waits for more pushed messages before it
  // calls a relay quiet (what it misses, the next pass gets).
  // `background`: a pass nobody asked for (the daemon's) skips relays that
  // failed recently (backoff from 1 s to 60 s); an explicit sync tries them all.
  Result<SyncReport> Sync(std::chrono::milliseconds timeout, int max_rounds = 8,
                          std::chrono::milliseconds push_wait = kDefaultPushWait,
                          bool background = false);

  // --- direct links (Noise XK between daemons, DESIGN §5, §11) ------------------
  // Sending: with a connector set, Sync posts to contacts whose card names a
  // direct address over a direct link first (peer_port.h); without one (the
  // default) it uses relays only.
  void SetPeerConnector(PeerConnectFn connect);
  // The address we advertise to contacts made with --direct invites (nullopt:
  // none). When it changes, every confirmed direct contact gets our new card
  // (a kContactCard envelope in the session, sent with the next pass).
  Status SetDirectAddress(const std::optional<protocol::DirectAddress>& address);
  Result<std::optional<protocol::DirectAddress>> DirectAddress();
  // Our Noise static key pair: the listener's key for direct links.
  const crypto::X25519KeyPair& noise_key_pair() const;
  // The Noise keys (32 bytes each) a direct link may come from: contacts with
  // a recorded card that have not failed.
  Result<std::vector<ByteArray<32>>> DirectPeers();
  // One end-to-end ciphertext that arrived on a direct link from the peer
  // with this (authenticated) Noise key. Processed exactly as a relay copy:
  // dedup, decrypt, commit. True: committed or dealt with (send PeerAck);
  // false: not now (no ack; the sender tries again).
  // Errors: kIo (the database) and kCorrupt.
  Result<bool> ReceiveDirect(ByteSpan peer_noise_key, ByteSpan blob);

 private:
  struct Impl;
  explicit Messenger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

const char* ContactStatusName(ContactStatus s) noexcept;
const char* MessageStateName(MessageState s) noexcept;

}  // namespace rhizome::client
