// The messenger (see rhizome/client/messenger.h and docs/client-storage.md).
#include "rhizome/client/messenger.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/double_ratchet.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/safety_number.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/contact_card.h"
#include "rhizome/protocol/envelope.h"
#include "rhizome/protocol/first_contact.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/protocol/invite.h"
#include "rhizome/protocol/padding.h"
#include "rhizome/protocol/path_seal.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/version.h"
#include "rhizome/storage/database.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"

namespace rhizome::client {

namespace {

using Clock = std::chrono::steady_clock;
using protocol::ContactRole;
using protocol::ContactState;

constexpr auto kConnectTimeout = std::chrono::milliseconds(5000);
constexpr auto kFirstReconnectDelay = std::chrono::milliseconds(1000);
constexpr auto kMaxReconnectDelay = std::chrono::milliseconds(60'000);
constexpr std::size_t kInviteLabelBytes = 4;

std::uint64_t SystemNow() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::int64_t I64(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t U64(std::int64_t v) { return v < 0 ? 0 : static_cast<std::uint64_t>(v); }

template <std::size_t N>
bool CopyColumn(ByteSpan in, ByteArray<N>& out) {
  if (in.size() != N) return false;
  std::copy(in.begin(), in.end(), out.begin());
  return true;
}

const Error kDamaged{Errc::kCorrupt, "stored messaging state is damaged"};

ContactStatus StatusOf(ContactState s) {
  switch (s) {
    case ContactState::kRequestSent:
      return ContactStatus::kRequestSent;
    case ContactState::kAwaitingCard:
    case ContactState::kConfirming:
      return ContactStatus::kConfirming;
    case ContactState::kConfirmed:
      return ContactStatus::kConfirmed;
    case ContactState::kFailed:
      return ContactStatus::kFailed;
  }
  return ContactStatus::kFailed;
}

// Canonical text of a relay address (what the relays table and queue rows hold).
Result<std::string> CanonicalRelay(std::string_view text) {
  auto addr = protocol::ParseRelayAddress(text);
  if (!addr) return addr.error();
  return protocol::FormatRelayAddress(*addr);
}

// One queue we read.
struct Inbound {
  std::int64_t row = 0;
  std::string relay;
  protocol::Id recipient_id{};
  protocol::Id sender_id{};
  crypto::Ed25519KeyPair recipient;
  crypto::SecretBytes send_key;
  crypto::X25519KeyPair seal;
  std::int64_t invite_id = 0;   // 0 if a contact queue
  std::int64_t contact_id = 0;  // 0 if an invite's request queue
  // The acceptor's reply queue on the inviter's relay (first_contact.h): read
  // until the inviter's card arrives, never named in our card, then retired.
  bool reply_only = false;
};

// One path we send on.
struct Outbound {
  std::string relay;
  protocol::Id sender_id{};
  crypto::SecretBytes send_key;
  protocol::PublicKey seal_key{};
};

// How long an outbox entry stays (outbox.needs_receipt).
enum class Keep : std::int64_t {
  kUntilUploaded = 0,  // receipts: gone once one relay holds it
  kUntilReceipt = 1,   // text: retried until the peer's receipt (or kOutboxTtlSeconds)
  kUntilNextStep = 2,  // first contact: retried until the peer's next step arrives
};

struct ContactRow {
  std::int64_t id = 0;
  std::string alias;
  bool alias_set = false;
  ContactRole role = ContactRole::kAcceptor;
  ContactState state = ContactState::kFailed;
  crypto::SecretBytes session;
  std::optional<protocol::PublicKey> identity_key;
  bool verified = false;
  std::uint64_t next_seq = 1;
  std::optional<protocol::Hash> last_sent_hash;
  std::uint64_t expire_seconds = 0;
  std::uint64_t created_at = 0;
  bool direct = false;  // our direct address goes into our card for this contact
  std::uint64_t key_refused_at = 0;  // a card with another identity key was refused then
};

// The settings key of the direct address we advertise (DIRECT links).
constexpr std::string_view kDirectAddressSetting = "direct_address";
// How long `rhizome sync` waits for the acks of what it posted on direct links.
constexpr auto kDirectAckWait = std::chrono::milliseconds(2000);

}  // namespace

const char* ContactStatusName(ContactStatus s) noexcept {
  switch (s) {
    case ContactStatus::kRequestSent:
      return "request sent";
    case ContactStatus::kConfirming:
      return "confirming";
    case ContactStatus::kConfirmed:
      return "confirmed";
    case ContactStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* MessageStateName(MessageState s) noexcept {
  switch (s) {
    case MessageState::kQueued:
      return "queued";
    case MessageState::kSent:
      return "sent";
    case MessageState::kDelivered:
      return "delivered";
    case MessageState::kReceived:
      return "received";
  }
  return "unknown";
}

struct Messenger::Impl {
  storage::Database& db;
  crypto::RandomSource& rng;
  NowFn now;
  protocol::Identity identity;

  // Open relay connections, by canonical address; kept across operations (the
  // daemon's passes reuse them) and replaced when the relay closed them.
  std::map<std::string, std::unique_ptr<RelayPort>> cache;
  // Queues subscribed (SUB) on each cached connection.
  std::map<std::string, std::set<protocol::Id>> subscribed;
  // RelayPort::quiet_acks_refused() of each cached connection when last looked
  // at; forgotten with the connection (a new one counts from zero).
  std::map<std::string, std::size_t> quiet_refused_seen;
  ConnectFn connect;

  // Direct links we opened, by the peer's Noise key (hex), with what we posted
  // on each and have no ack for yet (delivery id -> outbox id). Empty
  // peer_connect: no direct links (the fuzz target, tests of relays only).
  PeerConnectFn peer_connect;
  bool direct_requeued = false;  // this process re-queued direct_pending rows
  struct Peer {
    std::unique_ptr<PeerPort> port;
    std::map<protocol::Id, std::int64_t> posted;
  };
  std::map<std::string, Peer> peers;

  // One operation's view of the relays: its deadline, and the relays that
  // could not be reached in it (not tried again in the same operation).
  struct Links {
    std::map<std::string, bool> failed;
    Clock::time_point deadline;
    bool honor_backoff = false;  // skip relays in their reconnect backoff
    std::size_t unreachable = 0;
    std::set<std::string> peers_failed;  // direct links (Noise key, hex)
  };

  Impl(storage::Profile& p, crypto::RandomSource& r, NowFn n, protocol::Identity id,
       ConnectFn c)
      : db(p.db()), rng(r), now(std::move(n)), identity(std::move(id)), connect(std::move(c)) {}

  // --- relay links --------------------------------------------------------------

  // Relays that could not be reached, and when to try again: a daemon must
  // not spend every pass (and its requests' time) on a connect to a relay that
  // is down or blackholed. Backoff from kFirstReconnectDelay, doubling, capped;
  // in memory only, so a new process (`rhizome sync`) always tries.
  struct Reconnect {
    Clock::time_point next_try;
    std::chrono::milliseconds delay;
  };
  std::map<std::string, Reconnect> reconnect;
  std::map<std::string, Reconnect> peer_reconnect;  // by the peer's Noise key (hex)

  static void Backoff(std::map<std::string, Reconnect>& m, const std::string& key) {
    auto& r = m[key];
    r.delay = r.delay.count() == 0 ? kFirstReconnectDelay : std::min(2 * r.delay, kMaxReconnectDelay);
    r.next_try = Clock::now() + r.delay;
  }

  RelayPort* Link(Links& links, const std::string& relay) {
    if (links.failed.count(relay) != 0) return nullptr;
    if (auto r = reconnect.find(relay);
        links.honor_backoff && r != reconnect.end() && Clock::now() < r->second.next_try) {
      links.failed[relay] = true;
      ++links.unreachable;
      return nullptr;
    }
    if (auto it = cache.find(relay); it != cache.end()) {
      if (it->second->CheckOpen()) return it->second.get();
      cache.erase(it);
      subscribed.erase(relay);
      quiet_refused_seen.erase(relay);  // a new connection counts from zero
    }
    auto addr = protocol::ParseRelayAddress(relay);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(links.deadline -
                                                                            Clock::now());
    std::optional<Result<std::unique_ptr<RelayPort>>> link;
    if (addr && left.count() > 0) {
      auto serial = FollowedSerial(relay);
      if (!serial) return nullptr;
      link.emplace(connect(*addr, *serial, std::min(left, kConnectTimeout)));
    }
    if (!link || !*link) {
      links.failed[relay] = true;
      ++links.unreachable;
      Backoff(reconnect, relay);
      return nullptr;
    }
    reconnect.erase(relay);
    auto [pos, inserted] = cache.emplace(relay, std::move(**link));
    (void)inserted;
    subscribed[relay].clear();
    quiet_refused_seen.erase(relay);
    return pos->second.get();
  }

  // The serial of the last key statement followed for one of our relays (0
  // for a contact's relay: those are not in `relays`).
  Result<std::uint64_t> FollowedSerial(const std::string& relay) {
    auto st = db.Prepare("SELECT followed_serial FROM relays WHERE address = ?1");
    if (!st) return st.error();
    st->Bind(1, std::string_view(relay));
    auto row = st->Step();
    if (!row) return row.error();
    return *row ? U64(st->ColumnInt64(0)) : 0;
  }

  // DESIGN §9: a relay's key statement that a link verified and followed
  // replaces the relay's address everywhere the profile stores it (our relays,
  // the queues we read and send to, retired queues, outbox paths), in one
  // transaction, and the open link is kept under its new name.
  Status FollowRotations() {
    std::vector<std::pair<std::string, FollowedRelay>> moved;
    for (auto& [relay, port] : cache) {
      auto f = port->Followed();
      if (f && f->address != relay && protocol::ParseRelayAddress(f->address)) {
        moved.emplace_back(relay, std::move(*f));
      }
    }
    for (auto& [old_text, f] : moved) {
      auto txn = db.Begin();
      if (!txn) return txn.error();
      const std::string_view from(old_text), to(f.address);
      const char* const statements[] = {
          "UPDATE OR IGNORE relays SET address = ?2 WHERE address = ?1",
          "DELETE FROM relays WHERE address = ?1 AND ?2 IS NOT NULL",  // the new one was there already
          "UPDATE OR IGNORE inbound_queues SET relay_address = ?2 WHERE relay_address = ?1",
          "UPDATE outbound_queues SET relay_address = ?2 WHERE relay_address = ?1",
          "UPDATE retired_queues SET relay_address = ?2 WHERE relay_address = ?1",
          "UPDATE outbox SET path_relay = ?2 WHERE path_relay = ?1",
      };
      for (const char* sql : statements) {
        auto st = db.Prepare(sql);
        if (!st) return st.error();
        st->Bind(1, from).Bind(2, to);
        RHIZOME_TRY(st->Run());
      }
      auto serial = db.Prepare(
          "UPDATE relays SET followed_serial = ?2 WHERE address = ?1 AND followed_serial < ?2");
      if (!serial) return serial.error();
      serial->Bind(1, to).Bind(2, I64(f.serial));
      RHIZOME_TRY(serial->Run());
      RHIZOME_TRY(txn->Commit());
      auto node = cache.extract(old_text);
      if (!node.empty() && cache.count(f.address) == 0) {
        node.key() = f.address;
        cache.insert(std::move(node));
        subscribed[f.address] = std::move(subscribed[old_text]);
        quiet_refused_seen[f.address] = quiet_refused_seen[old_text];  // the same connection
      }
      subscribed.erase(old_text);
      quiet_refused_seen.erase(old_text);
      reconnect.erase(old_text);
    }
    return {};
  }

  static Links MakeLinks(std::chrono::milliseconds timeout) {
    Links l;
    l.deadline = Clock::now() + timeout;
    return l;
  }

  // --- rows -------------------------------------------------------------------

  Result<std::vector<std::string>> RelayAddresses() {
    auto st = db.Prepare("SELECT address FROM relays ORDER BY id");
    if (!st) return st.error();
    std::vector<std::string> out;
    for (;;) {
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row) break;
      out.emplace_back(st->ColumnText(0));
    }
    return out;
  }

  Result<ContactRow> LoadContact(std::string_view where, std::string_view key,
                                 std::int64_t id = 0) {
    std::string sql =
        "SELECT id, alias, alias_set, role, state, session, identity_key, verified, next_seq, "
        "last_sent_hash, expire_seconds, created_at, direct, key_refused_at FROM contacts WHERE ";
    sql += where;
    auto st = db.Prepare(sql);
    if (!st) return st.error();
    if (id != 0) {
      st->Bind(1, id);
    } else {
      st->Bind(1, key);
    }
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) return Error{Errc::kNotFound, "no such contact"};
    ContactRow c;
    c.id = st->ColumnInt64(0);
    c.alias = std::string(st->ColumnText(1));
    c.alias_set = st->ColumnInt64(2) != 0;
    const auto role = st->ColumnInt64(3);
    const auto state = st->ColumnInt64(4);
    if (role < 1 || role > 2 || state < 1 || state > 5) return kDamaged;
    c.role = static_cast<ContactRole>(role);
    c.state = static_cast<ContactState>(state);
    c.session = crypto::SecretBytes::CopyFrom(st->ColumnBlob(5));
    if (!st->ColumnIsNull(6)) {
      protocol::PublicKey k{};
      if (!CopyColumn(st->ColumnBlob(6), k)) return kDamaged;
      c.identity_key = k;
    }
    c.verified = st->ColumnInt64(7) != 0;
    c.next_seq = U64(st->ColumnInt64(8));
    if (!st->ColumnIsNull(9)) {
      protocol::Hash h{};
      if (!CopyColumn(st->ColumnBlob(9), h)) return kDamaged;
      c.last_sent_hash = h;
    }
    c.expire_seconds = U64(st->ColumnInt64(10));
    c.created_at = U64(st->ColumnInt64(11));
    c.direct = st->ColumnInt64(12) != 0;
    c.key_refused_at = U64(st->ColumnInt64(13));
    return c;
  }

  Result<ContactRow> ContactByAlias(std::string_view alias) {
    return LoadContact("alias = ?1", alias);
  }
  Result<ContactRow> ContactById(std::int64_t id) { return LoadContact("id = ?1", {}, id); }

  Result<std::vector<Inbound>> InboundQueues(std::string_view where, std::int64_t key) {
    std::string sql =
        "SELECT id, relay_address, recipient_id, sender_id, recipient_seed, send_key, "
        "seal_secret, invite_id, contact_id, reply_only FROM inbound_queues";
    if (!where.empty()) {
      sql += " WHERE ";
      sql += where;
    }
    sql += " ORDER BY id";
    auto st = db.Prepare(sql);
    if (!st) return st.error();
    if (!where.empty()) st->Bind(1, key);
    std::vector<Inbound> out;
    for (;;) {
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row) break;
      Inbound q;
      q.row = st->ColumnInt64(0);
      q.relay = std::string(st->ColumnText(1));
      if (!CopyColumn(st->ColumnBlob(2), q.recipient_id) ||
          !CopyColumn(st->ColumnBlob(3), q.sender_id)) {
        return kDamaged;
      }
      auto rec = crypto::Ed25519FromSeed(st->ColumnBlob(4));
      auto seal = crypto::X25519FromSecret(st->ColumnBlob(6));
      if (!rec || !seal || st->ColumnBlob(5).size() != protocol::kSendKeyBytes) return kDamaged;
      q.recipient = std::move(*rec);
      q.seal = std::move(*seal);
      q.send_key = crypto::SecretBytes::CopyFrom(st->ColumnBlob(5));
      q.invite_id = st->ColumnIsNull(7) ? 0 : st->ColumnInt64(7);
      q.contact_id = st->ColumnIsNull(8) ? 0 : st->ColumnInt64(8);
      q.reply_only = st->ColumnInt64(9) != 0;
      out.push_back(std::move(q));
    }
    return out;
  }

  Status InsertInbound(const Inbound& q) {
    auto st = db.Prepare(
        "INSERT INTO inbound_queues (relay_address, recipient_id, sender_id, recipient_seed, "
        "send_key, seal_secret, invite_id, contact_id, reply_only) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (!st) return st.error();
    st->Bind(1, std::string_view(q.relay))
        .Bind(2, q.recipient_id)
        .Bind(3, q.sender_id)
        .Bind(4, q.recipient.secret_key.expose().first(crypto::kEd25519SeedBytes))
        .Bind(5, q.send_key.expose())
        .Bind(6, q.seal.secret_key.expose())
        .Bind(9, q.reply_only ? 1 : 0);
    if (q.invite_id != 0) {
      st->Bind(7, q.invite_id).BindNull(8);
    } else {
      st->BindNull(7).Bind(8, q.contact_id);
    }
    return st->Run();
  }

  Result<std::vector<Outbound>> OutboundQueues(std::int64_t contact_id) {
    auto st = db.Prepare(
        "SELECT relay_address, sender_id, send_key, seal_key FROM outbound_queues "
        "WHERE contact_id = ?1 ORDER BY id");
    if (!st) return st.error();
    st->Bind(1, contact_id);
    std::vector<Outbound> out;
    for (;;) {
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row) break;
      Outbound o;
      o.relay = std::string(st->ColumnText(0));
      if (!CopyColumn(st->ColumnBlob(1), o.sender_id) ||
          !CopyColumn(st->ColumnBlob(3), o.seal_key) ||
          st->ColumnBlob(2).size() != protocol::kSendKeyBytes) {
        return kDamaged;
      }
      o.send_key = crypto::SecretBytes::CopyFrom(st->ColumnBlob(2));
      out.push_back(std::move(o));
    }
    return out;
  }

  // Replaces the contact's outbound queues with `queues` (from its card or the
  // reply queue of its request).
  Status SetOutbound(std::int64_t contact_id, const std::vector<protocol::MessageQueue>& queues) {
    auto del = db.Prepare("DELETE FROM outbound_queues WHERE contact_id = ?1");
    if (!del) return del.error();
    del->Bind(1, contact_id);
    RHIZOME_TRY(del->Run());
    auto ins = db.Prepare(
        "INSERT INTO outbound_queues (contact_id, relay_address, sender_id, send_key, seal_key) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!ins) return ins.error();
    for (const auto& q : queues) {
      auto relay = protocol::FormatRelayAddress(q.relay);
      if (!relay) return relay.error();
      ins->Bind(1, contact_id)
          .Bind(2, std::string_view(*relay))
          .Bind(3, q.sender_id)
          .Bind(4, q.send_key.expose())
          .Bind(5, q.seal_key);
      RHIZOME_TRY(ins->Run());
    }
    return {};
  }

  // Our card for one contact: our identity and the queues we read for it.
  Result<protocol::ContactCard> OwnCard(const ContactRow& c) {
    auto queues = InboundQueues("contact_id = ?1 AND reply_only = 0", c.id);
    if (!queues) return queues.error();
    return CardWith(*queues, c.direct);
  }

  // The direct address we advertise (the daemon's --listen / --advertise), if any.
  Result<std::optional<protocol::DirectAddress>> OwnDirectAddress() {
    auto st = db.Prepare("SELECT value FROM settings WHERE key = ?1");
    if (!st) return st.error();
    st->Bind(1, kDirectAddressSetting);
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) return std::optional<protocol::DirectAddress>();
    auto a = protocol::ParseDirectAddress(st->ColumnText(0));
    if (!a) return kDamaged;
    return std::optional<protocol::DirectAddress>(std::move(*a));
  }

  // `direct`: the contact came from (or through) a --direct invite, so our
  // direct address, if we advertise one, goes into the card.
  Result<protocol::ContactCard> CardWith(const std::vector<Inbound>& queues, bool direct) {
    protocol::ContactCard card;
    card.display_name = identity.display_name;
    card.identity_key = identity.signing.public_key;
    card.noise_key = identity.noise.public_key;
    card.device_certificate = identity.certificate;
    card.versions.assign(std::begin(protocol::kSupportedWireVersions),
                         std::end(protocol::kSupportedWireVersions));
    std::sort(card.versions.begin(), card.versions.end());
    for (const auto& q : queues) {
      if (card.queues.size() == protocol::kMaxCardQueues) break;
      auto mq = ToMessageQueue(q);
      if (!mq) return mq.error();
      card.queues.push_back(std::move(*mq));
    }
    if (direct) {
      auto addr = OwnDirectAddress();
      if (!addr) return addr.error();
      if (*addr) card.direct_addresses.push_back(std::move(**addr));
    }
    return card;
  }

  static Result<protocol::MessageQueue> ToMessageQueue(const Inbound& q) {
    auto relay = protocol::ParseRelayAddress(q.relay);
    if (!relay) return kDamaged;
    protocol::MessageQueue mq;
    mq.relay = std::move(*relay);
    mq.sender_id = q.sender_id;
    mq.send_key = q.send_key.Clone();
    mq.seal_key = q.seal.public_key;
    return mq;
  }

  // A fresh queue on `relay` (NEW + KEY), not yet stored.
  Result<Inbound> NewInbound(Links& links, const std::string& relay) {
    RelayPort* link = Link(links, relay);
    if (link == nullptr) return Error{Errc::kIo, "relay unreachable"};
    Inbound q;
    q.relay = relay;
    q.recipient = crypto::Ed25519Generate(rng);
    q.send_key = crypto::SecretBytes::Random(rng, protocol::kSendKeyBytes);
    q.seal = crypto::X25519Generate(rng);
    auto made = link->CreateQueue(q.recipient, q.send_key.expose());
    if (!made) return made.error();
    q.recipient_id = made->recipient_id;
    q.sender_id = made->sender_id;
    return q;
  }

  // Queues for a new contact on each of the profile's relays (at most
  // kMaxCardQueues); at least one must succeed.
  Result<std::vector<Inbound>> NewContactQueues(Links& links) {
    auto relays = RelayAddresses();
    if (!relays) return relays.error();
    if (relays->empty()) {
      return Error{Errc::kInvalidArgument, "add a relay first: rhizome relay add ADDRESS"};
    }
    std::vector<Inbound> out;
    Error last{Errc::kIo, "relay unreachable"};
    for (const auto& r : *relays) {
      if (out.size() == protocol::kMaxCardQueues) break;
      auto q = NewInbound(links, r);
      if (!q) {
        last = q.error();
        continue;
      }
      out.push_back(std::move(*q));
    }
    if (out.empty()) return last;
    return out;
  }

  // --- outbox -----------------------------------------------------------------

  Status InsertOutbox(std::int64_t contact_id, std::optional<std::int64_t> message_row,
                      ByteSpan ciphertext, const Outbound* path, Keep keep) {
    auto st = db.Prepare(
        "INSERT INTO outbox (contact_id, message_row, ciphertext, path_relay, path_sender_id, "
        "path_send_key, path_seal_key, needs_receipt, next_attempt_at, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)");
    if (!st) return st.error();
    st->Bind(1, contact_id).Bind(3, ciphertext).Bind(8, static_cast<std::int64_t>(keep)).Bind(9, I64(now()));
    if (message_row) {
      st->Bind(2, *message_row);
    } else {
      st->BindNull(2);
    }
    if (path != nullptr) {
      st->Bind(4, std::string_view(path->relay))
          .Bind(5, path->sender_id)
          .Bind(6, path->send_key.expose())
          .Bind(7, path->seal_key);
    } else {
      st->BindNull(4).BindNull(5).BindNull(6).BindNull(7);
    }
    return st->Run();
  }

  // Encrypts one envelope for a confirmed contact and records it (state of the
  // contact row; for text a message row; the outbox entry). Inside the
  // caller's transaction; `dr` is the contact's session, saved by the caller.
  Result<std::int64_t> QueueEnvelope(ContactRow& c, crypto::DoubleRatchet& dr,
                                     protocol::EnvelopeType type, ByteSpan body) {
    protocol::Envelope env;
    rng.Fill(env.message_id);
    env.seq = c.next_seq;
    env.prev_hash = c.last_sent_hash;
    env.type = type;
    env.sent_at_ms = now() * 1000;
    env.body.assign(body.begin(), body.end());
    crypto::WipeOnExit wipe_body(env.body);  // a copy of the plaintext
    auto bytes = protocol::SerializeEnvelope(env);
    if (!bytes) return bytes.error();
    crypto::WipeOnExit wipe_bytes(*bytes);
    auto padded = protocol::Pad(*bytes, protocol::PaddingPolicy::kSmallestFitting);
    if (!padded) return padded.error();
    crypto::WipeOnExit wipe_padded(*padded);
    auto ct = dr.Encrypt(*padded, rng);
    if (!ct) return ct.error();
    c.next_seq += 1;
    c.last_sent_hash = protocol::EnvelopeDigest(*bytes);
    auto up = db.Prepare("UPDATE contacts SET next_seq = ?1, last_sent_hash = ?2 WHERE id = ?3");
    if (!up) return up.error();
    up->Bind(1, I64(c.next_seq)).Bind(2, *c.last_sent_hash).Bind(3, c.id);
    RHIZOME_TRY(up->Run());
    std::optional<std::int64_t> message_row;
    if (type == protocol::EnvelopeType::kText) {
      auto ins = db.Prepare(
          "INSERT INTO messages (contact_id, outgoing, message_id, seq, type, body, sent_at_ms, "
          "stored_at, state, expires_at) VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
      if (!ins) return ins.error();
      ins->Bind(1, c.id)
          .Bind(2, env.message_id)
          .Bind(3, I64(env.seq))
          .Bind(4, static_cast<std::int64_t>(type))
          .Bind(5, body)
          .Bind(6, I64(env.sent_at_ms))
          .Bind(7, I64(now()))
          .Bind(8, static_cast<std::int64_t>(MessageState::kQueued));
      if (c.expire_seconds != 0) {
        ins->Bind(9, I64(now() + c.expire_seconds));
      } else {
        ins->BindNull(9);
      }
      RHIZOME_TRY(ins->Run());
      message_row = db.LastInsertRowId();
    }
    RHIZOME_TRY(InsertOutbox(c.id, message_row, *ct, nullptr,
                             type == protocol::EnvelopeType::kText ? Keep::kUntilReceipt
                                                                   : Keep::kUntilUploaded));
    return message_row.value_or(0);
  }

  // The peer's next step arrived: our previous first-contact messages did
  // their job and are retried no more.
  Status StepDone(std::int64_t contact_id) {
    auto st = db.Prepare(
        "DELETE FROM outbox WHERE contact_id = ?1 AND message_row IS NULL AND needs_receipt = 2");
    if (!st) return st.error();
    st->Bind(1, contact_id);
    return st->Run();
  }

  Status SaveSession(std::int64_t contact_id, ContactState state, ByteSpan session) {
    auto st = db.Prepare("UPDATE contacts SET state = ?1, session = ?2 WHERE id = ?3");
    if (!st) return st.error();
    st->Bind(1, static_cast<std::int64_t>(state)).Bind(2, session).Bind(3, contact_id);
    return st->Run();
  }

  struct OutboxRow {
    std::int64_t id = 0;
    std::int64_t contact_id = 0;
    std::optional<std::int64_t> message_row;
    Bytes ciphertext;
    std::optional<Outbound> path;
    Keep keep = Keep::kUntilUploaded;
    std::uint64_t attempts = 0;
  };

  Result<std::vector<OutboxRow>> DueOutbox(std::optional<std::int64_t> contact_id) {
    std::string sql =
        "SELECT id, contact_id, message_row, ciphertext, path_relay, path_sender_id, "
        "path_send_key, path_seal_key, needs_receipt, attempts FROM outbox "
        "WHERE next_attempt_at <= ?1";
    if (contact_id) sql += " AND contact_id = ?2";
    sql += " ORDER BY id";
    auto st = db.Prepare(sql);
    if (!st) return st.error();
    st->Bind(1, I64(now()));
    if (contact_id) st->Bind(2, *contact_id);
    std::vector<OutboxRow> out;
    for (;;) {
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row) break;
      OutboxRow r;
      r.id = st->ColumnInt64(0);
      r.contact_id = st->ColumnInt64(1);
      if (!st->ColumnIsNull(2)) r.message_row = st->ColumnInt64(2);
      auto ct = st->ColumnBlob(3);
      r.ciphertext.assign(ct.begin(), ct.end());
      if (!st->ColumnIsNull(4)) {
        Outbound p;
        p.relay = std::string(st->ColumnText(4));
        if (!CopyColumn(st->ColumnBlob(5), p.sender_id) ||
            !CopyColumn(st->ColumnBlob(7), p.seal_key) ||
            st->ColumnBlob(6).size() != protocol::kSendKeyBytes) {
          return kDamaged;
        }
        p.send_key = crypto::SecretBytes::CopyFrom(st->ColumnBlob(6));
        r.path = std::move(p);
      }
      const auto keep = st->ColumnInt64(8);
      if (keep < 0 || keep > 2) return kDamaged;
      r.keep = static_cast<Keep>(keep);
      r.attempts = U64(st->ColumnInt64(9));
      out.push_back(std::move(r));
    }
    return out;
  }


  // --- direct links -----------------------------------------------------------

  // Where the contact's daemon listens, from its card (empty: none, or direct
  // links are off in this process).
  Result<std::vector<PeerTarget>> DirectTargets(std::int64_t contact_id) {
    std::vector<PeerTarget> out;
    if (!peer_connect) return out;
    // SECURITY: only confirmed contacts made through a --direct invite (our
    // own opt-in; a relay-only contact's card may name an address too).
    auto st = db.Prepare("SELECT peer_card FROM contacts WHERE id = ?1 AND state = ?2 AND "
                         "direct = 1 AND peer_card IS NOT NULL");
    if (!st) return st.error();
    st->Bind(1, contact_id).Bind(2, static_cast<std::int64_t>(ContactState::kConfirmed));
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) return out;
    auto card = protocol::ParseContactCard(st->ColumnBlob(0));
    if (!card) return kDamaged;
    for (const auto& a : card->direct_addresses) {
      out.push_back(PeerTarget{a, card->noise_key, card->versions});
    }
    return out;
  }

  // Contacts a direct link may come from: confirmed (the Noise_KK
  // confirmation proved their keys), with their card's Noise key (certified by
  // the identity key). By Noise key; several contacts may share one (the
  // same two people met twice), and a payload is offered to each in turn.
  std::map<ByteArray<32>, std::vector<std::int64_t>> direct_contacts;

  Status RefreshDirectContacts() {
    auto st = db.Prepare("SELECT id, peer_card FROM contacts WHERE state = ?1 AND "
                         "peer_card IS NOT NULL ORDER BY id");
    if (!st) return st.error();
    st->Bind(1, static_cast<std::int64_t>(ContactState::kConfirmed));
    std::map<ByteArray<32>, std::vector<std::int64_t>> fresh;
    for (;;) {
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row) break;
      auto card = protocol::ParseContactCard(st->ColumnBlob(1));
      if (!card) return kDamaged;
      fresh[card->noise_key].push_back(st->ColumnInt64(0));
    }
    direct_contacts.swap(fresh);
    return {};
  }

  // Whatever a closed link carried without an ack is due again now.
  Status RequeuePosted(Peer& peer) {
    for (const auto& [delivery, outbox_id] : peer.posted) {
      auto up = db.Prepare("UPDATE outbox SET next_attempt_at = ?1 WHERE id = ?2");
      if (!up) return up.error();
      up->Bind(1, I64(now())).Bind(2, outbox_id);
      RHIZOME_TRY(up->Run());
    }
    peer.posted.clear();
    return {};
  }

  // An open direct link to the contact whose targets these are, or nullptr.
  Result<Peer*> PeerFor(Links& links, const std::vector<PeerTarget>& targets) {
    const std::string key = ToHex(targets.front().noise_key);
    if (auto it = peers.find(key); it != peers.end()) {
      if (it->second.port->CheckOpen()) return &it->second;
      RHIZOME_TRY(RequeuePosted(it->second));
      peers.erase(it);
    }
    if (links.peers_failed.count(key) != 0) return nullptr;
    if (auto r = peer_reconnect.find(key);
        links.honor_backoff && r != peer_reconnect.end() && Clock::now() < r->second.next_try) {
      return nullptr;
    }
    for (const auto& t : targets) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(links.deadline - Clock::now());
      if (left.count() <= 0) break;
      auto port = peer_connect(t, identity.noise, std::min(left, kConnectTimeout));
      if (port) {
        peer_reconnect.erase(key);
        auto [pos, inserted] = peers.emplace(key, Peer{std::move(*port), {}});
        (void)inserted;
        return &pos->second;
      }
    }
    links.peers_failed.insert(key);
    Backoff(peer_reconnect, key);
    return nullptr;
  }

  // The peer committed what we posted as outbox row `outbox_id` with this
  // delivery id (a reused row id, or a later post of the row, does not match).
  Status DirectAcked(std::int64_t outbox_id, const protocol::Id& delivery) {
    auto st = db.Prepare("SELECT message_row, needs_receipt FROM outbox WHERE id = ?1 AND "
                         "direct_delivery = ?2");
    if (!st) return st.error();
    st->Bind(1, outbox_id).Bind(2, delivery);
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) return {};  // the receipt came first, or a relay copy finished it
    std::optional<std::int64_t> message_row;
    if (!st->ColumnIsNull(0)) message_row = st->ColumnInt64(0);
    const bool until_uploaded = st->ColumnInt64(1) == static_cast<std::int64_t>(Keep::kUntilUploaded);
    auto txn = db.Begin();
    if (!txn) return txn.error();
    if (until_uploaded) {
      auto del = db.Prepare("DELETE FROM outbox WHERE id = ?1");
      if (!del) return del.error();
      del->Bind(1, outbox_id);
      RHIZOME_TRY(del->Run());
    } else {
      auto up = db.Prepare(
          "UPDATE outbox SET direct_pending = 0, direct_delivery = NULL WHERE id = ?1");
      if (!up) return up.error();
      up->Bind(1, outbox_id);
      RHIZOME_TRY(up->Run());
      RHIZOME_TRY(MarkSent(message_row));
    }
    return txn->Commit();
  }

  Status MarkSent(std::optional<std::int64_t> message_row) {
    if (!message_row) return {};
    auto ms = db.Prepare("UPDATE messages SET state = ?1 WHERE id = ?2 AND state = ?3");
    if (!ms) return ms.error();
    ms->Bind(1, static_cast<std::int64_t>(MessageState::kSent))
        .Bind(2, *message_row)
        .Bind(3, static_cast<std::int64_t>(MessageState::kQueued));
    return ms->Run();
  }

  // Takes the acks that arrived on every direct link (waiting up to `wait`
  // for the first on a link that has messages in flight) and drops closed links.
  Status CollectAcks(std::chrono::milliseconds wait) {
    for (auto it = peers.begin(); it != peers.end();) {
      Peer& peer = it->second;
      if (!peer.posted.empty()) {
        for (const auto& id : peer.port->TakeAcks(wait)) {
          auto p = peer.posted.find(id);
          if (p == peer.posted.end()) continue;
          RHIZOME_TRY(DirectAcked(p->second, id));
          peer.posted.erase(p);
        }
      }
      if (!peer.port->CheckOpen()) {
        RHIZOME_TRY(RequeuePosted(peer));
        it = peers.erase(it);
      } else {
        ++it;
      }
    }
    return {};
  }

  bool AnyPosted() const {
    return std::any_of(peers.begin(), peers.end(),
                       [](const auto& p) { return !p.second.posted.empty(); });
  }

  // Uploads every due outbox entry (of one contact, or all) over each of its
  // paths, each copy sealed for its path. Returns the uploads accepted.
  // Direct first: an entry going to a contact whose card names a direct
  // address is posted on the direct link; on its first attempt that is all
  // (the ack marks it sent), on later ones (no receipt came) the relays get
  // it too. A busy link leaves a first attempt for the next pass.
  Result<std::size_t> Upload(Links& links, std::optional<std::int64_t> contact_id) {
    auto rows = DueOutbox(contact_id);
    if (!rows) return rows.error();
    std::size_t uploaded = 0;
    std::map<std::int64_t, std::vector<PeerTarget>> targets_of;  // by contact, this call
    for (auto& r : *rows) {
      std::vector<Outbound> paths;
      if (r.path) {
        paths.push_back(std::move(*r.path));
      } else {
        auto out = OutboundQueues(r.contact_id);
        if (!out) return out.error();
        paths = std::move(*out);
      }
      bool ok = false;             // a relay stored it (durable)
      bool direct_posted = false;  // on a direct link: counts only once acked
      std::optional<protocol::Id> delivery;
      bool direct_only = false;
      if (!r.path) {
        auto known = targets_of.find(r.contact_id);
        if (known == targets_of.end()) {
          auto t = DirectTargets(r.contact_id);
          if (!t) return t.error();
          known = targets_of.emplace(r.contact_id, std::move(*t)).first;
        }
        const auto* targets = &known->second;
        if (!targets->empty() && Clock::now() < links.deadline) {
          auto peer = PeerFor(links, *targets);
          if (!peer) return peer.error();
          if (*peer != nullptr) {
            protocol::Id id{};
            rng.Fill(id);
            auto posted = (*peer)->port->Post(id, r.ciphertext);
            if (posted) {
              (*peer)->posted[id] = r.id;
              delivery = id;
              direct_posted = true;
              ++uploaded;
              direct_only = r.attempts == 0;
            } else if (posted.error().code == Errc::kLimitExceeded && r.attempts == 0) {
              continue;  // busy: the next pass posts it
            }
          }
        }
      }
      if (direct_only) paths.clear();
      bool request_gone = false;  // the invite's request queue no longer exists
      for (const auto& p : paths) {
        if (Clock::now() >= links.deadline) break;
        RelayPort* link = Link(links, p.relay);
        if (link == nullptr) continue;
        auto blob = protocol::SealForPath(r.ciphertext, p.seal_key, rng);
        if (!blob) continue;
        auto sent = link->Send(p.sender_id, p.send_key.expose(), *blob);
        if (sent) {
          ok = true;
          ++uploaded;
        } else if (r.path && sent.error().code == Errc::kNotFound) {
          request_gone = true;
        }
      }
      if (request_gone) {
        // Our contact request's queue is gone: the invite was used by someone
        // else, revoked or expired. Tell the user (contact "failed") instead
        // of retrying for weeks.
        auto txn = db.Begin();
        if (!txn) return txn.error();
        auto fail = db.Prepare("UPDATE contacts SET state = ?1 WHERE id = ?2 AND state = ?3");
        if (!fail) return fail.error();
        fail->Bind(1, static_cast<std::int64_t>(ContactState::kFailed))
            .Bind(2, r.contact_id)
            .Bind(3, static_cast<std::int64_t>(ContactState::kRequestSent));
        RHIZOME_TRY(fail->Run());
        auto del = db.Prepare("DELETE FROM outbox WHERE id = ?1");
        if (!del) return del.error();
        del->Bind(1, r.id);
        RHIZOME_TRY(del->Run());
        RHIZOME_TRY(txn->Commit());
        continue;
      }
      if (!ok && !direct_posted) continue;  // stays due: the next pass tries again
      auto txn = db.Begin();
      if (!txn) return txn.error();
      if (!ok) {
        // Only a direct link has it, not yet acked: kept whatever its kind
        // until DirectAcked (matching this delivery id); due again with
        // backoff, or at once if the link closes first (RequeuePosted).
        const std::uint64_t delay =
            std::min(kMaxRetrySeconds, kFirstRetrySeconds << std::min<std::uint64_t>(r.attempts, 10));
        auto up = db.Prepare(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1, direct_pending = 1, "
            "direct_delivery = ?3 WHERE id = ?2");
        if (!up) return up.error();
        up->Bind(1, I64(now() + delay)).Bind(2, r.id).Bind(3, *delivery);
        RHIZOME_TRY(up->Run());
      } else if (r.keep != Keep::kUntilUploaded) {
        const std::uint64_t delay =
            std::min(kMaxRetrySeconds, kFirstRetrySeconds << std::min<std::uint64_t>(r.attempts, 10));
        auto up = db.Prepare(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1 WHERE id = ?2");
        if (!up) return up.error();
        up->Bind(1, I64(now() + delay)).Bind(2, r.id);
        RHIZOME_TRY(up->Run());
        RHIZOME_TRY(MarkSent(r.message_row));
      } else {
        auto del = db.Prepare("DELETE FROM outbox WHERE id = ?1");
        if (!del) return del.error();
        del->Bind(1, r.id);
        RHIZOME_TRY(del->Run());
      }
      RHIZOME_TRY(txn->Commit());
    }
    return uploaded;
  }

  // --- receiving --------------------------------------------------------------

  enum class Outcome { kProcessed, kDuplicate, kHeld, kDropped, kLater };

  Result<bool> Seen(std::int64_t contact_id, const protocol::Hash& hash,
                    std::optional<protocol::Id>* message_id, std::uint64_t* receipt_at) {
    auto st = db.Prepare(
        "SELECT message_id, receipt_at FROM seen WHERE contact_id = ?1 AND hash = ?2");
    if (!st) return st.error();
    st->Bind(1, contact_id).Bind(2, hash);
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) return false;
    if (!st->ColumnIsNull(0)) {
      protocol::Id id{};
      if (CopyColumn(st->ColumnBlob(0), id)) *message_id = id;
    }
    *receipt_at = U64(st->ColumnInt64(1));
    return true;
  }

  Status MarkSeen(std::int64_t contact_id, const protocol::Hash& hash,
                  const std::optional<protocol::Id>& message_id, std::uint64_t receipt_at = 0) {
    auto st = db.Prepare(
        "INSERT OR IGNORE INTO seen (contact_id, hash, message_id, seen_at, receipt_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st) return st.error();
    st->Bind(1, contact_id).Bind(2, hash).Bind(4, I64(now())).Bind(5, I64(receipt_at));
    if (message_id) {
      st->Bind(3, *message_id);
    } else {
      st->BindNull(3);
    }
    return st->Run();
  }

  Status Hold(std::int64_t contact_id, ByteSpan payload) {
    const protocol::Hash hash = crypto::Blake2b256(payload);
    auto count = db.Prepare("SELECT count(*) FROM held WHERE contact_id = ?1");
    if (!count) return count.error();
    count->Bind(1, contact_id);
    auto row = count->Step();
    if (!row) return row.error();
    if (U64(count->ColumnInt64(0)) >= kMaxHeldPerContact) {
      auto del = db.Prepare(
          "DELETE FROM held WHERE id = (SELECT min(id) FROM held WHERE contact_id = ?1)");
      if (!del) return del.error();
      del->Bind(1, contact_id);
      RHIZOME_TRY(del->Run());
    }
    auto ins = db.Prepare(
        "INSERT OR IGNORE INTO held (contact_id, hash, payload, received_at) "
        "VALUES (?1, ?2, ?3, ?4)");
    if (!ins) return ins.error();
    ins->Bind(1, contact_id).Bind(2, hash).Bind(3, payload).Bind(4, I64(now()));
    return ins->Run();
  }

  // Alias for a contact whose card just arrived, unless the user chose one.
  Result<std::string> FreeAlias(std::string_view wanted, std::int64_t self_id) {
    std::string base(wanted.empty() ? "contact" : wanted);
    for (int n = 1; n < 1000; ++n) {
      std::string candidate = n == 1 ? base : base + " " + std::to_string(n);
      auto st = db.Prepare("SELECT id FROM contacts WHERE alias = ?1");
      if (!st) return st.error();
      st->Bind(1, std::string_view(candidate));
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row || st->ColumnInt64(0) == self_id) return candidate;
    }
    // Never fails on a peer's choice of name: a random suffix.
    ByteArray<4> suffix{};
    rng.Fill(suffix);
    return base + " " + ToHex(suffix);
  }

  // A card that came inside a confirmed session (an update: new direct address
  // or queues). SECURITY: the identity key may never change this way: a card
  // with another identity key is refused and the contact flagged (loudly, in
  // `contacts` and `verify`); the contact keeps its key and card. A card older
  // than the one in force (a copy that took a slower path) is ignored.
  Status ApplyCardUpdate(ContactRow& c, std::uint64_t seq, ByteSpan body) {
    auto card = protocol::ParseContactCard(body);  // includes the device certificate check
    if (!card) return {};  // nothing to apply; the envelope is consumed
    // v1 has no Noise key rotation: a card with another Noise key is refused
    // the same way (it would let a contact take over another's direct link).
    auto current = db.Prepare("SELECT peer_card FROM contacts WHERE id = ?1");
    if (!current) return current.error();
    current->Bind(1, c.id);
    auto cur_row = current->Step();
    if (!cur_row) return cur_row.error();
    bool noise_changed = true;
    if (*cur_row && !current->ColumnIsNull(0)) {
      auto old_card = protocol::ParseContactCard(current->ColumnBlob(0));
      noise_changed = !old_card || old_card->noise_key != card->noise_key;
    }
    if (!c.identity_key || card->identity_key != *c.identity_key || noise_changed) {
      auto flag = db.Prepare("UPDATE contacts SET key_refused_at = ?1 WHERE id = ?2");
      if (!flag) return flag.error();
      flag->Bind(1, I64(std::max<std::uint64_t>(now(), 1))).Bind(2, c.id);
      return flag->Run();
    }
    auto cur = db.Prepare("SELECT peer_card_seq FROM contacts WHERE id = ?1");
    if (!cur) return cur.error();
    cur->Bind(1, c.id);
    auto row = cur->Step();
    if (!row) return row.error();
    if (!*row || U64(cur->ColumnInt64(0)) >= seq) return {};
    auto bytes = protocol::SerializeContactCard(*card);
    if (!bytes) return bytes.error();
    auto st = db.Prepare("UPDATE contacts SET peer_card = ?1, peer_card_seq = ?2 WHERE id = ?3");
    if (!st) return st.error();
    st->Bind(1, *bytes).Bind(2, I64(seq)).Bind(3, c.id);
    RHIZOME_TRY(st->Run());
    if (!card->queues.empty()) RHIZOME_TRY(SetOutbound(c.id, card->queues));
    return {};
  }

  // Our current card to every confirmed contact (of those made with --direct
  // invites when `direct_only`), queued in the contacts' sessions.
  Status QueueCardUpdates(bool direct_only) {
    std::string sql = "SELECT id FROM contacts WHERE state = ?1";
    if (direct_only) sql += " AND direct = 1";
    auto st = db.Prepare(sql);
    if (!st) return st.error();
    st->Bind(1, static_cast<std::int64_t>(ContactState::kConfirmed));
    std::vector<std::int64_t> ids;
    for (;;) {
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row) break;
      ids.push_back(st->ColumnInt64(0));
    }
    for (const auto id : ids) {
      auto c = ContactById(id);
      if (!c) return c.error();
      auto dr = crypto::DoubleRatchet::Parse(c->session.expose());
      if (!dr) return kDamaged;
      auto card = OwnCard(*c);
      if (!card) return card.error();
      auto bytes = protocol::SerializeContactCard(*card);
      if (!bytes) return bytes.error();
      auto txn = db.Begin();
      if (!txn) return txn.error();
      RHIZOME_TRY(QueueEnvelope(*c, *dr, protocol::EnvelopeType::kContactCard, *bytes));
      RHIZOME_TRY(SaveSession(c->id, ContactState::kConfirmed, dr->Serialize().expose()));
      RHIZOME_TRY(txn->Commit());
    }
    return {};
  }

  Status RecordPeerCard(ContactRow& c, const protocol::ContactCard& card) {
    auto bytes = protocol::SerializeContactCard(card);
    if (!bytes) return bytes.error();
    std::string alias = c.alias;
    if (!c.alias_set) {
      auto free = FreeAlias(card.display_name, c.id);
      if (!free) return free.error();
      alias = *free;
    }
    auto st = db.Prepare(
        "UPDATE contacts SET peer_card = ?1, identity_key = ?2, alias = ?3 WHERE id = ?4");
    if (!st) return st.error();
    st->Bind(1, *bytes).Bind(2, card.identity_key).Bind(3, std::string_view(alias)).Bind(4, c.id);
    RHIZOME_TRY(st->Run());
    c.alias = alias;
    c.identity_key = card.identity_key;
    return SetOutbound(c.id, card.queues);
  }

  // A first-contact message for a pending contact.
  Result<Outcome> HandlePending(ContactRow& c, ByteSpan payload, const protocol::Hash& hash,
                                SyncReport& report) {
    auto pc = protocol::PendingContact::Parse(c.session.expose());
    if (!pc) return kDamaged;
    auto card = OwnCard(c);
    if (!card) return card.error();
    const protocol::ContactSelf self{*card, identity.noise};
    auto step = pc->HandleMessage(payload, self, now(), rng);
    if (!step) {
      if (pc->state() == ContactState::kFailed) {
        // The peer proved it is not who its card says: terminal (first_contact.h).
        RHIZOME_TRY(SaveSession(c.id, ContactState::kFailed, pc->Serialize().expose()));
        return Outcome::kDropped;
      }
      return Outcome::kHeld;
    }
    auto txn = db.Begin();
    if (!txn) return txn.error();
    const bool card_now = pc->peer_card().has_value() && !c.identity_key.has_value() &&
                          (pc->state() == ContactState::kConfirming ||
                           pc->state() == ContactState::kConfirmed);
    if (card_now) RHIZOME_TRY(RecordPeerCard(c, *pc->peer_card()));
    if (card_now && c.role == ContactRole::kAcceptor) RHIZOME_TRY(RetireReplyQueues(c.id));
    RHIZOME_TRY(StepDone(c.id));
    if (!step->reply.empty()) {
      RHIZOME_TRY(InsertOutbox(c.id, std::nullopt, step->reply, nullptr, Keep::kUntilNextStep));
    }
    if (pc->state() == ContactState::kConfirmed) {
      auto dr = pc->TakeSession();
      if (!dr) return dr.error();
      RHIZOME_TRY(SaveSession(c.id, ContactState::kConfirmed, dr->Serialize().expose()));
      ++report.contacts_confirmed;
    } else {
      RHIZOME_TRY(SaveSession(c.id, pc->state(), pc->Serialize().expose()));
    }
    RHIZOME_TRY(MarkSeen(c.id, hash, std::nullopt));
    RHIZOME_TRY(txn->Commit());
    return Outcome::kProcessed;
  }

  // A message of a confirmed session.
  Result<Outcome> HandleSession(ContactRow& c, ByteSpan payload, const protocol::Hash& hash,
                                SyncReport& report) {
    auto dr = crypto::DoubleRatchet::Parse(c.session.expose());
    if (!dr) return kDamaged;
    auto padded = dr->Decrypt(payload, now());
    if (!padded) return Outcome::kDropped;
    crypto::WipeOnExit wipe_padded(*padded);
    auto content = protocol::Unpad(*padded);
    if (!content) return Outcome::kDropped;
    crypto::WipeOnExit wipe_content(*content);
    auto env = protocol::ParseEnvelope(*content);
    if (!env) return Outcome::kDropped;
    crypto::WipeOnExit wipe_body(env->body);  // plaintext; the database has its copy

    auto txn = db.Begin();
    if (!txn) return txn.error();
    std::optional<protocol::Id> seen_id;
    if (env->type == protocol::EnvelopeType::kReceipt) {
      if (env->body.size() % protocol::kIdBytes != 0) return Outcome::kDropped;
      for (std::size_t off = 0; off < env->body.size(); off += protocol::kIdBytes) {
        ByteSpan id = ByteSpan(env->body).subspan(off, protocol::kIdBytes);
        auto up = db.Prepare(
            "UPDATE messages SET state = ?1 WHERE contact_id = ?2 AND outgoing = 1 AND "
            "message_id = ?3");
        if (!up) return up.error();
        up->Bind(1, static_cast<std::int64_t>(MessageState::kDelivered)).Bind(2, c.id).Bind(3, id);
        RHIZOME_TRY(up->Run());
        auto del = db.Prepare(
            "DELETE FROM outbox WHERE message_row IN (SELECT id FROM messages WHERE "
            "contact_id = ?1 AND outgoing = 1 AND message_id = ?2)");
        if (!del) return del.error();
        del->Bind(1, c.id).Bind(2, id);
        RHIZOME_TRY(del->Run());
        ++report.receipts;
      }
    } else if (env->type == protocol::EnvelopeType::kContactCard) {
      RHIZOME_TRY(ApplyCardUpdate(c, env->seq, env->body));
    } else {
      seen_id = env->message_id;
      auto ins = db.Prepare(
          "INSERT OR IGNORE INTO messages (contact_id, outgoing, message_id, seq, type, body, "
          "sent_at_ms, stored_at, state, expires_at) VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
      if (!ins) return ins.error();
      ins->Bind(1, c.id)
          .Bind(2, env->message_id)
          .Bind(3, I64(env->seq))
          .Bind(4, static_cast<std::int64_t>(env->type))
          .Bind(5, env->body)
          .Bind(6, I64(env->sent_at_ms))
          .Bind(7, I64(now()))
          .Bind(8, static_cast<std::int64_t>(MessageState::kReceived));
      if (c.expire_seconds != 0) {
        ins->Bind(9, I64(now() + c.expire_seconds));
      } else {
        ins->BindNull(9);
      }
      RHIZOME_TRY(ins->Run());
      if (db.Changes() > 0) ++report.received;
      RHIZOME_TRY(QueueEnvelope(c, *dr, protocol::EnvelopeType::kReceipt, env->message_id));
    }
    RHIZOME_TRY(SaveSession(c.id, ContactState::kConfirmed, dr->Serialize().expose()));
    RHIZOME_TRY(StepDone(c.id));  // the session carries traffic: first contact is over
    RHIZOME_TRY(MarkSeen(c.id, hash, seen_id, seen_id ? now() : 0));
    RHIZOME_TRY(txn->Commit());
    return Outcome::kProcessed;
  }

  // One unsealed payload for a contact queue.
  Result<Outcome> HandleContactPayload(std::int64_t contact_id, ByteSpan payload,
                                       SyncReport& report) {
    const protocol::Hash hash = crypto::Blake2b256(payload);
    std::optional<protocol::Id> seen_id;
    std::uint64_t receipt_at = 0;
    auto seen = Seen(contact_id, hash, &seen_id, &receipt_at);
    if (!seen) return seen.error();
    auto c = ContactById(contact_id);
    if (!c) return c.error();
    if (*seen) {
      // Our receipt may have been lost: send another (the sender retries until
      // one arrives), but at most once per kReceiptResendSeconds per message, so
      // copies (several relays, a relay replaying) do not multiply receipts.
      if (seen_id && c->state == ContactState::kConfirmed &&
          now() >= receipt_at + kReceiptResendSeconds) {
        auto dr = crypto::DoubleRatchet::Parse(c->session.expose());
        if (!dr) return kDamaged;
        auto txn = db.Begin();
        if (!txn) return txn.error();
        RHIZOME_TRY(QueueEnvelope(*c, *dr, protocol::EnvelopeType::kReceipt, *seen_id));
        RHIZOME_TRY(SaveSession(c->id, ContactState::kConfirmed, dr->Serialize().expose()));
        auto up = db.Prepare("UPDATE seen SET receipt_at = ?1 WHERE contact_id = ?2 AND hash = ?3");
        if (!up) return up.error();
        up->Bind(1, I64(now())).Bind(2, c->id).Bind(3, hash);
        RHIZOME_TRY(up->Run());
        RHIZOME_TRY(txn->Commit());
      }
      return Outcome::kDuplicate;
    }
    switch (c->state) {
      case ContactState::kFailed:
        return Outcome::kDropped;
      case ContactState::kConfirmed:
        return HandleSession(*c, payload, hash, report);
      default:
        return HandlePending(*c, payload, hash, report);
    }
  }

  // Tries the contact's held payloads again until none makes progress.
  Status RetryHeld(std::int64_t contact_id, SyncReport& report) {
    for (std::size_t round = 0; round < kMaxHeldPerContact; ++round) {
      auto st = db.Prepare("SELECT id, payload FROM held WHERE contact_id = ?1 ORDER BY id");
      if (!st) return st.error();
      st->Bind(1, contact_id);
      std::vector<std::pair<std::int64_t, Bytes>> held;
      for (;;) {
        auto row = st->Step();
        if (!row) return row.error();
        if (!*row) break;
        auto p = st->ColumnBlob(1);
        held.emplace_back(st->ColumnInt64(0), Bytes(p.begin(), p.end()));
      }
      bool progress = false;
      for (auto& [id, payload] : held) {
        auto outcome = HandleContactPayload(contact_id, payload, report);
        if (!outcome) return outcome.error();
        if (*outcome == Outcome::kHeld) continue;
        auto del = db.Prepare("DELETE FROM held WHERE id = ?1");
        if (!del) return del.error();
        del->Bind(1, id);
        RHIZOME_TRY(del->Run());
        if (*outcome == Outcome::kProcessed) progress = true;
      }
      if (!progress) break;
    }
    return {};
  }

  struct InviteRow {
    std::int64_t id = 0;
    protocol::InviterInvite invite;
    std::uint32_t uses_left = 0;
    bool direct = false;
  };

  Result<InviteRow> LoadInvite(std::int64_t id) {
    auto st = db.Prepare(
        "SELECT key_secret, invite_secret, fingerprint, expires_at, multi_use, uses_left, "
        "direct FROM invites WHERE id = ?1");
    if (!st) return st.error();
    st->Bind(1, id);
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) return Error{Errc::kNotFound, "no such invite"};
    InviteRow r;
    r.id = id;
    auto kp = crypto::X25519FromSecret(st->ColumnBlob(0));
    if (!kp || st->ColumnBlob(1).size() != protocol::kInviteSecretBytes ||
        !CopyColumn(st->ColumnBlob(2), r.invite.fingerprint)) {
      return kDamaged;
    }
    r.invite.key_pair = std::move(*kp);
    r.invite.invite_secret = crypto::SecretBytes::CopyFrom(st->ColumnBlob(1));
    r.invite.expires_at = U64(st->ColumnInt64(3));
    r.invite.multi_use = st->ColumnInt64(4) != 0;
    r.uses_left = static_cast<std::uint32_t>(std::clamp<std::int64_t>(st->ColumnInt64(5), 0,
                                                                     kMaxInviteUses));
    r.direct = st->ColumnInt64(6) != 0;
    auto req = db.Prepare("SELECT request_id FROM invite_requests WHERE invite_id = ?1");
    if (!req) return req.error();
    req->Bind(1, id);
    for (;;) {
      auto next = req->Step();
      if (!next) return next.error();
      if (!*next) break;
      protocol::ContactRequestId rid{};
      if (!CopyColumn(req->ColumnBlob(0), rid)) return kDamaged;
      r.invite.opened_requests.push_back(rid);
    }
    return r;
  }

  // Forgets queues on the relay side too: rows go to retired_queues (in the
  // caller's transaction) and DrainRetired deletes them on their relays (DEL),
  // retrying every pass until the relay confirms.
  Status RetireInviteQueues(std::int64_t invite_id) {
    auto st = db.Prepare(
        "INSERT INTO retired_queues (relay_address, recipient_id, recipient_seed, retired_at) "
        "SELECT relay_address, recipient_id, recipient_seed, ?2 FROM inbound_queues "
        "WHERE invite_id = ?1");
    if (!st) return st.error();
    st->Bind(1, invite_id).Bind(2, I64(now()));
    RHIZOME_TRY(st->Run());
    auto del = db.Prepare("DELETE FROM invites WHERE id = ?1");  // cascades to its queue rows
    if (!del) return del.error();
    del->Bind(1, invite_id);
    return del->Run();
  }

  // The acceptor's reply queue did its job once the inviter's card arrived.
  Status RetireReplyQueues(std::int64_t contact_id) {
    auto st = db.Prepare(
        "INSERT INTO retired_queues (relay_address, recipient_id, recipient_seed, retired_at) "
        "SELECT relay_address, recipient_id, recipient_seed, ?2 FROM inbound_queues "
        "WHERE contact_id = ?1 AND reply_only = 1");
    if (!st) return st.error();
    st->Bind(1, contact_id).Bind(2, I64(now()));
    RHIZOME_TRY(st->Run());
    auto del = db.Prepare("DELETE FROM inbound_queues WHERE contact_id = ?1 AND reply_only = 1");
    if (!del) return del.error();
    del->Bind(1, contact_id);
    return del->Run();
  }

  Status RetireQueues(const std::vector<Inbound>& queues) {
    auto st = db.Prepare(
        "INSERT INTO retired_queues (relay_address, recipient_id, recipient_seed, retired_at) "
        "VALUES (?1, ?2, ?3, ?4)");
    if (!st) return st.error();
    for (const auto& q : queues) {
      st->Bind(1, std::string_view(q.relay))
          .Bind(2, q.recipient_id)
          .Bind(3, q.recipient.secret_key.expose().first(crypto::kEd25519SeedBytes))
          .Bind(4, I64(now()));
      RHIZOME_TRY(st->Run());
    }
    return {};
  }

  Status DrainRetired(Links& links) {
    auto st = db.Prepare("SELECT id, relay_address, recipient_id, recipient_seed FROM "
                         "retired_queues ORDER BY id");
    if (!st) return st.error();
    std::vector<std::int64_t> done;
    for (;;) {
      auto row = st->Step();
      if (!row) return row.error();
      if (!*row) break;
      protocol::Id rid{};
      auto key = crypto::Ed25519FromSeed(st->ColumnBlob(3));
      if (!CopyColumn(st->ColumnBlob(2), rid) || !key) {
        done.push_back(st->ColumnInt64(0));  // unusable: nothing more can be done
        continue;
      }
      RelayPort* link = Link(links, std::string(st->ColumnText(1)));
      if (link == nullptr) continue;
      auto del = link->DeleteQueue(rid, key->secret_key);
      if (del || del.error().code == Errc::kNotFound) done.push_back(st->ColumnInt64(0));
    }
    for (auto id : done) {
      auto del = db.Prepare("DELETE FROM retired_queues WHERE id = ?1");
      if (!del) return del.error();
      del->Bind(1, id);
      RHIZOME_TRY(del->Run());
    }
    return {};
  }

  // A contact request on an invite's request queue.
  Result<Outcome> HandleRequest(Links& links, const Inbound& queue, ByteSpan payload,
                                bool* invite_gone) {
    auto inv = LoadInvite(queue.invite_id);
    if (!inv) return inv.error();
    if (inv->uses_left == 0 || inv->invite.consumed() || now() >= inv->invite.expires_at) {
      return Outcome::kDropped;
    }
    // SECURITY: authenticate first. OpenContactRequest is pure (the invite is
    // not changed), so a dry run with a card naming no queues decides whether
    // the request is genuine and new; only then are queues made on a relay.
    // Junk and replays cost the sender a blob, never us a queue.
    {
      auto bare = CardWith({}, false);
      if (!bare) return bare.error();
      const protocol::ContactSelf probe{*bare, identity.noise};
      auto dry = protocol::OpenContactRequest(inv->invite, payload, probe, now(), rng);
      if (!dry) return Outcome::kDropped;
      // SECURITY (privacy): before the contact is confirmed we connect only to
      // our own relays. A reply queue elsewhere would let anyone holding the
      // invite learn our IP address from a relay of their choosing.
      auto reply_relay = protocol::FormatRelayAddress(dry->reply_queue.relay);
      auto mine = RelayAddresses();
      if (!mine) return mine.error();
      if (!reply_relay || (*reply_relay != queue.relay &&
                           std::find(mine->begin(), mine->end(), *reply_relay) == mine->end())) {
        return Outcome::kDropped;
      }
    }
    // Our queues for the new contact: the card in the reply names them.
    auto queues = NewContactQueues(links);
    if (!queues) return Outcome::kLater;  // no relay reachable now: leave the request queued
    // Until the transaction below commits, the new queues are retired on any
    // way out (a relay DEL now, best effort; what fails is left to expire).
    bool committed = false;
    struct Cleanup {
      Impl& im;
      Links& links;
      std::vector<Inbound>& queues;
      bool& committed;
      ~Cleanup() {
        if (committed) return;
        for (const auto& q : queues) {
          if (RelayPort* l = im.Link(links, q.relay)) (void)l->DeleteQueue(q.recipient_id, q.recipient.secret_key);
        }
      }
    } cleanup{*this, links, *queues, committed};

    auto card = CardWith(*queues, inv->direct);
    if (!card) return card.error();
    const protocol::ContactSelf self{*card, identity.noise};
    auto opened = protocol::OpenContactRequest(inv->invite, payload, self, now(), rng);
    if (!opened) return Outcome::kDropped;

    auto txn = db.Begin();
    if (!txn) return txn.error();
    Bytes tmp_label(8);
    rng.Fill(tmp_label);
    const std::string alias = "new contact " + ToHex(tmp_label).substr(0, 8);
    auto ins = db.Prepare(
        "INSERT INTO contacts (alias, alias_set, role, state, session, created_at, direct) "
        "VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6)");
    if (!ins) return ins.error();
    ins->Bind(1, std::string_view(alias))
        .Bind(2, static_cast<std::int64_t>(ContactRole::kInviter))
        .Bind(3, static_cast<std::int64_t>(opened->contact.state()))
        .Bind(4, opened->contact.Serialize().expose())
        .Bind(5, I64(now()))
        .Bind(6, inv->direct ? 1 : 0);
    RHIZOME_TRY(ins->Run());
    const std::int64_t contact_id = db.LastInsertRowId();
    for (auto& q : *queues) {
      q.contact_id = contact_id;
      RHIZOME_TRY(InsertInbound(q));
    }
    std::vector<protocol::MessageQueue> reply;
    reply.push_back(opened->reply_queue.Clone());
    RHIZOME_TRY(SetOutbound(contact_id, reply));
    RHIZOME_TRY(InsertOutbox(contact_id, std::nullopt, opened->reply, nullptr, Keep::kUntilNextStep));
    // Bookkeeping (first_contact.h InviterInvite).
    RHIZOME_TRY(protocol::RecordOpenedRequest(inv->invite, opened->request_id));
    const std::uint32_t left = inv->uses_left - 1;
    if (inv->invite.consumed() || left == 0) {
      RHIZOME_TRY(RetireInviteQueues(inv->id));
      *invite_gone = true;
    } else {
      auto up = db.Prepare("UPDATE invites SET uses_left = ?1 WHERE id = ?2");
      if (!up) return up.error();
      up->Bind(1, static_cast<std::int64_t>(left)).Bind(2, inv->id);
      RHIZOME_TRY(up->Run());
      auto rq = db.Prepare("INSERT INTO invite_requests (invite_id, request_id) VALUES (?1, ?2)");
      if (!rq) return rq.error();
      rq->Bind(1, inv->id).Bind(2, opened->request_id);
      RHIZOME_TRY(rq->Run());
    }
    RHIZOME_TRY(txn->Commit());
    committed = true;
    return Outcome::kProcessed;
  }

  // Fetches and processes every message waiting on every inbound queue.
  // Each queue is subscribed once per connection (one Ed25519 signature per
  // subscription, none per message: DESIGN §9); the relay then pushes stored
  // and new messages, a window at a time, and each is ACKed after its commit.
  // SECURITY: nothing one message or one contact does can stop the pass: a
  // message that cannot be processed now stays un-ACKed on its relay (its
  // queue is subscribed afresh next pass, which restarts delivery from the
  // oldest) and the pass goes on with the other queues and the uploads. Only a
  // failing database (kIo) stops the pass.
  Status Receive(Links& links, SyncReport& report, bool* progress,
                 std::chrono::milliseconds push_wait) {
    auto queues = InboundQueues({}, 0);
    if (!queues) return queues.error();
    std::map<std::string, std::vector<const Inbound*>> by_relay;
    for (const auto& q : *queues) by_relay[q.relay].push_back(&q);
    for (const auto& [relay, relay_queues] : by_relay) {
      if (Clock::now() >= links.deadline) break;
      RelayPort* link = Link(links, relay);
      if (link == nullptr) continue;
      auto& subs = subscribed[relay];
      std::map<protocol::Id, const Inbound*> by_id;
      for (const Inbound* q : relay_queues) {
        if (subs.count(q->recipient_id) == 0) {
          if (!link->Subscribe(q->recipient_id, q->recipient.secret_key)) continue;
          subs.insert(q->recipient_id);
        }
        by_id[q->recipient_id] = q;
      }
      std::set<protocol::Id> blocked;  // not ACKed this pass: re-subscribed next pass
      for (std::size_t n = 0; n < kMaxMessagesPerRelayPerPass; ++n) {
        if (Clock::now() >= links.deadline) break;
        auto msg = link->NextPushed(push_wait);
        if (!msg) break;                // the connection closed: next pass reconnects
        if (!msg->has_value()) break;   // quiet: everything stored was delivered
        const auto& m = **msg;
        auto it = by_id.find(m.recipient_id);
        if (it == by_id.end() || blocked.count(m.recipient_id) != 0) continue;
        const Inbound& q = *it->second;
        Outcome outcome = Outcome::kDropped;
        bool invite_gone = false;
        auto payload = protocol::OpenPathSeal(m.blob, q.seal);
        if (payload) {
          Result<Outcome> r = q.invite_id != 0 ? HandleRequest(links, q, *payload, &invite_gone)
                                               : HandleContactPayload(q.contact_id, *payload,
                                                                      report);
          if (!r) {
            if (r.error().code == Errc::kIo) return r.error();  // the disk: stop, keep it on the relay
            ++report.deferred;
            outcome = Outcome::kLater;
          } else {
            outcome = *r;
          }
          if (outcome == Outcome::kHeld) {
            auto txn = db.Begin();
            if (!txn) return txn.error();
            RHIZOME_TRY(Hold(q.contact_id, *payload));
            RHIZOME_TRY(txn->Commit());
          }
        }
        if (outcome == Outcome::kLater) {  // not ACKed: delivered again after a new SUB
          blocked.insert(m.recipient_id);
          subs.erase(m.recipient_id);
          continue;
        }
        if (outcome == Outcome::kDropped) ++report.dropped;
        if (outcome == Outcome::kProcessed) {
          *progress = true;
          if (q.contact_id != 0) {
            if (auto st = RetryHeld(q.contact_id, report); !st) {
              if (st.error().code == Errc::kIo) return st;
              ++report.deferred;
            }
          }
        }
        if (!link->AckQuietly(q.recipient_id, m.message_id)) break;
        if (invite_gone) by_id.erase(m.recipient_id);  // its queue is retired
      }
      // A refused quiet ACK (say, rate limited) leaves its message
      // unacknowledged on this connection, holding a slot of the queue's
      // delivery window: subscribe every queue afresh next pass, which
      // restarts delivery from the oldest (duplicates are dropped).
      const std::size_t refused = link->quiet_acks_refused();
      if (refused != quiet_refused_seen[relay]) {
        quiet_refused_seen[relay] = refused;
        subs.clear();
      }
    }
    return {};
  }

  Status DeleteExpired() {
    auto st = db.Prepare("DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1");
    if (!st) return st.error();
    st->Bind(1, I64(now()));
    RHIZOME_TRY(st->Run());
    auto held = db.Prepare("DELETE FROM held WHERE received_at <= ?1");
    if (!held) return held.error();
    held->Bind(1, I64(now() > kHeldExpirySeconds ? now() - kHeldExpirySeconds : 0));
    RHIZOME_TRY(held->Run());
    // The outbox gives up after kOutboxTtlSeconds (the relay would have expired it too).
    auto outbox = db.Prepare("DELETE FROM outbox WHERE created_at <= ?1");
    if (!outbox) return outbox.error();
    outbox->Bind(1, I64(now() > kOutboxTtlSeconds ? now() - kOutboxTtlSeconds : 0));
    RHIZOME_TRY(outbox->Run());
    // Expired invites: their key and secret go now, their request queues are retired.
    auto inv = db.Prepare("SELECT id FROM invites WHERE expires_at <= ?1");
    if (!inv) return inv.error();
    inv->Bind(1, I64(now()));
    std::vector<std::int64_t> expired;
    for (;;) {
      auto row = inv->Step();
      if (!row) return row.error();
      if (!*row) break;
      expired.push_back(inv->ColumnInt64(0));
    }
    if (expired.empty()) return {};
    auto txn = db.Begin();
    if (!txn) return txn.error();
    for (auto id : expired) RHIZOME_TRY(RetireInviteQueues(id));
    return txn->Commit();
  }
};

// --- Messenger -----------------------------------------------------------------

Messenger::Messenger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Messenger::Messenger(Messenger&&) noexcept = default;
Messenger& Messenger::operator=(Messenger&&) noexcept = default;
Messenger::~Messenger() = default;

Result<Messenger> Messenger::Open(storage::Profile& profile, crypto::RandomSource& rng,
                                  ConnectFn connect, NowFn now) {
  auto identity = storage::LoadIdentity(profile.db());
  if (!identity) return identity.error();
  if (!now) now = SystemNow;
  if (!connect) return Error{Errc::kInvalidArgument, "no way to reach relays was given"};
  return Messenger(std::make_unique<Impl>(profile, rng, std::move(now), std::move(*identity),
                                          std::move(connect)));
}

Result<RelayInfo> Messenger::AddRelay(std::string_view address) {
  auto canonical = CanonicalRelay(address);
  if (!canonical) return canonical.error();
  auto existing = impl_->RelayAddresses();
  if (!existing) return existing.error();
  if (existing->size() >= kMaxRelays) {
    return Error{Errc::kLimitExceeded, "a profile keeps at most 4 relays"};
  }
  auto st = impl_->db.Prepare("INSERT INTO relays (address, added_at) VALUES (?1, ?2)");
  if (!st) return st.error();
  st->Bind(1, std::string_view(*canonical)).Bind(2, I64(impl_->now()));
  if (auto r = st->Run(); !r) {
    if (r.error().code == Errc::kAlreadyExists) {
      return Error{Errc::kAlreadyExists, "this relay is already in the profile"};
    }
    return r.error();
  }
  return RelayInfo{*canonical, impl_->now()};
}

Status Messenger::RemoveRelay(std::string_view address_or_prefix) {
  auto st = impl_->db.Prepare("SELECT id, address FROM relays");
  if (!st) return st.error();
  std::vector<std::int64_t> matches;
  auto canonical = CanonicalRelay(address_or_prefix);
  for (;;) {
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) break;
    const std::string_view addr = st->ColumnText(1);
    const bool exact = canonical && addr == *canonical;
    const bool prefix = address_or_prefix.size() >= 20 && addr.starts_with(address_or_prefix);
    if (exact || prefix) matches.push_back(st->ColumnInt64(0));
  }
  if (matches.empty()) return Error{Errc::kNotFound, "no such relay in the profile"};
  if (matches.size() > 1) return Error{Errc::kInvalidArgument, "several relays match"};
  auto del = impl_->db.Prepare("DELETE FROM relays WHERE id = ?1");
  if (!del) return del.error();
  del->Bind(1, matches[0]);
  return del->Run();
}

Result<std::vector<RelayInfo>> Messenger::ListRelays() {
  auto st = impl_->db.Prepare("SELECT address, added_at FROM relays ORDER BY id");
  if (!st) return st.error();
  std::vector<RelayInfo> out;
  for (;;) {
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(RelayInfo{std::string(st->ColumnText(0)), U64(st->ColumnInt64(1))});
  }
  return out;
}

Result<InviteInfo> Messenger::CreateInvite(std::uint32_t uses, std::uint64_t lifetime_seconds,
                                           std::chrono::milliseconds timeout, bool direct) {
  auto& im = *impl_;
  if (uses == 0 || uses > kMaxInviteUses) {
    return Error{Errc::kInvalidArgument, "uses must be between 1 and 1024"};
  }
  if (lifetime_seconds == 0 || lifetime_seconds > kMaxInviteSeconds) {
    return Error{Errc::kInvalidArgument, "an invite lasts between 1 second and 90 days"};
  }
  auto relays = im.RelayAddresses();
  if (!relays) return relays.error();
  if (relays->empty()) {
    return Error{Errc::kInvalidArgument, "add a relay first: rhizome relay add ADDRESS"};
  }
  std::optional<protocol::DirectAddress> direct_address;
  if (direct) {
    auto own = im.OwnDirectAddress();
    if (!own) return own.error();
    if (!*own) {
      return Error{Errc::kInvalidArgument,
                   "no direct address: run `rhizome daemon --listen HOST:PORT` first"};
    }
    direct_address = std::move(*own);
  }
  auto links = Impl::MakeLinks(timeout);
  const std::string& relay_text = relays->front();
  RelayPort* link = im.Link(links, relay_text);
  if (link == nullptr) return Error{Errc::kIo, "relay unreachable"};
  auto relay = protocol::ParseRelayAddress(relay_text);
  if (!relay) return kDamaged;

  // NEW first (its sender id goes into the invite), then KEY with the send key
  // derived from the invite secret (DESIGN §6).
  Inbound q;
  q.relay = relay_text;
  q.recipient = crypto::Ed25519Generate(im.rng);
  auto made_queue = link->NewQueue(q.recipient);
  if (!made_queue) return made_queue.error();
  q.recipient_id = made_queue->recipient_id;
  q.sender_id = made_queue->sender_id;

  protocol::InviteOptions options;
  options.identity_key = im.identity.signing.public_key;
  options.expires_at = im.now() + lifetime_seconds;
  options.relay = &*relay;
  options.request_queue_id = q.sender_id;
  options.multi_use = uses > 1;
  if (direct_address) options.direct_addresses.push_back(*direct_address);
  auto made = protocol::MakeInvite(options, im.now(), im.rng);
  if (!made) return made.error();
  auto send_key = protocol::InviteSendKey(made->state.invite_secret.expose());
  if (!send_key) return send_key.error();
  if (auto st = link->SetQueueKey(q.recipient_id, q.recipient, send_key->expose()); !st) {
    return st.error();
  }
  q.send_key = std::move(*send_key);
  auto seal = crypto::X25519FromSecret(made->state.key_pair.secret_key.expose());
  if (!seal) return seal.error();
  q.seal = std::move(*seal);
  auto code = protocol::FormatInviteCode(made->invite);
  if (!code) return code.error();

  ByteArray<kInviteLabelBytes> label_bytes{};
  im.rng.Fill(label_bytes);
  InviteInfo info;
  info.id = ToHex(label_bytes);
  info.code = std::move(*code);
  info.expires_at = options.expires_at;
  info.uses_left = uses;

  auto txn = im.db.Begin();
  if (!txn) return txn.error();
  auto ins = im.db.Prepare(
      "INSERT INTO invites (label, key_secret, invite_secret, fingerprint, expires_at, multi_use, "
      "uses_left, created_at, direct) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!ins) return ins.error();
  ins->Bind(1, std::string_view(info.id))
      .Bind(2, made->state.key_pair.secret_key.expose())
      .Bind(3, made->state.invite_secret.expose())
      .Bind(4, made->state.fingerprint)
      .Bind(5, I64(info.expires_at))
      .Bind(6, options.multi_use ? 1 : 0)
      .Bind(7, static_cast<std::int64_t>(uses))
      .Bind(8, I64(im.now()))
      .Bind(9, direct ? 1 : 0);
  RHIZOME_TRY(ins->Run());
  q.invite_id = im.db.LastInsertRowId();
  RHIZOME_TRY(im.InsertInbound(q));
  RHIZOME_TRY(txn->Commit());
  return info;
}

Status Messenger::RevokeInvite(std::string_view id, std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  auto st = im.db.Prepare("SELECT id FROM invites WHERE label = ?1");
  if (!st) return st.error();
  st->Bind(1, id);
  auto row = st->Step();
  if (!row) return row.error();
  if (!*row) return Error{Errc::kNotFound, "no such invite"};
  const std::int64_t invite_id = st->ColumnInt64(0);
  {
    // The key and secret go now (secure_delete zeroes the rows); the request
    // queue is retired in the same transaction and deleted on its relay now or,
    // if the relay cannot be reached, by a later pass.
    auto txn = im.db.Begin();
    if (!txn) return txn.error();
    RHIZOME_TRY(im.RetireInviteQueues(invite_id));
    RHIZOME_TRY(txn->Commit());
  }
  auto links = Impl::MakeLinks(timeout);
  return im.DrainRetired(links);
}

Result<std::vector<InviteInfo>> Messenger::ListInvites() {
  auto st = impl_->db.Prepare("SELECT label, expires_at, uses_left FROM invites ORDER BY id");
  if (!st) return st.error();
  std::vector<InviteInfo> out;
  for (;;) {
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) break;
    InviteInfo i;
    i.id = std::string(st->ColumnText(0));
    i.expires_at = U64(st->ColumnInt64(1));
    i.uses_left = static_cast<std::uint32_t>(st->ColumnInt64(2));
    out.push_back(std::move(i));
  }
  return out;
}

Result<ContactInfo> Messenger::AcceptInvite(std::string_view code, std::string_view alias,
                                            std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  auto invite = protocol::ParseInviteCode(code);
  if (!invite) return invite.error();
  if (protocol::InviteExpired(*invite, im.now())) {
    return Error{Errc::kInvalidArgument, "invite has expired"};
  }
  if (auto own = protocol::InviteFingerprint(invite->invite_secret.expose(),
                                             im.identity.signing.public_key);
      own && *own == invite->fingerprint) {
    return Error{Errc::kInvalidArgument, "this is your own invite: give it to someone else"};
  }
  if (!alias.empty()) {
    if (alias.size() > kMaxAliasBytes || !protocol::ValidateDisplayName(alias)) {
      return Error{Errc::kInvalidArgument, "a contact name is 1 to 64 printable characters"};
    }
    if (im.ContactByAlias(alias)) {
      return Error{Errc::kAlreadyExists, "a contact with this name already exists"};
    }
  }
  auto relay_text = protocol::FormatRelayAddress(invite->relay);
  if (!relay_text) return relay_text.error();
  auto links = Impl::MakeLinks(timeout);
  // Our queues for the contact, named in our card once the inviter proved its
  // card: on our relays.
  auto queues = im.NewContactQueues(links);
  if (!queues) return queues.error();
  // The reply queue lives on the inviter's relay (the inviter connects to no
  // relay of our choosing before confirmation) and is retired once the
  // inviter's card arrives.
  auto reply = im.NewInbound(links, *relay_text);
  if (!reply) return reply.error();
  reply->reply_only = true;
  auto reply_queue = Impl::ToMessageQueue(*reply);
  if (!reply_queue) return reply_queue.error();
  auto built = protocol::BuildContactRequest(*invite, *reply_queue, im.now(), im.rng);
  if (!built) return built.error();
  queues->push_back(std::move(*reply));

  Outbound path;
  path.relay = *relay_text;
  path.sender_id = invite->request_queue_id;
  auto send_key = protocol::InviteSendKey(invite->invite_secret.expose());
  if (!send_key) return send_key.error();
  path.send_key = std::move(*send_key);
  path.seal_key = invite->invite_key;

  ContactInfo info;
  {
    auto txn = im.db.Begin();
    if (!txn) return txn.error();
    std::string name(alias);
    if (name.empty()) {
      Bytes tmp(8);
      im.rng.Fill(tmp);
      name = "invite " + ToHex(tmp).substr(0, 8);
    }
    auto ins = im.db.Prepare(
        "INSERT INTO contacts (alias, alias_set, role, state, session, created_at, direct) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!ins) return ins.error();
    ins->Bind(1, std::string_view(name))
        .Bind(2, alias.empty() ? 0 : 1)
        .Bind(3, static_cast<std::int64_t>(ContactRole::kAcceptor))
        .Bind(4, static_cast<std::int64_t>(built->contact.state()))
        .Bind(5, built->contact.Serialize().expose())
        .Bind(6, I64(im.now()))
        .Bind(7, invite->direct_addresses.empty() ? 0 : 1);  // a direct invite: direct both ways
    RHIZOME_TRY(ins->Run());
    const std::int64_t contact_id = im.db.LastInsertRowId();
    for (auto& q : *queues) {
      q.contact_id = contact_id;
      RHIZOME_TRY(im.InsertInbound(q));
    }
    RHIZOME_TRY(im.InsertOutbox(contact_id, std::nullopt, built->request, &path, Keep::kUntilNextStep));
    RHIZOME_TRY(txn->Commit());
    info.alias = name;
    info.status = StatusOf(built->contact.state());
    info.created_at = im.now();
    auto sent = im.Upload(links, contact_id);  // now if we can; else the outbox keeps it
    if (!sent) return sent.error();
  }
  return info;
}

Result<std::vector<ContactInfo>> Messenger::ListContacts() {
  auto st = impl_->db.Prepare(
      "SELECT alias, state, identity_key, verified, expire_seconds, created_at, peer_card, "
      "key_refused_at FROM contacts ORDER BY alias");
  if (!st) return st.error();
  std::vector<ContactInfo> out;
  for (;;) {
    auto row = st->Step();
    if (!row) return row.error();
    if (!*row) break;
    ContactInfo c;
    c.alias = std::string(st->ColumnText(0));
    const auto state = st->ColumnInt64(1);
    if (state < 1 || state > 5) return kDamaged;
    c.status = StatusOf(static_cast<ContactState>(state));
    if (!st->ColumnIsNull(2)) c.fingerprint = protocol::IdentityFingerprint(st->ColumnBlob(2));
    c.verified = st->ColumnInt64(3) != 0;
    c.expire_seconds = U64(st->ColumnInt64(4));
    c.created_at = U64(st->ColumnInt64(5));
    if (!st->ColumnIsNull(6)) {
      auto card = protocol::ParseContactCard(st->ColumnBlob(6));
      if (!card) return kDamaged;
      if (!card->direct_addresses.empty()) {
        c.direct_address = protocol::FormatDirectAddress(card->direct_addresses.front());
      }
    }
    c.key_refused_at = U64(st->ColumnInt64(7));
    out.push_back(std::move(c));
  }
  return out;
}

Result<SafetyInfo> Messenger::Safety(std::string_view contact, bool confirm) {
  auto& im = *impl_;
  auto c = im.ContactByAlias(contact);
  if (!c) return c.error();
  if (c->state != ContactState::kConfirmed || !c->identity_key) {
    return Error{Errc::kInvalidArgument, "contact is not confirmed yet"};
  }
  auto number = crypto::SafetyNumber(im.identity.signing.public_key, *c->identity_key);
  if (!number) return number.error();
  if (confirm) {
    auto st = im.db.Prepare("UPDATE contacts SET verified = 1 WHERE id = ?1");
    if (!st) return st.error();
    st->Bind(1, c->id);
    RHIZOME_TRY(st->Run());
  }
  return SafetyInfo{c->alias, crypto::GroupDigits(*number), confirm || c->verified,
                    c->key_refused_at};
}

Status Messenger::SetExpiry(std::string_view contact, std::uint64_t seconds) {
  auto c = impl_->ContactByAlias(contact);
  if (!c) return c.error();
  auto st = impl_->db.Prepare("UPDATE contacts SET expire_seconds = ?1 WHERE id = ?2");
  if (!st) return st.error();
  st->Bind(1, I64(seconds)).Bind(2, c->id);
  return st->Run();
}

Result<MessageInfo> Messenger::Send(std::string_view contact, std::string_view text) {
  auto& im = *impl_;
  if (text.empty()) return Error{Errc::kInvalidArgument, "empty message"};
  if (text.size() > kMaxTextBytes) {
    return Error{Errc::kLimitExceeded, "message is too long (at most 16000 bytes)"};
  }
  auto c = im.ContactByAlias(contact);
  if (!c) return c.error();
  if (c->state != ContactState::kConfirmed) {
    return Error{Errc::kInvalidArgument, "contact is not confirmed yet"};
  }
  auto dr = crypto::DoubleRatchet::Parse(c->session.expose());
  if (!dr) return kDamaged;
  MessageInfo info;
  info.contact = c->alias;
  info.outgoing = true;
  info.seq = c->next_seq;
  info.text = std::string(text);
  info.sent_at_ms = im.now() * 1000;
  info.stored_at = im.now();
  info.state = MessageState::kQueued;
  auto txn = im.db.Begin();
  if (!txn) return txn.error();
  auto row = im.QueueEnvelope(*c, *dr, protocol::EnvelopeType::kText, AsBytes(text));
  if (!row) return row.error();
  RHIZOME_TRY(im.SaveSession(c->id, ContactState::kConfirmed, dr->Serialize().expose()));
  RHIZOME_TRY(txn->Commit());
  return info;
}

namespace {

constexpr const char* kMessageColumns =
    "SELECT m.id, c.alias, m.outgoing, m.seq, m.type, m.body, m.sent_at_ms, m.stored_at, m.state "
    "FROM messages m JOIN contacts c ON c.id = m.contact_id";

Result<std::vector<MessageInfo>> CollectMessages(storage::Statement& st, std::size_t limit) {
  std::vector<MessageInfo> out;
  while (out.size() < limit) {
    auto row = st.Step();
    if (!row) return row.error();
    if (!*row) break;
    MessageInfo m;
    m.row = st.ColumnInt64(0);
    m.contact = std::string(st.ColumnText(1));
    m.outgoing = st.ColumnInt64(2) != 0;
    m.seq = U64(st.ColumnInt64(3));
    const auto type = st.ColumnInt64(4);
    if (type == static_cast<std::int64_t>(protocol::EnvelopeType::kText)) {
      auto body = st.ColumnBlob(5);
      m.text.assign(body.begin(), body.end());
    } else {
      m.text = "(a message this version cannot display)";
    }
    m.sent_at_ms = U64(st.ColumnInt64(6));
    m.stored_at = U64(st.ColumnInt64(7));
    const auto state = st.ColumnInt64(8);
    if (state < 1 || state > 4) return kDamaged;
    m.state = static_cast<MessageState>(state);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

Result<std::vector<MessageInfo>> Messenger::Read(std::optional<std::string_view> contact) {
  auto& im = *impl_;
  RHIZOME_TRY(im.DeleteExpired());
  std::string sql = kMessageColumns;
  if (contact) sql += " WHERE c.alias = ?1";
  sql += " ORDER BY c.alias, m.id";
  auto st = im.db.Prepare(sql);
  if (!st) return st.error();
  if (contact) {
    if (!im.ContactByAlias(*contact)) return Error{Errc::kNotFound, "no such contact"};
    st->Bind(1, *contact);
  }
  auto msgs = CollectMessages(*st, SIZE_MAX);
  if (!msgs) return msgs;
  // Incoming messages in the sender's order. With several relays (or a
  // retry) they can arrive out of order; the ratchet reads them anyway. The
  // slots incoming messages take in the conversation stay where they are and
  // are filled in sequence-number order.
  auto& v = *msgs;
  for (std::size_t begin = 0; begin < v.size();) {
    std::size_t end = begin;
    while (end < v.size() && v[end].contact == v[begin].contact) ++end;
    std::vector<std::size_t> slots;
    std::vector<MessageInfo> incoming;
    for (std::size_t i = begin; i < end; ++i) {
      if (!v[i].outgoing) {
        slots.push_back(i);
        incoming.push_back(std::move(v[i]));
      }
    }
    std::stable_sort(incoming.begin(), incoming.end(),
                     [](const MessageInfo& a, const MessageInfo& b) { return a.seq < b.seq; });
    for (std::size_t k = 0; k < slots.size(); ++k) v[slots[k]] = std::move(incoming[k]);
    begin = end;
  }
  return msgs;
}

Result<std::vector<MessageInfo>> Messenger::IncomingAfter(std::int64_t row, std::size_t limit) {
  std::string sql = kMessageColumns;
  sql += " WHERE m.outgoing = 0 AND m.id > ?1 ORDER BY m.id";
  auto st = impl_->db.Prepare(sql);
  if (!st) return st.error();
  st->Bind(1, row);
  return CollectMessages(*st, limit);
}

Result<std::int64_t> Messenger::LastMessageRow() {
  auto st = impl_->db.Prepare("SELECT coalesce(max(id), 0) FROM messages");
  if (!st) return st.error();
  auto row = st->Step();
  if (!row) return row.error();
  return st->ColumnInt64(0);
}

Result<SyncReport> Messenger::Sync(std::chrono::milliseconds timeout, int max_rounds,
                                   std::chrono::milliseconds push_wait, bool background) {
  auto& im = *impl_;
  SyncReport report;
  RHIZOME_TRY(im.DeleteExpired());
  auto links = Impl::MakeLinks(timeout);
  links.honor_backoff = background;
  if (!im.direct_requeued) {
    // What an earlier process posted on a direct link without getting its ack
    // may never have arrived: due again now.
    auto st = im.db.Prepare("UPDATE outbox SET next_attempt_at = ?1 WHERE direct_pending = 1");
    if (!st) return st.error();
    st->Bind(1, I64(im.now()));
    RHIZOME_TRY(st->Run());
    im.direct_requeued = true;
  }
  RHIZOME_TRY(im.CollectAcks(std::chrono::milliseconds(0)));
  RHIZOME_TRY(im.DrainRetired(links));
  // Bounded: each round either makes progress or stops.
  for (int round = 0; round < max_rounds; ++round) {
    bool progress = false;
    RHIZOME_TRY(im.Receive(links, report, &progress, push_wait));
    auto up = im.Upload(links, std::nullopt);
    if (!up) return up.error();
    report.uploaded += *up;
    if (!progress && *up == 0) break;
    if (Clock::now() >= links.deadline) break;
  }
  RHIZOME_TRY(im.DrainRetired(links));  // what this pass retired (used-up invites)
  // A one-off pass waits a little for the acks of what it posted directly (so
  // `sync` can say "sent"); the daemon collects them on its next pass.
  std::chrono::milliseconds ack_wait{0};
  if (!background && im.AnyPosted()) {
    ack_wait = std::max(std::chrono::milliseconds(0),
                        std::min(kDirectAckWait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     links.deadline - Clock::now())));
  }
  RHIZOME_TRY(im.CollectAcks(ack_wait));
  RHIZOME_TRY(im.FollowRotations());
  report.relays_unreachable = links.unreachable;
  return report;
}

void Messenger::SetPeerConnector(PeerConnectFn connect) { impl_->peer_connect = std::move(connect); }

Status Messenger::SetDirectAddress(const std::optional<protocol::DirectAddress>& address) {
  auto& im = *impl_;
  if (address) RHIZOME_TRY(protocol::ValidateDirectAddress(*address));
  auto old = im.OwnDirectAddress();
  if (!old) return old.error();
  if (*old == address) return {};
  if (!address) {
    auto del = im.db.Prepare("DELETE FROM settings WHERE key = ?1");
    if (!del) return del.error();
    del->Bind(1, kDirectAddressSetting);
    RHIZOME_TRY(del->Run());
  } else {
    auto st = im.db.Prepare("INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)");
    if (!st) return st.error();
    const std::string text = protocol::FormatDirectAddress(*address);
    st->Bind(1, kDirectAddressSetting).Bind(2, std::string_view(text));
    RHIZOME_TRY(st->Run());
  }
  return im.QueueCardUpdates(/*direct_only=*/true);
}

Result<std::optional<protocol::DirectAddress>> Messenger::DirectAddress() {
  return impl_->OwnDirectAddress();
}

const crypto::X25519KeyPair& Messenger::noise_key_pair() const { return impl_->identity.noise; }

Result<std::vector<ByteArray<32>>> Messenger::DirectPeers() {
  auto& im = *impl_;
  RHIZOME_TRY(im.RefreshDirectContacts());
  std::vector<ByteArray<32>> out;
  for (const auto& [key, ids] : im.direct_contacts) out.push_back(key);
  return out;
}

Result<bool> Messenger::ReceiveDirect(ByteSpan peer_noise_key, ByteSpan blob) {
  auto& im = *impl_;
  ByteArray<32> key{};
  if (!CopyColumn(peer_noise_key, key)) return false;
  auto it = im.direct_contacts.find(key);
  if (it == im.direct_contacts.end()) {
    RHIZOME_TRY(im.RefreshDirectContacts());
    it = im.direct_contacts.find(key);
    if (it == im.direct_contacts.end()) return false;  // no longer a confirmed contact
  }
  // SECURITY / no loss: several contacts may hold this Noise key (the same
  // two people made contact twice); the payload is offered to each until one
  // session takes it, so it is never acked on the strength of the wrong one.
  // Only confirmed contacts are candidates, so nothing is "held".
  const std::vector<std::int64_t> candidates = it->second;
  bool later = false;
  for (const std::int64_t contact_id : candidates) {
    SyncReport report;
    auto r = im.HandleContactPayload(contact_id, blob, report);
    if (!r) {
      if (r.error().code == Errc::kIo || r.error().code == Errc::kCorrupt) return r.error();
      later = true;
      continue;
    }
    if (*r == Impl::Outcome::kProcessed || *r == Impl::Outcome::kDuplicate) return true;
    if (*r == Impl::Outcome::kLater || *r == Impl::Outcome::kHeld) later = true;
  }
  // No session of this peer can read it: like a relay copy that does not
  // decrypt, it is acked (dropped) so one bad message never blocks the link;
  // unless a contact could not look at it now.
  return !later;
}

}  // namespace rhizome::client
