// Helpers for the relay engine's tests: a fixture owning a data directory and
// an engine, connections with random handshake hashes, honest clients that
// sign and MAC their commands, and reply matchers.
#pragma once

#include <gtest/gtest.h>
#include <sqlcipher/sqlite3.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_messages.h"
#include "rhizome/relay/engine.h"
#include "message_journal.h"
#include "test_support.h"

namespace rhizome::relay::testing {

using protocol::Id;
using protocol::RelayCommand;
using protocol::RelayCommandCode;
using protocol::RelayErrorCode;
using protocol::RelayReply;

// 2026-01-01T00:00:00Z: a round number, so rounding is easy to follow.
inline constexpr std::uint64_t kT0 = 1767225600;

struct Conn {
  ConnectionId id = 0;
  Bytes h;  // the connection's handshake hash
};

// A queue as its recipient (and, given the send key, its sender) knows it.
struct TestQueue {
  crypto::Ed25519KeyPair recipient;
  Id recipient_id{};
  Id sender_id{};
  ByteArray<32> send_key{};

  TestQueue Clone() const {
    TestQueue c;
    c.recipient.public_key = recipient.public_key;
    c.recipient.secret_key = recipient.secret_key.Clone();
    c.recipient_id = recipient_id;
    c.sender_id = sender_id;
    c.send_key = send_key;
    return c;
  }
};

struct TestBoard {
  Id board_id{};
  ByteArray<32> read_key{};
  ByteArray<32> write_key{};
};

inline const protocol::RelayError* ErrorOf(const RelayReply& r) {
  return std::get_if<protocol::RelayError>(&r.body);
}
inline bool IsError(const RelayReply& r, RelayErrorCode code) {
  auto* e = ErrorOf(r);
  return e != nullptr && e->code == code;
}
inline bool IsOk(const RelayReply& r) { return std::holds_alternative<protocol::RelayOk>(r.body); }

// Names of the files in `dir` that hold any 64-byte piece of `blob` (so a
// partly overwritten copy is found too).
inline std::vector<std::string> FilesHolding(const std::filesystem::path& dir, ByteSpan blob) {
  constexpr std::size_t kPiece = 64;
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string data = rhizome::testing::ReadFileOrDie(entry.path());
    for (std::size_t at = 0; at + kPiece <= blob.size(); at += kPiece) {
      const std::string piece(blob.begin() + static_cast<std::ptrdiff_t>(at),
                              blob.begin() + static_cast<std::ptrdiff_t>(at + kPiece));
      if (data.find(piece) != std::string::npos) {
        found.push_back(entry.path().filename().string());
        break;
      }
    }
  }
  return found;
}

// A whole file's bytes (empty if it cannot be read), and a file replaced by `bytes`.
inline Bytes ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
inline void WriteAll(const std::filesystem::path& path, ByteSpan bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Integer results of queries on the relay database, through a separate
// read-only connection (so they see only committed data).
class RelayDbReader {
 public:
  explicit RelayDbReader(const std::filesystem::path& data_dir) {
    const auto path = (data_dir / "relay.db").string();
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
      sqlite3_close_v2(db_);
      db_ = nullptr;
      return;
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RelayDbReader() { sqlite3_close_v2(db_); }
  RelayDbReader(const RelayDbReader&) = delete;
  RelayDbReader& operator=(const RelayDbReader&) = delete;

  // The first column of the first row, or -1.
  std::int64_t Scalar(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::int64_t v = -1;
    if (db_ != nullptr && sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      v = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Rows of `table` in the relay database.
inline std::int64_t CountRows(const std::filesystem::path& data_dir, const std::string& table) {
  return RelayDbReader(data_dir).Scalar("SELECT count(*) FROM " + table);
}

// The messages stored in a data directory: rows of relay.db's messages table
// plus the live messages of the journal files (message_journal.h: records
// above journal_state.migrated_through, of queues that exist, not deleted).
// Read while the store may be open: it only reads.
inline std::int64_t CountStoredMessages(const std::filesystem::path& data_dir) {
  RelayDbReader db(data_dir);
  const std::int64_t rows = db.Scalar("SELECT count(*) FROM messages");
  const std::int64_t migrated = db.Scalar("SELECT migrated_through FROM journal_state");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir)) {
    if (ParseJournalFileName(entry.path().filename().string())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::map<std::int64_t, std::int64_t> live;  // seq -> queue row
  for (const auto& file : files) {
    auto read = ReadJournal(
        ReadAll(file),
        [&](const JournalPut& put) {
          if (put.seq > migrated) live[put.seq] = put.queue_row;
        },
        [&](std::int64_t, std::int64_t seq) { live.erase(seq); });
    EXPECT_TRUE(read.ok()) << file;
  }
  std::int64_t journaled = 0;
  for (const auto& [seq, row] : live) {
    if (db.Scalar("SELECT count(*) FROM queues WHERE id = " + std::to_string(row)) == 1) ++journaled;
  }
  return rows + journaled;
}

class RelayTest : public ::testing::Test {
 public:
  RelayTest() { EXPECT_TRUE(crypto::Init().ok()); }

  void SetUp() override { Open(); }

  std::filesystem::path data_dir() const { return dir_.path() / "relay"; }

  void Open() {
    engine_.reset();
    auto e = RelayEngine::Open(data_dir(), limits_, rng_);
    ASSERT_TRUE(e.ok()) << e.error().message;
    engine_ = std::move(*e);
  }
  // Destroys the engine without Flush (a crash as far as staged work goes)
  // and opens the same data directory again.
  void Reopen() { Open(); }

  Conn Connect() {
    Conn c;
    c.h.resize(64);
    rng_.Fill(c.h);
    c.id = engine_->OnConnect(c.h);
    return c;
  }

  Id NewId() {
    Id id = rng_.Array<16>();
    id[0] |= 1;  // never all zero
    return id;
  }
  // A blob of the smallest relay blob size that holds `n` bytes (relays take
  // only those sizes: protocol::kRelayBlobSizes). Above kMaxBlobBytes, exactly
  // `n` bytes (oversize tests).
  Bytes Blob(std::size_t n) {
    const std::size_t size = protocol::RelayBlobSizeFor(n);
    return RawBlob(size == 0 ? n : size);
  }
  // Exactly `n` random bytes, whatever the size rules say.
  Bytes RawBlob(std::size_t n) {
    Bytes b(n);
    rng_.Fill(b);
    return b;
  }

  static Bytes Auth(const Conn& c, const Id& corr, ByteSpan entity, RelayCommandCode code) {
    auto m = protocol::RelayAuthMessage(c.h, corr, entity, code);
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : Bytes();
  }
  static protocol::Signature Sign(const Conn& c, const Id& corr, ByteSpan entity,
                                  RelayCommandCode code, const crypto::SecretBytes& sk) {
    auto s = crypto::Ed25519Sign(sk, Auth(c, corr, entity, code));
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : protocol::Signature{};
  }
  static protocol::Mac Mac(const Conn& c, const Id& corr, ByteSpan entity, RelayCommandCode code,
                           ByteSpan key) {
    protocol::Mac mac{};
    EXPECT_TRUE(crypto::Blake2bKeyed(key, Auth(c, corr, entity, code), mac).ok());
    return mac;
  }

  // ---- honest commands -----------------------------------------------------
  RelayCommand NewCmd(const TestQueue& q) {
    return RelayCommand{NewId(), protocol::NewQueue{q.recipient.public_key}};
  }
  RelayCommand KeyCmd(const Conn& c, const TestQueue& q) {
    const Id corr = NewId();
    return RelayCommand{
        corr, protocol::SetQueueKey{
                  q.recipient_id, crypto::SecretBytes::CopyFrom(q.send_key),
                  Sign(c, corr, q.recipient_id, RelayCommandCode::kKey, q.recipient.secret_key)}};
  }
  RelayCommand SendCmd(const Conn& c, const TestQueue& q, Bytes blob) {
    const Id corr = NewId();
    return RelayCommand{
        corr, protocol::SendMessage{q.sender_id,
                                    Mac(c, corr, q.sender_id, RelayCommandCode::kSend, q.send_key),
                                    std::move(blob)}};
  }
  RelayCommand SubCmd(const Conn& c, const TestQueue& q) {
    const Id corr = NewId();
    return RelayCommand{corr, protocol::Subscribe{q.recipient_id, Sign(c, corr, q.recipient_id,
                                                                       RelayCommandCode::kSub,
                                                                       q.recipient.secret_key)}};
  }
  RelayCommand GetCmd(const Conn& c, const TestQueue& q) {
    const Id corr = NewId();
    return RelayCommand{corr, protocol::GetMessage{q.recipient_id, Sign(c, corr, q.recipient_id,
                                                                        RelayCommandCode::kGet,
                                                                        q.recipient.secret_key)}};
  }
  RelayCommand AckCmd(const TestQueue& q, const Id& message_id) {
    return RelayCommand{NewId(), protocol::AckMessage{q.recipient_id, message_id}};
  }
  RelayCommand DelCmd(const Conn& c, const TestQueue& q) {
    const Id corr = NewId();
    return RelayCommand{corr, protocol::DeleteQueue{q.recipient_id, Sign(c, corr, q.recipient_id,
                                                                         RelayCommandCode::kDel,
                                                                         q.recipient.secret_key)}};
  }
  RelayCommand CreateBoardCmd(const TestBoard& b, std::uint32_t ttl) {
    return RelayCommand{NewId(),
                        protocol::CreateBoard{b.board_id, crypto::SecretBytes::CopyFrom(b.read_key),
                                              crypto::SecretBytes::CopyFrom(b.write_key), ttl}};
  }
  RelayCommand AppendCmd(const Conn& c, const TestBoard& b, Bytes blob) {
    const Id corr = NewId();
    return RelayCommand{
        corr, protocol::AppendBoard{
                  b.board_id, Mac(c, corr, b.board_id, RelayCommandCode::kBoardAppend, b.write_key),
                  std::move(blob)}};
  }
  RelayCommand ReadCmd(const Conn& c, const TestBoard& b, std::uint64_t cursor,
                       std::uint32_t max_items = protocol::kMaxBoardItemsPerRead) {
    const Id corr = NewId();
    return RelayCommand{
        corr, protocol::ReadBoard{
                  b.board_id, Mac(c, corr, b.board_id, RelayCommandCode::kBoardRead, b.read_key),
                  cursor, max_items}};
  }

  // ---- driving -------------------------------------------------------------
  std::vector<Outgoing> Flush(std::uint64_t now = kT0) {
    auto out = engine_->Flush(now);
    EXPECT_TRUE(out.ok()) << out.error().message;
    return out.ok() ? std::move(*out) : std::vector<Outgoing>();
  }

  // Sends one command, flushes, and returns the reply carrying its corr id
  // (exactly one is expected). Pushes released by the same Flush are kept in
  // `pushes_`.
  RelayReply Call(const Conn& c, RelayCommand cmd, std::uint64_t now = kT0) {
    const Id corr = cmd.corr_id;
    engine_->OnCommand(c.id, std::move(cmd), now);
    auto out = Flush(now);
    std::optional<RelayReply> reply;
    int matches = 0;
    for (auto& o : out) {
      if (o.reply.corr_id && *o.reply.corr_id == corr) {
        EXPECT_EQ(o.connection, c.id);
        ++matches;
        reply = std::move(o.reply);
      } else {
        pushes_.push_back(std::move(o));
      }
    }
    EXPECT_EQ(matches, 1);
    if (!reply) return RelayReply{std::nullopt, protocol::RelayError{RelayErrorCode::kInternal}};
    return std::move(*reply);
  }

  // Pushed messages for `conn` collected so far (and forgets them).
  std::vector<protocol::QueueMessage> TakePushes(const Conn& conn) {
    std::vector<protocol::QueueMessage> out;
    std::vector<Outgoing> rest;
    for (auto& o : pushes_) {
      auto* m = std::get_if<protocol::QueueMessage>(&o.reply.body);
      if (o.connection == conn.id && m != nullptr && !o.reply.corr_id) {
        out.push_back(std::move(*m));
      } else {
        rest.push_back(std::move(o));
      }
    }
    pushes_ = std::move(rest);
    return out;
  }
  void CollectPushes(std::vector<Outgoing> out) {
    for (auto& o : out) pushes_.push_back(std::move(o));
  }

  // NEW + KEY by `c`; the queue ready for SEND.
  TestQueue CreateQueue(const Conn& c) {
    TestQueue q;
    q.recipient = crypto::Ed25519Generate(rng_);
    rng_.Fill(q.send_key);
    auto created = Call(c, NewCmd(q));
    auto* ids = std::get_if<protocol::QueueCreated>(&created.body);
    EXPECT_NE(ids, nullptr);
    if (ids != nullptr) {
      q.recipient_id = ids->recipient_id;
      q.sender_id = ids->sender_id;
    }
    EXPECT_TRUE(IsOk(Call(c, KeyCmd(c, q))));
    return q;
  }

  TestBoard NewBoard() {
    TestBoard b;
    b.board_id = NewId();
    rng_.Fill(b.read_key);
    rng_.Fill(b.write_key);
    return b;
  }

  rhizome::testing::TempDir dir_;
  crypto::DeterministicRandom rng_{4242};
  RelayLimits limits_;
  std::unique_ptr<RelayEngine> engine_;
  std::vector<Outgoing> pushes_;
};

}  // namespace rhizome::relay::testing
