// The `rhizome` binary run as real processes on real profiles against one real
// rhizome-relay on 127.0.0.1: the fixture the CLI messaging tests share
// (cli_messaging_test.cc, cli_qr_test.cc). Header-only: RHIZOME_CLI_BIN and
// RHIZOME_RELAY_BIN are defined for the integration test binary.
//
// Each test gets a temporary directory holding the relay's data and one
// profile per person (DIR/<who>); HOME points at the directory, so nothing
// outside it is touched. Every wait is bounded: each run has a deadline
// (kCliRunDeadline), each sync a --timeout (kCliSyncTimeoutSeconds).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "process.h"
#include "relay_process.h"
#include "test_support.h"

namespace rhizome::testing {

// How long one run of `rhizome` may take before it is killed (a failure).
inline constexpr std::chrono::milliseconds kCliRunDeadline{30000};
// `rhizome sync --timeout` in the tests, in seconds.
inline constexpr const char* kCliSyncTimeoutSeconds = "5";

class CliWithRelay : public ::testing::Test {
 protected:
  // `passphrase` unlocks every profile of the test (RHIZOME_PASSPHRASE).
  explicit CliWithRelay(std::string passphrase) : passphrase_(std::move(passphrase)) {}

  void SetUp() override {
    relay_.emplace(dir_.path() / "relay", dir_.path() / "relay.log", 0);
    ASSERT_TRUE(relay_->ok()) << "rhizome-relay did not start";
  }

  // Stops the relay, which must exit cleanly. A derived TearDown calls it last.
  void TearDown() override {
    if (relay_ && relay_->ok()) {
      EXPECT_EQ(relay_->Stop(), 0);
    }
  }

  // Called after every run with its description ("rhizome[who] args...", long
  // arguments cut) and its result, e.g. to check all outputs in TearDown.
  virtual void Recorded(const std::string& /*command*/, const ProcessResult& /*r*/) {}

  // Runs `rhizome --profile DIR/who args...` with the passphrase in the
  // environment and `stdin_data` on stdin; a run that hits the deadline fails
  // the test. The result is handed to Recorded() before it is returned.
  ProcessResult Run(const std::string& who, std::vector<std::string> args,
                    const std::string& stdin_data = "") {
    std::string command = "rhizome[" + who + "]";
    for (const auto& a : args) command += " " + (a.size() > 80 ? a.substr(0, 80) + "..." : a);
    args.insert(args.begin(), {"--profile", (dir_.path() / who).string()});
    ProcessOptions opts;
    opts.env = {{"RHIZOME_PASSPHRASE", passphrase_}, {"HOME", dir_.path().string()}};
    opts.stdin_data = stdin_data;
    opts.deadline = kCliRunDeadline;
    ProcessResult r = RunProcess(RHIZOME_CLI_BIN, args, opts);
    EXPECT_FALSE(r.timed_out) << command;
    last_command_ = command;
    Recorded(command, r);
    return r;
  }

  // Runs a command with --json that must succeed and print a JSON object;
  // returns the object (an empty one on failure, after reporting it).
  nlohmann::json RunJson(const std::string& who, std::vector<std::string> args,
                         const std::string& stdin_data = "") {
    args.push_back("--json");
    ProcessResult r = Run(who, args, stdin_data);
    EXPECT_EQ(r.exit_code, 0) << last_command_ << "\n" << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ADD_FAILURE() << "not a JSON object from " << last_command_ << ": " << r.out;
      return nlohmann::json::object();
    }
    return j;
  }

  // `init` of who's profile under `name`; fatal if it fails.
  void Init(const std::string& who, const std::string& name) {
    auto r = Run(who, {"init", "--name", name, "--kdf-cost", "interactive"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Adds the test's relay to who's profile.
  void AddRelay(const std::string& who) {
    nlohmann::json added = RunJson(who, {"relay", "add", relay_->address_text()});
    EXPECT_EQ(added.value("address", ""), relay_->address_text());
  }

  // One `sync`, which must reach every relay.
  void Sync(const std::string& who) {
    nlohmann::json report = RunJson(who, {"sync", "--timeout", kCliSyncTimeoutSeconds});
    EXPECT_EQ(report.value("relaysUnreachable", "?"), "0") << who;
  }

  TempDir dir_;
  std::optional<RelayProcess> relay_;

 private:
  const std::string passphrase_;
  std::string last_command_;
};

}  // namespace rhizome::testing
