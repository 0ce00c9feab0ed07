// The `rhizome` and `rhizome-relay` binaries, run as real processes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "process.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPass = "correct horse battery staple";

class CliTest : public ::testing::Test {
 protected:
  fs::path profile() const { return dir_.path() / "profile"; }

  ProcessResult Rhizome(std::vector<std::string> args,
                        std::map<std::string, std::string> env = {{"RHIZOME_PASSPHRASE", kPass}}) {
    args.insert(args.begin(), {"--profile", profile().string()});
    env["HOME"] = dir_.path().string();
    ProcessOptions opts;
    opts.env = env;
    return RunProcess(RHIZOME_CLI_BIN, args, opts);
  }

  void Init(const std::string& name = "Amina Diallo") {
    auto r = Rhizome({"init", "--name", name, "--kdf-cost", "interactive"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Every file of the profile, by name, for "nothing changed" checks.
  std::map<std::string, std::string> Snapshot() const {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(profile())) {
      files[e.path().filename().string()] = ReadFileOrDie(e.path());
    }
    return files;
  }

  TempDir dir_;
};

TEST(CliBasics, VersionAndHelpWork) {
  auto v = RunProcess(RHIZOME_CLI_BIN, {"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("rhizome 0."), std::string::npos) << v.out;
  auto h = RunProcess(RHIZOME_CLI_BIN, {"--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("passwd"), std::string::npos);
  auto rv = RunProcess(RHIZOME_RELAY_BIN, {"--version"});
  EXPECT_EQ(rv.exit_code, 0);
  EXPECT_NE(rv.out.find("rhizome-relay 0."), std::string::npos) << rv.out;
}

TEST(CliBasics, UnknownCommandIsAUsageError) {
  auto r = RunProcess(RHIZOME_CLI_BIN, {"frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(r.err.empty());
}

TEST_F(CliTest, InitThenIdShowsTheSameIdentity) {
  auto init = Rhizome({"init", "--name", "Amina Diallo", "--kdf-cost", "interactive", "--json"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  auto created = nlohmann::json::parse(init.out);
  auto id = Rhizome({"id", "--json"});
  ASSERT_EQ(id.exit_code, 0) << id.err;
  auto shown = nlohmann::json::parse(id.out);
  EXPECT_EQ(shown["name"], "Amina Diallo");
  EXPECT_EQ(shown["identityKey"], created["identityKey"]);
  EXPECT_EQ(shown["noiseKey"], created["noiseKey"]);
  EXPECT_TRUE(std::regex_match(shown["safetyCode"].get<std::string>(),
                               std::regex("(\\d{5} ){5}\\d{5}")))
      << shown["safetyCode"];
  EXPECT_TRUE(std::regex_match(shown["fingerprint"].get<std::string>(),
                               std::regex("([0-9a-f]{4} ){9}[0-9a-f]{4}")));
  EXPECT_EQ(shown["identityKey"].get<std::string>().size(), 64u);

  auto plain = Rhizome({"id"});
  ASSERT_EQ(plain.exit_code, 0);
  EXPECT_NE(plain.out.find("Amina Diallo"), std::string::npos);
}

TEST_F(CliTest, TwoProfilesHaveDifferentIdentities) {
  Init();
  auto a = nlohmann::json::parse(Rhizome({"id", "--json"}).out);
  auto r = Rhizome({"init", "--name", "Other", "--kdf-cost", "interactive", "--force", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto b = nlohmann::json::parse(Rhizome({"id", "--json"}).out);
  EXPECT_NE(a["identityKey"], b["identityKey"]);
  EXPECT_NE(a["safetyCode"], b["safetyCode"]);
}

TEST_F(CliTest, InitOverAnExistingProfileIsRefusedWithoutForce) {
  Init();
  auto before = Snapshot();
  auto r = Rhizome({"init", "--name", "Intruder", "--kdf-cost", "interactive"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(CliTest, WrongPassphraseIsRefusedAndChangesNothing) {
  Init();
  auto before = Snapshot();
  auto r = Rhizome({"id"}, {{"RHIZOME_PASSPHRASE", "not it"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("wrong passphrase or damaged profile"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(CliTest, PassphraseNeverAppearsInOutput) {
  auto r = Rhizome({"init", "--name", "Amina Diallo", "--kdf-cost", "interactive"});
  ASSERT_EQ(r.exit_code, 0);
  auto id = Rhizome({"id", "--json"});
  auto wrong = Rhizome({"id"}, {{"RHIZOME_PASSPHRASE", "secret-marker-7731"}});
  for (const auto* p : {&r, &id}) {
    EXPECT_EQ(p->out.find(kPass), std::string::npos);
    EXPECT_EQ(p->err.find(kPass), std::string::npos);
  }
  EXPECT_EQ(wrong.err.find("secret-marker-7731"), std::string::npos);
}

TEST_F(CliTest, PassphraseFileWithTrailingNewlineOpensTheProfile) {
  Init();
  fs::path file = dir_.path() / "pass.txt";
  std::ofstream(file) << kPass << "\n";
  auto r = Rhizome({"--passphrase-file", file.string(), "id"}, {});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliTest, UnreadablePassphraseFileIsAClearError) {
  Init();
  auto r = Rhizome({"--passphrase-file", (dir_.path() / "missing").string(), "id"}, {});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot read the passphrase file"), std::string::npos) << r.err;
}

TEST_F(CliTest, OversizedPassphraseFileIsRefused) {
  Init();
  fs::path file = dir_.path() / "huge.txt";
  std::ofstream(file) << std::string(5000, 'x');
  auto r = Rhizome({"--passphrase-file", file.string(), "id"}, {});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("longer than"), std::string::npos) << r.err;
}

TEST_F(CliTest, NoPassphraseAndNoTerminalIsAClearError) {
  Init();
  auto r = Rhizome({"id"}, {});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no terminal"), std::string::npos) << r.err;
}

TEST_F(CliTest, MissingProfileIsAClearError) {
  auto r = Rhizome({"id"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no profile here"), std::string::npos) << r.err;
}

TEST_F(CliTest, TruncatedDatabaseIsAClearErrorNotACrash) {
  Init();
  fs::resize_file(profile() / "profile.db", 100);
  auto r = Rhizome({"id"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("rhizome: error:"), std::string::npos) << r.err;
}

TEST_F(CliTest, InvalidDisplayNameIsRefused) {
  auto r = Rhizome({"init", "--name", std::string(65, 'a'), "--kdf-cost", "interactive"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("display name"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(profile()));
}

TEST_F(CliTest, PasswdSwitchesPassphraseAndTheOldOneStopsWorking) {
  Init();
  auto before = nlohmann::json::parse(Rhizome({"id", "--json"}).out);
  auto r = Rhizome({"passwd", "--kdf-cost", "interactive"},
                   {{"RHIZOME_PASSPHRASE", kPass}, {"RHIZOME_NEW_PASSPHRASE", "new pass 2"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto old_pass = Rhizome({"id"});
  EXPECT_EQ(old_pass.exit_code, 1);
  EXPECT_NE(old_pass.err.find("wrong passphrase"), std::string::npos);
  auto new_pass = Rhizome({"id", "--json"}, {{"RHIZOME_PASSPHRASE", "new pass 2"}});
  ASSERT_EQ(new_pass.exit_code, 0) << new_pass.err;
  EXPECT_EQ(nlohmann::json::parse(new_pass.out)["identityKey"], before["identityKey"]);
  EXPECT_FALSE(fs::exists(profile() / "profile.key.new"));
}

TEST_F(CliTest, PasswdWithWrongCurrentPassphraseChangesNothing) {
  Init();
  auto before = Snapshot();
  auto r = Rhizome({"passwd", "--kdf-cost", "interactive"},
                   {{"RHIZOME_PASSPHRASE", "wrong"}, {"RHIZOME_NEW_PASSPHRASE", "new"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(CliTest, WipeWithoutConfirmationOrTerminalKeepsTheProfile) {
  Init();
  auto r = Rhizome({"wipe"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not confirmed"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(profile() / "profile.key"));
  EXPECT_EQ(Rhizome({"id"}).exit_code, 0);
}

TEST_F(CliTest, WipeYesRemovesTheProfile) {
  Init();
  auto r = Rhizome({"wipe", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(profile()));
  auto id = Rhizome({"id"});
  EXPECT_EQ(id.exit_code, 1);
  EXPECT_NE(id.err.find("no profile here"), std::string::npos);
}

TEST_F(CliTest, DefaultProfileDirectoryComesFromRhizomeHome) {
  ProcessOptions opts;
  opts.env = {{"RHIZOME_PASSPHRASE", kPass},
              {"RHIZOME_HOME", (dir_.path() / "home-profile").string()},
              {"HOME", dir_.path().string()}};
  auto r = RunProcess(RHIZOME_CLI_BIN, {"init", "--name", "Env", "--kdf-cost", "interactive"},
                      opts);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_.path() / "home-profile" / "profile.key"));
}

TEST(CliDemo, DemoRunsAndCleansUp) {
  TempDir tmp;
  ProcessOptions opts;
  opts.env = {{"TMPDIR", tmp.path().string()}, {"RHIZOME_RELAY_BIN", RHIZOME_RELAY_BIN}};
  auto r = RunProcess(RHIZOME_CLI_BIN, {"demo"}, opts);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Three people confirmed as contacts through the relay, messages delivered
  // (also the one written while the relay was down), two daemons talking over
  // direct links, nothing on disk in clear.
  EXPECT_NE(r.out.find("contact Bruno (labour NGO) [confirmed]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("to Amina (shop steward): \"Logs are in my locker. 12 names so far.\" "
                       "(delivered)"),
            std::string::npos)
      << r.out;
  // Two more over direct links, with the relay gone.
  EXPECT_NE(r.out.find("to Eli (union organiser): \"The training notes are on the shared drive.\" "
                       "(delivered)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Delivered and receipted over the direct link alone."), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("texts and names: not found"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_empty(tmp.path())) << "the demo left files behind";
}

}  // namespace
}  // namespace rhizome::testing
