// `rhizome-relay rotate` and the relay key file (relay_keys.h, rotate.h): v1
// files still load, v2 round-trips, every rotation rule, the offline signing
// key, damaged files, and the engine pushing the statement after OnConnect.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "relay_keys.h"
#include "relay_test_util.h"
#include "rotate.h"
#include "rhizome/protocol/relay_address.h"

namespace rhizome::relay::testing {
namespace {

namespace fs = std::filesystem;

class RotateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init().ok()); }

  fs::path dir() const { return tmp_.path() / "relay"; }
  fs::path keys_file() const { return dir() / kRelayKeysFileName; }

  RelayKeys Create(bool closed) {
    bool created = false;
    auto keys = LoadOrCreateRelayKeys(dir(), closed, rng_, &created);
    EXPECT_TRUE(keys.ok());
    EXPECT_TRUE(created);
    return std::move(*keys);
  }
  RelayKeys Load() {
    auto keys = LoadRelayKeys(dir());
    EXPECT_TRUE(keys.ok()) << keys.error().message;
    return std::move(*keys);
  }
  RotateOutcome Rotate(RotateOptions options, std::uint64_t now = kT0) {
    auto out = RotateRelayKeys(dir(), options, rng_, now);
    EXPECT_TRUE(out.ok()) << out.error().message;
    return out.ok() ? std::move(*out) : RotateOutcome{};
  }
  Errc RotateError(RotateOptions options, std::uint64_t now = kT0) {
    auto out = RotateRelayKeys(dir(), options, rng_, now);
    EXPECT_FALSE(out.ok());
    return out.ok() ? Errc::kInternal : out.error().code;
  }
  void WriteAddress(const RelayKeys& keys) {
    auto text = FormatAddress(keys, "relay.example.org", 7750);
    ASSERT_TRUE(text.ok());
    std::ofstream(dir() / "address") << *text << "\n";
  }

  rhizome::testing::TempDir tmp_;
  crypto::DeterministicRandom rng_{4242};
};

// ---- the key file --------------------------------------------------------

TEST_F(RotateTest, VersionOneKeyFileStillLoads) {
  fs::create_directories(dir());
  auto noise = crypto::X25519Generate(rng_);
  const Bytes seed(32, 9);
  auto signing = crypto::Ed25519FromSeed(seed).value();
  Bytes v1(AsBytes(std::string_view("RHZRKEY1")).begin(), AsBytes(std::string_view("RHZRKEY1")).end());
  Append(v1, noise.secret_key.expose());
  Append(v1, seed);
  v1.push_back(32);
  Append(v1, Bytes(32, 5));
  WriteAll(keys_file(), v1);

  RelayKeys keys = Load();
  EXPECT_EQ(keys.noise.public_key, noise.public_key);
  EXPECT_EQ(keys.signing.public_key, signing.public_key);
  EXPECT_TRUE(keys.has_signing_secret());
  EXPECT_TRUE(keys.closed());
  EXPECT_TRUE(keys.psk.ConstantTimeEquals(crypto::SecretBytes::CopyFrom(Bytes(32, 5))));
  EXPECT_FALSE(keys.previous.has_value());
  EXPECT_FALSE(keys.statement.has_value());

  // A rotation rewrites it as version 2, keeping the signing key.
  Rotate({});
  RelayKeys after = Load();
  EXPECT_EQ(after.signing.public_key, signing.public_key);
  EXPECT_EQ(ReadAll(keys_file())[7], '2');
}

TEST_F(RotateTest, VersionOneOpenRelayLoads) {
  fs::create_directories(dir());
  Bytes v1(AsBytes(std::string_view("RHZRKEY1")).begin(), AsBytes(std::string_view("RHZRKEY1")).end());
  Append(v1, Bytes(32, 3));
  Append(v1, Bytes(32, 4));
  v1.push_back(0);
  WriteAll(keys_file(), v1);
  RelayKeys keys = Load();
  EXPECT_FALSE(keys.closed());
  v1.push_back(0);  // a trailing byte
  WriteAll(keys_file(), v1);
  EXPECT_EQ(LoadRelayKeys(dir()).error().code, Errc::kCorrupt);
}

TEST_F(RotateTest, NewKeyFileIsVersionTwoAndPrivate) {
  Create(false);
  const Bytes file = ReadAll(keys_file());
  ASSERT_GE(file.size(), 8u);
  EXPECT_EQ(std::string(file.begin(), file.begin() + 8), "RHZRKEY2");
  struct stat st {};
  ASSERT_EQ(::stat(keys_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(RotateTest, KeyFileRoundTripsPreviousKeysAndStatement) {
  RelayKeys made = Create(true);
  Rotate({.new_noise_key = true, .psk = PskChange::kKeep, .transition_seconds = 3600});
  RelayKeys keys = Load();
  ASSERT_TRUE(keys.previous.has_value());
  ASSERT_TRUE(keys.statement.has_value());
  ASSERT_TRUE(StoreRelayKeys(dir(), keys).ok());
  const Bytes first = ReadAll(keys_file());
  RelayKeys again = Load();
  ASSERT_TRUE(StoreRelayKeys(dir(), again).ok());
  EXPECT_EQ(ReadAll(keys_file()), first);
  EXPECT_EQ(again.previous->noise.public_key, made.noise.public_key);
  EXPECT_EQ(again.previous->transition_ends, kT0 + 3600);
  EXPECT_TRUE(again.previous->psk.ConstantTimeEquals(made.psk));
  EXPECT_EQ(again.statement->serial, 1u);
  EXPECT_FALSE(fs::exists(dir() / "relay.keys.tmp"));
}

TEST_F(RotateTest, TruncatedOrExtendedKeyFileIsDamaged) {
  Create(true);
  Rotate({});
  const Bytes good = ReadAll(keys_file());
  for (std::size_t len = 0; len < good.size(); ++len) {
    WriteAll(keys_file(), ByteSpan(good).first(len));
    EXPECT_EQ(LoadRelayKeys(dir()).error().code, Errc::kCorrupt) << "length " << len;
  }
  Bytes longer = good;
  longer.push_back(0);
  WriteAll(keys_file(), longer);
  EXPECT_EQ(LoadRelayKeys(dir()).error().code, Errc::kCorrupt);
  WriteAll(keys_file(), Bytes(kMaxRelayKeysFileBytes + 1, 'R'));
  EXPECT_EQ(LoadRelayKeys(dir()).error().code, Errc::kCorrupt);
}

TEST_F(RotateTest, AnyChangeToTheStoredStatementIsDetected) {
  Create(true);
  Rotate({});
  const Bytes good = ReadAll(keys_file());
  const std::size_t statement_bytes = protocol::kMaxRelayKeyStatementBytes;
  ASSERT_GT(good.size(), statement_bytes);
  const std::size_t start = good.size() - statement_bytes;
  for (std::size_t i = start; i < good.size(); ++i) {
    Bytes bad = good;
    bad[i] ^= 0x01;
    WriteAll(keys_file(), bad);
    EXPECT_EQ(LoadRelayKeys(dir()).error().code, Errc::kCorrupt) << "byte " << i;
  }
}

TEST_F(RotateTest, StatementThatDoesNotNameTheCurrentKeyIsDamage) {
  Create(false);
  Rotate({});
  RelayKeys keys = Load();
  // Swap in another Noise key: the statement no longer matches it.
  keys.noise = crypto::X25519Generate(rng_);
  ASSERT_TRUE(StoreRelayKeys(dir(), keys).ok());
  EXPECT_EQ(LoadRelayKeys(dir()).error().code, Errc::kCorrupt);
}

// ---- rotations -----------------------------------------------------------

TEST_F(RotateTest, NoiseRotationKeepsTheOldKeyForTheTransition) {
  RelayKeys before = Create(true);
  RotateOutcome out = Rotate({});
  EXPECT_EQ(out.serial, 1u);
  EXPECT_TRUE(out.noise_key_changed);
  EXPECT_FALSE(out.psk_changed);
  EXPECT_EQ(out.transition_ends, kT0 + kDefaultTransitionSeconds);

  RelayKeys after = Load();
  EXPECT_NE(after.noise.public_key, before.noise.public_key);
  EXPECT_EQ(after.signing.public_key, before.signing.public_key);
  EXPECT_TRUE(after.psk.ConstantTimeEquals(before.psk));
  ASSERT_TRUE(after.previous.has_value());
  EXPECT_EQ(after.previous->noise.public_key, before.noise.public_key);
  ASSERT_TRUE(after.statement.has_value());
  EXPECT_EQ(after.statement->noise_key, after.noise.public_key);
  EXPECT_TRUE(after.statement->psk.ConstantTimeEquals(after.psk));
  EXPECT_EQ(after.statement->valid_from, kT0);
  EXPECT_TRUE(protocol::VerifyRelayKeyStatement(*after.statement, before.signing.public_key).ok());

  // Both keys are accepted until the transition ends, then only the new one.
  auto during = HandshakeStatics(after, out.transition_ends - 1);
  ASSERT_EQ(during.size(), 2u);
  EXPECT_EQ(during[0]->public_key, after.noise.public_key);
  EXPECT_EQ(during[1]->public_key, before.noise.public_key);
  auto ended = HandshakeStatics(after, out.transition_ends);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->public_key, after.noise.public_key);
}

TEST_F(RotateTest, ClientHoldingTheOldAddressCanFollowTheStatement) {
  RelayKeys before = Create(false);
  auto old_text = FormatAddress(before, "relay.example.org", 7750).value();
  auto old_address = protocol::ParseRelayAddress(old_text).value();
  Rotate({});
  RelayKeys after = Load();
  auto updated = protocol::ApplyKeyStatement(old_address, *after.statement, 0);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(protocol::FormatRelayAddress(*updated).value(),
            FormatAddress(after, "relay.example.org", 7750).value());
}

TEST_F(RotateTest, SerialIncreasesAndARunningTransitionIsRetired) {
  Create(false);
  RotateOutcome first = Rotate({.transition_seconds = 3600});
  RelayKeys mid = Load();
  RotateOutcome second = Rotate({.transition_seconds = 3600}, kT0 + 10);
  EXPECT_EQ(first.serial, 1u);
  EXPECT_EQ(second.serial, 2u);
  EXPECT_FALSE(first.retired_running_transition);
  EXPECT_TRUE(second.retired_running_transition);
  RelayKeys last = Load();
  EXPECT_EQ(last.previous->noise.public_key, mid.noise.public_key);  // only one previous key
  EXPECT_EQ(last.previous->transition_ends, kT0 + 10 + 3600);
  // After the first transition ended, a rotation retires nothing early.
  RotateOutcome third = Rotate({.transition_seconds = 60}, kT0 + 10 + 3600);
  EXPECT_FALSE(third.retired_running_transition);
  EXPECT_EQ(third.serial, 3u);
}

TEST_F(RotateTest, ZeroTransitionDropsTheOldKeyAtOnce) {
  Create(false);
  RotateOutcome out = Rotate({.transition_seconds = 0});
  EXPECT_EQ(out.transition_ends, 0u);
  RelayKeys keys = Load();
  EXPECT_FALSE(keys.previous.has_value());
  EXPECT_EQ(HandshakeStatics(keys, kT0).size(), 1u);
}

TEST_F(RotateTest, NewAccessKeyTakesEffectAtOnce) {
  RelayKeys before = Create(true);
  RotateOutcome out = Rotate({.psk = PskChange::kNew, .transition_seconds = {}});
  EXPECT_TRUE(out.psk_changed);
  EXPECT_FALSE(out.noise_key_changed);
  EXPECT_EQ(out.transition_ends, 0u);
  RelayKeys after = Load();
  EXPECT_TRUE(after.closed());
  EXPECT_FALSE(after.psk.ConstantTimeEquals(before.psk));
  EXPECT_EQ(after.noise.public_key, before.noise.public_key);
  EXPECT_FALSE(after.previous.has_value());
  EXPECT_TRUE(after.statement->psk.ConstantTimeEquals(after.psk));
}

TEST_F(RotateTest, AccessKeyChangeWithATransitionIsRefusedAndChangesNothing) {
  Create(true);
  const Bytes before = ReadAll(keys_file());
  EXPECT_EQ(RotateError({.psk = PskChange::kNew, .transition_seconds = 3600}),
            Errc::kInvalidArgument);
  EXPECT_EQ(RotateError({.new_noise_key = true, .psk = PskChange::kOpen,
                         .transition_seconds = 60}),
            Errc::kInvalidArgument);
  EXPECT_EQ(ReadAll(keys_file()), before);
}

TEST_F(RotateTest, OpenTurnsAClosedRelayOpen) {
  Create(true);
  Rotate({.psk = PskChange::kOpen, .transition_seconds = {}});
  RelayKeys keys = Load();
  EXPECT_FALSE(keys.closed());
  EXPECT_TRUE(keys.statement->psk.empty());
}

TEST_F(RotateTest, OpenOnAnOpenRelayIsRefused) {
  Create(false);
  EXPECT_EQ(RotateError({.psk = PskChange::kOpen, .transition_seconds = {}}), Errc::kInvalidArgument);
  // With a new Noise key it is a plain key rotation.
  EXPECT_TRUE(RotateRelayKeys(dir(), {.new_noise_key = true, .psk = PskChange::kOpen,
                                      .transition_seconds = 0},
                              rng_, kT0)
                  .ok());
}

TEST_F(RotateTest, PskOnOpenRelayMakesItClosed) {
  Create(false);
  Rotate({.psk = PskChange::kNew, .transition_seconds = {}});
  EXPECT_TRUE(Load().closed());
}

TEST_F(RotateTest, TransitionAboveTheLimitIsRefused) {
  Create(false);
  EXPECT_EQ(RotateError({.transition_seconds = kMaxTransitionSeconds + 1}),
            Errc::kInvalidArgument);
}

TEST_F(RotateTest, MissingKeyFileAsksToPutItBack) {
  auto out = RotateRelayKeys(dir(), {}, rng_, kT0);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kNotFound);
  EXPECT_NE(std::strstr(out.error().message, "relay.keys"), nullptr);
}

TEST_F(RotateTest, SigningKeyMovedOfflineIsAClearErrorAndTheRelayStillLoads) {
  RelayKeys keys = Create(false);
  keys.signing.secret_key = crypto::SecretBytes();  // public half only
  ASSERT_TRUE(StoreRelayKeys(dir(), keys).ok());
  const Bytes before = ReadAll(keys_file());
  RelayKeys loaded = Load();
  EXPECT_FALSE(loaded.has_signing_secret());
  EXPECT_EQ(loaded.signing.public_key, keys.signing.public_key);

  auto out = RotateRelayKeys(dir(), {}, rng_, kT0);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kNotFound);
  EXPECT_NE(std::strstr(out.error().message, "put the full relay.keys back"), nullptr);
  EXPECT_EQ(ReadAll(keys_file()), before);
}

TEST_F(RotateTest, AddressFileGetsTheNewKeysAtTheSameHostAndPort) {
  RelayKeys before = Create(true);
  WriteAddress(before);
  RotateOutcome out = Rotate({});
  RelayKeys after = Load();
  EXPECT_EQ(out.address, FormatAddress(after, "relay.example.org", 7750).value());
  std::ifstream in(dir() / "address");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, out.address);
  struct stat st {};
  ASSERT_EQ(::stat((dir() / "address").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(RotateTest, WithoutAnAddressFileTheRotationStillHappens) {
  Create(false);
  RotateOutcome out = Rotate({});
  EXPECT_TRUE(out.address.empty());
  EXPECT_TRUE(Load().statement.has_value());
}

TEST_F(RotateTest, TransitionDurationsParse) {
  EXPECT_EQ(ParseTransition("0").value(), 0u);
  EXPECT_EQ(ParseTransition("90").value(), 90u);
  EXPECT_EQ(ParseTransition("90s").value(), 90u);
  EXPECT_EQ(ParseTransition("45m").value(), 45u * 60);
  EXPECT_EQ(ParseTransition("12h").value(), 12u * 3600);
  EXPECT_EQ(ParseTransition("30d").value(), 30u * 86400);
  EXPECT_EQ(ParseTransition("366d").value(), kMaxTransitionSeconds);
  for (const char* bad : {"", "d", "-1", "1.5d", "1w", "367d", "99999999999", "1 d", "0x10"}) {
    EXPECT_FALSE(ParseTransition(bad).ok()) << bad;
  }
}

// ---- the engine pushes the statement ---------------------------------------

using KeyStatementEngineTest = RelayTest;

TEST_F(KeyStatementEngineTest, NoStatementMeansNothingIsPushed) {
  Conn c = Connect();
  EXPECT_TRUE(Flush().empty());
  (void)c;
}

TEST_F(KeyStatementEngineTest, StatementIsPushedAfterConnectBeforeAnyReply) {
  auto signing = crypto::Ed25519Generate(rng_);
  protocol::RelayKeyStatement s;
  s.serial = 4;
  s.noise_key = crypto::X25519Generate(rng_).public_key;
  s.psk = crypto::SecretBytes::Random(rng_, 32);
  s.valid_from = kT0;
  ASSERT_TRUE(protocol::SignRelayKeyStatement(s, signing).ok());
  engine_->SetKeyStatement(s.Clone());

  Conn c = Connect();
  TestQueue q;
  q.recipient = crypto::Ed25519Generate(rng_);
  engine_->OnCommand(c.id, NewCmd(q), kT0);
  auto out = Flush();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].connection, c.id);
  EXPECT_FALSE(out[0].reply.corr_id.has_value());
  auto* pushed = std::get_if<protocol::RelayKeyStatement>(&out[0].reply.body);
  ASSERT_NE(pushed, nullptr);
  EXPECT_EQ(pushed->serial, 4u);
  EXPECT_TRUE(pushed->psk.ConstantTimeEquals(s.psk));
  EXPECT_TRUE(protocol::VerifyRelayKeyStatement(*pushed, signing.public_key).ok());
  EXPECT_TRUE(std::holds_alternative<protocol::QueueCreated>(out[1].reply.body));

  // Once per connection: nothing more on the next turn.
  engine_->OnCommand(c.id, NewCmd(q), kT0);
  auto next = Flush();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_TRUE(next[0].reply.corr_id.has_value());

  // Every new connection gets it, and a connection gone before the flush does not.
  Conn d = Connect();
  Conn gone = Connect();
  engine_->OnDisconnect(gone.id);
  auto pushes = Flush();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].connection, d.id);
}

}  // namespace
}  // namespace rhizome::relay::testing
