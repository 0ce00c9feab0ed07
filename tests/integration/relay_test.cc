// rhizome-relay as a real process on 127.0.0.1: its address, a queue round
// trip through two connections, durability across kill -9, SIGTERM, a closed
// relay's access key, and the privacy check (no marker in any file it wrote).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "child_process.h"
#include "process.h"
#include "relay_client.h"
#include "relay_process.h"
#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/padding.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace protocol;
using Queue = RelayQueue;


// A recipient's queue on the relay.

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }
  fs::path data() const { return dir_.path() / "relay-data"; }
  fs::path log() const { return dir_.path() / "relay.log"; }

  // A blob as a client would send it: padded, then sealed under a key the relay never sees.
  static Bytes SealedBlob(std::string_view plaintext) {
    auto padded = Pad(AsBytes(plaintext), PaddingPolicy::kSmallestFitting);
    ByteArray<32> key;
    crypto::SystemRandom().Fill(key);
    ByteArray<24> nonce;
    crypto::SystemRandom().Fill(nonce);
    Bytes blob(nonce.begin(), nonce.end());
    blob.resize(24 + padded->size() + 16);
    (void)crypto::XChaChaEncrypt(key, nonce, {}, *padded, MutableByteSpan(blob).subspan(24));
    // Relays take only the fixed blob sizes: fill up to the class's size.
    const std::size_t fixed = RelayBlobSizeFor(blob.size());
    Bytes filler(fixed - blob.size());
    crypto::SystemRandom().Fill(filler);
    blob.insert(blob.end(), filler.begin(), filler.end());
    return blob;
  }

  // SUB on a fresh connection and collect what is delivered (pushed or in
  // reply). With `ack`, each message is acknowledged as it arrives, which
  // opens the relay's delivery window for the next ones.
  static std::vector<QueueMessage> Drain(const RelayAddress& addr, const Queue& q, bool ack) {
    RelayClient c(addr);
    std::vector<QueueMessage> got;
    if (!c.ok()) return got;
    auto take = [&](const RelayReply& r) {
      auto* m = std::get_if<QueueMessage>(&r.body);
      if (m == nullptr) return;
      got.push_back(*m);
      if (ack) {
        auto a = c.Call(AckMessage{q.recipient_id, m->message_id});
        if (!a || !std::holds_alternative<RelayOk>(a->body)) ADD_FAILURE() << "ACK refused";
      }
    };
    auto sub = SubscribeTo(c, q);
    if (!sub) return got;
    take(*sub);
    for (int i = 0; i < 10'000; ++i) {  // bounded; ends when nothing more arrives
      auto push = c.NextPush(500ms);
      if (!push) break;
      take(*push);
    }
    return got;
  }

  TempDir dir_;
};

TEST_F(RelayTest, PrintsItsAddressAndTheAddressCommandRepeatsIt) {
  RelayProcess relay(data(), log(), 0);
  ASSERT_TRUE(relay.ok()) << ReadFileOrDie(log());
  EXPECT_TRUE(relay.address().psk.empty()) << "an open relay carries no access key";
  auto again = RunProcess(RHIZOME_RELAY_BIN, {"address", "--data", data().string()});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "relay address: " + relay.address_text() + "\n");
}

TEST_F(RelayTest, QueueRoundTripAcrossTwoConnections) {
  RelayProcess relay(data(), log(), 0);
  ASSERT_TRUE(relay.ok());
  Queue q;
  RelayClient recipient(relay.address());
  ASSERT_TRUE(recipient.ok()) << recipient.error().message;
  ASSERT_TRUE(MakeQueue(recipient, q));
  auto sub = SubscribeTo(recipient, q);
  ASSERT_TRUE(sub);

  RelayClient sender(relay.address());
  ASSERT_TRUE(sender.ok());
  Bytes blob = SealedBlob("hello through the relay");
  auto sent = SendTo(sender, q, blob);
  ASSERT_TRUE(sent);
  EXPECT_TRUE(std::holds_alternative<RelayOk>(sent->body));

  auto push = recipient.NextPush(5s);
  ASSERT_TRUE(push) << "no push to the subscriber";
  auto* m = std::get_if<QueueMessage>(&push->body);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->blob, blob);
  auto ack = recipient.Call(AckMessage{q.recipient_id, m->message_id});
  ASSERT_TRUE(ack);
  EXPECT_TRUE(std::holds_alternative<RelayOk>(ack->body));
  recipient.Close();
  EXPECT_TRUE(Drain(relay.address(), q, false).empty()) << "an ACKed message came back";
}

TEST_F(RelayTest, WrongMacIsRefusedLikeAnUnknownQueue) {
  RelayProcess relay(data(), log(), 0);
  ASSERT_TRUE(relay.ok());
  Queue q;
  RelayClient c(relay.address());
  ASSERT_TRUE(MakeQueue(c, q));
  auto bad = c.CallWith([&](const Id& corr) -> RelayCommandBody {
    ByteArray<32> wrong{};
    wrong.fill(7);
    return SendMessage{q.sender_id, c.Mac(wrong, corr, q.sender_id, RelayCommandCode::kSend),
                       SealedBlob("x")};
  });
  Id unknown = RelayClient::NewCorrId();
  auto none = c.CallWith([&](const Id& corr) -> RelayCommandBody {
    return SendMessage{unknown, c.Mac(q.send_key.expose(), corr, unknown, RelayCommandCode::kSend),
                       SealedBlob("x")};
  });
  ASSERT_TRUE(bad && none);
  auto* e1 = std::get_if<RelayError>(&bad->body);
  auto* e2 = std::get_if<RelayError>(&none->body);
  ASSERT_TRUE(e1 && e2);
  EXPECT_EQ(e1->code, RelayErrorCode::kAuth);
  EXPECT_EQ(e2->code, e1->code) << "unknown and unauthorized must look the same";
}

TEST_F(RelayTest, AcknowledgedMessagesSurviveKill9) {
  Queue q;
  std::vector<Bytes> sent;
  {
    RelayProcess relay(data(), log(), 0);
    ASSERT_TRUE(relay.ok());
    RelayClient c(relay.address());
    ASSERT_TRUE(MakeQueue(c, q));
    for (int i = 0; i < 20; ++i) {
      Bytes blob = SealedBlob("message " + std::to_string(i));
      auto r = SendTo(c, q, blob);
      ASSERT_TRUE(r && std::holds_alternative<RelayOk>(r->body));
      sent.push_back(blob);  // acknowledged: must survive
    }
    relay.process().Signal(SIGKILL);
    ASSERT_EQ(relay.process().Wait(10s), 128 + SIGKILL);
  }
  RelayProcess again(data(), log(), 0);
  ASSERT_TRUE(again.ok()) << ReadFileOrDie(log());
  auto got = Drain(again.address(), q, /*ack=*/true);
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i].blob, sent[i]) << i;
  EXPECT_TRUE(Drain(again.address(), q, false).empty()) << "acknowledged messages came back";
}

// With the longest commit interval, commands that arrive within 50 ms of the
// previous commit wait for the interval's timer: every SEND and ACK is still
// answered, and what was acknowledged is what a restart finds.
TEST_F(RelayTest, LongCommitIntervalStillAnswersEveryCommand) {
  const fs::path config = dir_.path() / "relay.conf";
  std::ofstream(config) << "commit_interval_us: 50000\n";
  Queue q;
  std::vector<Bytes> sent;
  {
    RelayProcess relay(data(), log(), 0, {"--config", config.string()});
    ASSERT_TRUE(relay.ok()) << ReadFileOrDie(log());
    RelayClient c(relay.address());
    ASSERT_TRUE(MakeQueue(c, q));
    for (int i = 0; i < 6; ++i) {
      Bytes blob = SealedBlob("interval " + std::to_string(i));
      auto r = SendTo(c, q, blob);
      ASSERT_TRUE(r && std::holds_alternative<RelayOk>(r->body)) << i;
      sent.push_back(blob);
    }
    // The first three are delivered and acknowledged (each ACK waits for a
    // commit too), then the relay is killed.
    RelayClient reader(relay.address());
    ASSERT_TRUE(reader.ok());
    auto sub = SubscribeTo(reader, q);
    ASSERT_TRUE(sub);
    std::vector<QueueMessage> got;
    for (int i = 0; i < 20 && got.size() < 3; ++i) {
      auto push = reader.NextPush(2s);
      if (!push) break;
      if (auto* m = std::get_if<QueueMessage>(&push->body)) got.push_back(*m);
    }
    ASSERT_GE(got.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(got[static_cast<std::size_t>(i)].blob, sent[static_cast<std::size_t>(i)]);
      auto a = reader.Call(AckMessage{q.recipient_id, got[static_cast<std::size_t>(i)].message_id});
      ASSERT_TRUE(a && std::holds_alternative<RelayOk>(a->body)) << i;
    }
    relay.process().Signal(SIGKILL);
    ASSERT_EQ(relay.process().Wait(10s), 128 + SIGKILL);
  }
  RelayProcess again(data(), log(), 0, {"--config", config.string()});
  ASSERT_TRUE(again.ok()) << ReadFileOrDie(log());
  auto left = Drain(again.address(), q, /*ack=*/true);
  ASSERT_EQ(left.size(), 3u);
  for (std::size_t i = 0; i < left.size(); ++i) EXPECT_EQ(left[i].blob, sent[i + 3]) << i;
}

TEST_F(RelayTest, SigtermStopsCleanly) {
  RelayProcess relay(data(), log(), 0);
  ASSERT_TRUE(relay.ok());
  RelayClient c(relay.address());
  ASSERT_TRUE(c.ok());
  relay.process().Signal(SIGTERM);
  EXPECT_EQ(relay.process().Wait(10s), 0);
}

TEST_F(RelayTest, ClosedRelayRefusesClientsWithoutItsAccessKey) {
  RelayProcess relay(data(), log(), 0, {"--closed"});
  ASSERT_TRUE(relay.ok());
  ASSERT_EQ(relay.address().psk.size(), 32u);
  RelayClient with_key(relay.address());
  EXPECT_TRUE(with_key.ok()) << with_key.error().message;
  auto without = relay.address().Clone();
  without.psk = crypto::SecretBytes();
  RelayClient no_key(without);
  EXPECT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.error().code, Errc::kAuthenticationFailed);
}

TEST_F(RelayTest, RelayFilesHoldNoMarkerKeyOrName) {
  // What a client knows and the relay must never learn or keep.
  const std::string kName = "Zanele Mokoena (marker name)";
  const std::string kPlain = "MARKER-plaintext-strike-vote-4471";
  auto identity = crypto::Ed25519Generate(crypto::SystemRandom());
  const std::string payload =
      kName + "|" + kPlain + "|" + ToHex(identity.public_key);
  Queue q;
  {
    RelayProcess relay(data(), log(), 0);
    ASSERT_TRUE(relay.ok());
    RelayClient c(relay.address());
    ASSERT_TRUE(MakeQueue(c, q));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(SendTo(c, q, SealedBlob(payload)));
    (void)Drain(relay.address(), q, /*ack=*/false);  // delivered, kept (not acked)
    relay.process().Signal(SIGTERM);
    ASSERT_EQ(relay.process().Wait(10s), 0);
  }
  std::vector<std::string> markers = {kName, kPlain, ToHex(identity.public_key),
                                      std::string(identity.public_key.begin(),
                                                  identity.public_key.end())};
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_.path())) {
    if (!e.is_regular_file()) continue;
    ++files;
    std::string content = ReadFileOrDie(e.path());
    for (const auto& m : markers) {
      EXPECT_EQ(content.find(m), std::string::npos) << e.path() << " holds a marker";
    }
  }
  EXPECT_GE(files, 3) << "expected the key file, the database and the log";
  // The log names no client address.
  EXPECT_EQ(ReadFileOrDie(log()).find("127.0.0.1"), std::string::npos);
}

}  // namespace
}  // namespace rhizome::testing
