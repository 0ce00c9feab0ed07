// RelayStore: opening, schema versions, file modes, counters, the checkpoint
// thread, and messages staged in memory by the open transaction.
#include "store.h"

#include <gtest/gtest.h>
#include <sqlcipher/sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "message_journal.h"
#include "relay_test_util.h"
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

// A blob of `size` bytes that no SQLite structure holds by chance: a
// pseudo-random sequence (an LCG) seeded with `seed`.
Bytes MarkerBlob(std::uint32_t seed, std::size_t size = 1280) {
  Bytes b(size);
  std::uint32_t x = 0x9e3779b9u ^ (seed * 0x85ebca6bu);
  for (auto& c : b) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<std::uint8_t>(x >> 24);
  }
  return b;
}

using testing::FilesHolding;

// The seqs of `messages`, in order.
std::vector<std::int64_t> SeqsOf(const std::vector<StoredMessage>& messages) {
  std::vector<std::int64_t> seqs;
  for (const auto& m : messages) seqs.push_back(m.seq);
  return seqs;
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
  // The row of the fixture's queue (recipient IdOf(1)); 0 on failure.
  std::int64_t QueueRow(RelayStore& store) {
    auto q = store.FindQueueByRecipient(IdOf(1));
    EXPECT_TRUE(q.ok() && q->has_value());
    return q.ok() && q->has_value() ? (*q)->row : 0;
  }
  // {msg_count, msg_bytes} of the fixture's queue (sender IdOf(2)), or
  // {~0, ~0} if it is not there.
  std::pair<std::uint64_t, std::uint64_t> Counters(RelayStore& store) {
    ByteArray<32> send_key{};
    auto q = store.FindQueueBySender(IdOf(2), send_key);
    EXPECT_TRUE(q.ok());
    if (!q.ok() || !q->has_value()) return {~0ull, ~0ull};
    return {(*q)->msg_count, (*q)->msg_bytes};
  }
  // A message for Insert(): id IdOf(10 + seq), `size` bytes of value seq,
  // received at 0.
  struct Put {
    std::int64_t seq;
    std::size_t size;
    std::uint64_t expires_at = 1000;
  };
  // Closes `store` (a crash as far as staged work goes) and opens the data
  // directory again; nullptr on failure.
  std::unique_ptr<RelayStore> Reopen(std::unique_ptr<RelayStore>& store) {
    store.reset();
    auto s = RelayStore::Open(dir(), Durability::kNoFsync);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  // The fixture queue (row `row`) holds `count` messages of `bytes` in all,
  // with exactly these seqs, oldest first.
  void ExpectQueue(RelayStore& store, std::int64_t row, std::uint64_t count, std::uint64_t bytes,
                   const std::vector<std::int64_t>& seqs) {
    EXPECT_EQ(Counters(store), std::make_pair(count, bytes));
    auto stored = store.MessagesAfter(row, 0, 0, 100);
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(SeqsOf(*stored), seqs);
  }
  // Inserts `puts` into the open transaction (held in memory), or with
  // `commit` in a transaction of their own (journaled). False on the first
  // failure.
  static bool Insert(RelayStore& store, std::int64_t row, std::initializer_list<Put> puts,
                     bool commit = false) {
    if (commit && !store.Begin().ok()) return false;
    for (const Put& m : puts) {
      const Bytes blob(m.size, static_cast<std::uint8_t>(m.seq));
      if (!store.InsertMessage(row, m.seq, IdOf(static_cast<std::uint8_t>(10 + m.seq)), 0,
                               m.expires_at, blob)) {
        return false;
      }
    }
    return !commit || store.Commit().ok();
  }
  // Inserts `puts` outside a transaction: straight into SQLite.
  static bool InsertIntoSqlite(RelayStore& store, std::int64_t row,
                               std::initializer_list<Put> puts) {
    return !store.in_transaction() && Insert(store, row, puts);
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
  ASSERT_TRUE(*store->InsertQueue(IdOf(1), IdOf(2), key, 0));
  auto q = store->FindQueueByRecipient(IdOf(1));
  ASSERT_TRUE(q.ok() && q->has_value());
  // Outside a transaction: straight into SQLite (not the journal).
  for (std::int64_t i = 1; i <= 64; ++i) {
    ASSERT_TRUE(store
                    ->InsertMessage((*q)->row, i, IdOf(static_cast<std::uint8_t>(i)), 0, 100,
                                    Bytes(16384, static_cast<std::uint8_t>(i)))
                    .ok());
  }
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

// SyncWal() syncs what changed since the last sync, and only that: the WAL
// after a commit that wrote SQLite frames, a journal file after a batch. What
// it skips must not be what an acknowledgement relies on: a reopen after each
// step holds what was committed.
TEST_F(RelayStoreTest, SyncWalSyncsOnlyWhatChangedSinceTheLastSync) {
  auto store = OpenWithQueue(Durability::kFsyncByCaller);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_GT(row, 0);
  // The first sync covers what Open() and the queue's commit wrote.
  ASSERT_TRUE(store->SyncWal().ok());
  auto c0 = store->sync_counts_for_test();
  EXPECT_EQ(c0.wal, 1u);
  EXPECT_EQ(c0.journal_files, 0u);
  // Nothing new: nothing synced.
  ASSERT_TRUE(store->SyncWal().ok());
  EXPECT_EQ(store->sync_counts_for_test().wal, c0.wal);
  EXPECT_EQ(store->sync_counts_for_test().journal_files, c0.journal_files);
  // A message: a journal batch only (held messages leave SQLite's counters alone).
  const Bytes blob(1280, 0x5a);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 1, IdOf(9), 0, 100, blob).ok());
  ASSERT_TRUE(store->Commit().ok());
  ASSERT_TRUE(store->SyncWal().ok());
  auto c1 = store->sync_counts_for_test();
  EXPECT_EQ(c1.journal_files, c0.journal_files + 1);
  EXPECT_EQ(c1.wal, c0.wal);
  // A change in SQLite (the send key): the WAL, and no journal file.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->SetSendKey(row, Bytes(32, 3)).value());
  ASSERT_TRUE(store->Commit().ok());
  ASSERT_TRUE(store->SyncWal().ok());
  auto c2 = store->sync_counts_for_test();
  EXPECT_EQ(c2.wal, c1.wal + 1);
  EXPECT_EQ(c2.journal_files, c1.journal_files);
  // Both in one commit: both.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 2, IdOf(10), 0, 100, blob).ok());
  auto inserted = store->InsertQueue(IdOf(3), IdOf(4), protocol::PublicKey{}, 0);
  ASSERT_TRUE(inserted.ok() && *inserted);
  ASSERT_TRUE(store->Commit().ok());
  ASSERT_TRUE(store->SyncWal().ok());
  auto c3 = store->sync_counts_for_test();
  EXPECT_EQ(c3.wal, c2.wal + 1);
  EXPECT_EQ(c3.journal_files, c2.journal_files + 1);
  // A rotation: the held messages move into SQLite (the WAL), the retired
  // file was synced before and is not written again (not synced again).
  store->SetJournalLimitsForTest(kJournalRotateBytes, std::chrono::milliseconds(0));
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 3, IdOf(11), 0, 100, blob).ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->journaled_message_count(), 0u);
  ASSERT_TRUE(store->SyncWal().ok());
  auto c4 = store->sync_counts_for_test();
  EXPECT_EQ(c4.wal, c3.wal + 1);
  EXPECT_EQ(c4.journal_files, c3.journal_files);
  // The next batch starts a new file, which is synced.
  store->SetJournalLimitsForTest(kJournalRotateBytes, std::chrono::hours(1));
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 4, IdOf(12), 0, 100, blob).ok());
  ASSERT_TRUE(store->Commit().ok());
  ASSERT_TRUE(store->SyncWal().ok());
  auto c5 = store->sync_counts_for_test();
  EXPECT_EQ(c5.journal_files, c4.journal_files + 1);
  store.reset();
  auto reopened = RelayStore::Open(dir(), Durability::kFsyncByCaller);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  auto left = (*reopened)->MessagesAfter(row, 0, 0, 10);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(SeqsOf(*left), (std::vector<std::int64_t>{1, 2, 3, 4}));
  auto second = (*reopened)->FindQueueByRecipient(IdOf(3));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->has_value());
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

// ---- messages staged by the open transaction ---------------------------------

// SECURITY: a message acknowledged in the turn that stored it leaves no copy
// in any file of the data directory.
TEST_F(RelayStoreTest, MessageStoredAndAcknowledgedInOneTransactionNeverReachesAnyFile) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  const Bytes acknowledged = MarkerBlob(1);
  const Bytes kept = MarkerBlob(2);

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 1, IdOf(11), 0, 1000, acknowledged).ok());
  EXPECT_EQ(store->staged_message_count(), 1u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{1280}));
  auto deleted = store->DeleteMessage(row, 1);
  ASSERT_TRUE(deleted.ok());
  ASSERT_TRUE(deleted->has_value());
  EXPECT_EQ(**deleted, 1280u);
  EXPECT_EQ(store->staged_message_count(), 0u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{0}, std::uint64_t{0}));
  auto again = store->DeleteMessage(row, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{0}, std::uint64_t{0}));
  EXPECT_EQ(FilesHolding(dir(), acknowledged), std::vector<std::string>{});

  // Control: a message committed without acknowledgement is found (in the
  // journal now, in the database file after a reopen and a checkpoint), so
  // the scan can fail.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 2, IdOf(12), 0, 1000, kept).ok());
  ASSERT_TRUE(store->Commit().ok());
  const auto journaled = FilesHolding(dir(), kept);
  ASSERT_EQ(journaled.size(), 1u);
  EXPECT_TRUE(ParseJournalFileName(journaled[0]).has_value()) << journaled[0];

  store = Reopen(store);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CheckpointForTest().ok());
  store.reset();
  EXPECT_EQ(FilesHolding(dir(), acknowledged), std::vector<std::string>{});
  const auto holding_kept = FilesHolding(dir(), kept);
  EXPECT_NE(std::find(holding_kept.begin(), holding_kept.end(), "relay.db"), holding_kept.end());
}

TEST_F(RelayStoreTest, StagedMessagesAreReadAsStoredAndSurviveCommitAndReopen) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  // seq -> blob size 1280 + seq; seq 4 expires at 50, the others at 1000.
  auto blob = [](std::int64_t seq) {
    return MarkerBlob(static_cast<std::uint32_t>(seq), 1280 + static_cast<std::size_t>(seq));
  };
  auto insert = [&](std::int64_t seq) {
    const auto id = IdOf(static_cast<std::uint8_t>(0x40 + seq));
    return store->InsertMessage(row, seq, id, 10 * static_cast<std::uint64_t>(seq),
                                seq == 4 ? 50 : 1000, blob(seq));
  };
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(insert(1).ok());
  ASSERT_TRUE(insert(2).ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->staged_message_count(), 0u);

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(insert(3).ok());
  ASSERT_TRUE(insert(4).ok());
  ASSERT_TRUE(insert(5).ok());
  EXPECT_EQ(store->staged_message_count(), 3u);
  const std::uint64_t all_bytes = 5 * 1280 + 1 + 2 + 3 + 4 + 5;
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{5}, all_bytes));

  // All five, whole, oldest first: staged now, stored after the reopen.
  auto expect_all_five = [&](RelayStore& s) {
    auto all = s.MessagesAfter(row, 0, 0, 100);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(SeqsOf(*all), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
    for (const auto& m : *all) {
      EXPECT_EQ(m.message_id, IdOf(static_cast<std::uint8_t>(0x40 + m.seq))) << m.seq;
      EXPECT_EQ(m.received_at, 10 * static_cast<std::uint64_t>(m.seq)) << m.seq;
      EXPECT_EQ(m.blob, blob(m.seq)) << m.seq;
    }
  };
  expect_all_five(*store);
  // Expired (expires_at <= now) staged messages are left out.
  auto live = store->MessagesAfter(row, 0, 50, 100);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(SeqsOf(*live), (std::vector<std::int64_t>{1, 2, 3, 5}));
  auto still_live = store->MessagesAfter(row, 0, 49, 100);
  ASSERT_TRUE(still_live.ok());
  EXPECT_EQ(SeqsOf(*still_live), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  // after_seq and limit across stored and staged messages.
  auto first3 = store->MessagesAfter(row, 0, 0, 3);
  ASSERT_TRUE(first3.ok());
  EXPECT_EQ(SeqsOf(*first3), (std::vector<std::int64_t>{1, 2, 3}));
  auto after1 = store->MessagesAfter(row, 1, 100, 2);
  ASSERT_TRUE(after1.ok());
  EXPECT_EQ(SeqsOf(*after1), (std::vector<std::int64_t>{2, 3}));
  auto after2 = store->MessagesAfter(row, 2, 100, 100);
  ASSERT_TRUE(after2.ok());
  EXPECT_EQ(SeqsOf(*after2), (std::vector<std::int64_t>{3, 5}));
  auto after3 = store->MessagesAfter(row, 3, 0, 1);
  ASSERT_TRUE(after3.ok());
  EXPECT_EQ(SeqsOf(*after3), (std::vector<std::int64_t>{4}));
  auto after5 = store->MessagesAfter(row, 5, 0, 100);
  ASSERT_TRUE(after5.ok());
  EXPECT_TRUE(after5->empty());
  auto none = store->MessagesAfter(row, 0, 0, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->staged_message_count(), 0u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{5}, all_bytes));
  store.reset();

  auto reopened = RelayStore::Open(dir(), Durability::kNoFsync);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_EQ(Counters(**reopened), std::make_pair(std::uint64_t{5}, all_bytes));
  expect_all_five(**reopened);
  auto totals = (*reopened)->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->bytes, all_bytes);
  EXPECT_EQ(totals->max_message_seq, 5);
}

TEST_F(RelayStoreTest, RollbackAndCloseDropStagedMessages) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 1, IdOf(11), 0, 1000, MarkerBlob(1)).ok());
  ASSERT_TRUE(store->Commit().ok());

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 2, IdOf(12), 0, 1000, MarkerBlob(2)).ok());
  ASSERT_TRUE(store->InsertMessage(row, 3, IdOf(13), 0, 1000, MarkerBlob(3)).ok());
  EXPECT_EQ(store->staged_message_count(), 2u);
  store->Rollback();
  EXPECT_EQ(store->staged_message_count(), 0u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{1280}));
  auto left = store->MessagesAfter(row, 0, 0, 100);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(SeqsOf(*left), (std::vector<std::int64_t>{1}));
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->bytes, 1280u);
  EXPECT_EQ(totals->max_message_seq, 3) << "seqs of a rolled-back transaction are not reused";
  // A later transaction starts empty and commits only its own messages.
  ASSERT_TRUE(store->Begin().ok());
  EXPECT_EQ(store->staged_message_count(), 0u);
  ASSERT_TRUE(store->InsertMessage(row, 4, IdOf(14), 0, 1000, MarkerBlob(4)).ok());
  ASSERT_TRUE(store->Commit().ok());
  // Closing with messages staged rolls them back too.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 5, IdOf(15), 0, 1000, MarkerBlob(5)).ok());
  auto reopened = Reopen(store);
  ASSERT_NE(reopened, nullptr);
  ExpectQueue(*reopened, row, 2, 2560, {1, 4});
  EXPECT_EQ(FilesHolding(dir(), MarkerBlob(2)), std::vector<std::string>{});
  EXPECT_EQ(FilesHolding(dir(), MarkerBlob(5)), std::vector<std::string>{});
}

TEST_F(RelayStoreTest, DeletingAQueueFreesItsStagedAndStoredMessages) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 1280}, {2, 1300}}, /*commit=*/true));

  ASSERT_TRUE(store->Begin().ok());
  protocol::PublicKey key{};
  key.fill(8);
  ASSERT_TRUE(*store->InsertQueue(IdOf(3), IdOf(4), key, 0));
  auto other = store->FindQueueByRecipient(IdOf(3));
  ASSERT_TRUE(other.ok() && other->has_value());
  const std::int64_t other_row = (*other)->row;
  ASSERT_TRUE(Insert(*store, row, {{3, 1500}}));
  ASSERT_TRUE(Insert(*store, other_row, {{4, 1200}}));
  ASSERT_TRUE(Insert(*store, row, {{5, 1100}}));
  EXPECT_EQ(store->staged_message_count(), 3u);
  auto freed = store->DeleteQueue(row);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 1280u + 1300u + 1500u + 1100u);
  EXPECT_EQ(store->staged_message_count(), 1u);  // the other queue's
  ByteArray<32> send_key{};
  auto gone = store->FindQueueBySender(IdOf(2), send_key);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto nothing = store->MessagesAfter(row, 0, 0, 100);
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->empty());
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->queues, 1u);
  EXPECT_EQ(totals->bytes, 1200u);
  ASSERT_TRUE(store->Commit().ok());
  store.reset();

  auto reopened = RelayStore::Open(dir(), Durability::kNoFsync);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  nothing = (*reopened)->MessagesAfter(row, 0, 0, 100);
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->empty());
  auto kept = (*reopened)->MessagesAfter(other_row, 0, 0, 100);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(SeqsOf(*kept), (std::vector<std::int64_t>{4}));
  totals = (*reopened)->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->queues, 1u);
  EXPECT_EQ(totals->bytes, 1200u);
  EXPECT_EQ(totals->max_message_seq, 4);
}

TEST_F(RelayStoreTest, TotalsCountStagedBytesAndSequenceNumbers) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 1280}}, /*commit=*/true));

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(Insert(*store, row, {{2, 700}, {3, 500}}));
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->queues, 1u);
  EXPECT_EQ(totals->bytes, 1280u + 700u + 500u);
  EXPECT_EQ(totals->max_message_seq, 3);
  ASSERT_TRUE(store->DeleteMessage(row, 2).ok());
  totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->bytes, 1280u + 500u);
  EXPECT_EQ(totals->max_message_seq, 3);
  ASSERT_TRUE(store->Commit().ok());

  totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->bytes, 1280u + 500u);
  EXPECT_EQ(totals->max_message_seq, 3);
}

TEST_F(RelayStoreTest, ExpiryRemovesExpiredStagedMessagesWithinTheRowLimit) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 1281, 50}, {2, 1282, 100}}, /*commit=*/true));

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(Insert(*store, row, {{3, 1283, 100}, {4, 1284, 101}, {5, 1285, 20}}));
  // Expired at 100: 1, 2 (stored), 3, 5 (staged); 4 is not.
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  auto batch = store->ExpireBatch(100, 3);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->messages, 3u);
  messages += batch->messages;
  bytes += batch->bytes;
  batch = store->ExpireBatch(100, 3);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->messages, 1u);
  messages += batch->messages;
  bytes += batch->bytes;
  batch = store->ExpireBatch(100, 3);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->messages, 0u);
  EXPECT_EQ(batch->bytes, 0u);
  EXPECT_EQ(messages, 4u);
  EXPECT_EQ(bytes, 1281u + 1282u + 1283u + 1285u);
  // A batch of zero rows expires nothing.
  ASSERT_TRUE(Insert(*store, row, {{6, 1286, 10}}));
  batch = store->ExpireBatch(100, 0);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->messages, 0u);
  batch = store->ExpireBatch(100, 1);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->messages, 1u);
  EXPECT_EQ(batch->bytes, 1286u);

  EXPECT_EQ(store->staged_message_count(), 1u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{1284}));
  auto left = store->MessagesAfter(row, 0, 0, 100);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(SeqsOf(*left), (std::vector<std::int64_t>{4}));
  ASSERT_TRUE(store->Commit().ok());
  store.reset();

  auto reopened = RelayStore::Open(dir(), Durability::kNoFsync);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_EQ(Counters(**reopened), std::make_pair(std::uint64_t{1}, std::uint64_t{1284}));
  left = (*reopened)->MessagesAfter(row, 0, 0, 100);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(SeqsOf(*left), (std::vector<std::int64_t>{4}));
}

TEST_F(RelayStoreTest, StagingMoreThanTheByteLimitWritesTheMessagesIntoTheTransaction) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  constexpr std::size_t kBlobBytes = 64 << 10;
  constexpr auto kFull = static_cast<std::int64_t>(kMaxStagedMessageBytes / kBlobBytes);
  auto blob = [](std::int64_t seq) { return Bytes(kBlobBytes, static_cast<std::uint8_t>(seq)); };
  ASSERT_TRUE(store->Begin().ok());
  for (std::int64_t seq = 1; seq <= kFull; ++seq) {
    ASSERT_TRUE(store->InsertMessage(row, seq, IdOf(1), 0, 1000, blob(seq)).ok());
  }
  EXPECT_EQ(store->staged_message_count(), static_cast<std::uint64_t>(kFull));  // not above
  ASSERT_TRUE(store->InsertMessage(row, kFull + 1, IdOf(1), 0, 1000, blob(kFull + 1)).ok());
  EXPECT_EQ(store->staged_message_count(), 0u);
  ASSERT_TRUE(store->InsertMessage(row, kFull + 2, IdOf(1), 0, 1000, blob(kFull + 2)).ok());
  ASSERT_TRUE(store->InsertMessage(row, kFull + 3, IdOf(1), 0, 1000, blob(kFull + 3)).ok());
  EXPECT_EQ(store->staged_message_count(), 2u);

  // Written and staged messages read alike within the transaction.
  const std::int64_t total = kFull + 3;
  EXPECT_EQ(Counters(*store), std::make_pair(static_cast<std::uint64_t>(total),
                                             static_cast<std::uint64_t>(total) * kBlobBytes));
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->bytes, static_cast<std::uint64_t>(total) * kBlobBytes);
  EXPECT_EQ(totals->max_message_seq, total);
  auto all = store->MessagesAfter(row, 0, 0, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<std::size_t>(total));
  for (std::int64_t i = 0; i < total; ++i) {
    EXPECT_EQ((*all)[static_cast<std::size_t>(i)].seq, i + 1);
  }
  auto written = store->DeleteMessage(row, 1);
  ASSERT_TRUE(written.ok() && written->has_value());
  EXPECT_EQ(**written, kBlobBytes);
  auto staged = store->DeleteMessage(row, total);
  ASSERT_TRUE(staged.ok() && staged->has_value());
  EXPECT_EQ(**staged, kBlobBytes);
  EXPECT_EQ(store->staged_message_count(), 1u);
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->staged_message_count(), 0u);
  store.reset();

  auto reopened = RelayStore::Open(dir(), Durability::kNoFsync);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_EQ(Counters(**reopened),
            std::make_pair(static_cast<std::uint64_t>(total - 2),
                           static_cast<std::uint64_t>(total - 2) * kBlobBytes));
  all = (*reopened)->MessagesAfter(row, 0, 0, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<std::size_t>(total - 2));
  for (std::int64_t i = 0; i < total - 2; ++i) {
    const auto& m = (*all)[static_cast<std::size_t>(i)];
    EXPECT_EQ(m.seq, i + 2);
    EXPECT_EQ(m.blob, blob(i + 2)) << m.seq;
  }
  totals = (*reopened)->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->max_message_seq, total - 1);
}

TEST_F(RelayStoreTest, ReusingAStagedSequenceNumberIsAnInternalError) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->InsertMessage(row, 7, IdOf(11), 0, 1000, MarkerBlob(1)).ok());
  auto reused = store->InsertMessage(row, 7, IdOf(12), 0, 1000, MarkerBlob(2, 900));
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.error().code, Errc::kInternal);
  // The first message is untouched and the transaction still commits.
  EXPECT_EQ(store->staged_message_count(), 1u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{1280}));
  ASSERT_TRUE(store->Commit().ok());
  auto stored = store->MessagesAfter(row, 0, 0, 100);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(SeqsOf(*stored), (std::vector<std::int64_t>{7}));
  EXPECT_EQ((*stored)[0].message_id, IdOf(11));
  EXPECT_EQ((*stored)[0].blob, MarkerBlob(1));
}

// Sequence numbers are unique across queues (messages.seq is the primary
// key), so a seq staged for one queue is "already staged" for every queue.
TEST_F(RelayStoreTest, ReusingASequenceNumberStagedForAnotherQueueIsAnInternalError) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(store->Begin().ok());
  protocol::PublicKey key{};
  key.fill(8);
  ASSERT_TRUE(*store->InsertQueue(IdOf(3), IdOf(4), key, 0));
  auto other = store->FindQueueByRecipient(IdOf(3));
  ASSERT_TRUE(other.ok() && other->has_value());
  ASSERT_TRUE(store->InsertMessage(row, 7, IdOf(11), 0, 1000, MarkerBlob(1)).ok());
  auto reused = store->InsertMessage((*other)->row, 7, IdOf(12), 0, 1000, MarkerBlob(2));
  EXPECT_FALSE(reused.ok());
  if (!reused.ok()) {
    EXPECT_EQ(reused.error().code, Errc::kInternal);
  }
  EXPECT_EQ(store->staged_message_count(), 1u);
  auto committed = store->Commit();
  EXPECT_TRUE(committed.ok()) << committed.error().message;
}

TEST_F(RelayStoreTest, InsertOutsideATransactionIsWrittenAtOnce) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_FALSE(store->in_transaction());
  ASSERT_TRUE(store->InsertMessage(row, 1, IdOf(11), 0, 1000, MarkerBlob(1)).ok());
  EXPECT_EQ(store->staged_message_count(), 0u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{1280}));
  EXPECT_FALSE(FilesHolding(dir(), MarkerBlob(1)).empty());  // in the WAL
  auto reopened = Reopen(store);
  ASSERT_NE(reopened, nullptr);
  ExpectQueue(*reopened, row, 1, 1280, {1});
}

}  // namespace
}  // namespace rhizome::relay

namespace rhizome::relay {
namespace {

// {msg_count, msg_bytes} as the queues table holds them and as the messages
// table adds up, read with a separate connection (the store must be closed).
std::pair<std::pair<std::int64_t, std::int64_t>, std::pair<std::int64_t, std::int64_t>>
TableCounters(const fs::path& db_path) {
  sqlite3* db = nullptr;
  std::pair<std::int64_t, std::int64_t> columns{-1, -1}, rows{-1, -1};
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db);
    return {columns, rows};
  }
  auto query = [&](const char* sql, std::pair<std::int64_t, std::int64_t>& out) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      out = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
    }
    sqlite3_finalize(st);
  };
  query("SELECT coalesce(sum(msg_count), 0), coalesce(sum(msg_bytes), 0) FROM queues", columns);
  query("SELECT count(*), coalesce(sum(length(blob)), 0) FROM messages", rows);
  sqlite3_close_v2(db);
  return {columns, rows};
}

// Deleting stored messages inside a transaction brings the queue's counter
// columns down once, at the commit: the store's answers include the pending
// decrements meanwhile, a rollback forgets them, and after the commit the
// columns equal what the rows add up to.
TEST_F(RelayStoreTest, DeletionsOfStoredMessagesReachTheCountersAtCommit) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(InsertIntoSqlite(*store, row, {{1, 1280}, {2, 1300}, {3, 1500}}));

  // A rollback forgets a deletion and its decrement.
  ASSERT_TRUE(store->Begin().ok());
  auto size = store->DeleteMessage(row, 3);
  ASSERT_TRUE(size.ok() && size->has_value());
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{2}, std::uint64_t{2580}));
  store->Rollback();
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{3}, std::uint64_t{4080}));

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->DeleteMessage(row, 1).ok());
  ASSERT_TRUE(store->DeleteMessage(row, 2).ok());
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{1500}));
  ASSERT_TRUE(Insert(*store, row, {{4, 1100}}));
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{2}, std::uint64_t{2600}));
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->bytes, 2600u);
  auto again = store->DeleteMessage(row, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "deleted twice";
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{2}, std::uint64_t{2600}));

  // A queue deleted after some of its stored messages frees only the rest.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->DeleteMessage(row, 3).ok());
  auto freed = store->DeleteQueue(row);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 1100u);
  store->Rollback();
  store = Reopen(store);  // moves the journaled seq 4 into SQLite
  ASSERT_NE(store, nullptr);
  store.reset();
  auto [columns, rows] = TableCounters(dir() / "relay.db");
  EXPECT_EQ(columns, std::make_pair(std::int64_t{2}, std::int64_t{2600}));
  EXPECT_EQ(columns, rows);
}

}  // namespace
}  // namespace rhizome::relay

namespace rhizome::relay {
namespace {

// A seq that does not grow (only an engine bug could do this) is refused at
// the insert, whether the older seq is in SQLite, journaled or held; after a
// rollback the store's answers are those of before the transaction.
TEST_F(RelayStoreTest, SeqThatDoesNotGrowIsRefusedAndChangesNothing) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(InsertIntoSqlite(*store, row, {{1, 1280}}));
  ASSERT_TRUE(Insert(*store, row, {{2, 1300}}, /*commit=*/true));
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(Insert(*store, row, {{3, 1000}}));
  for (std::int64_t seq : {1, 2, 3}) {
    auto st = store->InsertMessage(row, seq, IdOf(50), 0, 1000, Bytes(700, 1));
    ASSERT_FALSE(st.ok()) << "seq " << seq << " was reused";
    EXPECT_EQ(st.error().code, Errc::kInternal);
  }
  store->Rollback();
  EXPECT_FALSE(store->in_transaction());
  EXPECT_EQ(store->staged_message_count(), 0u);
  ExpectQueue(*store, row, 2, 2580, {1, 2});
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->bytes, 2580u);
  EXPECT_EQ(totals->max_message_seq, 3);
  // Also after a reopen (the seqs in SQLite count).
  store = Reopen(store);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->InsertMessage(row, 2, IdOf(50), 0, 1000, Bytes(700, 1)).ok());
  EXPECT_TRUE(store->InsertMessage(row, 3, IdOf(50), 0, 1000, Bytes(700, 1)).ok());
}

}  // namespace
}  // namespace rhizome::relay

// ---- the message journal ----------------------------------------------------

namespace rhizome::relay {
namespace {

using testing::ReadAll;
using testing::WriteAll;

// The journal files in the data directory, by name.
std::vector<std::string> JournalFiles(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (ParseJournalFileName(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A committed message lives in the journal, not in SQLite; its ACK in a
// later transaction is a deletion record; a reopen moves the rest into SQLite
// and removes the journal, and the acknowledged one never comes back.
TEST_F(RelayStoreTest, JournaledMessagesAndTheirDeletionsSurviveAReopen) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 1280}, {2, 1300}}, /*commit=*/true));
  ASSERT_TRUE(Insert(*store, row, {{3, 1500}}, /*commit=*/true));
  EXPECT_EQ(store->journaled_message_count(), 3u);
  EXPECT_EQ(store->staged_message_count(), 0u);
  EXPECT_EQ(TableCounters(dir() / "relay.db"),
            std::make_pair(std::make_pair(std::int64_t{0}, std::int64_t{0}),
                           std::make_pair(std::int64_t{0}, std::int64_t{0})))
      << "journaled messages are not in SQLite";
  ASSERT_EQ(JournalFiles(dir()).size(), 1u);

  ASSERT_TRUE(store->Begin().ok());
  auto deleted = store->DeleteMessage(row, 2);
  ASSERT_TRUE(deleted.ok() && deleted->has_value());
  ASSERT_TRUE(store->Commit().ok());
  ExpectQueue(*store, row, 2, 2780, {1, 3});
  EXPECT_EQ(store->journaled_message_count(), 2u);
  // Outside a transaction, a journaled message's deletion commits itself.
  deleted = store->DeleteMessage(row, 3);
  ASSERT_TRUE(deleted.ok() && deleted->has_value());
  EXPECT_FALSE(store->in_transaction());
  EXPECT_EQ(store->journaled_message_count(), 1u);

  store = Reopen(store);
  ASSERT_NE(store, nullptr);
  ExpectQueue(*store, row, 1, 1280, {1});
  EXPECT_EQ(store->journaled_message_count(), 0u);
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{});
  auto [columns, rows] = TableCounters(dir() / "relay.db");
  EXPECT_EQ(columns, std::make_pair(std::int64_t{1}, std::int64_t{1280}));
  EXPECT_EQ(columns, rows);
  auto totals = store->LoadTotals();
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->max_message_seq, 3) << "a journaled seq is never reused";
}

// A crash in the middle of a batch: the reopen keeps the batches before it,
// drops the cut one, and the store works on (a new file).
TEST_F(RelayStoreTest, TornJournalTailIsDroppedAtOpen) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 1280}}, /*commit=*/true));
  const auto files = JournalFiles(dir());
  ASSERT_EQ(files.size(), 1u);
  const auto one_batch = fs::file_size(dir() / files[0]);
  ASSERT_TRUE(Insert(*store, row, {{2, 1280}, {3, 1280}}, /*commit=*/true));
  store.reset();
  const Bytes whole = ReadAll(dir() / files[0]);
  ASSERT_GT(whole.size(), one_batch);
  WriteAll(dir() / files[0], ByteSpan(whole.data(), one_batch + (whole.size() - one_batch) / 2));

  auto s = RelayStore::Open(dir(), Durability::kNoFsync);
  ASSERT_TRUE(s.ok()) << s.error().message;
  store = std::move(*s);
  ExpectQueue(*store, row, 1, 1280, {1});
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{});
  ASSERT_TRUE(Insert(*store, row, {{4, 1000}}, /*commit=*/true));
  ExpectQueue(*store, row, 2, 2280, {1, 4});
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{JournalFileName(2)});
}

// A journal file whose batch is intact but holds a malformed record is
// damage: Open() refuses to guess.
TEST_F(RelayStoreTest, DamagedJournalFailsTheOpen) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  store.reset();
  Bytes body = {'Z'};
  Bytes file(kJournalBatchHeaderBytes);
  const std::uint32_t magic = kJournalMagic;
  const std::uint32_t crc = static_cast<std::uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), body.data(), 1));
  for (int i = 0; i < 4; ++i) {
    file[i] = static_cast<std::uint8_t>(magic >> (8 * i));
    file[4 + i] = static_cast<std::uint8_t>(1u >> (8 * i));
    file[8 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
  }
  file.push_back(body[0]);
  WriteAll(dir() / JournalFileName(1), file);
  auto s = RelayStore::Open(dir(), Durability::kNoFsync);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kCorrupt);
}

// Above kMaxStagedMessageBytes held, every held message moves into SQLite and
// the journal file is retired (removed once the commit is durable); later
// batches go to a new file. A copy of the retired file put back (a crash
// before its removal reached the disk) is void: nothing in it comes back.
TEST_F(RelayStoreTest, HeldMessagesMoveIntoSqliteAndTheRetiredFileIsVoid) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 16384}}, /*commit=*/true));
  ASSERT_EQ(JournalFiles(dir()), std::vector<std::string>{JournalFileName(1)});
  const Bytes first_file = ReadAll(dir() / JournalFileName(1));

  constexpr auto kPerTurn = static_cast<std::int64_t>(kMaxStagedMessageBytes / 16384 / 4);
  std::int64_t seq = 1;
  while (store->journaled_message_count() + 1 >= static_cast<std::uint64_t>(seq)) {
    ASSERT_TRUE(store->Begin().ok());
    for (std::int64_t i = 0; i < kPerTurn; ++i) {
      ++seq;
      ASSERT_TRUE(store->InsertMessage(row, seq, IdOf(1), 0, 1000, Bytes(16384, 1)).ok());
    }
    ASSERT_TRUE(store->Commit().ok());
    ASSERT_LT(seq, static_cast<std::int64_t>(2 * kMaxStagedMessageBytes / 16384))
        << "never moved into SQLite";
  }
  EXPECT_EQ(store->journaled_message_count(), 0u);
  const std::int64_t last = seq;
  EXPECT_EQ(TableCounters(dir() / "relay.db").second.first, last);
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{}) << "the retired file stays";

  ASSERT_TRUE(Insert(*store, row, {{last + 1, 100}}, /*commit=*/true));
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{JournalFileName(2)});
  EXPECT_EQ(store->journaled_message_count(), 1u);
  // Acknowledge everything that moved into SQLite.
  ASSERT_TRUE(store->Begin().ok());
  for (std::int64_t i = 1; i <= last; ++i) {
    auto d = store->DeleteMessage(row, i);
    ASSERT_TRUE(d.ok() && d->has_value()) << i;
  }
  ASSERT_TRUE(store->Commit().ok());

  store.reset();
  WriteAll(dir() / JournalFileName(1), first_file);
  store = [&] {
    auto s = RelayStore::Open(dir(), Durability::kNoFsync);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }();
  ASSERT_NE(store, nullptr);
  ExpectQueue(*store, row, 1, 100, {last + 1});
}

// kFsyncByCaller: a retired file goes only after SyncWal() made the commit
// that voided it durable; until then a crash could still need it.
TEST_F(RelayStoreTest, RetiredFileWaitsForTheSyncThatMakesItVoid) {
  auto store = OpenWithQueue(Durability::kFsyncByCaller);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 16384}}, /*commit=*/true));
  ASSERT_TRUE(store->SyncWal().ok());
  // One transaction past the held limit: the message that crosses it moves
  // everything held into SQLite; the one after it starts a new file.
  ASSERT_TRUE(store->Begin().ok());
  const auto n = static_cast<std::int64_t>(kMaxStagedMessageBytes / 16384) + 1;
  for (std::int64_t seq = 2; seq <= n + 1; ++seq) {
    ASSERT_TRUE(store->InsertMessage(row, seq, IdOf(1), 0, 1000, Bytes(16384, 2)).ok());
  }
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->journaled_message_count(), 1u);
  const auto both = std::vector<std::string>{JournalFileName(1), JournalFileName(2)};
  EXPECT_EQ(JournalFiles(dir()), both) << "removed before the commit that voids it was synced";
  ASSERT_TRUE(Insert(*store, row, {{n + 2, 100}}, /*commit=*/true));
  EXPECT_EQ(JournalFiles(dir()), both);
  ASSERT_TRUE(store->SyncWal().ok());
  ASSERT_TRUE(Insert(*store, row, {{n + 3, 100}}, /*commit=*/true));
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{JournalFileName(2)});
  EXPECT_EQ(store->journaled_message_count(), 3u);
  EXPECT_EQ(TableCounters(dir() / "relay.db").second.first, n);
}

// A journal write that fails part-way (here: the file size limit) fails the
// commit, leaves no part of the batch in the file, and the store goes on
// with what was committed before.
TEST_F(RelayStoreTest, FailedJournalWriteLeavesNothingBehind) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 1280}}, /*commit=*/true));
  const auto file = dir() / JournalFileName(1);
  const auto committed = fs::file_size(file);

  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(Insert(*store, row, {{2, 1280}, {3, 1280}}));
  ASSERT_TRUE(store->DeleteMessage(row, 1).ok());
  // Writes beyond `committed + 100` bytes fail with EFBIG (SIGXFSZ ignored).
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = committed + 100;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  auto commit = store->Commit();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(commit.ok());
  EXPECT_EQ(commit.error().code, Errc::kIo);
  EXPECT_FALSE(store->in_transaction());
  EXPECT_EQ(fs::file_size(file), committed);
  ExpectQueue(*store, row, 1, 1280, {1});
  EXPECT_EQ(store->journaled_message_count(), 1u);

  ASSERT_TRUE(Insert(*store, row, {{4, 1280}}, /*commit=*/true));
  store = Reopen(store);
  ASSERT_NE(store, nullptr);
  ExpectQueue(*store, row, 2, 2560, {1, 4});
}

// Rotation by age or size at Commit(): every held message (pending ones too)
// moves into SQLite, the old file is removed, and the next batch starts a
// new file.
TEST_F(RelayStoreTest, JournalFileIsRetiredByAgeAndBySize) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  store->SetJournalLimitsForTest(kJournalRotateBytes, std::chrono::milliseconds(0));
  ASSERT_TRUE(Insert(*store, row, {{1, 1000}}, /*commit=*/true));
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{JournalFileName(1)});
  EXPECT_EQ(TableCounters(dir() / "relay.db").second, std::make_pair(std::int64_t{0}, std::int64_t{0}));
  // Due by age.
  ASSERT_TRUE(Insert(*store, row, {{2, 1000}}, /*commit=*/true));
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{});
  EXPECT_EQ(store->journaled_message_count(), 0u);
  EXPECT_EQ(TableCounters(dir() / "relay.db").second, std::make_pair(std::int64_t{2}, std::int64_t{2000}));

  store->SetJournalLimitsForTest(1, std::chrono::hours(1));
  ASSERT_TRUE(Insert(*store, row, {{3, 1000}}, /*commit=*/true));
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{JournalFileName(2)});
  EXPECT_EQ(store->journaled_message_count(), 1u);
  // Due by size; a commit with nothing left to move retires the file too.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->DeleteMessage(row, 3).ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(JournalFiles(dir()), std::vector<std::string>{});
  EXPECT_EQ(TableCounters(dir() / "relay.db").second, std::make_pair(std::int64_t{2}, std::int64_t{2000}));
  store = Reopen(store);
  ASSERT_NE(store, nullptr);
  ExpectQueue(*store, row, 2, 2000, {1, 2});
}

// A rotation that fails part-way (here: a trigger refuses the third insert,
// after one queue has moved) rolls back completely: every held message is
// still held, and the next rotation moves them all.
TEST_F(RelayStoreTest, RotationThatFailsPartWayLosesNothing) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t a = QueueRow(*store);
  protocol::PublicKey key{};
  key.fill(8);
  ASSERT_TRUE(*store->InsertQueue(IdOf(3), IdOf(4), key, 0));
  auto qb = store->FindQueueByRecipient(IdOf(3));
  ASSERT_TRUE(qb.ok() && qb->has_value());
  const std::int64_t b = (*qb)->row;
  ASSERT_TRUE(store->Begin().ok());
  for (std::int64_t seq = 1; seq <= 4; ++seq) {
    ASSERT_TRUE(store->InsertMessage(seq % 2 ? a : b, seq, IdOf(1), 0, 1000, Bytes(512, 1)).ok());
  }
  ASSERT_TRUE(store->Commit().ok());
  auto sql = [&](const char* text) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir() / "relay.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    EXPECT_EQ(sqlite3_exec(db, text, nullptr, nullptr, nullptr), SQLITE_OK) << text;
    sqlite3_close(db);
  };
  sql("CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN (SELECT count(*) FROM messages) >= 2 "
      "BEGIN SELECT RAISE(ABORT, 'injected'); END;");
  store->SetJournalLimitsForTest(kJournalRotateBytes, std::chrono::milliseconds(0));
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(*store->InsertQueue(IdOf(5), IdOf(6), key, 0));
  ASSERT_FALSE(store->Commit().ok());
  EXPECT_EQ(store->journaled_message_count(), 4u);
  auto check = [&](const char* when) {
    auto in_a = store->MessagesAfter(a, 0, 0, 100);
    auto in_b = store->MessagesAfter(b, 0, 0, 100);
    ASSERT_TRUE(in_a.ok() && in_b.ok());
    EXPECT_EQ(SeqsOf(*in_a), (std::vector<std::int64_t>{1, 3})) << when;
    EXPECT_EQ(SeqsOf(*in_b), (std::vector<std::int64_t>{2, 4})) << when;
    auto totals = store->LoadTotals();
    ASSERT_TRUE(totals.ok());
    EXPECT_EQ(totals->bytes, 2048u) << when;
  };
  check("after the failed rotation");
  sql("DROP TRIGGER refuse;");
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(*store->InsertQueue(IdOf(7), IdOf(8), key, 0));
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->journaled_message_count(), 0u);
  check("after the next rotation");
  store = Reopen(store);
  ASSERT_NE(store, nullptr);
  check("after a reopen");
}

// Expiry of a journaled message is a deletion record like an ACK.
TEST_F(RelayStoreTest, ExpiredJournaledMessagesStayGoneAfterAReopen) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  ASSERT_TRUE(Insert(*store, row, {{1, 500, 10}, {2, 600, 1000}}, /*commit=*/true));
  ASSERT_TRUE(store->Begin().ok());
  auto expired = store->ExpireBatch(10, 100);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->messages, 1u);
  EXPECT_EQ(expired->bytes, 500u);
  ASSERT_TRUE(store->Commit().ok());
  store = Reopen(store);
  ASSERT_NE(store, nullptr);
  ExpectQueue(*store, row, 1, 600, {2});
}

// FindQueueBySender answers from memory after its first lookup: every path
// that changes the queue's counter columns, its send key or its existence
// must show in the next answer, and a rollback must undo what it showed.
TEST_F(RelayStoreTest, SenderLookupFollowsEveryChangeOfItsQueue) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  const std::int64_t row = QueueRow(*store);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{0}, std::uint64_t{0}));
  ASSERT_TRUE(InsertIntoSqlite(*store, row, {{1, 100, 10}}));
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{100})) << "insert";
  ASSERT_TRUE(Insert(*store, row, {{2, 200}}, /*commit=*/true));
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{2}, std::uint64_t{300})) << "journal";
  // A rotation moves seq 2 into SQLite: columns up, held down.
  store->SetJournalLimitsForTest(kJournalRotateBytes, std::chrono::milliseconds(0));
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->journaled_message_count(), 0u);
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{2}, std::uint64_t{300})) << "migrate";
  // Expiry inside a transaction, then its rollback.
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->ExpireBatch(20, 10).ok());
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{200})) << "expire";
  store->Rollback();
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{2}, std::uint64_t{300})) << "rollback";
  auto deleted = store->DeleteMessage(row, 1);  // outside a transaction
  ASSERT_TRUE(deleted.ok() && deleted->has_value());
  EXPECT_EQ(Counters(*store), std::make_pair(std::uint64_t{1}, std::uint64_t{200})) << "delete";
  // The send key, then the queue itself.
  ByteArray<32> key{};
  auto q = store->FindQueueBySender(IdOf(2), key);
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_FALSE((*q)->send_key_set);
  ByteArray<32> set_key{};
  set_key.fill(0x5a);
  ASSERT_TRUE(*store->SetSendKey(row, set_key));
  q = store->FindQueueBySender(IdOf(2), key);
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_TRUE((*q)->send_key_set);
  EXPECT_EQ(key, set_key);
  ASSERT_TRUE(store->DeleteQueue(row).ok());
  q = store->FindQueueBySender(IdOf(2), key);
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->has_value()) << "a deleted queue is still found";
}

TEST_F(RelayStoreTest, SecondStoreOnTheSameDirectoryIsRefused) {
  auto store = OpenWithQueue(Durability::kNoFsync);
  ASSERT_NE(store, nullptr);
  auto second = RelayStore::Open(dir(), Durability::kNoFsync);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::kIo);
  store.reset();
  EXPECT_TRUE(RelayStore::Open(dir(), Durability::kNoFsync).ok());
}

}  // namespace
}  // namespace rhizome::relay
