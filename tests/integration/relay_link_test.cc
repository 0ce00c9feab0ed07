// client::RelayLink, the client's relay connection, against a real
// rhizome-relay process on 127.0.0.1: the queue operations and the relay
// semantics its header documents (GET repeats the oldest message until ACK,
// ACK only on the connection that received the message), the mapping of
// relay refusals, and the bounded failures (unreachable port, a listener that
// never answers, a relay that stops answering, a relay killed mid-connection).
#include "rhizome/client/relay_link.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string_view>
#include <utility>

#include "relay_process.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/sign.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using client::RelayLink;
using protocol::RelayErrorCode;

constexpr auto kConnectDeadline = 10s;

// A relay-sized blob of random bytes (what the relay sees of a sealed message).
Bytes RandomBlob(std::size_t size = protocol::kRelayBlobSizes[0]) {
  Bytes blob(size);
  crypto::SystemRandom().Fill(blob);
  return blob;
}

// A loopback TCP socket bound to a free port; listening only if asked. A
// bound socket that does not listen refuses connections (RST), one that
// listens but never accepts completes TCP and then stays silent.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen_on_it) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    if (listen_on_it && ::listen(fd_, 4) != 0) return;
    socklen_t len = sizeof addr;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A well-formed address for 127.0.0.1:port with fresh keys (no relay behind it).
protocol::RelayAddress AddressFor(std::uint16_t port) {
  protocol::RelayAddress a;
  a.noise_key = crypto::X25519Generate(crypto::SystemRandom()).public_key;
  a.signing_key = crypto::Ed25519Generate(crypto::SystemRandom()).public_key;
  a.host = "127.0.0.1";
  a.port = port;
  return a;
}

// A rhizome-relay process in a temporary directory of its own.
struct LoopbackRelay {
  TempDir dir;
  RelayProcess process{dir.path() / "relay-data", dir.path() / "relay.log", 0};
  fs::path log() const { return dir.path() / "relay.log"; }
  // Whether the relay started (if not, the failure carries its log).
  ::testing::AssertionResult Started() const {
    if (process.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "rhizome-relay did not start:\n"
                                         << ReadFileOrDie(log());
  }
};

// A further link to `relay` (pinning its real keys, no key statement followed).
Result<RelayLink> ConnectTo(const RelayProcess& relay) {
  return RelayLink::Connect(relay.address(), 0, kConnectDeadline);
}

// The start most tests share: a relay of their own, a queue's keys (the
// recipient's Ed25519 key pair and a 32-byte send key) and a first link to the
// relay. crypto::Init() must have succeeded before one is made. Connect() and
// Open() fail the test on any error: run them in ASSERT_NO_FATAL_FAILURE.
struct QueueOnRelay {
  LoopbackRelay loopback;
  crypto::Ed25519KeyPair recipient = crypto::Ed25519Generate(crypto::SystemRandom());
  crypto::SecretBytes send_key = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  std::optional<RelayLink> link;  // set by Connect()
  client::NewQueueResult ids;     // set by Open()

  RelayProcess& relay() { return loopback.process; }

  // Checks that the relay started and opens `link` to it.
  void Connect() {
    ASSERT_TRUE(loopback.Started());
    auto opened = ConnectTo(relay());
    ASSERT_TRUE(opened) << opened.error().message;
    link.emplace(std::move(*opened));
  }

  // Connect(), then creates the queue on `link` (NEW, then KEY with send_key).
  void Open() {
    ASSERT_NO_FATAL_FAILURE(Connect());
    auto created = link->CreateQueue(recipient, send_key.expose());
    ASSERT_TRUE(created) << created.error().message;
    ids = *created;
  }
};

TEST(RelayLink, SendGetAckThenGetFindsNothing) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Open());
  RelayLink& link = *q.link;
  EXPECT_NE(q.ids.recipient_id, q.ids.sender_id);

  auto empty = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_FALSE(empty->has_value()) << "a new queue holds a message";

  const Bytes first = RandomBlob();
  const Bytes second = RandomBlob(protocol::kRelayBlobSizes[1]);
  auto sender = ConnectTo(q.relay());
  ASSERT_TRUE(sender) << sender.error().message;
  ASSERT_TRUE(sender->Send(q.ids.sender_id, q.send_key.expose(), first));
  ASSERT_TRUE(sender->Send(q.ids.sender_id, q.send_key.expose(), second));

  auto got = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->recipient_id, q.ids.recipient_id);
  EXPECT_EQ((*got)->blob, first);
  // Documented: GET returns the oldest message again until it is ACKed.
  auto again = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->message_id, (*got)->message_id);
  EXPECT_EQ((*again)->blob, first);

  ASSERT_TRUE(link.Ack(q.ids.recipient_id, (*got)->message_id));
  auto next = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(next && next->has_value());
  EXPECT_EQ((*next)->blob, second);
  ASSERT_TRUE(link.Ack(q.ids.recipient_id, (*next)->message_id));

  auto none = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->has_value()) << "an ACKed message came back";
}

TEST(RelayLink, WrongKeysAreNotFoundAndDeletedQueueIsGone) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Open());
  RelayLink& link = *q.link;
  ASSERT_TRUE(link.Send(q.ids.sender_id, q.send_key.expose(), RandomBlob()));

  auto stranger = crypto::Ed25519Generate(crypto::SystemRandom());
  auto wrong_get = link.Get(q.ids.recipient_id, stranger.secret_key);
  ASSERT_FALSE(wrong_get);
  EXPECT_EQ(wrong_get.error().code, Errc::kNotFound);
  EXPECT_STREQ(wrong_get.error().message, "no such queue or not authorized");
  EXPECT_EQ(link.Subscribe(q.ids.recipient_id, stranger.secret_key).error().code, Errc::kNotFound);
  EXPECT_EQ(link.DeleteQueue(q.ids.recipient_id, stranger.secret_key).error().code,
            Errc::kNotFound);
  auto wrong_send_key = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  EXPECT_EQ(link.Send(q.ids.sender_id, wrong_send_key.expose(), RandomBlob()).error().code,
            Errc::kNotFound);

  // The right key still works: nothing above changed the queue.
  auto got = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(got && got->has_value());

  ASSERT_TRUE(link.DeleteQueue(q.ids.recipient_id, q.recipient.secret_key));
  auto gone = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::kNotFound);
  EXPECT_EQ(link.Send(q.ids.sender_id, q.send_key.expose(), RandomBlob()).error().code,
            Errc::kNotFound);
}

TEST(RelayLink, AckIsRefusedOnAConnectionThatDidNotReceiveTheMessage) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Open());
  RelayLink& a = *q.link;
  ASSERT_TRUE(a.Send(q.ids.sender_id, q.send_key.expose(), RandomBlob()));
  auto got = a.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(got && got->has_value());

  auto b = ConnectTo(q.relay());
  ASSERT_TRUE(b) << b.error().message;
  auto refused = b->Ack(q.ids.recipient_id, (*got)->message_id);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::kNotFound);
  // Still stored: the connection that received it can acknowledge it.
  auto still = b->Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(still && still->has_value());
  EXPECT_EQ((*still)->message_id, (*got)->message_id);
  EXPECT_TRUE(a.Ack(q.ids.recipient_id, (*got)->message_id));
}

// AckQuietly() sends a quiet ACK and does not wait: an accepted one is never
// answered, a refused one is dropped and counted, and either way the next
// call's answer comes after it.
TEST(RelayLink, QuietAckDeletesWithoutAnAnswerAndItsRefusalIsDropped) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Open());
  RelayLink& a = *q.link;
  const Bytes first = RandomBlob();
  const Bytes second = RandomBlob();
  ASSERT_TRUE(a.Send(q.ids.sender_id, q.send_key.expose(), first));
  ASSERT_TRUE(a.Send(q.ids.sender_id, q.send_key.expose(), second));
  auto got = a.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(got && got->has_value());

  // Refused: b never received the message. The refusal is dropped, and the
  // message is still there.
  auto b = ConnectTo(q.relay());
  ASSERT_TRUE(b) << b.error().message;
  ASSERT_TRUE(b->AckQuietly(q.ids.recipient_id, (*got)->message_id));
  auto still = b->Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(still && still->has_value()) << "a refused quiet ACK deleted the message";
  EXPECT_EQ((*still)->blob, first);
  EXPECT_EQ(b->quiet_acks_refused(), 1u);

  // Accepted: the next GET already sees the second message.
  ASSERT_TRUE(a.AckQuietly(q.ids.recipient_id, (*got)->message_id));
  auto next = a.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(next && next->has_value());
  EXPECT_EQ((*next)->blob, second);
  ASSERT_TRUE(a.AckQuietly(q.ids.recipient_id, (*next)->message_id));
  auto none = a.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->has_value()) << "a quietly ACKed message came back";
  EXPECT_EQ(a.quiet_acks_refused(), 0u);

  // After the link is closed it refuses to send.
  a.Close();
  auto closed = a.AckQuietly(q.ids.recipient_id, (*next)->message_id);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code, Errc::kIo);
}

TEST(RelayLink, SubscribedLinkReceivesPushesAndAcksThem) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Open());
  RelayLink& r = *q.link;
  ASSERT_TRUE(r.Subscribe(q.ids.recipient_id, q.recipient.secret_key));

  auto s = ConnectTo(q.relay());
  ASSERT_TRUE(s) << s.error().message;
  const Bytes blob = RandomBlob();
  ASSERT_TRUE(s->Send(q.ids.sender_id, q.send_key.expose(), blob));
  auto push = r.NextPush(10s);
  ASSERT_TRUE(push) << "no push to the subscriber";
  auto* m = std::get_if<protocol::QueueMessage>(&push->body);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->blob, blob);
  EXPECT_TRUE(r.Ack(q.ids.recipient_id, m->message_id));
  auto none = r.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST(RelayLink, InvalidArgumentsAreRefusedBeforeAnythingIsSent) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Connect());
  RelayLink& link = *q.link;
  auto short_key = link.CreateQueue(q.recipient, ByteSpan(q.send_key.expose()).first(31));
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().code, Errc::kInvalidArgument);
  ByteArray<32> zero_key{};
  EXPECT_EQ(link.CreateQueue(q.recipient, zero_key).error().code, Errc::kInvalidArgument);

  auto created = link.CreateQueue(q.recipient, q.send_key.expose());
  ASSERT_TRUE(created) << created.error().message;
  // Not a relay blob size: the relay would refuse it, the link does first.
  EXPECT_EQ(link.Send(created->sender_id, q.send_key.expose(), RandomBlob(513)).error().code,
            Errc::kInvalidArgument);
  EXPECT_TRUE(link.is_open());
}

TEST(RelayLink, RelayRefusalsMapToErrorCodes) {
  EXPECT_EQ(client::RelayErrorToError(RelayErrorCode::kAuth).code, Errc::kNotFound);
  EXPECT_EQ(client::RelayErrorToError(RelayErrorCode::kQuota).code, Errc::kLimitExceeded);
  EXPECT_EQ(client::RelayErrorToError(RelayErrorCode::kRateLimited).code, Errc::kLimitExceeded);
  EXPECT_EQ(client::RelayErrorToError(RelayErrorCode::kTooLarge).code, Errc::kLimitExceeded);
  EXPECT_EQ(client::RelayErrorToError(RelayErrorCode::kMalformed).code, Errc::kMalformed);
  for (auto code :
       {RelayErrorCode::kDuplicateCorrId, RelayErrorCode::kAlreadySet, RelayErrorCode::kUnsupported,
        RelayErrorCode::kInternal, static_cast<RelayErrorCode>(4242)}) {
    const Error e = client::RelayErrorToError(code);
    EXPECT_EQ(e.code, Errc::kIo);
    EXPECT_STREQ(e.message, "relay refused the command");
  }
}

TEST(RelayLink, UnreachablePortIsAnIoErrorNotATimeout) {
  ASSERT_TRUE(crypto::Init());
  LoopbackSocket closed(/*listen_on_it=*/false);
  ASSERT_NE(closed.port(), 0);
  // The deadline is long: the refusal must come from the port, not from it.
  auto link = RelayLink::Connect(AddressFor(closed.port()), 0, 30s);
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().code, Errc::kIo);
  EXPECT_STREQ(link.error().message, "relay unreachable");
}

TEST(RelayLink, ListenerThatNeverAnswersTimesOutAtTheDeadline) {
  ASSERT_TRUE(crypto::Init());
  LoopbackSocket silent(/*listen_on_it=*/true);
  ASSERT_NE(silent.port(), 0);
  auto link = RelayLink::Connect(AddressFor(silent.port()), 0, 300ms);
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().code, Errc::kIo);
  EXPECT_STREQ(link.error().message, "relay connection timed out");
}

TEST(RelayLink, WrongPinnedNoiseKeyIsAnAuthenticationFailure) {
  ASSERT_TRUE(crypto::Init());
  LoopbackRelay loopback;
  ASSERT_TRUE(loopback.Started());
  auto impostor = loopback.process.address().Clone();
  impostor.noise_key = crypto::X25519Generate(crypto::SystemRandom()).public_key;
  auto link = RelayLink::Connect(impostor, 0, kConnectDeadline);
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().code, Errc::kAuthenticationFailed) << link.error().message;
}

TEST(RelayLink, StoppedRelayIsReportedAsNoAnswerWithinTheReplyTimeout) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Open());
  RelayLink& link = *q.link;

  q.relay().process().Signal(SIGSTOP);  // alive, connection open, answering nothing
  link.set_reply_timeout(300ms);
  auto silent = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  q.relay().process().Signal(SIGCONT);
  ASSERT_FALSE(silent);
  EXPECT_EQ(silent.error().code, Errc::kIo);
  EXPECT_STREQ(silent.error().message, "relay did not answer in time");
}

TEST(RelayLink, RelayKilledMidConnectionIsReportedAsClosedNotAHang) {
  ASSERT_TRUE(crypto::Init());
  QueueOnRelay q;
  ASSERT_NO_FATAL_FAILURE(q.Open());
  RelayLink& link = *q.link;
  ASSERT_TRUE(link.Subscribe(q.ids.recipient_id, q.recipient.secret_key));

  q.relay().process().Signal(SIGKILL);
  ASSERT_EQ(q.relay().process().Wait(10s), 128 + SIGKILL);
  // A long reply timeout: the answer must come from the closed connection.
  link.set_reply_timeout(60s);
  auto sent = link.Send(q.ids.sender_id, q.send_key.expose(), RandomBlob());
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, Errc::kIo);
  EXPECT_STREQ(sent.error().message, "relay connection closed");
  EXPECT_FALSE(link.is_open());
  // And it stays closed, without waiting.
  auto later = link.Get(q.ids.recipient_id, q.recipient.secret_key);
  ASSERT_FALSE(later);
  EXPECT_STREQ(later.error().message, "relay connection closed");
  EXPECT_FALSE(link.NextPush(60s)) << "a closed link delivered a push";
}

}  // namespace
}  // namespace rhizome::testing
