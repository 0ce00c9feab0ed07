// RelayEngine: nothing is acknowledged before a durable commit, nothing
// acknowledged is lost (restart, crash, kill -9), nothing ACKed comes back;
// expiry; what the data directory must never contain.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "engine_internal.h"
#include "relay_test_util.h"

namespace rhizome::relay::testing {
namespace {

using RelayDurabilityTest = RelayTest;

bool IsBoardItems(const RelayReply& r) {
  return std::holds_alternative<protocol::BoardItems>(r.body);
}

// A blob that carries its index in its first four bytes.
Bytes Marked(std::uint32_t index, std::size_t size = protocol::kRelayBlobSizes[0]) {
  Bytes b(size, 0x5a);
  for (int i = 0; i < 4; ++i)
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(index >> (8 * i));
  return b;
}
std::uint32_t MarkOf(const Bytes& b) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(b[static_cast<std::size_t>(i)]) << (8 * i);
  return v;
}

// Every message stored in `q`, in delivery order, drained with GET + ACK.
std::vector<Bytes> Drain(RelayTest& t, const Conn& c, const TestQueue& q) {
  std::vector<Bytes> out;
  for (int guard = 0; guard < 10000; ++guard) {
    auto got = t.Call(c, t.GetCmd(c, q));
    auto* m = std::get_if<protocol::QueueMessage>(&got.body);
    if (m == nullptr) {
      EXPECT_TRUE(IsOk(got));
      break;
    }
    out.push_back(m->blob);
    EXPECT_TRUE(IsOk(t.Call(c, t.AckCmd(q, m->message_id))));
  }
  return out;
}

// Holds the database's write lock from another connection.
class WriteLock {
 public:
  explicit WriteLock(const std::filesystem::path& data_dir) {
    const auto path = (data_dir / "relay.db").string();
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~WriteLock() {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST_F(RelayDurabilityTest, SendIsCommittedBeforeItsReplyIsReleased) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  engine_->OnCommand(c.id, SendCmd(c, q, Blob(64)), kT0);
  // Staged, not committed: another connection does not see it yet.
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
  auto out = Flush();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(IsOk(out[0].reply));
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
}

// A push is a delivery, not an acknowledgement: the shell may send it before
// the commit (engine.h TakeEarly). The sender's Ok still waits for Flush().
TEST_F(RelayDurabilityTest, PushesLeaveBeforeTheCommitAndRepliesAfter) {
  Conn recipient = Connect();
  TestQueue q = CreateQueue(recipient);
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  Conn sender = Connect();
  ASSERT_TRUE(engine_->TakeEarly().empty());
  engine_->OnCommand(sender.id, SendCmd(sender, q, Marked(7)), kT0);
  auto early = engine_->TakeEarly();
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early[0].connection, recipient.id);
  EXPECT_FALSE(early[0].reply.corr_id);
  auto* m = std::get_if<protocol::QueueMessage>(&early[0].reply.body);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(MarkOf(m->blob), 7u);
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);  // not committed yet
  EXPECT_TRUE(engine_->TakeEarly().empty());        // taken once
  auto out = Flush();
  ASSERT_EQ(out.size(), 1u);  // only the sender's Ok: the push is not repeated
  EXPECT_EQ(out[0].connection, sender.id);
  EXPECT_TRUE(IsOk(out[0].reply));
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
  // The recipient's ACK, in a later turn, deletes it durably as before.
  ASSERT_TRUE(IsOk(Call(recipient, AckCmd(q, m->message_id))));
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
}

// A message its recipient acknowledges in the transaction that stored it
// (RelayStore stages messages until the commit and drops them on such an ACK)
// leaves its blob in no file, and the relay answers both commands.
// The control message, acknowledged after its commit, does reach the files, so
// the scan can see a blob.
TEST_F(RelayDurabilityTest, MessageAcknowledgedBeforeItsCommitNeverReachesTheDisk) {
  Conn recipient = Connect();
  TestQueue q = CreateQueue(recipient);
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  Conn sender = Connect();
  const Bytes quick = Blob(1000);
  const Bytes slow = Blob(1000);

  engine_->OnCommand(sender.id, SendCmd(sender, q, quick), kT0);
  auto early = engine_->TakeEarly();
  ASSERT_EQ(early.size(), 1u);
  auto* m = std::get_if<protocol::QueueMessage>(&early[0].reply.body);
  ASSERT_NE(m, nullptr);
  engine_->OnCommand(recipient.id, AckCmd(q, m->message_id), kT0);
  auto out = Flush();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(IsOk(out[0].reply));  // the SEND
  EXPECT_TRUE(IsOk(out[1].reply));  // the ACK
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);

  ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, slow))));
  EXPECT_FALSE(FilesHolding(data_dir(), slow).empty()) << "the scan cannot see a committed blob";
  auto pushed = TakePushes(recipient);
  ASSERT_EQ(pushed.size(), 1u);
  ASSERT_TRUE(IsOk(Call(recipient, AckCmd(q, pushed[0].message_id))));
  EXPECT_EQ(FilesHolding(data_dir(), quick), std::vector<std::string>{});
  Reopen();
  Conn again = Connect();
  EXPECT_TRUE(Drain(*this, again, q).empty());
}

// The mode the relay binary runs in: commits are not fsynced by SQLite
// (synchronous=NORMAL); SyncToDisk() does it, and may run on another thread
// while the engine works.
TEST_F(RelayDurabilityTest, FsyncByCallerCommitsThenSyncsOnAnotherThread) {
  engine_.reset();
  auto e = RelayEngine::Open(data_dir(), limits_, rng_, Durability::kFsyncByCaller);
  ASSERT_TRUE(e.ok()) << e.error().message;
  engine_ = std::move(*e);
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  std::atomic<bool> stop{false};
  std::atomic<int> syncs{0};
  std::atomic<int> failures{0};
  std::thread syncer([&] {
    while (!stop.load()) {
      if (!engine_->SyncToDisk().ok()) ++failures;
      ++syncs;
    }
  });
  // The syncer is running before the first SEND and finishes a sync after
  // the last one (200 sends can take less time than one scheduling slice).
  auto wait_for_syncs = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (syncs.load() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return syncs.load() >= n;
  };
  const bool started = wait_for_syncs(1);
  for (std::uint32_t i = 1; i <= 200; ++i) {
    ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(i)))));
  }
  const bool synced_after = wait_for_syncs(syncs.load() + 2);
  stop = true;
  syncer.join();
  EXPECT_TRUE(started && synced_after) << "the other thread did not sync within 10 s";
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(engine_->SyncToDisk().ok());
  EXPECT_EQ(engine_->stats().commits, 202u);  // NEW, KEY and the 200 SENDs
  Reopen();
  Conn again = Connect();
  auto blobs = Drain(*this, again, q);
  ASSERT_EQ(blobs.size(), 200u);
  EXPECT_EQ(MarkOf(blobs[199]), 200u);
}

TEST_F(RelayDurabilityTest, RepliesOfOneTurnComeOutInArrivalOrder) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  std::vector<Id> corrs;
  for (int i = 0; i < 6; ++i) {
    auto cmd = (i % 2 == 0) ? SendCmd(c, q, Blob(8)) : AckCmd(q, NewId());  // ACKs are refused
    corrs.push_back(cmd.corr_id);
    engine_->OnCommand(c.id, std::move(cmd), kT0);
  }
  auto out = Flush();
  ASSERT_EQ(out.size(), corrs.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].reply.corr_id, corrs[i]);
    EXPECT_EQ(IsOk(out[i].reply), i % 2 == 0);
  }
  EXPECT_TRUE(Flush().empty());  // released once
}

TEST_F(RelayDurabilityTest, AcknowledgedSendSurvivesRestart) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(1)))));
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(2)))));
  Reopen();
  Conn again = Connect();
  auto blobs = Drain(*this, again, q);
  ASSERT_EQ(blobs.size(), 2u);
  EXPECT_EQ(MarkOf(blobs[0]), 1u);
  EXPECT_EQ(MarkOf(blobs[1]), 2u);
}

TEST_F(RelayDurabilityTest, StagedButUnflushedSendIsNeverAcknowledgedNorStored) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(1)))));
  engine_->OnCommand(c.id, SendCmd(c, q, Marked(2)), kT0);
  Reopen();  // the engine is destroyed without Flush: its reply never existed
  Conn again = Connect();
  auto blobs = Drain(*this, again, q);
  ASSERT_EQ(blobs.size(), 1u);
  EXPECT_EQ(MarkOf(blobs[0]), 1u);
}

TEST_F(RelayDurabilityTest, AckedMessageDoesNotComeBackAfterRestart) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(1)))));
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(2)))));
  ASSERT_TRUE(IsOk(Call(c, SubCmd(c, q))));
  auto pushed = TakePushes(c);
  ASSERT_EQ(pushed.size(), 2u);
  ASSERT_TRUE(IsOk(Call(c, AckCmd(q, pushed[0].message_id))));
  // An ACK staged but never flushed was never acknowledged: it does not count.
  engine_->OnCommand(c.id, AckCmd(q, pushed[1].message_id), kT0);
  Reopen();
  Conn again = Connect();
  ASSERT_TRUE(IsOk(Call(again, SubCmd(again, q))));
  auto redelivered = TakePushes(again);
  ASSERT_EQ(redelivered.size(), 1u);
  EXPECT_EQ(redelivered[0].message_id, pushed[1].message_id);
  EXPECT_EQ(MarkOf(redelivered[0].blob), 2u);
}

TEST_F(RelayDurabilityTest, DeliveryOrderContinuesAcrossRestarts) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(1)))));
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(2)))));
  // The newest message is acknowledged, so the store's highest sequence
  // number is gone before the restart.
  ASSERT_TRUE(IsOk(Call(c, SubCmd(c, q))));
  auto pushed = TakePushes(c);
  ASSERT_EQ(pushed.size(), 2u);
  ASSERT_TRUE(IsOk(Call(c, AckCmd(q, pushed[1].message_id))));
  Reopen();
  Conn again = Connect();
  ASSERT_TRUE(IsOk(Call(again, SendCmd(again, q, Marked(3)))));
  auto blobs = Drain(*this, again, q);
  ASSERT_EQ(blobs.size(), 2u);
  EXPECT_EQ(MarkOf(blobs[0]), 1u);
  EXPECT_EQ(MarkOf(blobs[1]), 3u);
}

TEST_F(RelayDurabilityTest, KilledProcessKeepsExactlyTheAcknowledgedSends) {
  Conn setup = Connect();
  TestQueue q = CreateQueue(setup);
  engine_.reset();  // no engine (and no checkpoint thread) in this process across fork()

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: send, flush every third command, report what was acknowledged,
    // stage a few more, and die by SIGKILL with them uncommitted.
    ::close(fds[0]);
    auto opened = RelayEngine::Open(data_dir(), limits_, rng_);
    if (!opened) ::_exit(3);
    engine_ = std::move(*opened);
    Conn c = Connect();
    for (std::uint32_t i = 0; i < 40; ++i) {
      engine_->OnCommand(c.id, SendCmd(c, q, Marked(i, protocol::RelayBlobSizeFor(700))), kT0);
      if (i % 3 != 2) continue;
      auto out = engine_->Flush(kT0);
      if (!out) ::_exit(4);
      for (const auto& o : *out) {
        if (!IsOk(o.reply)) ::_exit(5);
      }
      for (std::uint32_t j = i - 2; j <= i; ++j) {
        if (::write(fds[1], &j, sizeof j) != sizeof j) ::_exit(6);
      }
    }
    ::raise(SIGKILL);
    ::_exit(7);
  }
  ::close(fds[1]);
  std::set<std::uint32_t> acknowledged;
  std::uint32_t index = 0;
  while (::read(fds[0], &index, sizeof index) == static_cast<ssize_t>(sizeof index)) {
    acknowledged.insert(index);
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  ASSERT_EQ(acknowledged.size(), 39u);  // 13 flushes of 3; the 40th send was staged only

  Open();
  Conn after = Connect();
  auto blobs = Drain(*this, after, q);
  std::set<std::uint32_t> stored;
  std::vector<std::uint32_t> order;
  for (const auto& b : blobs) {
    stored.insert(MarkOf(b));
    order.push_back(MarkOf(b));
  }
  EXPECT_EQ(stored, acknowledged);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST_F(RelayDurabilityTest, FailedCommitReleasesNothingAndKeepsNothing) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  {
    WriteLock lock(data_dir());  // the engine cannot write until it is released
    engine_->OnCommand(c.id, SendCmd(c, q, Marked(1)), kT0);
    auto out = engine_->Flush(kT0);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, Errc::kIo);
  }
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
  EXPECT_EQ(engine_->stats().messages_stored, 0u);
  EXPECT_EQ(engine_->stats().bytes_stored, 0u);
  // The engine works again once the disk does (the client retries).
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Marked(1)))));
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
}

TEST_F(RelayDurabilityTest, TurnWithNothingStagedNeedsNoWriteTransaction) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  WriteLock lock(data_dir());
  // Refusals and reads only: Flush commits nothing, so another writer's lock
  // does not matter.
  engine_->OnCommand(c.id, AckCmd(q, NewId()), kT0);
  engine_->OnCommand(c.id, GetCmd(c, q), kT0);
  auto out = engine_->Flush(kT0);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  EXPECT_TRUE(IsError((*out)[0].reply, RelayErrorCode::kAuth));
  EXPECT_TRUE(IsOk((*out)[1].reply));
}

TEST_F(RelayDurabilityTest, ExpiryFollowsTheInjectedClock) {
  limits_.message_ttl_seconds = 3600;
  Open();
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(100)), kT0 + 30)));  // stored as kT0
  auto none = engine_->Expire(kT0 + 3599);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  // Past its expiry a message is not delivered even before Expire() runs.
  EXPECT_TRUE(IsOk(Call(c, GetCmd(c, q), kT0 + 3600)));
  auto removed = engine_->Expire(kT0 + 3600);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
  auto s = engine_->stats();
  EXPECT_EQ(s.messages_expired, 1u);
  EXPECT_EQ(s.bytes_stored, 0u);
  // The queue's quota counters were released too.
  limits_.max_bytes_per_queue = protocol::kRelayBlobSizes[0];
  Open();
  Conn again = Connect();
  EXPECT_TRUE(IsOk(Call(again, SendCmd(again, q, Blob(100)), kT0 + 3600)));
}

TEST_F(RelayDurabilityTest, ExpireWorksThroughSeveralBatches) {
  limits_.message_ttl_seconds = 60;
  Open();
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  const std::size_t n = 2 * kExpireBatchRows + 5;
  for (std::size_t i = 0; i < n; ++i) engine_->OnCommand(c.id, SendCmd(c, q, Blob(8)), kT0);
  ASSERT_EQ(Flush().size(), n);
  auto removed = engine_->Expire(kT0 + 60);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, n);
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
}

TEST_F(RelayDurabilityTest, ExpireDuringATurnJoinsItsTransaction) {
  limits_.message_ttl_seconds = 60;
  Open();
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(8)))));
  engine_->OnCommand(c.id, SendCmd(c, q, Blob(600)), kT0 + 60);
  auto removed = engine_->Expire(kT0 + 60);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  ASSERT_EQ(Flush(kT0 + 60).size(), 1u);
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
  EXPECT_EQ(engine_->stats().bytes_stored, protocol::RelayBlobSizeFor(600));
}

TEST_F(RelayDurabilityTest, BackgroundCheckpointLosesNothing) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  // Enough 16 KiB blobs to push the WAL past the checkpoint threshold, so
  // the checkpoint thread copies pages while the engine keeps committing.
  const std::uint32_t n = 700;
  for (std::uint32_t i = 0; i < n; ++i) {
    engine_->OnCommand(c.id, SendCmd(c, q, Marked(i, protocol::kMaxBlobBytes)), kT0);
    if (i % 50 == 49) Flush();
  }
  Flush();
  Reopen();
  Conn again = Connect();
  auto blobs = Drain(*this, again, q);
  ASSERT_EQ(blobs.size(), n);
  for (std::uint32_t i = 0; i < n; ++i) EXPECT_EQ(MarkOf(blobs[i]), i);
}

// SECURITY: connection-level data (the handshake hash, corr ids) lives only
// in memory; a seized data directory must not link stored queues to
// connections.
TEST_F(RelayDurabilityTest, DataDirectoryHoldsNoHandshakeHashOrCorrId) {
  Conn recipient = Connect();
  Conn sender = Connect();
  std::vector<Id> corrs;
  auto call = [&](const Conn& c, RelayCommand cmd) {
    corrs.push_back(cmd.corr_id);
    return Call(c, std::move(cmd));
  };
  TestQueue q;
  q.recipient = crypto::Ed25519Generate(rng_);
  rng_.Fill(q.send_key);
  auto created = call(recipient, NewCmd(q));
  auto* ids = std::get_if<protocol::QueueCreated>(&created.body);
  ASSERT_NE(ids, nullptr);
  q.recipient_id = ids->recipient_id;
  q.sender_id = ids->sender_id;
  ASSERT_TRUE(IsOk(call(recipient, KeyCmd(recipient, q))));
  ASSERT_TRUE(IsOk(call(recipient, SubCmd(recipient, q))));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(IsOk(call(sender, SendCmd(sender, q, Blob(300)))));
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(call(sender, CreateBoardCmd(b, 600))));
  ASSERT_TRUE(IsOk(call(sender, AppendCmd(sender, b, Blob(100)))));
  ASSERT_TRUE(IsBoardItems(call(recipient, ReadCmd(recipient, b, 0))));

  auto scan = [&] {
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(data_dir())) {
      if (!entry.is_regular_file()) continue;
      ++files;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto contains = [&](ByteSpan needle) {
        return std::search(raw.begin(), raw.end(), needle.begin(), needle.end(),
                           [](char a, std::uint8_t b) {
                             return static_cast<std::uint8_t>(a) == b;
                           }) != raw.end();
      };
      for (const Conn* c : {&recipient, &sender}) {
        EXPECT_FALSE(contains(c->h)) << entry.path();
        EXPECT_FALSE(contains(ByteSpan(c->h).first(16))) << entry.path();
        EXPECT_FALSE(contains(ByteSpan(c->h).last(16))) << entry.path();
      }
      for (const auto& corr : corrs) EXPECT_FALSE(contains(corr)) << entry.path();
    }
    return files;
  };
  EXPECT_GE(scan(), 1u);  // while running (WAL present)
  engine_.reset();
  EXPECT_GE(scan(), 1u);  // after shutdown (checkpointed into relay.db)
  // The scan would find stored bytes: the queue's recipient id is there.
  std::size_t found = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_dir())) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string rid(q.recipient_id.begin(), q.recipient_id.end());
    if (raw.find(rid) != std::string::npos) ++found;
  }
  EXPECT_GE(found, 1u);
}

}  // namespace
}  // namespace rhizome::relay::testing
