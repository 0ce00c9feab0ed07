// The messaging commands of the `rhizome` binary (relay, invite, accept,
// contacts, verify, send, read, expire, sync), run as real processes on real
// profiles against one real rhizome-relay on 127.0.0.1: the whole first
// contact and a message with its receipt, then a catalogue of refusals. Every
// refusal must exit non-zero, say why on stderr and print nothing on stdout,
// with and without --json. After each test, no output of any run may contain
// the passphrase or an invite code (other than the run that printed it).
// Every wait is bounded: each run has a deadline, each sync a --timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli_process.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPass = "cli-messaging passphrase 4c9e1b";
constexpr std::string_view kCodeScheme = "rhizome-invite:";
// Length of the code fragments searched for in every other output.
constexpr std::size_t kCodeChunkChars = 24;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

class CliMessaging : public CliWithRelay {
 protected:
  CliMessaging() : CliWithRelay(kPass) {}

  void TearDown() override {
    // SECURITY: an invite code carries the invite secret. Only the run that
    // made it prints it (on stdout); nothing else does, stderr least of all.
    // A code also holds the relay's address (public, and in every code made on
    // that relay), so only the fragments unique to one code are searched for:
    // those that hold its secret, key, fingerprint and queue id.
    std::vector<std::vector<std::string>> unique_chunks(codes_.size());
    for (std::size_t c = 0; c < codes_.size(); ++c) {
      const std::string body = codes_[c].first.substr(kCodeScheme.size());
      for (std::size_t at = 0; at + kCodeChunkChars <= body.size(); at += kCodeChunkChars / 2) {
        const std::string chunk = body.substr(at, kCodeChunkChars);
        bool shared =
            relay_ && relay_->ok() && relay_->address_text().find(chunk) != std::string::npos;
        for (std::size_t other = 0; other < codes_.size(); ++other) {
          if (other != c && codes_[other].first.find(chunk) != std::string::npos) shared = true;
        }
        if (!shared) unique_chunks[c].push_back(chunk);
      }
      EXPECT_GE(unique_chunks[c].size(), 4u) << "too little of the code left to search for";
    }
    for (std::size_t i = 0; i < runs_.size(); ++i) {
      const auto& [command, r] = runs_[i];
      EXPECT_EQ(r.out.find(kPass), std::string::npos) << "passphrase on stdout of: " << command;
      EXPECT_EQ(r.err.find(kPass), std::string::npos) << "passphrase on stderr of: " << command;
      for (std::size_t c = 0; c < codes_.size(); ++c) {
        bool on_out = false;
        bool on_err = false;
        for (const auto& chunk : unique_chunks[c]) {
          on_out = on_out || r.out.find(chunk) != std::string::npos;
          on_err = on_err || r.err.find(chunk) != std::string::npos;
        }
        EXPECT_FALSE(on_err) << "invite code on stderr of: " << command;
        if (i != codes_[c].second) {
          EXPECT_FALSE(on_out) << "invite code on stdout of: " << command;
        }
      }
    }
    CliWithRelay::TearDown();
  }

  // Every run is kept for the checks in TearDown.
  void Recorded(const std::string& command, const ProcessResult& r) override {
    runs_.emplace_back(command, r);
  }

  // `invite --json` with `extra` options; returns the code and remembers it
  // for the leak checks.
  json MakeInvite(const std::string& who, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"invite"};
    args.insert(args.end(), extra.begin(), extra.end());
    json invite = RunJson(who, args);
    const std::string code = invite.value("code", "");
    EXPECT_EQ(code.rfind(kCodeScheme, 0), 0u) << code;
    if (code.size() > kCodeScheme.size()) codes_.emplace_back(code, runs_.size() - 1);
    return invite;
  }

  json Contacts(const std::string& who) {
    json list = RunJson(who, {"contacts"});
    return list.contains("contacts") ? list["contacts"] : json::array();
  }

  // The contact called `name` in who's list (an empty object, reported, if absent).
  json FindContact(const std::string& who, const std::string& name) {
    json list = Contacts(who);
    for (const auto& c : list) {
      if (c.value("name", "") == name) return c;
    }
    ADD_FAILURE() << who << " has no contact " << name << ": " << list.dump();
    return json::object();
  }

  json Messages(const std::string& who, const std::string& contact) {
    json list = RunJson(who, {"read", contact});
    return list.contains("messages") ? list["messages"] : json::array();
  }

  std::string Fingerprint(const std::string& who) {
    return RunJson(who, {"id"}).value("fingerprint", "");
  }

  // The command must fail with `exit_code`, `needle` on stderr, nothing on
  // stdout, and none of `forbidden` anywhere; once as given, once with --json.
  void ExpectRefused(const std::string& who, const std::vector<std::string>& args,
                     const std::string& needle, int exit_code = kExitFailed,
                     const std::string& stdin_data = "",
                     const std::vector<std::string>& forbidden = {}) {
    for (bool with_json : {false, true}) {
      std::vector<std::string> a = args;
      if (with_json) a.push_back("--json");
      ProcessResult r = Run(who, a, stdin_data);
      SCOPED_TRACE(runs_.back().first);
      EXPECT_EQ(r.exit_code, exit_code) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
      EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
      if (exit_code == kExitFailed) {
        EXPECT_EQ(r.err.rfind("rhizome: error: ", 0), 0u) << r.err;
      }
      for (const auto& f : forbidden) {
        EXPECT_EQ(r.out.find(f), std::string::npos) << "echoed on stdout: " << f.substr(0, 40);
        EXPECT_EQ(r.err.find(f), std::string::npos) << "echoed on stderr: " << f.substr(0, 40);
      }
    }
  }

  // Amina invites, Bruno accepts calling her "Amina"; nobody has synced yet.
  std::string InviteAndAccept() {
    const std::string code = MakeInvite("amina").value("code", "");
    json accepted = RunJson("bruno", {"accept", code, "--name", "Amina"});
    EXPECT_EQ(accepted.value("name", ""), "Amina");
    EXPECT_EQ(accepted.value("status", ""), "request sent");
    return code;
  }

  // The four passes of first contact: request, card, Noise_KK both ways.
  void SyncUntilConfirmed() {
    Sync("amina");  // opens the request, sends Amina's card
    Sync("bruno");  // checks the card, sends Bruno's card and KK 1
    Sync("amina");  // KK 2: confirmed on Amina's side
    Sync("bruno");  // confirmed on Bruno's side
  }

  std::vector<std::pair<std::string, ProcessResult>> runs_;
  std::vector<std::pair<std::string, std::size_t>> codes_;  // code, index of the run that made it
};

TEST_F(CliMessaging, InviteAcceptConfirmSendReadVerifyAndExpire) {
  Init("amina", "Amina Diallo");
  Init("bruno", "Bruno Costa");
  AddRelay("amina");
  AddRelay("bruno");
  json relays = RunJson("amina", {"relay", "list"});
  ASSERT_EQ(relays["relays"].size(), 1u);
  EXPECT_EQ(relays["relays"][0].value("address", ""), relay_->address_text());

  json invite = MakeInvite("amina");
  EXPECT_EQ(invite.value("usesLeft", 0), 1);
  EXPECT_FALSE(invite.value("id", "").empty());
  InviteAndAccept();
  EXPECT_EQ(RunJson("amina", {"invite", "--list"})["invites"].size(), 2u);
  SyncUntilConfirmed();

  // Each side holds the other, confirmed, under the other's real fingerprint.
  json at_amina = FindContact("amina", "Bruno Costa");
  json at_bruno = FindContact("bruno", "Amina");
  EXPECT_EQ(at_amina.value("status", ""), "confirmed");
  EXPECT_EQ(at_bruno.value("status", ""), "confirmed");
  EXPECT_EQ(at_amina.value("fingerprint", ""), Fingerprint("bruno"));
  EXPECT_EQ(at_bruno.value("fingerprint", ""), Fingerprint("amina"));
  EXPECT_FALSE(at_amina.value("verified", true));
  // The used single-use invite is gone; the unused one is still listed.
  json open = RunJson("amina", {"invite", "--list"});
  ASSERT_EQ(open["invites"].size(), 1u);
  EXPECT_EQ(open["invites"][0].value("id", ""), invite.value("id", ""));

  const std::string text = "The night shift meets Thursday at 7, back entrance.";
  json sent = RunJson("amina", {"send", "Bruno Costa", text});
  EXPECT_EQ(sent.value("text", ""), text);
  EXPECT_EQ(sent.value("state", ""), "queued");
  EXPECT_TRUE(sent.value("outgoing", false));
  Sync("amina");  // upload
  Sync("bruno");  // receive, store, send the receipt
  Sync("amina");  // the receipt

  json received = Messages("bruno", "Amina");
  ASSERT_EQ(received.size(), 1u) << received.dump();
  EXPECT_EQ(received[0].value("text", ""), text);
  EXPECT_FALSE(received[0].value("outgoing", true));
  EXPECT_EQ(received[0].value("state", ""), "received");
  json mine = Messages("amina", "Bruno Costa");
  ASSERT_EQ(mine.size(), 1u) << mine.dump();
  EXPECT_EQ(mine[0].value("text", ""), text);
  EXPECT_EQ(mine[0].value("state", ""), "delivered");
  auto plain = Run("amina", {"read"});
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_NE(plain.out.find(text + "  (delivered)"), std::string::npos) << plain.out;

  // The same safety number on both sides; --confirm marks only this side verified.
  json sa = RunJson("amina", {"verify", "Bruno Costa"});
  json sb = RunJson("bruno", {"verify", "Amina"});
  EXPECT_TRUE(std::regex_match(sa.value("safetyNumber", ""), std::regex("(\\d{5} ){11}\\d{5}")))
      << sa.dump();
  EXPECT_EQ(sa.value("safetyNumber", "a"), sb.value("safetyNumber", "b"));
  EXPECT_FALSE(sa.value("verified", true));
  json confirmed = RunJson("amina", {"verify", "Bruno Costa", "--confirm"});
  EXPECT_TRUE(confirmed.value("verified", false));
  EXPECT_EQ(confirmed.value("safetyNumber", ""), sa.value("safetyNumber", "a"));
  EXPECT_TRUE(FindContact("amina", "Bruno Costa").value("verified", false));
  EXPECT_TRUE(RunJson("amina", {"verify", "Bruno Costa"}).value("verified", false));
  EXPECT_FALSE(FindContact("bruno", "Amina").value("verified", true));

  // A message from stdin: the trailing newline is not part of it.
  const std::string reply = "Logs are in my locker. 12 names so far.";
  json from_stdin = RunJson("bruno", {"send", "Amina"}, reply + "\n");
  EXPECT_EQ(from_stdin.value("text", ""), reply);
  Sync("bruno");
  Sync("amina");
  json both = Messages("amina", "Bruno Costa");
  ASSERT_EQ(both.size(), 2u) << both.dump();
  EXPECT_EQ(both[1].value("text", ""), reply);
  EXPECT_EQ(both[1].value("state", ""), "received");

  // Disappearing messages: set, shown in contacts, switched off again.
  json on = RunJson("amina", {"expire", "Bruno Costa", "1h"});
  EXPECT_FALSE(on.value("message", "").empty());
  EXPECT_EQ(FindContact("amina", "Bruno Costa").value("expireSeconds", ""), "3600");
  RunJson("amina", {"expire", "Bruno Costa", "off"});
  EXPECT_EQ(FindContact("amina", "Bruno Costa").value("expireSeconds", ""), "0");
}

TEST_F(CliMessaging, MalformedTruncatedAlteredAndExpiredInviteCodesAreRefused) {
  Init("amina", "Amina Diallo");
  Init("bruno", "Bruno Costa");
  AddRelay("amina");
  AddRelay("bruno");
  const std::string code = MakeInvite("amina").value("code", "");
  ASSERT_GT(code.size(), kCodeScheme.size() + 40);

  ExpectRefused("bruno", {"accept", "hello there"}, "not a rhizome-invite: code");
  ExpectRefused("bruno", {"accept", "rhizome-invite:0189"}, "invite code is bad base32");
  ExpectRefused("bruno", {"accept", code.substr(0, code.size() - 5)}, "invite code");
  std::string altered = code;
  char& c = altered[kCodeScheme.size() + (code.size() - kCodeScheme.size()) / 2];
  c = c == 'a' ? 'b' : 'a';
  ExpectRefused("bruno", {"accept", altered}, "invite code checksum mismatch");

  json short_lived = MakeInvite("amina", {"--expires", "1s"});
  const auto expires_at = std::stoll(short_lived.value("expiresAt", "0"));
  ASSERT_GT(expires_at, 0);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::time(nullptr) <= expires_at && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ExpectRefused("bruno", {"accept", short_lived.value("code", "")}, "invite has expired");

  // Nothing was stored by any refusal.
  EXPECT_TRUE(Contacts("bruno").empty());
}

TEST_F(CliMessaging, ReusedSingleUseInviteNeverConfirmsTheSecondAcceptor) {
  Init("amina", "Amina Diallo");
  Init("bruno", "Bruno Costa");
  Init("chen", "Chen Wei");
  for (const char* who : {"amina", "bruno", "chen"}) AddRelay(who);
  const std::string code = InviteAndAccept();
  Sync("amina");  // Bruno's request is processed: the invite is used up
  EXPECT_TRUE(RunJson("amina", {"invite", "--list"})["invites"].empty());

  // Chen cannot know locally that the code was used; whatever accept says,
  // the request must lead nowhere.
  auto again = Run("chen", {"accept", code, "--name", "Amina", "--json"});
  if (again.exit_code != 0) {
    EXPECT_TRUE(again.out.empty()) << again.out;
  }
  Sync("bruno");
  Sync("chen");
  Sync("amina");
  Sync("bruno");
  Sync("chen");

  // The control: these passes were enough to confirm Bruno.
  EXPECT_EQ(FindContact("bruno", "Amina").value("status", ""), "confirmed");
  json chen_contacts = Contacts("chen");
  for (const auto& contact : chen_contacts) {
    EXPECT_NE(contact.value("status", ""), "confirmed") << contact.dump();
    EXPECT_EQ(contact.value("fingerprint", "x"), "") << contact.dump();
  }
  json amina_contacts = Contacts("amina");
  ASSERT_EQ(amina_contacts.size(), 1u) << amina_contacts.dump();
  EXPECT_EQ(amina_contacts[0].value("fingerprint", ""), Fingerprint("bruno"));
}

TEST_F(CliMessaging, RelayAddRemoveErrorsAreClear) {
  Init("amina", "Amina Diallo");
  ExpectRefused("amina", {"relay", "add", "garbage"}, "not a rhizome-relay:// address");
  ExpectRefused("amina", {"relay", "add", "rhizome-relay://"}, "relay address");
  AddRelay("amina");
  ExpectRefused("amina", {"relay", "add", relay_->address_text()},
                "this relay is already in the profile");
  ExpectRefused("amina",
                {"relay", "remove", "rhizome-relay://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@127.0.0.1:1"},
                "no such relay in the profile");
  json relays = RunJson("amina", {"relay", "list"});
  ASSERT_EQ(relays["relays"].size(), 1u);
  EXPECT_EQ(relays["relays"][0].value("address", ""), relay_->address_text());

  RunJson("amina", {"relay", "remove", relay_->address_text()});
  EXPECT_TRUE(RunJson("amina", {"relay", "list"})["relays"].empty());
}

TEST_F(CliMessaging, InviteOptionErrorsAreClear) {
  Init("amina", "Amina Diallo");
  ExpectRefused("amina", {"invite"}, "add a relay first");
  AddRelay("amina");
  ExpectRefused("amina", {"invite", "--uses", "0"}, "--uses", kExitUsage);
  ExpectRefused("amina", {"invite", "--uses", "5000"}, "--uses", kExitUsage);
  ExpectRefused("amina", {"invite", "--expires", "abc"}, "a duration is a number");
  ExpectRefused("amina", {"invite", "--expires", "0"}, "an invite must expire");
  ExpectRefused("amina", {"invite", "--expires", "5x"}, "a duration is a number");
  ExpectRefused("amina", {"invite", "--expires", "91d"}, "between 1 second and 90 days");
  EXPECT_TRUE(RunJson("amina", {"invite", "--list"})["invites"].empty());
  ExpectRefused("amina", {"invite", "--revoke", "deadbeef"}, "no such invite");
}

TEST_F(CliMessaging, SendVerifyReadAndExpireErrorsAreClear) {
  Init("amina", "Amina Diallo");
  Init("bruno", "Bruno Costa");
  AddRelay("amina");
  AddRelay("bruno");
  InviteAndAccept();  // Bruno holds "Amina", not confirmed yet

  const std::string marker = "strike vote marker 5e7d";
  ExpectRefused("bruno", {"send", "Nobody", marker}, "no such contact", kExitFailed, "", {marker});
  ExpectRefused("bruno", {"send", "Amina", marker}, "contact is not confirmed yet", kExitFailed, "",
                {marker});
  ExpectRefused("bruno", {"send", "Amina"}, "contact is not confirmed yet", kExitFailed, marker,
                {marker});
  ExpectRefused("bruno", {"verify", "Amina"}, "contact is not confirmed yet");
  ExpectRefused("bruno", {"verify", "Amina", "--confirm"}, "contact is not confirmed yet");
  ExpectRefused("bruno", {"verify", "Nobody"}, "no such contact");
  ExpectRefused("bruno", {"read", "Nobody"}, "no such contact");
  ExpectRefused("bruno", {"expire", "Nobody", "1h"}, "no such contact");
  ExpectRefused("bruno", {"expire", "Amina", "5x"}, "a duration is a number");
  EXPECT_FALSE(FindContact("bruno", "Amina").value("verified", true));

  // Text limits, checked on a confirmed contact so the text is the only fault.
  SyncUntilConfirmed();
  ASSERT_EQ(FindContact("bruno", "Amina").value("status", ""), "confirmed");
  ExpectRefused("bruno", {"send", "Amina", ""}, "empty message");
  ExpectRefused("bruno", {"send", "Amina"}, "empty message", kExitFailed, "");
  ExpectRefused("bruno", {"send", "Amina"}, "empty message", kExitFailed, "\n");
  std::string too_long;
  while (too_long.size() < 16001) too_long += "union-marker ";
  too_long.resize(16001);
  ExpectRefused("bruno", {"send", "Amina"}, "message is too long", kExitFailed, too_long,
                {"union-marker"});
  ExpectRefused("bruno", {"send", "Amina"}, "message is too long", kExitFailed, too_long + "\n",
                {"union-marker"});
  EXPECT_TRUE(Messages("bruno", "Amina").empty());

  // The largest text passes (its trailing newline is dropped).
  json largest = RunJson("bruno", {"send", "Amina"}, too_long.substr(0, 16000) + "\n");
  EXPECT_EQ(largest.value("text", "").size(), 16000u);
  EXPECT_EQ(Messages("bruno", "Amina").size(), 1u);
}

}  // namespace
}  // namespace rhizome::testing
