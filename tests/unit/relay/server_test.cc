// RelayServer, the Asio shell, in this process on 127.0.0.1: the real engine
// and store behind a decorator whose SyncToDisk() the test holds or fails, so
// the order "commit, fsync, then the acknowledgement" is observed directly
// (a kill -9 cannot show it: the page cache survives the process).
#include "server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "relay_client.h"
#include "relay_keys.h"
#include "store.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/transport.h"
#include "test_support.h"

namespace rhizome::relay {
namespace {

using namespace std::chrono_literals;
using rhizome::testing::RelayClient;
using rhizome::testing::RelayQueue;

// Forwards to the real engine; SyncToDisk() waits while the gate is closed
// and fails once told to; Flush() (the commit) waits while flushes are held.
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
      flushes_open_ = true;
    }
    cv_.notify_all();
  }
  // From now on, the first Flush() after `commands` more commands blocks the
  // server's thread until Open(): what reaches a client meanwhile left before
  // that commit. Flushes before it pass (and are counted), and the size of
  // every TakeEarly() hand-out is recorded.
  void HoldFlushes(std::size_t commands) {
    std::lock_guard<std::mutex> lock(mu_);
    flushes_open_ = false;
    hold_after_ = commands;
    commands_since_hold_ = 0;
    flushes_passed_ = 0;
    early_sizes_.clear();
  }
  std::vector<std::size_t> early_sizes() {
    std::lock_guard<std::mutex> lock(mu_);
    return early_sizes_;
  }
  int flushes_passed() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushes_passed_;
  }
  bool WaitForHeldFlush(std::chrono::milliseconds deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, deadline, [this] { return held_flushes_ > 0; });
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
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++commands_since_hold_;
    }
    inner_->OnCommand(connection, std::move(command), now);
  }
  Result<std::vector<Outgoing>> Flush(std::uint64_t now) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!flushes_open_ && commands_since_hold_ < hold_after_) {
        ++flushes_passed_;
      } else if (!flushes_open_) {
        ++held_flushes_;
        cv_.notify_all();
        cv_.wait(lock, [this] { return flushes_open_; });
        --held_flushes_;
      }
    }
    return inner_->Flush(now);
  }
  std::vector<Outgoing> TakeEarly() override {
    auto early = inner_->TakeEarly();
    std::lock_guard<std::mutex> lock(mu_);
    if (!flushes_open_) early_sizes_.push_back(early.size());
    return early;
  }
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
  bool has_staged_writes() const override { return inner_->has_staged_writes(); }
  Result<std::uint64_t> Expire(std::uint64_t now) override { return inner_->Expire(now); }
  Stats stats() const override { return inner_->stats(); }

 private:
  std::unique_ptr<RelayEngine> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  bool fail_ = false;
  int held_ = 0;
  bool flushes_open_ = true;
  int held_flushes_ = 0;
  std::size_t hold_after_ = 0;
  std::size_t commands_since_hold_ = 0;
  int flushes_passed_ = 0;
  std::vector<std::size_t> early_sizes_;
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
  }

  void StartServer(ServerOptions options = {}) {
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

  void TearDown() override { StopServer(); }

  // Stops the server on its thread (Stop() commits what is staged) and
  // destroys it.
  void StopServer() {
    if (engine_) engine_->Open();  // a held sync must end for Stop() to join it
    if (server_ && io_thread_.joinable()) {
      asio::post(io_, [this] {
        server_->Stop();
        io_.stop();
      });
    }
    if (io_thread_.joinable()) io_thread_.join();
    server_.reset();
  }

  // Runs `f` on the server's thread and returns its result (the engine is
  // not thread-safe). Bounded: nullopt if the thread does not answer.
  template <class F>
  auto OnServerThread(F f) -> std::optional<decltype(f())> {
    std::promise<decltype(f())> promise;
    auto result = promise.get_future();
    asio::post(io_, [&] { promise.set_value(f()); });
    if (result.wait_for(5s) != std::future_status::ready) return std::nullopt;
    return result.get();
  }

  // Starts the server with a commit interval of an hour, so that only its
  // first commit is immediate, and spends that commit on a NEW (no KEY).
  void StartWithAnHourBetweenCommits() {
    ServerOptions options;
    options.commit_interval = std::chrono::hours(1);
    StartServer(options);
    client_.emplace(*address_);
    ASSERT_TRUE(client_->ok());
    auto queue = client_->link().NewQueue(recipient_);
    ASSERT_TRUE(queue.ok()) << queue.error().message;
    recipient_id_ = queue->recipient_id;
  }

  // Starts the server, then connects a recipient that made, keyed and
  // subscribed to q_, and a sender.
  void StartWithASubscriberAndASender() {
    StartServer();
    subscriber_.emplace(*address_);
    ASSERT_TRUE(subscriber_->ok());
    ASSERT_TRUE(MakeQueue(*subscriber_, q_));
    auto sub = SubscribeTo(*subscriber_, q_);
    ASSERT_TRUE(sub && std::holds_alternative<protocol::RelayOk>(sub->body));
    sender_.emplace(*address_);
    ASSERT_TRUE(sender_->ok());
  }

  rhizome::testing::TempDir dir_;
  asio::io_context io_{1};
  std::optional<RelayKeys> keys_;
  std::unique_ptr<GatedEngine> engine_;
  std::unique_ptr<RelayServer> server_;
  std::optional<protocol::RelayAddress> address_;
  std::thread io_thread_;
  std::optional<RelayClient> client_;
  std::optional<RelayClient> subscriber_;
  std::optional<RelayClient> sender_;
  RelayQueue q_;
  crypto::Ed25519KeyPair recipient_ = crypto::Ed25519Generate(crypto::SystemRandom());
  protocol::Id recipient_id_{};
};

// A sender's OK waits for the fsync that covers its commit; the push to the
// subscriber does not wait for it.
TEST_F(RelayServerTest, AnAcknowledgementWaitsForItsSyncAndThePushDoesNot) {
  ASSERT_NO_FATAL_FAILURE(StartWithASubscriberAndASender());
  RelayClient& recipient = *subscriber_;
  RelayClient& sender = *sender_;
  const RelayQueue& q = q_;

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

// No push waits for its turn's commit: neither the turn's first pushes
// (written as their command is staged) nor the rest (written when the turn
// ends, before the commit). Seventeen SENDs leave in one write, so the relay
// takes them in one turn: eight to a queue nobody subscribed (commands
// without pushes: they must not use up the pushes written at once), then
// nine to two subscribed queues (one more than kImmediatePushes). With the
// commit held, all nine pushes arrive and no SEND is acknowledged; the
// commands handed out eight pushes and the turn's end the ninth.
TEST_F(RelayServerTest, ATurnsPushesDoNotWaitForItsCommit) {
  ServerOptions options;
  options.commit_interval = std::chrono::microseconds(0);  // each turn commits
  StartServer(options);
  RelayClient recipient(*address_);
  ASSERT_TRUE(recipient.ok());
  RelayQueue a, b, unread;
  ASSERT_TRUE(MakeQueue(recipient, a) && MakeQueue(recipient, b) && MakeQueue(recipient, unread));
  for (const RelayQueue* q : {&a, &b}) {
    auto sub = SubscribeTo(recipient, *q);
    ASSERT_TRUE(sub && std::holds_alternative<protocol::RelayOk>(sub->body));
  }

  // The sender: a bare channel, corked, so that its frames share one write.
  asio::io_context sender_io{1};
  crypto::SecretBytes open_psk(32);
  protocol::SecureSessionConfig cfg;
  cfg.kind = protocol::ChannelKind::kClientToRelay;
  cfg.role = crypto::NoiseRole::kInitiator;
  cfg.remote_static = address_->noise_key;
  cfg.psk = &open_psk;
  cfg.peer_versions = address_->versions;
  std::shared_ptr<net::Channel> sender;
  // Runs the sender's io_context until `done` or 10 s have passed.
  auto pump = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      sender_io.restart();
      sender_io.run_for(10ms);
    }
  };
  asio::co_spawn(
      sender_io,
      [&]() -> asio::awaitable<void> {
        auto ch = co_await net::Channel::Connect("127.0.0.1", server_->port(), cfg,
                                                 crypto::SystemRandom());
        if (ch) sender = std::move(*ch);
      },
      asio::detached);
  pump([&] { return sender != nullptr; });
  ASSERT_TRUE(sender) << "the sender did not connect";
  const ByteSpan h = sender->session().handshake_hash();
  auto send = [&](const RelayQueue& q, std::uint8_t fill) {
    const protocol::Id corr = RelayClient::NewCorrId();
    protocol::SendMessage m;
    m.sender_id = q.sender_id;
    auto auth = protocol::RelayAuthMessage(h, corr, q.sender_id, protocol::RelayCommandCode::kSend);
    ASSERT_TRUE(auth && crypto::Blake2bKeyed(q.send_key.expose(), *auth, m.mac));
    m.blob = Bytes(protocol::kRelayBlobSizes[0], fill);
    auto frame = protocol::SerializeTransportMessage(protocol::RelayCommand{corr, std::move(m)});
    ASSERT_TRUE(frame && sender->TrySend(*frame));
  };
  engine_->HoldFlushes(17);
  sender->Cork();
  for (int i = 0; i < 8; ++i) ASSERT_NO_FATAL_FAILURE(send(unread, 0x50));
  for (int i = 0; i < 9; ++i) ASSERT_NO_FATAL_FAILURE(send(i % 2 == 0 ? a : b, 0x60));
  sender->Uncork();
  ASSERT_EQ(sender->queued_bytes(), 0u) << "the seventeen SENDs were not written at once";

  int to_a = 0;
  int to_b = 0;
  for (int i = 0; i < 9; ++i) {
    auto push = recipient.NextPush(5s);
    ASSERT_TRUE(push) << "push " << i + 1 << " of 9 waited for the commit";
    auto* m = std::get_if<protocol::QueueMessage>(&push->body);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->blob, Bytes(protocol::kRelayBlobSizes[0], 0x60));
    (m->recipient_id == a.recipient_id ? to_a : to_b) += 1;
  }
  EXPECT_EQ(to_a, 5);
  EXPECT_EQ(to_b, 4);
  // The commit is what the server thread is held in, so nothing was
  // acknowledged: the sender has no reply.
  ASSERT_TRUE(engine_->WaitForHeldFlush(5s));
  if (engine_->flushes_passed() == 0) {  // one turn, as intended (not if TCP split the write)
    const auto sizes = engine_->early_sizes();
    ASSERT_FALSE(sizes.empty());
    EXPECT_EQ(sizes.back(), 1u) << "the turn's end handed out other than the ninth push";
    EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end() - 1, std::size_t{0}), 8u)
        << "the commands did not hand out kImmediatePushes pushes";
  }
  std::size_t oks = 0;
  sender->ReceiveEach(
      [&](Bytes frame) {
        auto msg = protocol::ParseTransportMessage(frame);
        auto* reply = msg ? std::get_if<protocol::RelayReply>(&*msg) : nullptr;
        if (reply && std::holds_alternative<protocol::RelayOk>(reply->body)) ++oks;
        return true;
      },
      [](const Error&) {});
  sender_io.restart();
  sender_io.run_for(200ms);  // time for a wrong server to answer
  EXPECT_EQ(oks, 0u) << "a SEND was acknowledged before its commit";

  engine_->Open();
  pump([&] { return oks == 17; });
  EXPECT_EQ(oks, 17u);
  sender->Close();
  sender_io.restart();
  sender_io.poll();
}

// An answer that comes after its caller gave up is dropped on arrival: more
// late Oks than kMaxRelayLinkPendingReplies neither fill the link's inbox
// (which would cut the link) nor stand in for the next call's answer.
TEST_F(RelayServerTest, TheLinkDropsAnswersThatCameTooLate) {
  StartServer();
  RelayClient c(*address_);
  ASSERT_TRUE(c.ok());
  RelayQueue q;
  ASSERT_TRUE(MakeQueue(c, q));
  engine_->Close();  // every Ok now waits for a sync held at the gate
  const Bytes blob(protocol::kRelayBlobSizes[0], 0x47);
  const std::size_t late = client::kMaxRelayLinkPendingReplies + 44;
  std::size_t gave_up = 0;
  for (std::size_t i = 0; i < late; ++i) {
    if (!SendTo(c, q, blob, 1ms)) ++gave_up;
  }
  EXPECT_EQ(gave_up, late) << "answered although the sync was held";
  ASSERT_TRUE(engine_->WaitForHeldSync(5s));
  engine_->Open();
  // Its answer comes after all the late ones on the connection.
  auto reply = SendTo(c, q, blob);
  ASSERT_TRUE(reply) << "the link was cut, or the answer lost among the late ones";
  EXPECT_TRUE(std::holds_alternative<protocol::RelayOk>(reply->body));
  EXPECT_TRUE(c.link().is_open());
}

// A quiet ACK gets no reply; the next reply on its connection (here a GET,
// a read that stages nothing) waits until the deletion's commit is synced,
// so any answer after a quiet ACK means its deletion is durable.
TEST_F(RelayServerTest, AReplyAfterAQuietAckWaitsForTheDeletionsSync) {
  ASSERT_NO_FATAL_FAILURE(StartWithASubscriberAndASender());
  RelayClient& recipient = *subscriber_;
  RelayClient& sender = *sender_;
  const RelayQueue& q = q_;
  auto sent = SendTo(sender, q, Bytes(protocol::kRelayBlobSizes[0], 0x44));
  ASSERT_TRUE(sent && std::holds_alternative<protocol::RelayOk>(sent->body));
  auto push = recipient.NextPush(5s);
  ASSERT_TRUE(push);
  auto* m = std::get_if<protocol::QueueMessage>(&push->body);
  ASSERT_NE(m, nullptr);

  engine_->Close();
  const std::uint64_t syncs_before = engine_->syncs_done();
  ASSERT_TRUE(recipient.link().AckQuietly(q.recipient_id, m->message_id));
  ASSERT_TRUE(engine_->WaitForHeldSync(5s)) << "the quiet ACK committed nothing";
  std::atomic<bool> answered{false};
  std::optional<Result<std::optional<protocol::QueueMessage>>> got;
  std::thread get([&] {
    got.emplace(recipient.link().Get(q.recipient_id, q.recipient.secret_key));
    answered = true;
  });
  std::this_thread::sleep_for(200ms);  // time for a wrong server to answer
  EXPECT_FALSE(answered.load()) << "a reply overtook the quiet ACK's sync";
  EXPECT_EQ(engine_->syncs_done(), syncs_before);

  engine_->Open();
  get.join();
  ASSERT_TRUE(got && got->ok()) << (got ? got->error().message : "no reply");
  EXPECT_FALSE((*got)->has_value()) << "the quietly acknowledged message is still there";
  EXPECT_EQ(recipient.link().quiet_acks_refused(), 0u);
}

// A failed fsync stops the server: the command whose commit it covered is
// never acknowledged, and the server reports failed().
TEST_F(RelayServerTest, AFailedSyncStopsTheServerWithoutAcknowledging) {
  StartServer();
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

// With a commit interval of an hour, only the first commit happens at once.
// A read that stages nothing is answered without waiting for the next one.
TEST_F(RelayServerTest, ReadsAreNotHeldByTheCommitInterval) {
  ASSERT_NO_FATAL_FAILURE(StartWithAnHourBetweenCommits());
  auto got = client_->link().Get(recipient_id_, recipient_.secret_key);
  ASSERT_TRUE(got.ok()) << "a GET waited for the commit interval: " << got.error().message;
  EXPECT_FALSE(got->has_value());
}

// A write held by the commit interval is committed by Stop() (a SIGTERM).
TEST_F(RelayServerTest, StopCommitsWhatTheCommitIntervalHeld) {
  ASSERT_NO_FATAL_FAILURE(StartWithAnHourBetweenCommits());
  const auto send_key = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  std::thread key([&] {
    (void)client_->link().SetQueueKey(recipient_id_, recipient_, send_key.expose());
  });
  bool staged = false;
  for (int i = 0; i < 100 && !staged; ++i) {
    staged = OnServerThread([this] { return engine_->has_staged_writes(); }).value_or(false);
    if (!staged) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(staged) << "the KEY never reached the engine";
  StopServer();
  client_->Close();
  key.join();
  engine_.reset();  // closes the store
  auto store = RelayStore::Open(dir_.path() / "relay");
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto found = (*store)->FindQueueByRecipient(recipient_id_);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE((*found)->send_key_set) << "the held KEY was lost at Stop()";
}

}  // namespace
}  // namespace rhizome::relay
