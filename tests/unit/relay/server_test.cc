// RelayServer, the Asio shell, in this process on 127.0.0.1: the real engine
// and store behind a decorator whose SyncToDisk() the test holds or fails, so
// the order "commit, fsync, then the acknowledgement" is observed directly
// (a kill -9 cannot show it: the page cache survives the process).
#include "server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "relay_client.h"
#include "relay_keys.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/relay_address.h"
#include "test_support.h"

namespace rhizome::relay {
namespace {

using namespace std::chrono_literals;
using rhizome::testing::RelayClient;
using rhizome::testing::RelayQueue;

// Forwards to the real engine; SyncToDisk() waits while the gate is closed
// and fails once told to.
class GatedEngine final : public RelayEngine {
 public:
  explicit GatedEngine(std::unique_ptr<RelayEngine> inner) : inner_(std::move(inner)) {}

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void FailSyncs() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fail_ = true;
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits (bounded) until a sync is held at the closed gate.
  bool WaitForHeldSync(std::chrono::milliseconds deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, deadline, [this] { return held_ > 0; });
  }
  std::uint64_t syncs_done() const { return syncs_done_.load(); }

  ConnectionId OnConnect(ByteSpan handshake_hash) override {
    return inner_->OnConnect(handshake_hash);
  }
  void SetKeyStatement(protocol::RelayKeyStatement statement) override {
    inner_->SetKeyStatement(std::move(statement));
  }
  void OnDisconnect(ConnectionId connection) override { inner_->OnDisconnect(connection); }
  void OnCommand(ConnectionId connection, protocol::RelayCommand command,
                 std::uint64_t now) override {
    inner_->OnCommand(connection, std::move(command), now);
  }
  Result<std::vector<Outgoing>> Flush(std::uint64_t now) override { return inner_->Flush(now); }
  std::vector<Outgoing> TakeEarly() override { return inner_->TakeEarly(); }
  Status SyncToDisk() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++held_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_; });
      --held_;
      if (fail_) return Error{Errc::kIo, "cannot sync the relay database to disk"};
    }
    auto st = inner_->SyncToDisk();
    ++syncs_done_;
    return st;
  }
  std::size_t pending_reply_bytes() const override { return inner_->pending_reply_bytes(); }
  Result<std::uint64_t> Expire(std::uint64_t now) override { return inner_->Expire(now); }
  Stats stats() const override { return inner_->stats(); }

 private:
  std::unique_ptr<RelayEngine> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  bool fail_ = false;
  int held_ = 0;
  std::atomic<std::uint64_t> syncs_done_{0};
};

class RelayServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    const auto data = dir_.path() / "relay";
    bool created = false;
    auto keys = LoadOrCreateRelayKeys(data, /*closed=*/false, crypto::SystemRandom(), &created);
    ASSERT_TRUE(keys.ok()) << keys.error().message;
    keys_.emplace(std::move(*keys));
    auto engine = RelayEngine::Open(data, RelayLimits{}, crypto::SystemRandom(),
                                    Durability::kFsyncByCaller);
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    engine_ = std::make_unique<GatedEngine>(std::move(*engine));
    ServerOptions options;
    options.listen_host = "127.0.0.1";
    server_ = std::make_unique<RelayServer>(io_, *engine_, *keys_, options);
    ASSERT_TRUE(server_->Start().ok());
    auto text = FormatAddress(*keys_, "127.0.0.1", server_->port());
    ASSERT_TRUE(text.ok());
    auto address = protocol::ParseRelayAddress(*text);
    ASSERT_TRUE(address.ok());
    address_.emplace(std::move(*address));
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (engine_) engine_->Open();  // a held sync must end for Stop() to join it
    if (server_) {
      asio::post(io_, [this] {
        server_->Stop();
        io_.stop();
      });
    }
    if (io_thread_.joinable()) io_thread_.join();
    server_.reset();
  }

  rhizome::testing::TempDir dir_;
  asio::io_context io_{1};
  std::optional<RelayKeys> keys_;
  std::unique_ptr<GatedEngine> engine_;
  std::unique_ptr<RelayServer> server_;
  std::optional<protocol::RelayAddress> address_;
  std::thread io_thread_;
};

// A sender's OK waits for the fsync that covers its commit; the push to the
// subscriber does not wait for it.
TEST_F(RelayServerTest, AnAcknowledgementWaitsForItsSyncAndThePushDoesNot) {
  RelayClient recipient(*address_);
  ASSERT_TRUE(recipient.ok());
  RelayQueue q;
  ASSERT_TRUE(MakeQueue(recipient, q));
  auto sub = SubscribeTo(recipient, q);
  ASSERT_TRUE(sub && std::holds_alternative<protocol::RelayOk>(sub->body));
  RelayClient sender(*address_);
  ASSERT_TRUE(sender.ok());

  engine_->Close();
  const std::uint64_t syncs_before = engine_->syncs_done();
  Bytes blob(protocol::kRelayBlobSizes[0], 0x42);
  std::atomic<bool> answered{false};
  std::optional<protocol::RelayReply> reply;
  std::thread send([&] {
    reply = SendTo(sender, q, blob);
    answered = true;
  });

  auto push = recipient.NextPush(5s);
  ASSERT_TRUE(push) << "the push waited for the sync";
  auto* m = std::get_if<protocol::QueueMessage>(&push->body);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->blob, blob);
  // The SEND was committed and its sync is held at the gate: its OK must not
  // be out. (The pause gives a wrong server the time to send it.)
  ASSERT_TRUE(engine_->WaitForHeldSync(5s));
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(answered.load()) << "acknowledged before the fsync";
  EXPECT_EQ(engine_->syncs_done(), syncs_before);

  engine_->Open();
  send.join();
  ASSERT_TRUE(reply);
  EXPECT_TRUE(std::holds_alternative<protocol::RelayOk>(reply->body));
  EXPECT_GT(engine_->syncs_done(), syncs_before);
}

// A failed fsync stops the server: the command whose commit it covered is
// never acknowledged, and the server reports failed().
TEST_F(RelayServerTest, AFailedSyncStopsTheServerWithoutAcknowledging) {
  RelayClient c(*address_);
  ASSERT_TRUE(c.ok());
  RelayQueue q;
  ASSERT_TRUE(MakeQueue(c, q));
  engine_->FailSyncs();
  auto reply = SendTo(c, q, Bytes(protocol::kRelayBlobSizes[0], 0x43));
  EXPECT_FALSE(reply && std::holds_alternative<protocol::RelayOk>(reply->body))
      << "acknowledged although its fsync failed";
  io_thread_.join();  // FailStop() stopped the io_context
  EXPECT_TRUE(server_->failed());
}

}  // namespace
}  // namespace rhizome::relay
