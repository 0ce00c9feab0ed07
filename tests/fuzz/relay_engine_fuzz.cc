// Fuzz target: the relay's sans-IO engine (RelayEngine) driven by arbitrary
// sequences of connections, commands, flushes, clock steps, expiry and
// restarts, against a real store in a fresh temporary directory.
//
// Input: a sequence of operations, each an opcode byte (modulo 16) and its
// operands:
//   0 connect        (at most kMaxConnections at once)
//   1 disconnect     u8 connection
//   2 raw command    u8 connection, u16be length, bytes: parsed with
//                    protocol::ParseTransportMessage; a RelayCommand is fed in
//   3..9 honest cmd  u8 connection, u8 kind, u8 target, u8 size, u8 damage:
//                    a well-formed command on a queue or board the harness
//                    knows, signed or MACed correctly unless `damage` says to
//                    break the authorizer (damage & 0x07 == 0), use another
//                    connection's hash (damage & 0x38 == 0) or repeat the
//                    previous corr id (damage & 0xc0 == 0); 0xff is honest
//   10, 14, 15 flush
//   11 clock         u8 step (now += step * 7 seconds)
//   12 expire
//   13 restart       (engine destroyed without Flush, store reopened)
// Invariants (abort on violation): Flush never fails (the store is on a
// healthy disk); every reply validates and serialises into one transport
// message; replies go only to live connections; every command gets exactly
// one reply carrying its corr id, from the Flush that follows it, except a
// quiet ACK, which gets one only when refused (a RelayError); Expire never
// fails; stats stay consistent (bytes never above the configured total);
// what TakeEarly() hands out (after half the commands, as the relay does) is
// only pushes and key statements, never a reply.
//
// Memory is bounded by the small limits below and the input length.
// Regenerating the corpus: run the replay binary with
//   RHIZOME_WRITE_CORPUS_DIR=tests/fuzz/corpus/relay_engine
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_messages.h"
#include "rhizome/protocol/transport.h"
#include "rhizome/relay/engine.h"

namespace {

namespace fs = std::filesystem;
using rhizome::Bytes;
using rhizome::ByteSpan;
using namespace rhizome::protocol;
using rhizome::relay::ConnectionId;
using rhizome::relay::Outgoing;
using rhizome::relay::RelayEngine;
using rhizome::relay::RelayLimits;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

constexpr std::size_t kMaxConnections = 6;
constexpr std::size_t kMaxKnownQueues = 24;
constexpr std::size_t kMaxSeenMessages = 48;
constexpr std::size_t kKeyPairs = 4;
constexpr std::size_t kBoards = 4;
constexpr std::uint64_t kStart = 1767225600;

// Opcodes are taken modulo 16; honest commands get the largest share, a
// restart (the most expensive operation) one in sixteen.
enum Op : std::uint8_t {
  kConnect = 0,
  kDisconnect = 1,
  kRaw = 2,
  kHonest = 3,  // 3..9
  kFlush = 10,  // and 14, 15
  kClock = 11,
  kExpire = 12,
  kRestart = 13,
};
constexpr std::uint8_t kOpModulus = 16;

RelayLimits FuzzLimits() {
  RelayLimits l;
  l.message_ttl_seconds = 900;
  l.arrival_rounding_seconds = 60;
  l.max_messages_per_queue = 12;
  l.max_bytes_per_queue = 48 * 1024;
  l.max_items_per_board = 12;
  l.max_bytes_per_board = 48 * 1024;
  l.max_board_ttl_seconds = 1800;
  l.max_queues = 16;
  l.max_boards = 3;
  l.max_total_bytes = 160 * 1024;
  l.max_corr_ids_remembered = 24;
  l.max_subscriptions_per_connection = 4;
  l.max_queues_created_per_connection = 5;
  l.commands_per_second = 20;
  l.command_burst = 40;
  return l;
}

const std::vector<rhizome::crypto::Ed25519KeyPair>& KeyPairs() {
  static auto* keys = [] {
    auto* v = new std::vector<rhizome::crypto::Ed25519KeyPair>();
    rhizome::crypto::DeterministicRandom rng(20261201);
    for (std::size_t i = 0; i < kKeyPairs; ++i) v->push_back(rhizome::crypto::Ed25519Generate(rng));
    return v;
  }();
  return *keys;
}

// Keys the harness derives, so it always knows them.
rhizome::ByteArray<32> Derive(char label, ByteSpan what) {
  Bytes input{static_cast<std::uint8_t>(label)};
  input.insert(input.end(), what.begin(), what.end());
  return rhizome::crypto::Blake2b256(input);
}

struct Board {
  Id id{};
  rhizome::ByteArray<32> read_key{};
  rhizome::ByteArray<32> write_key{};
};

Board BoardAt(std::size_t i) {
  Board b;
  const std::uint8_t tag[1] = {static_cast<std::uint8_t>(i)};
  auto seed = Derive('b', tag);
  std::copy(seed.begin(), seed.begin() + 16, b.id.begin());
  b.id[0] |= 1;
  b.read_key = Derive('r', b.id);
  b.write_key = Derive('w', b.id);
  return b;
}

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t U16() {
    const std::uint16_t hi = U8();
    return static_cast<std::uint16_t>((hi << 8) | U8());
  }
  ByteSpan Take(std::size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    ByteSpan s(data_ + pos_, n);
    pos_ += n;
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

class Harness {
 public:
  Harness() : limits_(FuzzLimits()), rng_(99) {
    std::error_code ec;
    fs::path base =
        fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string tmpl = (base / "rhizome-relay-fuzz-XXXXXX").string();
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    Open();
  }
  ~Harness() {
    engine_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Run(Reader& in) {
    while (!in.empty()) {
      switch (in.U8() % kOpModulus) {
        case kConnect:
          Connect();
          break;
        case kDisconnect:
          Disconnect(in.U8());
          break;
        case kRaw:
          Raw(in);
          break;
        case kHonest:
        case 4:
        case 5:
        case 6:
        case 7:
        case 8:
        case 9:
          Honest(in);
          break;
        case kFlush:
        case 14:
        case 15:
          Flush();
          break;
        case kClock:
          now_ += static_cast<std::uint64_t>(in.U8()) * 7;
          break;
        case kExpire:
          FUZZ_CHECK(engine_->Expire(now_).ok());
          break;
        case kRestart:
          Open();
          break;
      }
    }
    Flush();
  }

 private:
  struct Conn {
    ConnectionId id = 0;
    Bytes h;
  };
  struct Queue {
    Id recipient_id{};
    Id sender_id{};
    std::size_t key = 0;
  };

  void Open() {
    engine_.reset();  // a crash as far as anything staged goes
    conns_.clear();
    expected_.clear();
    pending_new_.clear();
    // No fsync: restarts here model a process crash, not a power loss, and an
    // fsync per flush made the search about 24 runs a second.
    auto e = RelayEngine::Open(dir_, limits_, rng_, rhizome::relay::Durability::kNoFsync);
    FUZZ_CHECK(e.ok());
    engine_ = std::move(*e);
  }

  void Connect() {
    if (conns_.size() >= kMaxConnections) return;
    Conn c;
    c.h.resize(64);
    rng_.Fill(c.h);
    c.id = engine_->OnConnect(c.h);
    conns_.push_back(std::move(c));
  }

  Conn* Pick(std::uint8_t which) {
    if (conns_.empty()) return nullptr;
    return &conns_[which % conns_.size()];
  }

  void Disconnect(std::uint8_t which) {
    Conn* c = Pick(which);
    if (c == nullptr) return;
    engine_->OnDisconnect(c->id);
    expected_.erase(expected_.lower_bound({c->id, Id{}}), expected_.upper_bound({c->id, kMaxId}));
    conns_.erase(conns_.begin() + (c - conns_.data()));
  }

  void Issue(const Conn& c, RelayCommand cmd) {
    const auto* ack = std::get_if<AckMessage>(&cmd.body);
    expected_[{c.id, cmd.corr_id}].push_back(ack != nullptr && ack->quiet);
    last_corr_ = cmd.corr_id;
    const bool take_early = (cmd.corr_id[0] & 1) != 0;  // as the relay's shell does
    engine_->OnCommand(c.id, std::move(cmd), now_);
    if (take_early) TakeEarly();
  }

  // Pushes may leave before the commit; replies never do.
  void TakeEarly() {
    for (auto& o : engine_->TakeEarly()) {
      FUZZ_CHECK(Alive(o.connection));
      FUZZ_CHECK(!o.reply.corr_id);
      FUZZ_CHECK(std::holds_alternative<QueueMessage>(o.reply.body) ||
                 std::holds_alternative<rhizome::protocol::RelayKeyStatement>(o.reply.body));
      FUZZ_CHECK(ValidateRelayReply(o.reply).ok());
      if (auto* m = std::get_if<QueueMessage>(&o.reply.body)) {
        if (seen_.size() >= kMaxSeenMessages) seen_.erase(seen_.begin());
        seen_.emplace_back(m->recipient_id, m->message_id);
      }
    }
  }

  void Raw(Reader& in) {
    Conn* c = Pick(in.U8());
    const std::size_t len = in.U16() % (kMaxTransportMessageBytes + 64);
    ByteSpan bytes = in.Take(len);
    if (c == nullptr) return;
    auto parsed = ParseTransportMessage(bytes);
    if (!parsed) return;
    auto* cmd = std::get_if<RelayCommand>(&*parsed);
    if (cmd == nullptr) return;
    Issue(*c, std::move(*cmd));
  }

  Id NewCorr() {
    Id id = rng_.Array<16>();
    id[15] |= 1;
    return id;
  }

  void Honest(Reader& in) {
    Conn* c = Pick(in.U8());
    const std::uint8_t kind = in.U8();
    const std::uint8_t target = in.U8();
    const std::uint8_t size = in.U8();
    const std::uint8_t damage = in.U8();
    if (c == nullptr) return;
    // Mostly honest: each kind of damage applies to one input in eight.
    const bool break_auth = (damage & 0x07) == 0;
    const bool foreign_hash = (damage & 0x38) == 0 && conns_.size() > 1;
    const bool repeat_corr = (damage & 0xc0) == 0 && !IsAllZero(last_corr_);
    const Conn& signer =
        foreign_hash ? conns_[(static_cast<std::size_t>(c - conns_.data()) + 1) % conns_.size()]
                     : *c;
    const Id corr = repeat_corr ? last_corr_ : NewCorr();

    auto sign = [&](const Id& entity, RelayCommandCode code, std::size_t key) {
      auto msg = RelayAuthMessage(signer.h, corr, entity, code);
      FUZZ_CHECK(msg.ok());
      auto sig = rhizome::crypto::Ed25519Sign(KeyPairs()[key].secret_key, *msg);
      FUZZ_CHECK(sig.ok());
      Signature s = *sig;
      if (break_auth) s[size % s.size()] ^= 1;
      return s;
    };
    auto mac = [&](const Id& entity, RelayCommandCode code, ByteSpan key) {
      auto msg = RelayAuthMessage(signer.h, corr, entity, code);
      FUZZ_CHECK(msg.ok());
      Mac m{};
      FUZZ_CHECK(rhizome::crypto::Blake2bKeyed(key, *msg, m).ok());
      if (break_auth) m[size % m.size()] ^= 1;
      return m;
    };
    auto blob = [&] {
      // Mostly the fixed blob sizes (the relay refuses others), the largest
      // rarely (it is slow); sometimes any size, to exercise the refusal.
      std::size_t n = kRelayBlobSizes[0];
      if (size >= 250)
        n = kMaxBlobBytes;
      else if (size >= 240)
        n = kRelayBlobSizes[2];
      else if (size >= 200)
        n = kRelayBlobSizes[1];
      else if (size < 20)
        n = 1 + size * 37;
      Bytes b(n);
      rng_.Fill(b);
      return b;
    };

    const Queue* q = queues_.empty() ? nullptr : &queues_[target % queues_.size()];
    const Board board = BoardAt(target % kBoards);
    RelayCommand cmd;
    cmd.corr_id = corr;
    switch (kind % 10) {
      case 0: {
        const std::size_t key = target % kKeyPairs;
        cmd.body = NewQueue{KeyPairs()[key].public_key};
        if (pending_new_.size() < kMaxKnownQueues) pending_new_[corr] = key;
        break;
      }
      case 1:
        if (q == nullptr) return;
        cmd.body = SetQueueKey{q->recipient_id,
                               rhizome::crypto::SecretBytes::CopyFrom(Derive('s', q->sender_id)),
                               sign(q->recipient_id, RelayCommandCode::kKey, q->key)};
        break;
      case 2: {
        if (q == nullptr) return;
        const auto send_key = Derive('s', q->sender_id);
        cmd.body =
            SendMessage{q->sender_id, mac(q->sender_id, RelayCommandCode::kSend, send_key), blob()};
        break;
      }
      case 3:
        if (q == nullptr) return;
        cmd.body =
            Subscribe{q->recipient_id, sign(q->recipient_id, RelayCommandCode::kSub, q->key)};
        break;
      case 4:
        if (q == nullptr) return;
        cmd.body =
            GetMessage{q->recipient_id, sign(q->recipient_id, RelayCommandCode::kGet, q->key)};
        break;
      case 5: {
        if (seen_.empty()) return;
        const auto& [rid, mid] = seen_[target % seen_.size()];
        cmd.body = AckMessage{rid, mid, /*quiet=*/(size & 1) != 0};
        break;
      }
      case 6:
        if (q == nullptr) return;
        cmd.body =
            DeleteQueue{q->recipient_id, sign(q->recipient_id, RelayCommandCode::kDel, q->key)};
        break;
      case 7:
        cmd.body = CreateBoard{board.id, rhizome::crypto::SecretBytes::CopyFrom(board.read_key),
                               rhizome::crypto::SecretBytes::CopyFrom(board.write_key),
                               1u + static_cast<std::uint32_t>(size) * 60u};
        break;
      case 8:
        cmd.body = AppendBoard{
            board.id, mac(board.id, RelayCommandCode::kBoardAppend, board.write_key), blob()};
        break;
      default:
        cmd.body = ReadBoard{board.id, mac(board.id, RelayCommandCode::kBoardRead, board.read_key),
                             static_cast<std::uint64_t>(damage % 8),
                             1u + static_cast<std::uint32_t>(size % kMaxBoardItemsPerRead)};
        break;
    }
    Issue(*c, std::move(cmd));
  }

  bool Alive(ConnectionId id) const {
    for (const auto& c : conns_) {
      if (c.id == id) return true;
    }
    return false;
  }

  void Flush() {
    auto out = engine_->Flush(now_);
    FUZZ_CHECK(out.ok());
    FUZZ_CHECK(engine_->pending_reply_bytes() == 0);
    // Per connection and corr id, in arrival order: is each reply a refusal?
    std::map<std::pair<ConnectionId, Id>, std::vector<bool>> answered;
    for (auto& o : *out) {
      FUZZ_CHECK(Alive(o.connection));
      FUZZ_CHECK(ValidateRelayReply(o.reply).ok());
      if (o.reply.corr_id) {
        answered[{o.connection, *o.reply.corr_id}].push_back(
            std::holds_alternative<RelayError>(o.reply.body));
        if (auto* created = std::get_if<QueueCreated>(&o.reply.body)) {
          FUZZ_CHECK(created->recipient_id != created->sender_id);
          auto pending = pending_new_.find(*o.reply.corr_id);
          if (pending != pending_new_.end() && queues_.size() < kMaxKnownQueues) {
            queues_.push_back(Queue{created->recipient_id, created->sender_id, pending->second});
          }
        }
      }
      if (auto* m = std::get_if<QueueMessage>(&o.reply.body)) {
        if (seen_.size() >= kMaxSeenMessages) seen_.erase(seen_.begin());
        seen_.emplace_back(m->recipient_id, m->message_id);
      }
      auto bytes = SerializeTransportMessage(TransportMessage{std::move(o.reply)});
      FUZZ_CHECK(bytes.ok());
      FUZZ_CHECK(bytes->size() <= kMaxTransportMessageBytes);
    }
    // Replies come in arrival order, so match them to the commands in
    // order: every command answered once, a quiet ACK at most once and then
    // with a refusal (it is answered iff more replies remain than the
    // commands after it that must be answered).
    for (const auto& [key, quiet] : expected_) {
      const std::vector<bool>& refusals = answered[key];
      std::size_t loud_left = static_cast<std::size_t>(std::count(quiet.begin(), quiet.end(), false));
      std::size_t r = 0;
      for (const bool q : quiet) {
        if (!q) {
          FUZZ_CHECK(r < refusals.size());
          ++r;
          --loud_left;
        } else if (refusals.size() - r > loud_left) {
          FUZZ_CHECK(refusals[r]);
          ++r;
        }
      }
      FUZZ_CHECK(r == refusals.size());
    }
    for (const auto& [key, a] : answered) FUZZ_CHECK(expected_.count(key) == 1);
    expected_.clear();
    pending_new_.clear();
    const auto stats = engine_->stats();
    FUZZ_CHECK(stats.bytes_stored <= limits_.max_total_bytes);
    FUZZ_CHECK(stats.queues <= limits_.max_queues);
    FUZZ_CHECK(stats.boards <= limits_.max_boards);
    FUZZ_CHECK(stats.connections == conns_.size());
  }

  fs::path dir_;
  RelayLimits limits_;
  rhizome::crypto::DeterministicRandom rng_;
  std::unique_ptr<RelayEngine> engine_;
  std::vector<Conn> conns_;
  std::vector<Queue> queues_;
  std::map<Id, std::size_t> pending_new_;  // corr id of a NEW -> key pair index
  std::vector<std::pair<Id, Id>> seen_;    // (recipient id, message id) delivered
  static constexpr Id kMaxId = [] {
    Id id{};
    for (auto& b : id) b = 0xff;
    return id;
  }();
  // Commands issued since the last Flush, by connection and corr id, in
  // order: true for a quiet ACK (answered only if refused).
  std::map<std::pair<ConnectionId, Id>, std::vector<bool>> expected_;
  Id last_corr_{};
  std::uint64_t now_ = kStart;
};

// ---- corpus writer ----------------------------------------------------------

struct Script {
  Bytes bytes;
  Script& Put(Op op) {
    bytes.push_back(op);
    return *this;
  }
  Script& Connect() { return Put(kConnect); }
  Script& Flush() { return Put(kFlush); }
  Script& Honest(std::uint8_t conn, std::uint8_t kind, std::uint8_t target, std::uint8_t size,
                 std::uint8_t damage = 0xff) {
    Put(kHonest);
    for (std::uint8_t b : {conn, kind, target, size, damage}) bytes.push_back(b);
    return *this;
  }
  Script& Raw(std::uint8_t conn, const Bytes& message) {
    Put(kRaw);
    bytes.push_back(conn);
    bytes.push_back(static_cast<std::uint8_t>(message.size() >> 8));
    bytes.push_back(static_cast<std::uint8_t>(message.size()));
    bytes.insert(bytes.end(), message.begin(), message.end());
    return *this;
  }
  Script& Clock(std::uint8_t step) {
    Put(kClock);
    bytes.push_back(step);
    return *this;
  }
};

void WriteCorpus(const char* dir) {
  auto write = [&](const std::string& name, const Bytes& b) {
    std::ofstream out(fs::path(dir) / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  // A whole honest session: queues, key, subscribe, sends, acks, boards,
  // expiry and a restart with redelivery.
  Script s;
  s.Connect().Connect();
  s.Honest(0, 0, 0, 0).Honest(0, 0, 1, 0).Flush();
  s.Honest(0, 1, 0, 0).Honest(0, 1, 1, 0).Flush();
  s.Honest(0, 3, 0, 0).Honest(1, 2, 0, 10).Honest(1, 2, 0, 240).Honest(1, 2, 1, 30).Flush();
  s.Honest(0, 5, 0, 0).Honest(0, 5, 1, 0).Honest(0, 4, 1, 0).Flush();
  s.Honest(1, 7, 0, 20).Honest(1, 8, 0, 250).Honest(1, 8, 0, 5).Flush();
  s.Honest(0, 9, 0, 63, 0xf8).Flush();
  s.Clock(200).Put(kExpire).Put(kRestart).Connect().Honest(0, 3, 1, 0).Flush();
  s.Honest(0, 6, 0, 0).Flush();
  write("honest_session", s.bytes);

  // Damaged authorizers: broken signature/MAC, another connection's hash, a
  // repeated corr id.
  Script d;
  d.Connect().Connect().Honest(0, 0, 0, 0).Flush().Honest(0, 1, 0, 0).Flush();
  d.Honest(1, 3, 0, 3, 0xf8).Honest(1, 2, 0, 3, 0xf8).Honest(0, 6, 0, 3, 0xc7).Flush();
  d.Honest(0, 2, 0, 3, 0xc7).Honest(0, 2, 0, 3, 0xff).Honest(0, 2, 0, 3, 0x3f).Flush();
  write("damaged_auth", d.bytes);

  // Raw serialised commands, valid and not, and a reply where a command goes.
  rhizome::crypto::DeterministicRandom rng(5);
  auto corr = [&] {
    Id id = rng.Array<16>();
    id[0] |= 1;
    return id;
  };
  Script r;
  r.Connect();
  auto add = [&](TransportMessage m) {
    auto bytes = SerializeTransportMessage(m);
    FUZZ_CHECK(bytes.ok());
    r.Raw(0, *bytes);
  };
  add(RelayCommand{corr(), NewQueue{KeyPairs()[0].public_key}});
  add(RelayCommand{corr(), SendMessage{corr(), rng.Array<32>(), Bytes(300, 7)}});
  add(RelayCommand{corr(), Subscribe{corr(), rng.Array<64>()}});
  add(RelayCommand{corr(), AckMessage{corr(), corr()}});
  add(RelayCommand{corr(), ReadBoard{corr(), rng.Array<32>(), 0, 64}});
  add(RelayReply{corr(), RelayOk{}});
  add(Ping{});
  r.Raw(0, Bytes{0x0a, 0x05, 0x01, 0x02});  // truncated protobuf
  r.Flush();
  write("raw_commands", r.bytes);

  // A flood on one connection: the rate limit and the corr-id memory.
  Script f;
  f.Connect();
  for (int i = 0; i < 60; ++i) f.Honest(0, 0, static_cast<std::uint8_t>(i), 0);
  f.Flush().Clock(1).Honest(0, 0, 0, 0).Flush();
  write("flood", f.bytes);

  // Staged work lost in a crash, then the same data directory reopened.
  Script c;
  c.Connect().Honest(0, 0, 2, 0).Flush().Honest(0, 1, 0, 0).Flush();
  c.Honest(0, 2, 0, 9).Honest(0, 2, 0, 9).Put(kRestart).Connect().Honest(0, 4, 0, 0).Flush();
  write("crash_restart", c.bytes);

  write("empty", Bytes{});
  Bytes junk(300);
  rng.Fill(junk);
  write("junk", junk);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FUZZ_CHECK(rhizome::crypto::Init().ok());
  if (const char* dir = std::getenv("RHIZOME_WRITE_CORPUS_DIR")) WriteCorpus(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  Harness harness;
  harness.Run(in);
  return 0;
}
