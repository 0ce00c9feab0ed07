// RelayEngine's implementation: per-connection state in memory, everything
// durable in the RelayStore. docs/relay-internals.md is the prose version.
#include "rhizome/relay/engine.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>

#include "engine_internal.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "store.h"

namespace rhizome::relay {

namespace {

using protocol::Id;
using protocol::RelayCommandCode;
using protocol::RelayErrorCode;

constexpr Error kCommitFailed{Errc::kIo, "the relay database could not commit"};

std::uint64_t SaturatingAdd(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b
             ? std::numeric_limits<std::uint64_t>::max()
             : a + b;
}

// SECURITY: client-chosen corr ids are remembered by their SipHash under a
// per-engine random key, so a client cannot pick ids that all land in one
// probe chain. (Recipient ids are kept in ordered maps: no hashing at all.)
struct IdHash {
  ByteArray<crypto_shorthash_KEYBYTES> key{};
  std::size_t operator()(const Id& id) const noexcept {
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, id.data(), id.size(), key.data());
    std::uint64_t v = 0;
    std::memcpy(&v, out, sizeof v);
    return static_cast<std::size_t>(v);
  }
};

// The corr ids a connection used, forgotten first-in first-out beyond a cap.
// Stored as 64-bit keyed fingerprints (a client cannot aim for a collision;
// a chance one costs one spurious kDuplicateCorrId) in one allocation: a ring,
// for the order, preceded once there are more than kLinearIds of them by a
// linear-probing table, for lookups. 24 bytes per remembered id (the table at
// most half full, plus the ring); 24 bytes in the connection, nothing more
// for a connection that sent no command, and 32 for one that sent a few.
class CorrIdMemory {
 public:
  bool Contains(std::uint64_t fp) const {
    if (table_size_ == 0) {
      const std::uint64_t* ring = Ring();
      return std::find(ring, ring + count_, fp) != ring + count_;
    }
    const std::size_t mask = table_size_ - 1;
    for (std::size_t i = fp & mask;; i = (i + 1) & mask) {
      if (slots_[i] == fp) return true;
      if (slots_[i] == 0) return false;
    }
  }

  // Precondition: !Contains(fp); fp != 0.
  void Remember(std::uint64_t fp, std::size_t cap) {
    if (cap == 0) return;
    if (count_ < cap) {
      if (count_ == RingCapacity()) Grow();
      Ring()[count_++] = fp;
      if (table_size_ != 0) Insert(fp);
      return;
    }
    // Full: the oldest id makes room (the ring is in insertion order, oldest
    // at next_).
    if (table_size_ != 0) Erase(Ring()[next_]);
    Ring()[next_] = fp;
    if (table_size_ != 0) Insert(fp);
    next_ = (next_ + 1) % count_;
  }

 private:
  // Up to this many ids, a linear scan of the ring and no table.
  static constexpr std::size_t kLinearIds = 4;

  // The ring follows the table (if any) and holds table_size_ / 2 slots (or
  // kLinearIds without a table), of which count_ are used.
  std::uint64_t* Ring() const { return slots_.get() + table_size_; }
  std::size_t RingCapacity() const {
    if (table_size_ != 0) return table_size_ / 2;
    return slots_ ? kLinearIds : 0;
  }

  void Insert(std::uint64_t fp) {
    const std::size_t mask = table_size_ - 1;
    std::size_t i = fp & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = fp;
  }

  // Backward-shift deletion keeps every probe chain unbroken.
  void Erase(std::uint64_t fp) {
    const std::size_t mask = table_size_ - 1;
    std::size_t i = fp & mask;
    while (slots_[i] != fp) {
      if (slots_[i] == 0) return;
      i = (i + 1) & mask;
    }
    for (std::size_t j = (i + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
      const std::size_t home = slots_[j] & mask;
      // Move slots_[j] into the hole at i unless its home lies in (i, j].
      const bool home_in_between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
      if (!home_in_between) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = 0;
  }

  // Only while the ring is filling (next_ == 0, the ring in insertion order):
  // the first id makes the small ring, the one after kLinearIds the table.
  void Grow() {
    if (!slots_) {
      slots_ = std::make_unique<std::uint64_t[]>(kLinearIds);
      return;
    }
    const std::size_t table_size = table_size_ == 0 ? 4 * kLinearIds : 2 * table_size_;
    std::unique_ptr<std::uint64_t[]> old = std::move(slots_);
    const std::uint64_t* old_ring = old.get() + table_size_;
    slots_ = std::make_unique<std::uint64_t[]>(table_size + table_size / 2);  // zeroed
    table_size_ = table_size;
    for (std::size_t k = 0; k < count_; ++k) {
      Ring()[k] = old_ring[k];
      Insert(old_ring[k]);
    }
  }

  std::unique_ptr<std::uint64_t[]> slots_;
  std::size_t table_size_ = 0;  // a power of two, or 0 while there is no table
  std::uint32_t count_ = 0;     // ids remembered (<= the cap, a uint32)
  std::uint32_t next_ = 0;      // the oldest id's ring slot, once full
};

// A message this connection received (pushed after SUB, or returned by GET)
// and may ACK.
struct Unacked {
  Id message_id{};
  std::int64_t seq = 0;
  bool pushed = false;  // counts against the delivery window
};

// What one connection may do with one queue after proving the recipient key
// (SUB or GET) on it.
struct QueueAccess {
  std::int64_t row = 0;
  bool subscribed = false;
  // Stored messages after last_pushed_seq may be waiting for a free slot.
  bool backlog = false;
  // Listed in Connection::starved (waiting for the connection-wide cap).
  bool starved = false;
  std::int64_t last_pushed_seq = 0;
  std::size_t pushed = 0;  // entries of `unacked` with pushed = true
  std::vector<Unacked> unacked;
};

// One connection's state. Kept small, since a relay holds thousands of idle
// ones: 192 bytes (224 with its node in connections_), plus about 110 per
// queue it proved the recipient key of (and about 40 in subscribers_ while it
// subscribes). An ordered map per connection rather than a hash map: one node
// per queue and nothing else, where libstdc++'s hash map allocates 13 buckets
// on its first insert; and no hashing of ids at all.
struct Connection {
  ByteArray<protocol::kMaxHandshakeHashBytes> h{};
  std::uint8_t h_len = 0;  // 0: unusable hash, every authorizer fails
  std::uint32_t queues_created = 0;
  std::uint32_t boards_created = 0;
  std::uint32_t tokens = 0;  // at most RelayLimits::command_burst
  std::uint64_t refilled_at = 0;
  std::size_t pushed = 0;  // sum of queues[*].pushed
  CorrIdMemory corr;
  std::map<Id, QueueAccess> queues;  // by recipient id
  std::vector<Id> starved;           // recipient ids, oldest first

  ByteSpan handshake_hash() const { return {h.data(), h_len}; }
};

// Counters that become true only when the turn commits.
struct TurnCounters {
  std::uint64_t stored = 0;
  std::uint64_t delivered = 0;
  std::uint64_t expired = 0;
};

class Engine final : public RelayEngine {
 public:
  Engine(std::unique_ptr<RelayStore> store, const RelayLimits& limits, crypto::RandomSource& rng,
         const StoreTotals& totals)
      : store_(std::move(store)), limits_(limits), rng_(rng) {
    rng_.Fill(hash_.key);
    rng_.Fill(dummy_mac_key_);
    dummy_sign_key_ = crypto::Ed25519Generate(rng_).public_key;
    SetTotals(totals);
    next_seq_ = totals.max_message_seq + 1;
  }
  ~Engine() override { sodium_memzero(message_ids_.data(), message_ids_.size()); }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  ConnectionId OnConnect(ByteSpan handshake_hash) override {
    const ConnectionId id = next_connection_++;
    auto [it, inserted] = connections_.try_emplace(id);
    Connection& c = it->second;
    if (!handshake_hash.empty() && handshake_hash.size() <= c.h.size()) {
      std::memcpy(c.h.data(), handshake_hash.data(), handshake_hash.size());
      c.h_len = static_cast<std::uint8_t>(handshake_hash.size());
    }
    c.tokens = limits_.command_burst;
    if (key_statement_) {
      early_.push_back(
          Outgoing{id, protocol::RelayReply{std::nullopt, key_statement_->Clone()}});
    }
    return id;
  }

  void SetKeyStatement(protocol::RelayKeyStatement statement) override {
    key_statement_.emplace(std::move(statement));
  }

  void OnDisconnect(ConnectionId connection) override {
    auto it = connections_.find(connection);
    if (it == connections_.end()) return;
    for (const auto& [rid, access] : it->second.queues) {
      if (!access.subscribed) continue;
      auto sub = subscribers_.find(access.row);
      if (sub != subscribers_.end() && sub->second == connection) subscribers_.erase(sub);
    }
    connections_.erase(it);
  }

  void OnCommand(ConnectionId connection, protocol::RelayCommand command,
                 std::uint64_t now) override;
  Result<std::vector<Outgoing>> Flush(std::uint64_t now) override;
  std::vector<Outgoing> TakeEarly() override;
  Status SyncToDisk() override { return store_->SyncWal(); }
  std::size_t pending_reply_bytes() const override { return pending_bytes_; }
  bool has_staged_writes() const override { return !turn_failed_ && store_->in_transaction(); }
  Result<std::uint64_t> Expire(std::uint64_t now) override;

  Stats stats() const override {
    Stats s = stats_;
    s.connections = connections_.size();
    s.queues = queues_;
    s.boards = boards_;
    s.bytes_stored = bytes_;
    return s;
  }

 private:
  // ---- replies -------------------------------------------------------------
  void Reply(ConnectionId cid, const Id& corr, protocol::RelayReplyBody body) {
    pending_bytes_ += kReplyOverheadBytes;
    if (const auto* m = std::get_if<protocol::QueueMessage>(&body)) {
      pending_bytes_ += m->blob.size();
    } else if (const auto* items = std::get_if<protocol::BoardItems>(&body)) {
      for (const auto& item : items->items) pending_bytes_ += item.blob.size();
    }
    pending_.push_back(Outgoing{cid, protocol::RelayReply{corr, std::move(body)}});
  }
  void Refuse(ConnectionId cid, const Id& corr, RelayErrorCode code) {
    const auto index = static_cast<std::size_t>(code);
    if (index < std::size(stats_.rejections)) ++stats_.rejections[index];
    std::optional<Id> reply_corr;
    if (!protocol::IsAllZero(corr)) reply_corr = corr;  // a zero id is not a valid corr id
    pending_bytes_ += kReplyOverheadBytes;
    pending_.push_back(Outgoing{cid, protocol::RelayReply{reply_corr, protocol::RelayError{code}}});
  }
  // A store operation failed: the whole turn will be rolled back by Flush.
  void StoreFailed(ConnectionId cid, const Id& corr) {
    turn_failed_ = true;
    Refuse(cid, corr, RelayErrorCode::kInternal);
  }
  bool BeginTurn() {
    if (store_->in_transaction()) return true;
    return store_->Begin().ok();
  }

  // ---- authorization -------------------------------------------------------
  bool TakeToken(Connection& c, std::uint64_t now) {
    if (now > c.refilled_at) {
      const std::uint64_t elapsed = now - c.refilled_at;
      const std::uint64_t rate = limits_.commands_per_second;
      const std::uint64_t burst = limits_.command_burst;
      const std::uint64_t add = (rate != 0 && elapsed > burst / rate) ? burst : elapsed * rate;
      c.tokens = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(burst, SaturatingAdd(c.tokens, add)));
    }
    c.refilled_at = now;  // a clock that went back refills nothing
    if (c.tokens == 0) return false;
    --c.tokens;
    return true;
  }

  static bool VerifySignature(const Connection& c, const Id& corr, ByteSpan entity,
                              RelayCommandCode code, ByteSpan public_key,
                              const protocol::Signature& signature) {
    auto message = protocol::RelayAuthMessage(c.handshake_hash(), corr, entity, code);
    if (!message) return false;
    return crypto::Ed25519Verify(public_key, *message, signature).ok();
  }

  static bool VerifyMac(const Connection& c, const Id& corr, ByteSpan entity, RelayCommandCode code,
                        ByteSpan key, const protocol::Mac& mac) {
    auto message = protocol::RelayAuthMessage(c.handshake_hash(), corr, entity, code);
    if (!message) return false;
    crypto::StackSecret<protocol::kMacBytes> expected;
    if (!crypto::Blake2bKeyed(key, *message, expected.expose_mut())) return false;
    return ConstantTimeEqual(expected.expose(), mac);  // crypto_verify_32 semantics
  }

  // Recipient commands: the queue and a valid signature, or nothing. A
  // missing queue costs the same verification as a bad signature.
  Result<std::optional<QueueByRecipient>> AuthorizeRecipient(const Connection& c, const Id& corr,
                                                             const Id& recipient_id,
                                                             RelayCommandCode code,
                                                             const protocol::Signature& sig) {
    auto found = store_->FindQueueByRecipient(recipient_id);
    if (!found) return found.error();
    if (!found->has_value()) {
      (void)VerifySignature(c, corr, recipient_id, code, dummy_sign_key_, sig);
      return std::optional<QueueByRecipient>();
    }
    if (!VerifySignature(c, corr, recipient_id, code, (*found)->recipient_key, sig)) {
      return std::optional<QueueByRecipient>();
    }
    return found;
  }

  // ---- deliveries ----------------------------------------------------------
  std::uint64_t Round(std::uint64_t now) const {
    const std::uint64_t r = std::max<std::uint64_t>(1, limits_.arrival_rounding_seconds);
    return now - now % r;
  }

  Id NewRandomId() {
    Id id = rng_.Array<protocol::kIdBytes>();
    while (protocol::IsAllZero(id)) id = rng_.Array<protocol::kIdBytes>();
    return id;
  }

  // A message id: random like the others, drawn from a pool refilled
  // kMessageIdsPerFill at a time (one getrandom call per fill instead of one
  // per SEND: ~2.5% of the relay's CPU at the maximal rate). Only message
  // ids: a message id is no capability (an ACK needs the connection the
  // message was delivered on), so a future one in memory gives nothing away;
  // queue ids are drawn one by one. Each id is wiped from the pool as it is
  // taken.
  Id NewMessageId() {
    for (;;) {
      if (message_ids_used_ == message_ids_.size()) {
        rng_.Fill(message_ids_);
        message_ids_used_ = 0;
      }
      Id id;
      std::memcpy(id.data(), message_ids_.data() + message_ids_used_, id.size());
      sodium_memzero(message_ids_.data() + message_ids_used_, id.size());
      message_ids_used_ += id.size();
      if (!protocol::IsAllZero(id)) return id;
    }
  }

  static void ForgetUnacked(Connection& c, QueueAccess& a) {
    c.pushed -= a.pushed;
    a.pushed = 0;
    a.unacked.clear();
  }

  static void AddUnacked(Connection& c, QueueAccess& a, const Id& message_id, std::int64_t seq,
                         bool pushed) {
    for (const auto& u : a.unacked) {
      if (u.seq == seq) return;
    }
    if (a.unacked.size() >= kMaxUnackedPerQueue) {
      if (a.unacked.front().pushed) {
        --a.pushed;
        --c.pushed;
      }
      a.unacked.erase(a.unacked.begin());
    }
    a.unacked.push_back(Unacked{message_id, seq, pushed});
    if (pushed) {
      ++a.pushed;
      ++c.pushed;
    }
  }

  static bool CanPush(const Connection& c, const QueueAccess& a) {
    return a.pushed < kDeliveryWindow && c.pushed < kMaxPushedPerConnection;
  }

  static void MarkBacklog(Connection& c, QueueAccess& a, const Id& recipient_id) {
    a.backlog = true;
    // Blocked by the connection-wide cap rather than its own window: wait in
    // line for any slot the connection frees.
    if (a.pushed < kDeliveryWindow && !a.starved) {
      a.starved = true;
      c.starved.push_back(recipient_id);
    }
  }

  void Push(ConnectionId cid, Connection& c, QueueAccess& a, const Id& recipient_id,
            std::int64_t seq, const Id& message_id, std::uint64_t received_at, Bytes blob) {
    AddUnacked(c, a, message_id, seq, /*pushed=*/true);
    a.last_pushed_seq = seq;
    ++turn_.delivered;
    early_.push_back(Outgoing{
        cid,
        protocol::RelayReply{std::nullopt, protocol::QueueMessage{recipient_id, message_id,
                                                                  received_at, std::move(blob)}}});
  }

  // Pushes stored messages after last_pushed_seq while the window allows.
  // Returns false on a store error.
  bool Refill(ConnectionId cid, Connection& c, QueueAccess& a, const Id& recipient_id,
              std::uint64_t now) {
    if (!a.subscribed || !a.backlog) return true;
    const std::size_t room =
        std::min(kDeliveryWindow - std::min(a.pushed, kDeliveryWindow),
                 kMaxPushedPerConnection - std::min(c.pushed, kMaxPushedPerConnection));
    if (room == 0) {
      MarkBacklog(c, a, recipient_id);
      return true;
    }
    auto messages = store_->MessagesAfter(a.row, a.last_pushed_seq, now, room);
    if (!messages) return false;
    for (auto& m : *messages) {
      Push(cid, c, a, recipient_id, m.seq, m.message_id, m.received_at, std::move(m.blob));
    }
    if (messages->size() < room) {
      a.backlog = false;
    } else {
      MarkBacklog(c, a, recipient_id);
    }
    return true;
  }

  // Serves subscriptions that waited for the connection-wide cap, oldest first.
  bool ServeStarved(ConnectionId cid, Connection& c, std::uint64_t now) {
    if (c.starved.empty() || c.pushed >= kMaxPushedPerConnection) return true;
    std::vector<Id> waiting;
    waiting.swap(c.starved);
    std::size_t i = 0;
    bool ok = true;
    for (; i < waiting.size() && c.pushed < kMaxPushedPerConnection; ++i) {
      auto it = c.queues.find(waiting[i]);
      if (it == c.queues.end()) continue;
      it->second.starved = false;
      if (!Refill(cid, c, it->second, waiting[i], now)) {
        ok = false;
        ++i;
        break;
      }
    }
    // Those not reached keep their place ahead of any newly starved ones.
    c.starved.insert(c.starved.begin(), waiting.begin() + static_cast<std::ptrdiff_t>(i),
                     waiting.end());
    return ok;
  }

  void EraseAccess(ConnectionId cid, const Id& recipient_id) {
    auto cit = connections_.find(cid);
    if (cit == connections_.end()) return;
    Connection& c = cit->second;
    auto it = c.queues.find(recipient_id);
    if (it == c.queues.end()) return;
    ForgetUnacked(c, it->second);
    c.queues.erase(it);
    std::erase(c.starved, recipient_id);
  }

  // Finds or adds this connection's access entry for a queue it just proved
  // the recipient key of; nullptr if the per-connection cap is reached.
  QueueAccess* AccessFor(Connection& c, const Id& recipient_id, std::int64_t row) {
    auto it = c.queues.find(recipient_id);
    if (it != c.queues.end()) return &it->second;
    if (c.queues.size() >= limits_.max_subscriptions_per_connection) return nullptr;
    QueueAccess& a = c.queues[recipient_id];
    a.row = row;
    return &a;
  }

  // ---- commands ------------------------------------------------------------
  void HandleNew(ConnectionId cid, Connection& c, const Id& corr, const protocol::NewQueue& cmd,
                 std::uint64_t now);
  void HandleKey(ConnectionId cid, Connection& c, const Id& corr, const protocol::SetQueueKey& cmd);
  void HandleSend(ConnectionId cid, Connection& c, const Id& corr, protocol::SendMessage& cmd,
                  std::uint64_t now);
  void HandleSub(ConnectionId cid, Connection& c, const Id& corr, const protocol::Subscribe& cmd,
                 std::uint64_t now);
  void HandleGet(ConnectionId cid, Connection& c, const Id& corr, const protocol::GetMessage& cmd,
                 std::uint64_t now);
  void HandleAck(ConnectionId cid, Connection& c, const Id& corr, const protocol::AckMessage& cmd,
                 std::uint64_t now);
  void HandleDel(ConnectionId cid, Connection& c, const Id& corr, const protocol::DeleteQueue& cmd);
  void HandleBoardCreate(ConnectionId cid, Connection& c, const Id& corr,
                         const protocol::CreateBoard& cmd, std::uint64_t now);
  void HandleBoardAppend(ConnectionId cid, Connection& c, const Id& corr,
                         const protocol::AppendBoard& cmd, std::uint64_t now);
  void HandleBoardRead(ConnectionId cid, Connection& c, const Id& corr,
                       const protocol::ReadBoard& cmd, std::uint64_t now);

  void SetTotals(const StoreTotals& t) {
    queues_ = t.queues;
    boards_ = t.boards;
    bytes_ = t.bytes;
  }
  void AfterFailedTurn();

  std::unique_ptr<RelayStore> store_;
  const RelayLimits limits_;
  crypto::RandomSource& rng_;
  static constexpr std::size_t kMessageIdsPerFill = 64;
  ByteArray<kMessageIdsPerFill * protocol::kIdBytes> message_ids_{};
  std::size_t message_ids_used_ = message_ids_.size();
  IdHash hash_;
  ByteArray<32> dummy_mac_key_{};
  protocol::PublicKey dummy_sign_key_{};

  std::unordered_map<ConnectionId, Connection> connections_;
  ConnectionId next_connection_ = 1;
  std::unordered_map<std::int64_t, ConnectionId> subscribers_;  // queue row -> subscriber
  std::int64_t next_seq_ = 1;

  std::vector<Outgoing> pending_;  // replies of this turn, in order (after the commit)
  std::vector<Outgoing> early_;    // pushes and key statements (may precede it)
  std::size_t pending_bytes_ = 0;  // about what pending_ holds (pending_reply_bytes())
  std::optional<protocol::RelayKeyStatement> key_statement_;  // pushed after each handshake
  bool turn_failed_ = false;
  TurnCounters turn_;

  // Live totals (include this turn's staged changes).
  std::uint64_t queues_ = 0;
  std::uint64_t boards_ = 0;
  std::uint64_t bytes_ = 0;
  Stats stats_;
};

void Engine::OnCommand(ConnectionId connection, protocol::RelayCommand command, std::uint64_t now) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;  // gone: nobody to answer
  Connection& c = it->second;
  const Id corr = command.corr_id;

  if (!TakeToken(c, now)) return Refuse(connection, corr, RelayErrorCode::kRateLimited);
  if (auto st = protocol::ValidateRelayCommand(command); !st) {
    return Refuse(connection, corr,
                  st.error().code == Errc::kLimitExceeded ? RelayErrorCode::kTooLarge
                                                          : RelayErrorCode::kMalformed);
  }
  const std::uint64_t fingerprint = hash_(corr) | 1;  // never 0, the empty slot
  if (c.corr.Contains(fingerprint)) {
    return Refuse(connection, corr, RelayErrorCode::kDuplicateCorrId);
  }
  c.corr.Remember(fingerprint, limits_.max_corr_ids_remembered);
  // A store error earlier in this turn dooms the whole turn: answer now
  // rather than stage more.
  if (turn_failed_) return Refuse(connection, corr, RelayErrorCode::kInternal);

  std::visit(
      [&](auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, protocol::NewQueue>) {
          HandleNew(connection, c, corr, body, now);
        } else if constexpr (std::is_same_v<T, protocol::SetQueueKey>) {
          HandleKey(connection, c, corr, body);
        } else if constexpr (std::is_same_v<T, protocol::SendMessage>) {
          HandleSend(connection, c, corr, body, now);
        } else if constexpr (std::is_same_v<T, protocol::Subscribe>) {
          HandleSub(connection, c, corr, body, now);
        } else if constexpr (std::is_same_v<T, protocol::GetMessage>) {
          HandleGet(connection, c, corr, body, now);
        } else if constexpr (std::is_same_v<T, protocol::AckMessage>) {
          HandleAck(connection, c, corr, body, now);
        } else if constexpr (std::is_same_v<T, protocol::DeleteQueue>) {
          HandleDel(connection, c, corr, body);
        } else if constexpr (std::is_same_v<T, protocol::CreateBoard>) {
          HandleBoardCreate(connection, c, corr, body, now);
        } else if constexpr (std::is_same_v<T, protocol::AppendBoard>) {
          HandleBoardAppend(connection, c, corr, body, now);
        } else {
          static_assert(std::is_same_v<T, protocol::ReadBoard>);
          HandleBoardRead(connection, c, corr, body, now);
        }
      },
      command.body);
}

void Engine::HandleNew(ConnectionId cid, Connection& c, const Id& corr,
                       const protocol::NewQueue& cmd, std::uint64_t now) {
  if (c.queues_created >= limits_.max_queues_created_per_connection ||
      queues_ >= limits_.max_queues) {
    return Refuse(cid, corr, RelayErrorCode::kQuota);
  }
  if (!BeginTurn()) return StoreFailed(cid, corr);
  // Random 128-bit ids do not collide in practice; a few tries make a store
  // that already holds one a non-event rather than an error.
  for (int attempt = 0; attempt < 4; ++attempt) {
    const Id recipient_id = NewRandomId();
    const Id sender_id = NewRandomId();
    if (recipient_id == sender_id) continue;
    auto inserted =
        store_->InsertQueue(recipient_id, sender_id, cmd.recipient_auth_key, Round(now));
    if (!inserted) return StoreFailed(cid, corr);
    if (!*inserted) continue;
    ++c.queues_created;
    ++queues_;
    return Reply(cid, corr, protocol::QueueCreated{recipient_id, sender_id});
  }
  Refuse(cid, corr, RelayErrorCode::kInternal);
}

void Engine::HandleKey(ConnectionId cid, Connection& c, const Id& corr,
                       const protocol::SetQueueKey& cmd) {
  auto queue = AuthorizeRecipient(c, corr, cmd.recipient_id, RelayCommandCode::kKey, cmd.signature);
  if (!queue) return StoreFailed(cid, corr);
  if (!queue->has_value()) return Refuse(cid, corr, RelayErrorCode::kAuth);
  if ((*queue)->send_key_set) return Refuse(cid, corr, RelayErrorCode::kAlreadySet);
  if (!BeginTurn()) return StoreFailed(cid, corr);
  auto set = store_->SetSendKey((*queue)->row, cmd.send_key.expose());
  if (!set) return StoreFailed(cid, corr);
  if (!*set) return Refuse(cid, corr, RelayErrorCode::kAlreadySet);
  Reply(cid, corr, protocol::RelayOk{});
}

void Engine::HandleSend(ConnectionId cid, Connection& c, const Id& corr, protocol::SendMessage& cmd,
                        std::uint64_t now) {
  // Blobs come in the fixed padding-class sizes only (DESIGN §9, §10). The
  // size is checked before the id is looked up, so the answer says nothing
  // about the queue.
  if (!protocol::IsRelayBlobSize(cmd.blob.size())) {
    return Refuse(cid, corr, RelayErrorCode::kMalformed);
  }
  crypto::StackSecret<protocol::kKeyBytes> send_key;
  auto queue = store_->FindQueueBySender(cmd.sender_id, send_key.expose_mut());
  if (!queue) return StoreFailed(cid, corr);
  // SECURITY: one keyed BLAKE2b per SEND (no signature), compared in constant
  // time; an unknown sender id or an unset key costs the same MAC.
  const bool known = queue->has_value() && (*queue)->send_key_set;
  const ByteSpan key = known ? ByteSpan(send_key.expose()) : ByteSpan(dummy_mac_key_);
  const bool mac_ok = VerifyMac(c, corr, cmd.sender_id, RelayCommandCode::kSend, key, cmd.mac);
  if (!known || !mac_ok) return Refuse(cid, corr, RelayErrorCode::kAuth);
  const QueueBySender& q = **queue;

  const std::uint64_t size = cmd.blob.size();
  if (q.msg_count >= limits_.max_messages_per_queue ||
      SaturatingAdd(q.msg_bytes, size) > limits_.max_bytes_per_queue ||
      SaturatingAdd(bytes_, size) > limits_.max_total_bytes) {
    return Refuse(cid, corr, RelayErrorCode::kQuota);
  }
  if (!BeginTurn()) return StoreFailed(cid, corr);
  const std::int64_t seq = next_seq_++;
  const Id message_id = NewMessageId();
  const std::uint64_t received_at = Round(now);
  // The expiry derives from the rounded time, so it does not reveal the
  // exact arrival either.
  const std::uint64_t expires_at = SaturatingAdd(received_at, limits_.message_ttl_seconds);
  if (!store_->InsertMessage(q.row, seq, message_id, received_at, expires_at, cmd.blob)) {
    return StoreFailed(cid, corr);
  }
  bytes_ += size;
  ++turn_.stored;
  Reply(cid, corr, protocol::RelayOk{});

  // Push to the subscriber, if any; released by Flush after the commit.
  auto sub = subscribers_.find(q.row);
  if (sub == subscribers_.end()) return;
  auto sc = connections_.find(sub->second);
  if (sc == connections_.end()) return;
  auto access = sc->second.queues.find(q.recipient_id);
  if (access == sc->second.queues.end() || !access->second.subscribed) return;
  QueueAccess& a = access->second;
  if (!a.backlog && CanPush(sc->second, a)) {
    Push(sub->second, sc->second, a, q.recipient_id, seq, message_id, received_at,
         std::move(cmd.blob));
  } else {
    MarkBacklog(sc->second, a, q.recipient_id);
  }
}

void Engine::HandleSub(ConnectionId cid, Connection& c, const Id& corr,
                       const protocol::Subscribe& cmd, std::uint64_t now) {
  auto queue = AuthorizeRecipient(c, corr, cmd.recipient_id, RelayCommandCode::kSub, cmd.signature);
  if (!queue) return StoreFailed(cid, corr);
  if (!queue->has_value()) return Refuse(cid, corr, RelayErrorCode::kAuth);
  const std::int64_t row = (*queue)->row;
  QueueAccess* a = AccessFor(c, cmd.recipient_id, row);
  if (a == nullptr) return Refuse(cid, corr, RelayErrorCode::kQuota);

  // One subscriber per queue: a new SUB takes over. The previous subscriber
  // keeps the right to ACK what it already received.
  auto sub = subscribers_.find(row);
  if (sub != subscribers_.end() && sub->second != cid) {
    auto old = connections_.find(sub->second);
    if (old != connections_.end()) {
      auto oa = old->second.queues.find(cmd.recipient_id);
      if (oa != old->second.queues.end()) {
        oa->second.subscribed = false;
        oa->second.backlog = false;
      }
    }
  }
  subscribers_[row] = cid;
  // (Re)start delivery from the oldest stored message.
  ForgetUnacked(c, *a);
  a->subscribed = true;
  a->last_pushed_seq = 0;
  a->backlog = true;
  Reply(cid, corr, protocol::RelayOk{});
  if (!Refill(cid, c, *a, cmd.recipient_id, now)) StoreFailed(cid, corr);
}

void Engine::HandleGet(ConnectionId cid, Connection& c, const Id& corr,
                       const protocol::GetMessage& cmd, std::uint64_t now) {
  auto queue = AuthorizeRecipient(c, corr, cmd.recipient_id, RelayCommandCode::kGet, cmd.signature);
  if (!queue) return StoreFailed(cid, corr);
  if (!queue->has_value()) return Refuse(cid, corr, RelayErrorCode::kAuth);
  QueueAccess* a = AccessFor(c, cmd.recipient_id, (*queue)->row);
  if (a == nullptr) return Refuse(cid, corr, RelayErrorCode::kQuota);
  auto messages = store_->MessagesAfter(a->row, 0, now, 1);
  if (!messages) return StoreFailed(cid, corr);
  if (messages->empty()) return Reply(cid, corr, protocol::RelayOk{});
  StoredMessage& m = messages->front();
  AddUnacked(c, *a, m.message_id, m.seq, /*pushed=*/false);
  ++turn_.delivered;
  Reply(cid, corr,
        protocol::QueueMessage{cmd.recipient_id, m.message_id, m.received_at, std::move(m.blob)});
}

void Engine::HandleAck(ConnectionId cid, Connection& c, const Id& corr,
                       const protocol::AckMessage& cmd, std::uint64_t now) {
  // No authorizer: only a connection that proved the recipient key (SUB or
  // GET) and received this message may acknowledge it.
  auto it = c.queues.find(cmd.recipient_id);
  if (it == c.queues.end()) return Refuse(cid, corr, RelayErrorCode::kAuth);
  QueueAccess& a = it->second;
  auto u = std::find_if(a.unacked.begin(), a.unacked.end(),
                        [&](const Unacked& x) { return x.message_id == cmd.message_id; });
  if (u == a.unacked.end()) return Refuse(cid, corr, RelayErrorCode::kAuth);
  if (!BeginTurn()) return StoreFailed(cid, corr);
  auto deleted = store_->DeleteMessage(a.row, u->seq);
  if (!deleted) return StoreFailed(cid, corr);
  // Already gone (expired, or acknowledged through another connection) is
  // still a success: the message is not stored.
  if (deleted->has_value()) bytes_ -= std::min(bytes_, **deleted);
  if (u->pushed) {
    --a.pushed;
    --c.pushed;
  }
  a.unacked.erase(u);
  // A quiet ACK is answered only when refused (above). It needs no place in
  // the reply order: a later command's reply leaves with or after this
  // turn's commit, and so after this deletion's (docs/protocol/relay-commands.md).
  if (!cmd.quiet) Reply(cid, corr, protocol::RelayOk{});
  if (!Refill(cid, c, a, cmd.recipient_id, now) || !ServeStarved(cid, c, now)) {
    turn_failed_ = true;
  }
}

void Engine::HandleDel(ConnectionId cid, Connection& c, const Id& corr,
                       const protocol::DeleteQueue& cmd) {
  auto queue = AuthorizeRecipient(c, corr, cmd.recipient_id, RelayCommandCode::kDel, cmd.signature);
  if (!queue) return StoreFailed(cid, corr);
  if (!queue->has_value()) return Refuse(cid, corr, RelayErrorCode::kAuth);
  const std::int64_t row = (*queue)->row;
  if (!BeginTurn()) return StoreFailed(cid, corr);
  auto freed = store_->DeleteQueue(row);
  if (!freed) return StoreFailed(cid, corr);
  bytes_ -= std::min(bytes_, *freed);
  if (queues_ > 0) --queues_;
  if (auto sub = subscribers_.find(row); sub != subscribers_.end()) {
    const ConnectionId subscriber = sub->second;
    subscribers_.erase(sub);
    EraseAccess(subscriber, cmd.recipient_id);
  }
  EraseAccess(cid, cmd.recipient_id);  // `c` loses its access entry here
  Reply(cid, corr, protocol::RelayOk{});
}

void Engine::HandleBoardCreate(ConnectionId cid, Connection& c, const Id& corr,
                               const protocol::CreateBoard& cmd, std::uint64_t now) {
  if (c.boards_created >= limits_.max_queues_created_per_connection ||
      boards_ >= limits_.max_boards) {
    return Refuse(cid, corr, RelayErrorCode::kQuota);
  }
  // The relay may lower the lifetime a client asks for.
  const std::uint32_t ttl =
      std::max<std::uint32_t>(1, std::min(cmd.ttl_seconds, limits_.max_board_ttl_seconds));
  if (!BeginTurn()) return StoreFailed(cid, corr);
  auto inserted = store_->InsertBoard(cmd.board_id, cmd.read_key.expose(), cmd.write_key.expose(),
                                      ttl, SaturatingAdd(Round(now), ttl));
  if (!inserted) return StoreFailed(cid, corr);
  if (*inserted) {
    ++boards_;
    ++c.boards_created;
    return Reply(cid, corr, protocol::RelayOk{});
  }
  // The id is taken. A creator retrying (its first reply was lost) holds the
  // same keys: that is a success. Anyone else does not hold this board's keys.
  auto same = store_->BoardKeysEqual(cmd.board_id, cmd.read_key.expose(), cmd.write_key.expose());
  if (!same) return StoreFailed(cid, corr);
  if (same->has_value() && **same) return Reply(cid, corr, protocol::RelayOk{});
  Refuse(cid, corr, RelayErrorCode::kAuth);
}

void Engine::HandleBoardAppend(ConnectionId cid, Connection& c, const Id& corr,
                               const protocol::AppendBoard& cmd, std::uint64_t now) {
  if (!protocol::IsRelayBlobSize(cmd.blob.size())) {  // as in HandleSend
    return Refuse(cid, corr, RelayErrorCode::kMalformed);
  }
  crypto::StackSecret<protocol::kKeyBytes> write_key;
  auto board = store_->FindBoard(cmd.board_id, BoardKeyKind::kWrite, write_key.expose_mut());
  if (!board) return StoreFailed(cid, corr);
  const bool known = board->has_value();
  const ByteSpan key = known ? ByteSpan(write_key.expose()) : ByteSpan(dummy_mac_key_);
  const bool mac_ok =
      VerifyMac(c, corr, cmd.board_id, RelayCommandCode::kBoardAppend, key, cmd.mac);
  if (!known || !mac_ok) return Refuse(cid, corr, RelayErrorCode::kAuth);
  const BoardRecord& b = **board;

  const std::uint64_t size = cmd.blob.size();
  if (b.item_count >= limits_.max_items_per_board ||
      SaturatingAdd(b.item_bytes, size) > limits_.max_bytes_per_board ||
      SaturatingAdd(bytes_, size) > limits_.max_total_bytes) {
    return Refuse(cid, corr, RelayErrorCode::kQuota);
  }
  if (!BeginTurn()) return StoreFailed(cid, corr);
  const std::uint64_t received_at = Round(now);
  const std::uint64_t expires_at = SaturatingAdd(received_at, b.ttl_seconds);
  if (!store_->InsertBoardItem(b, received_at, expires_at, expires_at, cmd.blob)) {
    return StoreFailed(cid, corr);
  }
  bytes_ += size;
  Reply(cid, corr, protocol::RelayOk{});
}

void Engine::HandleBoardRead(ConnectionId cid, Connection& c, const Id& corr,
                             const protocol::ReadBoard& cmd, std::uint64_t now) {
  crypto::StackSecret<protocol::kKeyBytes> read_key;
  auto board = store_->FindBoard(cmd.board_id, BoardKeyKind::kRead, read_key.expose_mut());
  if (!board) return StoreFailed(cid, corr);
  const bool known = board->has_value();
  const ByteSpan key = known ? ByteSpan(read_key.expose()) : ByteSpan(dummy_mac_key_);
  const bool mac_ok = VerifyMac(c, corr, cmd.board_id, RelayCommandCode::kBoardRead, key, cmd.mac);
  if (!known || !mac_ok) return Refuse(cid, corr, RelayErrorCode::kAuth);

  auto items = store_->BoardItemsAfter((*board)->row, cmd.cursor, now, cmd.max_items,
                                       kBoardReplyBudgetBytes, kBoardItemOverheadBytes);
  if (!items) return StoreFailed(cid, corr);
  protocol::BoardItems reply;
  reply.next_cursor = items->empty() ? cmd.cursor : items->back().seq;
  reply.items.reserve(items->size());
  for (auto& item : *items) {
    reply.items.push_back(protocol::BoardItem{item.seq, item.received_at, std::move(item.blob)});
  }
  Reply(cid, corr, std::move(reply));
}

// ---- turns -------------------------------------------------------------------

void Engine::AfterFailedTurn() {
  store_->Rollback();
  pending_.clear();
  pending_bytes_ = 0;
  early_.clear();
  turn_ = {};
  turn_failed_ = false;
  // What this turn staged is gone: reload the totals, and forget every
  // delivery in flight (the shell closes every connection; what was pushed
  // and not acknowledged is redelivered on the next SUB).
  if (auto totals = store_->LoadTotals(); totals) SetTotals(*totals);
  subscribers_.clear();
  for (auto& [id, c] : connections_) {
    c.queues.clear();
    std::vector<Id>().swap(c.starved);
    c.pushed = 0;
  }
}

Result<std::vector<Outgoing>> Engine::Flush(std::uint64_t /*now*/) {
  if (turn_failed_) {
    AfterFailedTurn();
    return kCommitFailed;
  }
  if (store_->in_transaction()) {
    if (auto st = store_->Commit(); !st) {
      AfterFailedTurn();
      return kCommitFailed;
    }
    ++stats_.commits;
  }
  stats_.messages_stored += turn_.stored;
  stats_.messages_delivered += turn_.delivered;
  stats_.messages_expired += turn_.expired;
  turn_ = {};

  // What TakeEarly() would have handed out goes first (key statements must
  // precede every reply on their connection), then the replies in order.
  std::vector<Outgoing> out;
  out.swap(early_);
  out.insert(out.end(), std::make_move_iterator(pending_.begin()),
             std::make_move_iterator(pending_.end()));
  pending_.clear();
  pending_bytes_ = 0;
  // Connections that left during the turn get nothing.
  std::erase_if(out, [this](const Outgoing& o) { return !connections_.contains(o.connection); });
  return out;
}

std::vector<Outgoing> Engine::TakeEarly() {
  std::vector<Outgoing> out;
  out.swap(early_);
  std::erase_if(out, [this](const Outgoing& o) { return !connections_.contains(o.connection); });
  return out;
}

Result<std::uint64_t> Engine::Expire(std::uint64_t now) {
  if (turn_failed_) return std::uint64_t{0};
  std::uint64_t removed = 0;
  auto apply = [&](const ExpireCounts& counts) {
    bytes_ -= std::min(bytes_, counts.bytes);
    boards_ -= std::min(boards_, counts.boards);
    removed += counts.messages + counts.board_items;
  };
  if (store_->in_transaction()) {
    // Commands are staged: join their transaction (committed by Flush).
    auto counts = store_->ExpireBatch(now, kExpireBatchRows);
    if (!counts) {
      turn_failed_ = true;
      return counts.error();
    }
    apply(*counts);
    turn_.expired += counts->messages;
    return removed;
  }
  for (std::size_t batch = 0; batch < kMaxExpireBatchesPerCall; ++batch) {
    RHIZOME_TRY(store_->Begin());
    auto counts = store_->ExpireBatch(now, kExpireBatchRows);
    if (!counts) {
      store_->Rollback();
      return counts.error();
    }
    if (auto st = store_->Commit(); !st) {
      if (auto totals = store_->LoadTotals(); totals) SetTotals(*totals);
      return st.error();
    }
    apply(*counts);
    stats_.messages_expired += counts->messages;
    if (counts->messages < kExpireBatchRows && counts->board_items < kExpireBatchRows &&
        counts->boards < kExpireBatchRows) {
      break;
    }
  }
  return removed;
}

}  // namespace

Result<std::unique_ptr<RelayEngine>> RelayEngine::Open(const std::filesystem::path& data_dir,
                                                       const RelayLimits& limits,
                                                       crypto::RandomSource& rng,
                                                       Durability durability) {
  RHIZOME_TRY(crypto::Init());
  auto store = RelayStore::Open(data_dir, durability);
  if (!store) return store.error();
  auto totals = (*store)->LoadTotals();
  if (!totals) return totals.error();
  return std::unique_ptr<RelayEngine>(new Engine(std::move(*store), limits, rng, *totals));
}

}  // namespace rhizome::relay
