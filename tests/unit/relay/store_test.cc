// RelayStore: opening, schema versions, file modes, counters and the
// checkpoint thread.
#include "store.h"

#include <gtest/gtest.h>
#include <sqlcipher/sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "rhizome/crypto/init.h"
#include "test_support.h"

namespace rhizome::relay {
namespace {

namespace fs = std::filesystem;

protocol::Id IdOf(std::uint8_t v) {
  protocol::Id id{};
  id.fill(v);
  return id;
}

void SetUserVersion(const fs::path& db_path, int version) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  const std::string sql = "PRAGMA user_version = " + std::to_string(version);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close_v2(db);
}

class RelayStoreTest : public ::testing::Test {
 protected:
  RelayStoreTest() { EXPECT_TRUE(crypto::Init().ok()); }
  fs::path dir() const { return tmp_.path() / "data"; }
  std::unique_ptr<RelayStore> OpenOrDie() {
    auto s = RelayStore::Open(dir());
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  // Opens the store with `durability` and commits one queue (recipient
  // IdOf(1), sender IdOf(2)); nullptr on failure.
  std::unique_ptr<RelayStore> OpenWithQueue(Durability durability) {
    auto s = RelayStore::Open(dir(), durability);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (!s.ok()) return nullptr;
    protocol::PublicKey key{};
    key.fill(7);
    bool ok = (*s)->Begin().ok();
    auto inserted = (*s)->InsertQueue(IdOf(1), IdOf(2), key, 0);
    ok = ok && inserted.ok() && *inserted && (*s)->Commit().ok();
    EXPECT_TRUE(ok);
    return ok ? std::move(*s) : nullptr;
  }
  rhizome::testing::TempDir tmp_;
};

TEST_F(RelayStoreTest, CreatesAPrivateDataDirectoryAndDatabase) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir() / "relay.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(RelayStoreTest, DatabaseWrittenByANewerRelayIsRefused) {
  OpenOrDie().reset();
  SetUserVersion(dir() / "relay.db", static_cast<int>(kStoreSchemaVersion) + 1);
  auto again = RelayStore::Open(dir());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kUnsupported);
}

TEST_F(RelayStoreTest, FileThatIsNotADatabaseIsCorrupt) {
  fs::create_directories(dir());
  std::ofstream(dir() / "relay.db") << std::string(4096, 'x');
  auto store = RelayStore::Open(dir());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, Errc::kCorrupt);
}

TEST_F(RelayStoreTest, DataPathThatIsAFileIsRefused) {
  std::ofstream(tmp_.path() / "data") << "x";
  auto store = RelayStore::Open(dir());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, Errc::kIo);
}

TEST_F(RelayStoreTest, QueueCountersFollowInsertsDeletesAndExpiry) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Begin().ok());
  protocol::PublicKey key{};
  key.fill(7);
  auto inserted = store->InsertQueue(IdOf(1), IdOf(2), key, 100);
  ASSERT_TRUE(inserted.ok());
  ASSERT_TRUE(*inserted);
  // Either id taken: nothing inserted.
  auto dup = store->InsertQueue(IdOf(3), IdOf(2), key, 100);
  ASSERT_TRUE(dup.ok());
  EXPECT_FALSE(*dup);
  auto q = store->FindQueueByRecipient(IdOf(1));
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(q->has_value());
  const std::int64_t row = (*q)->row;
  ASSERT_TRUE(store->InsertMessage(row, 1, IdOf(9), 60, 1000, Bytes(10, 1)).ok());
  ASSERT_TRUE(store->InsertMessage(row, 2, IdOf(10), 60, 2000, Bytes(20, 2)).ok());
  ASSERT_TRUE(store->Commit().ok());

  ByteArray<32> send_key{};
  auto by_sender = store->FindQueueBySender(IdOf(2), send_key);
  ASSERT_TRUE(by_sender.ok());
  ASSERT_TRUE(by_sender->has_value());
  EXPECT_FALSE((*by_sender)->send_key_set);
  EXPECT_EQ((*by_sender)->msg_count, 2u);
  EXPECT_EQ((*by_sender)->msg_bytes, 30u);

  ASSERT_TRUE(store->Begin().ok());
  auto expired = store->ExpireBatch(1000, 100);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->messages, 1u);
  EXPECT_EQ(expired->bytes, 10u);
  auto gone = store->DeleteMessage(row, 1);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());  // already expired
  auto deleted = store->DeleteMessage(row, 2);
  ASSERT_TRUE(deleted.ok());
  ASSERT_TRUE(deleted->has_value());
  EXPECT_EQ(**deleted, 20u);
  ASSERT_TRUE(store->Commit().ok());

  by_sender = store->FindQueueBySender(IdOf(2), send_key);
  ASSERT_TRUE(by_sender.ok());
  EXPECT_EQ((*by_sender)->msg_count, 0u);
  EXPECT_EQ((*by_sender)->msg_bytes, 0u);
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->queues, 1u);
  EXPECT_EQ(totals->bytes, 0u);
}

TEST_F(RelayStoreTest, SendKeyIsSetOnce) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Begin().ok());
  protocol::PublicKey key{};
  key.fill(7);
  ASSERT_TRUE(*store->InsertQueue(IdOf(1), IdOf(2), key, 0));
  auto q = store->FindQueueByRecipient(IdOf(1));
  ASSERT_TRUE(q.ok() && q->has_value());
  auto first = store->SetSendKey((*q)->row, Bytes(32, 0xaa));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  auto second = store->SetSendKey((*q)->row, Bytes(32, 0xbb));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  ASSERT_TRUE(store->Commit().ok());
  ByteArray<32> send_key{};
  auto s = store->FindQueueBySender(IdOf(2), send_key);
  ASSERT_TRUE(s.ok() && s->has_value());
  EXPECT_TRUE((*s)->send_key_set);
  EXPECT_EQ(send_key,
            (ByteArray<32>{0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                           0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                           0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa}));
}

TEST_F(RelayStoreTest, RollbackDiscardsStagedWrites) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Begin().ok());
  protocol::PublicKey key{};
  key.fill(7);
  ASSERT_TRUE(*store->InsertQueue(IdOf(1), IdOf(2), key, 0));
  EXPECT_TRUE(store->in_transaction());
  store->Rollback();
  EXPECT_FALSE(store->in_transaction());
  auto q = store->FindQueueByRecipient(IdOf(1));
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->has_value());
}

TEST_F(RelayStoreTest, CheckpointThreadCopiesTheWalIntoTheDatabase) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  protocol::PublicKey key{};
  key.fill(7);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(*store->InsertQueue(IdOf(1), IdOf(2), key, 0));
  auto q = store->FindQueueByRecipient(IdOf(1));
  ASSERT_TRUE(q.ok() && q->has_value());
  for (std::int64_t i = 1; i <= 64; ++i) {
    ASSERT_TRUE(store
                    ->InsertMessage((*q)->row, i, IdOf(static_cast<std::uint8_t>(i)), 0, 100,
                                    Bytes(16384, static_cast<std::uint8_t>(i)))
                    .ok());
  }
  ASSERT_TRUE(store->Commit().ok());
  const auto before = fs::file_size(dir() / "relay.db");
  ASSERT_TRUE(store->CheckpointForTest().ok());
  const auto after = fs::file_size(dir() / "relay.db");
  EXPECT_GT(after, before + 64 * 16384);
  auto messages = store->MessagesAfter((*q)->row, 0, 0, 100);
  ASSERT_TRUE(messages.ok());
  EXPECT_EQ(messages->size(), 64u);
}

// A writer that commits again right after each commit (the relay under
// steady load) is never caught up with by PASSIVE checkpoints alone: the WAL
// would only restart when every frame had been copied, and grew to 150 MB in a
// 30-second load run. The checkpointer's final RESTART pass must keep it near
// kCheckpointWalPages.
TEST_F(RelayStoreTest, WalStaysBoundedUnderCommitsWithoutPause) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  auto q = store->FindQueueByRecipient(IdOf(1));
  ASSERT_TRUE(q.ok() && q->has_value());
  const fs::path wal = dir() / "relay.db-wal";
  const Bytes blob(1280, 0x5a);
  // Each commit appends at least 2 frames (a data page and an index page), so
  // 12,000 commits write over 24,000 frames (~96 MiB) if the WAL never restarts.
  constexpr std::int64_t kCommits = 12000;
  std::uintmax_t largest = 0;
  for (std::int64_t i = 1; i <= kCommits; ++i) {
    ASSERT_TRUE(store->Begin().ok());
    ASSERT_TRUE(store->InsertMessage((*q)->row, i, IdOf(static_cast<std::uint8_t>(i)), 0, 100, blob)
                    .ok());
    if (i > 8) {
      ASSERT_TRUE(store->DeleteMessage((*q)->row, i - 8).ok());
    }
    ASSERT_TRUE(store->Commit().ok());
    if (i % 256 == 0) largest = std::max(largest, fs::file_size(wal));
  }
  // kCheckpointWalPages frames plus what was appended during one checkpoint.
  EXPECT_LE(largest, std::uintmax_t{3} * kCheckpointWalPages * (4096 + 24)) << largest;
  auto left = store->MessagesAfter((*q)->row, 0, 0, 100);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 8u);
}

// kFsyncByCaller: SyncWal() must sync the WAL SQLite writes, not some other
// file, and the other modes keep no descriptor.
TEST_F(RelayStoreTest, SyncWalSyncsTheWriteAheadLogItself) {
  {
    auto plain = RelayStore::Open(dir(), Durability::kFsync);
    ASSERT_TRUE(plain.ok()) << plain.error().message;
    EXPECT_EQ((*plain)->wal_fd_for_test(), -1);
    EXPECT_TRUE((*plain)->SyncWal().ok());
  }
  auto store = OpenWithQueue(Durability::kFsyncByCaller);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->SyncWal().ok());
  const int fd = store->wal_fd_for_test();
  ASSERT_GE(fd, 0);
  struct stat by_fd {};
  struct stat by_name {};
  ASSERT_EQ(::fstat(fd, &by_fd), 0);
  ASSERT_EQ(::stat((dir() / "relay.db-wal").c_str(), &by_name), 0);
  EXPECT_EQ(by_fd.st_dev, by_name.st_dev);
  EXPECT_EQ(by_fd.st_ino, by_name.st_ino);
  EXPECT_GT(by_name.st_size, 0);  // the commit above is in it
}

TEST_F(RelayStoreTest, BoardItemsStopAtTheByteBudget) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(*store->InsertBoard(IdOf(5), Bytes(32, 1), Bytes(32, 2), 100, 100));
  ByteArray<32> k{};
  for (int i = 0; i < 4; ++i) {
    auto b = store->FindBoard(IdOf(5), BoardKeyKind::kWrite, k);
    ASSERT_TRUE(b.ok() && b->has_value());
    ASSERT_TRUE(store->InsertBoardItem(**b, 0, 100, 100, Bytes(100, 3)).ok());
  }
  ASSERT_TRUE(store->Commit().ok());
  auto b = store->FindBoard(IdOf(5), BoardKeyKind::kRead, k);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ(k[0], 1);
  EXPECT_EQ((*b)->next_seq, 5u);
  auto items = store->BoardItemsAfter((*b)->row, 0, 0, 64, 250, 10);
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 2u);  // 110 + 110 fit in 250, a third does not
  EXPECT_EQ((*items)[1].seq, 2u);
}

}  // namespace
}  // namespace rhizome::relay
