// The `rhizome` command line: argument parsing (CLI11) and the commands.
#include "rhizome/client/cli.h"

#include <google/protobuf/util/json_util.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "api.h"
#include "daemon.h"
#include "demo.h"
#include "passphrase.h"
#include "qr.h"
#include "rhizome/client/messenger.h"
#include "rhizome/client/peer_link.h"
#include "rhizome/client/relay_link.h"
#include "rhizome/cli/v1/cli.pb.h"
#include "rhizome/crypto/pwhash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/safety_number.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/protocol/wire_types.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"

namespace rhizome::client {

namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct GlobalOptions {
  std::optional<fs::path> profile;
  std::optional<fs::path> passphrase_file;
};

// Prints "rhizome: error: <message>" and returns the failure exit code.
int Fail(const Error& e) {
  std::fprintf(stderr, "rhizome: error: %s\n", e.message);
  return kExitFailed;
}

int FailText(const char* message) {
  std::fprintf(stderr, "rhizome: error: %s\n", message);
  return kExitFailed;
}

fs::path ResolveProfileDir(const GlobalOptions& g) {
  if (g.profile) return fs::absolute(*g.profile);
  if (const char* home = std::getenv("RHIZOME_HOME"); home != nullptr && *home != '\0') {
    return home;
  }
  const char* user_home = std::getenv("HOME");
  return fs::path(user_home != nullptr ? user_home : ".") / ".local" / "share" / "rhizome";
}

void PrintJson(const google::protobuf::Message& msg) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
  std::cout << out << "\n";
}

Result<storage::Profile> OpenProfile(const GlobalOptions& g, const fs::path& dir) {
  if (!storage::Profile::Exists(dir)) {
    return Error{Errc::kNotFound, "no profile here: create one with `rhizome init --name NAME`"};
  }
  auto pass = GetPassphrase(g.passphrase_file, kPassphraseEnv, "Passphrase: ", false);
  if (!pass) return pass.error();
  return storage::Profile::Open(dir, pass->expose());
}

cli::v1::IdentityInfo DescribeIdentity(const protocol::Identity& id, const fs::path& dir) {
  cli::v1::IdentityInfo info;
  info.set_name(id.display_name);
  info.set_identity_key(ToHex(id.signing.public_key));
  info.set_noise_key(ToHex(id.noise.public_key));
  info.set_fingerprint(protocol::IdentityFingerprint(id.signing.public_key));
  auto code = crypto::SafetyCode(id.signing.public_key);
  info.set_safety_code(code ? crypto::GroupDigits(*code) : "");
  info.set_profile(dir.string());
  return info;
}

void PrintIdentity(const cli::v1::IdentityInfo& info, bool json) {
  if (json) {
    PrintJson(info);
    return;
  }
  std::cout << "Name:         " << info.name() << "\n"
            << "Fingerprint:  " << info.fingerprint() << "\n"
            << "Safety code:  " << info.safety_code() << "\n"
            << "Profile:      " << info.profile() << "\n";
}

// --- commands ---------------------------------------------------------------

struct InitOptions {
  std::string name;
  bool force = false;
  std::string kdf_cost = "moderate";
  bool json = false;
};

int CmdInit(const GlobalOptions& g, const InitOptions& o) {
  const fs::path dir = ResolveProfileDir(g);
  if (auto st = protocol::ValidateDisplayName(o.name); !st) return Fail(st.error());
  auto params = crypto::Argon2idParams::FromName(o.kdf_cost);
  if (!params) return Fail(params.error());
  if (storage::Profile::Exists(dir) && !o.force) {
    return FailText("a profile already exists here (use --force to replace it, which destroys it)");
  }
  auto pass = GetPassphrase(g.passphrase_file, kPassphraseEnv, "New passphrase: ", true);
  if (!pass) return Fail(pass.error());

  auto& rng = crypto::SystemRandom();
  auto identity = protocol::GenerateIdentity(o.name, rng);
  if (!identity) return Fail(identity.error());
  auto profile = storage::Profile::Create(dir, pass->expose(), *params, rng, o.force);
  if (!profile) return Fail(profile.error());
  if (auto st = storage::SaveIdentity(profile->db(), *identity); !st) return Fail(st.error());

  auto info = DescribeIdentity(*identity, dir);
  if (!o.json) std::cout << "Created a new profile.\n";
  PrintIdentity(info, o.json);
  return kExitOk;
}

int CmdId(const GlobalOptions& g, bool json) {
  const fs::path dir = ResolveProfileDir(g);
  auto profile = OpenProfile(g, dir);
  if (!profile) return Fail(profile.error());
  auto identity = storage::LoadIdentity(profile->db());
  if (!identity) return Fail(identity.error());
  PrintIdentity(DescribeIdentity(*identity, dir), json);
  return kExitOk;
}

struct PasswdOptions {
  std::optional<fs::path> new_passphrase_file;
  std::string kdf_cost = "moderate";
  bool json = false;
};

int CmdPasswd(const GlobalOptions& g, const PasswdOptions& o) {
  const fs::path dir = ResolveProfileDir(g);
  auto params = crypto::Argon2idParams::FromName(o.kdf_cost);
  if (!params) return Fail(params.error());
  auto profile = OpenProfile(g, dir);
  if (!profile) return Fail(profile.error());
  auto next = GetPassphrase(o.new_passphrase_file, kNewPassphraseEnv, "New passphrase: ", true);
  if (!next) return Fail(next.error());
  if (auto st = profile->ChangePassphrase(next->expose(), *params, crypto::SystemRandom()); !st) {
    return Fail(st.error());
  }
  constexpr const char* kMsg =
      "Passphrase changed. The database has a new key: the old passphrase no longer opens it.";
  if (o.json) {
    cli::v1::Done done;
    done.set_message(kMsg);
    done.set_profile(dir.string());
    PrintJson(done);
  } else {
    std::cout << kMsg << "\n";
  }
  return kExitOk;
}

int CmdWipe(const GlobalOptions& g, bool yes, bool json) {
  const fs::path dir = ResolveProfileDir(g);
  if (!storage::Profile::Exists(dir)) return FailText("no profile here: nothing to wipe");
  if (!yes) {
    std::string prompt = "This destroys the profile in " + dir.string() +
                         " for good: every key, contact and message.\nType WIPE to go on: ";
    auto answer = PromptLine(prompt);
    if (!answer) return FailText("not confirmed: no terminal (use --yes in scripts)");
    if (*answer != "WIPE") return FailText("not confirmed: nothing was changed");
  }
  if (auto st = storage::Profile::Wipe(dir, crypto::SystemRandom()); !st) return Fail(st.error());
  constexpr const char* kMsg =
      "Profile wiped: key file overwritten, files removed. (On flash storage overwriting is best "
      "effort.)";
  if (json) {
    cli::v1::Done done;
    done.set_message(kMsg);
    done.set_profile(dir.string());
    PrintJson(done);
  } else {
    std::cout << kMsg << "\n";
  }
  return kExitOk;
}


// --- messaging commands ---------------------------------------------------------

// Longest duration text accepted ("90d", "12h", "30m", "45s", "off").
constexpr std::size_t kMaxDurationChars = 16;
constexpr auto kNetworkTimeout = std::chrono::seconds(20);  // invite, accept, revoke
// `rhizome send` reads a message from stdin up to this many bytes.
constexpr std::size_t kMaxStdinMessageBytes = client::kMaxTextBytes + 1;

// "off"/"0" -> 0; N followed by s, m, h or d. Errors: kInvalidArgument.
Result<std::uint64_t> ParseDuration(std::string_view text) {
  const Error bad{Errc::kInvalidArgument,
                  "a duration is a number with s, m, h or d (for example 7d), or off"};
  if (text.empty() || text.size() > kMaxDurationChars) return bad;
  if (text == "off" || text == "0") return std::uint64_t{0};
  std::uint64_t unit = 1;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return bad;
  }
  std::uint64_t n = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size() - 1;
  auto [ptr, ec] = std::from_chars(first, last, n);
  if (ec != std::errc() || ptr != last || n == 0 || n > (1ull << 32)) return bad;
  return n * unit;
}

std::string FormatTime(std::uint64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

// How long the command line waits for a daemon's answer (a sync may take up
// to its own timeout, plus the request's queueing behind a delivery pass).
constexpr auto kDaemonAnswerSlack = std::chrono::seconds(30);

// Runs one API request: through the daemon when one serves this profile, else
// in process on the profile (which then asks for the passphrase).
Result<api::v1::Response> RunRequest(const GlobalOptions& g, api::v1::Request req,
                                     std::chrono::seconds budget = kNetworkTimeout) {
  const fs::path dir = ResolveProfileDir(g);
  req.set_id(1);
  if (auto via_daemon = CallDaemon(dir, req, budget + kDaemonAnswerSlack)) return *via_daemon;
  auto profile = OpenProfile(g, dir);
  if (!profile) return profile.error();
  auto messenger = client::Messenger::Open(*profile, crypto::SystemRandom(), client::RelayLinkConnector());
  if (!messenger) return messenger.error();
  messenger->SetPeerConnector(client::PeerLinkConnector());
  return api::Execute(*messenger, req);
}

// Prints the error of a failed response (or call); true if there was one.
bool PrintedError(const Result<api::v1::Response>& r, int* rc) {
  if (!r) {
    *rc = Fail(r.error());
    return true;
  }
  if (r->has_error()) {
    std::fprintf(stderr, "rhizome: error: %s\n", r->error().message().c_str());
    *rc = kExitFailed;
    return true;
  }
  return false;
}

void PrintDone(const api::v1::Response& r, bool json) {
  if (json) {
    PrintJson(r.done());
  } else {
    std::cout << r.done().message() << "\n";
  }
}

struct RelayOptions {
  std::string address;
  bool json = false;
};

int CmdRelayAdd(const GlobalOptions& g, const RelayOptions& o) {
  api::v1::Request req;
  req.mutable_relay_add()->set_address(o.address);
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  if (o.json) {
    PrintJson(r->relay());
  } else {
    std::cout << "Relay added. New contacts get a mailbox on each of your relays (two are "
                 "recommended, so one being down loses nothing).\n";
  }
  return kExitOk;
}

int CmdRelayRemove(const GlobalOptions& g, const RelayOptions& o) {
  api::v1::Request req;
  req.mutable_relay_remove()->set_address(o.address);
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  PrintDone(*r, o.json);
  return kExitOk;
}

int CmdRelayList(const GlobalOptions& g, bool json) {
  api::v1::Request req;
  req.mutable_relay_list();
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  if (json) {
    PrintJson(r->relays());
  } else if (r->relays().relays().empty()) {
    std::cout << "No relays: contacts can only be reached directly. Add one with "
                 "`rhizome relay add ADDRESS`.\n";
  } else {
    for (const auto& x : r->relays().relays()) std::cout << x.address() << "\n";
  }
  return kExitOk;
}

struct InviteCmdOptions {
  std::uint32_t uses = 1;
  std::string expires = "7d";
  std::optional<std::string> revoke;
  bool list = false;
  bool qr = false;
  bool direct = false;
  bool json = false;
};

int CmdInvite(const GlobalOptions& g, const InviteCmdOptions& o) {
  api::v1::Request req;
  if (o.revoke) {
    req.mutable_invite_revoke()->set_id(*o.revoke);
  } else if (o.list) {
    req.mutable_invite_list();
  } else {
    auto lifetime = ParseDuration(o.expires);
    if (!lifetime) return Fail(lifetime.error());
    if (*lifetime == 0) return FailText("an invite must expire: give --expires a duration");
    req.mutable_invite_create()->set_uses(o.uses);
    req.mutable_invite_create()->set_lifetime_seconds(*lifetime);
    req.mutable_invite_create()->set_direct(o.direct);
  }
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  if (o.revoke) {
    PrintDone(*r, o.json);
  } else if (o.list) {
    if (o.json) {
      PrintJson(r->invites());
    } else {
      if (r->invites().invites().empty()) std::cout << "No open invites.\n";
      for (const auto& i : r->invites().invites()) {
        std::cout << i.id() << "  expires " << FormatTime(i.expires_at()) << "  uses left "
                  << i.uses_left() << "\n";
      }
    }
  } else if (o.json) {
    PrintJson(r->invite());
  } else {
    const auto& i = r->invite();
    // The invite exists whatever happens to the drawing: the code is printed
    // in any case, and a failed drawing only adds an error.
    std::optional<Result<std::string>> qr;
    if (o.qr) qr.emplace(RenderQr(i.code()));
    std::cout << i.code() << "\n\n";
    if (qr && *qr) std::cout << **qr << "\n";
    std::cout << "Give this code to the person you are inviting, in person or over a channel "
                 "you trust.\nAnyone holding it can ask to become your contact until it "
                 "expires (" << FormatTime(i.expires_at()) << ", " << i.uses_left()
              << (i.uses_left() == 1 ? " use" : " uses") << ").\nRevoke it with `rhizome "
                 "invite --revoke " << i.id() << "`.\n";
    if (qr && !*qr) {
      std::cout.flush();
      return Fail(qr->error());
    }
  }
  return kExitOk;
}

struct AcceptOptions {
  std::string code;
  std::string name;
  bool json = false;
};

int CmdAccept(const GlobalOptions& g, const AcceptOptions& o) {
  api::v1::Request req;
  req.mutable_accept()->set_code(o.code);
  req.mutable_accept()->set_name(o.name);
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  if (o.json) {
    PrintJson(r->contact());
  } else {
    std::cout << "Contact request stored and sent (or queued) as \"" << r->contact().name()
              << "\".\nThe contact is confirmed once the inviter's device answers: run "
                 "`rhizome sync` later, or keep `rhizome daemon` running.\n";
  }
  return kExitOk;
}

// What `contacts` and `verify` print for a contact whose device sent a card
// with another identity key (refused; DESIGN §4: never accepted silently).
std::string KeyRefusedWarning(const std::string& name) {
  return "  WARNING: " + name +
         "'s device sent a DIFFERENT identity key. It was refused: this contact keeps the key "
         "you had. Someone may have taken over their device or session. Check with " + name +
         " in person (`rhizome verify " + name + "`) before trusting what arrives.\n";
}

int CmdContacts(const GlobalOptions& g, bool json) {
  api::v1::Request req;
  req.mutable_contacts();
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  if (json) {
    PrintJson(r->contacts());
    return kExitOk;
  }
  if (r->contacts().contacts().empty()) {
    std::cout << "No contacts yet. Make an invite with `rhizome invite` or accept one with "
                 "`rhizome accept CODE`.\n";
  }
  for (const auto& c : r->contacts().contacts()) {
    std::cout << c.name() << "  [" << c.status() << "]" << (c.verified() ? " verified" : "")
              << (c.fingerprint().empty() ? "" : "  " + c.fingerprint())
              << (c.direct_address().empty() ? "" : "  direct " + c.direct_address()) << "\n";
    if (c.key_refused_at() != 0) std::cout << KeyRefusedWarning(c.name());
  }
  return kExitOk;
}

struct VerifyOptions {
  std::string contact;
  bool confirm = false;
  bool json = false;
};

int CmdVerify(const GlobalOptions& g, const VerifyOptions& o) {
  api::v1::Request req;
  req.mutable_verify()->set_contact(o.contact);
  req.mutable_verify()->set_confirm(o.confirm);
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  const auto& s = r->safety();
  if (o.json) {
    PrintJson(s);
  } else {
    // The QR holds the 60 digits without the spaces of the grouped display
    // (numeric mode: a small symbol).
    std::string digits;
    for (char ch : s.safety_number()) {
      if (ch != ' ') digits += ch;
    }
    auto qr = RenderQr(digits);
    std::cout << "Safety number with " << s.contact() << ":\n\n  " << s.safety_number() << "\n\n";
    if (qr) std::cout << *qr << "\n";
    std::cout << "Compare it with the number on their device, in person or on a call. If it "
                 "matches, run `rhizome verify "
              << s.contact() << " --confirm`.\n"
              << (s.verified() ? "Status: verified.\n" : "Status: not verified yet.\n");
    if (s.key_refused_at() != 0) std::cout << KeyRefusedWarning(s.contact());
    if (!qr) {
      std::cout.flush();
      return Fail(qr.error());
    }
  }
  return kExitOk;
}

struct SendOptions {
  std::string contact;
  std::optional<std::string> text;
  bool json = false;
};

int CmdSend(const GlobalOptions& g, const SendOptions& o) {
  std::string text;
  if (o.text) {
    text = *o.text;
  } else {
    std::string buf(kMaxStdinMessageBytes + 1, '\0');
    std::cin.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    buf.resize(static_cast<std::size_t>(std::cin.gcount()));
    if (buf.size() > client::kMaxTextBytes + 1) {
      return FailText("message is too long (at most 16000 bytes)");
    }
    while (!buf.empty() && buf.back() == '\n') buf.pop_back();
    text = std::move(buf);
  }
  api::v1::Request req;
  req.mutable_send()->set_contact(o.contact);
  req.mutable_send()->set_text(text);
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  if (o.json) {
    PrintJson(r->message());
  } else {
    std::cout << "Queued for " << r->message().contact()
              << ". It leaves with the next `rhizome sync` (or at once if the daemon runs).\n";
  }
  return kExitOk;
}

struct ReadOptions {
  std::optional<std::string> contact;
  bool json = false;
};

int CmdRead(const GlobalOptions& g, const ReadOptions& o) {
  api::v1::Request req;
  req.mutable_read()->set_contact(o.contact.value_or(""));
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  if (o.json) {
    PrintJson(r->messages());
    return kExitOk;
  }
  if (r->messages().messages().empty()) std::cout << "No messages.\n";
  std::string current;
  for (const auto& msg : r->messages().messages()) {
    if (msg.contact() != current) {
      current = msg.contact();
      std::cout << "== " << current << " ==\n";
    }
    std::cout << FormatTime(msg.stored_at()) << (msg.outgoing() ? "  me: " : "  them: ")
              << msg.text();
    if (msg.outgoing()) std::cout << "  (" << msg.state() << ")";
    std::cout << "\n";
  }
  return kExitOk;
}

struct ExpireOptions {
  std::string contact;
  std::string duration;
  bool json = false;
};

int CmdExpire(const GlobalOptions& g, const ExpireOptions& o) {
  auto seconds = ParseDuration(o.duration);
  if (!seconds) return Fail(seconds.error());
  api::v1::Request req;
  req.mutable_expire()->set_contact(o.contact);
  req.mutable_expire()->set_seconds(*seconds);
  auto r = RunRequest(g, req);
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  PrintDone(*r, o.json);
  return kExitOk;
}

struct SyncOptions {
  std::uint32_t timeout_seconds = 30;
  bool json = false;
};

int CmdSync(const GlobalOptions& g, const SyncOptions& o) {
  api::v1::Request req;
  req.mutable_sync()->set_timeout_seconds(o.timeout_seconds);
  auto r = RunRequest(g, req, std::chrono::seconds(o.timeout_seconds));
  int rc = kExitOk;
  if (PrintedError(r, &rc)) return rc;
  const auto& s = r->sync();
  if (o.json) {
    PrintJson(s);
  } else {
    std::cout << "Sync: " << s.received() << " new message(s), " << s.uploaded()
              << " upload(s), " << s.receipts() << " receipt(s), " << s.contacts_confirmed()
              << " contact(s) confirmed";
    if (s.relays_unreachable() > 0) {
      std::cout << "; " << s.relays_unreachable() << " relay(s) unreachable";
    }
    std::cout << ".\n";
  }
  return kExitOk;
}

struct DaemonCmdOptions {
  std::uint32_t poll_seconds = 2;
  std::optional<std::uint32_t> poll_ms;  // finer, for tests
  std::optional<std::string> listen;
  std::optional<std::string> advertise;
};

// --listen HOST:PORT, where PORT may be 0 (any free port).
Result<protocol::DirectAddress> ParseListen(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == ":0") {
    auto a = protocol::ParseDirectAddress(std::string(text.substr(0, text.size() - 2)) + ":1");
    if (!a) return a.error();
    a->port = 0;
    return a;
  }
  return protocol::ParseDirectAddress(text);
}

int CmdDaemon(const GlobalOptions& g, const DaemonCmdOptions& o) {
  const fs::path dir = ResolveProfileDir(g);
  api::v1::Request probe;
  probe.mutable_status();
  if (auto running = CallDaemon(dir, probe, std::chrono::seconds(5))) {
    return FailText("a daemon already runs for this profile");
  }
  auto profile = OpenProfile(g, dir);
  if (!profile) return Fail(profile.error());
  client::DaemonOptions options;
  options.poll_interval = o.poll_ms ? std::chrono::milliseconds(*o.poll_ms)
                                   : std::chrono::milliseconds(o.poll_seconds * 1000ull);
  if (o.listen) {
    auto l = ParseListen(*o.listen);
    if (!l) return FailText("--listen takes HOST:PORT, e.g. 0.0.0.0:7400 or [::1]:7400");
    options.listen = std::move(*l);
  }
  if (o.advertise) {
    if (!o.listen) return FailText("--advertise needs --listen");
    auto a = protocol::ParseDirectAddress(*o.advertise);
    if (!a) return FailText("--advertise takes HOST:PORT, e.g. 203.0.113.7:7400");
    options.advertise = std::move(*a);
  }
  return client::RunDaemon(std::move(*profile), options);
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "Rhizome: end-to-end encrypted, peer-to-peer messaging and organizing.\n"
      "Passphrase: --passphrase-file FILE, else $RHIZOME_PASSPHRASE, else a prompt.\n"
      "Profile: --profile DIR, else $RHIZOME_HOME, else ~/.local/share/rhizome.",
      "rhizome"};
  app.set_version_flag("--version", std::string("rhizome ") + RHIZOME_VERSION);
  app.require_subcommand(1);

  GlobalOptions g;
  app.add_option("--profile", g.profile, "Profile directory");
  app.add_option("--passphrase-file", g.passphrase_file,
                 "Read the passphrase from this file (first line)");

  InitOptions init_opts;
  auto* init = app.add_subcommand("init", "Create a new identity and encrypted profile");
  init->add_option("--name", init_opts.name, "Your display name, as contacts will see it")
      ->required();
  init->add_flag("--force", init_opts.force, "Replace (destroy) an existing profile");
  init->add_option("--kdf-cost", init_opts.kdf_cost,
                   "Passphrase hardening: interactive, moderate (default) or sensitive")
      ->check(CLI::IsMember({"interactive", "moderate", "sensitive"}));
  init->add_flag("--json", init_opts.json, "Print JSON");

  bool id_json = false;
  auto* id = app.add_subcommand("id", "Show your identity fingerprint and safety code");
  id->add_flag("--json", id_json, "Print JSON");

  PasswdOptions passwd_opts;
  auto* passwd = app.add_subcommand(
      "passwd", "Change the passphrase (the database gets a new key; the old passphrase stops "
                "working)");
  passwd->add_option("--new-passphrase-file", passwd_opts.new_passphrase_file,
                     "Read the new passphrase from this file (else $RHIZOME_NEW_PASSPHRASE, "
                     "else a prompt)");
  passwd->add_option("--kdf-cost", passwd_opts.kdf_cost,
                     "Passphrase hardening: interactive, moderate (default) or sensitive")
      ->check(CLI::IsMember({"interactive", "moderate", "sensitive"}));
  passwd->add_flag("--json", passwd_opts.json, "Print JSON");

  bool wipe_yes = false;
  bool wipe_json = false;
  auto* wipe = app.add_subcommand("wipe", "Destroy the profile: overwrite its key, remove it");
  wipe->add_flag("--yes", wipe_yes, "Do not ask for confirmation");
  wipe->add_flag("--json", wipe_json, "Print JSON");

  // Messaging.
  RelayOptions relay_opts;
  bool relay_list_json = false;
  auto* relay = app.add_subcommand("relay", "Manage the relays that keep your mailboxes");
  relay->require_subcommand(1);
  auto* relay_add = relay->add_subcommand("add", "Add a relay (its rhizome-relay:// address)");
  relay_add->add_option("ADDRESS", relay_opts.address, "The relay's address")->required();
  relay_add->add_flag("--json", relay_opts.json, "Print JSON");
  auto* relay_remove = relay->add_subcommand("remove", "Remove a relay from the profile");
  relay_remove->add_option("ADDRESS", relay_opts.address, "The address (or its first 20+ characters)")
      ->required();
  relay_remove->add_flag("--json", relay_opts.json, "Print JSON");
  auto* relay_list = relay->add_subcommand("list", "List the profile's relays");
  relay_list->add_flag("--json", relay_list_json, "Print JSON");

  InviteCmdOptions invite_opts;
  auto* invite = app.add_subcommand("invite", "Make an invite code for a new contact");
  invite->add_option("--uses", invite_opts.uses, "How many people may use it (default 1)")
      ->check(CLI::Range(1u, client::kMaxInviteUses));
  invite->add_option("--expires", invite_opts.expires, "Lifetime, e.g. 30m, 12h, 7d (default 7d)");
  invite->add_option("--revoke", invite_opts.revoke, "Destroy the invite with this id");
  auto* invite_list = invite->add_flag("--list", invite_opts.list, "List open invites");
  invite->add_flag("--qr", invite_opts.qr, "Also draw the new code as a QR code in the terminal")
      ->excludes(invite_list)
      ->excludes("--revoke");
  invite->add_flag("--direct", invite_opts.direct,
                   "Also name this device's direct address (the daemon's --listen); anyone "
                   "holding the code learns it")
      ->excludes(invite_list);
  invite->add_flag("--json", invite_opts.json, "Print JSON");

  AcceptOptions accept_opts;
  auto* accept = app.add_subcommand("accept", "Accept an invite code: send a contact request");
  accept->add_option("CODE", accept_opts.code, "The invite code (rhizome-invite:...)")->required();
  accept->add_option("--name", accept_opts.name, "What to call this contact");
  accept->add_flag("--json", accept_opts.json, "Print JSON");

  bool contacts_json = false;
  auto* contacts = app.add_subcommand("contacts", "List contacts");
  contacts->add_flag("--json", contacts_json, "Print JSON");

  VerifyOptions verify_opts;
  auto* verify = app.add_subcommand("verify", "Show a contact's safety number; --confirm marks it verified");
  verify->add_option("CONTACT", verify_opts.contact, "Contact name")->required();
  verify->add_flag("--confirm", verify_opts.confirm, "The numbers matched: mark verified");
  verify->add_flag("--json", verify_opts.json, "Print JSON");

  SendOptions send_opts;
  auto* send = app.add_subcommand("send", "Queue a message (TEXT, or stdin if omitted)");
  send->add_option("CONTACT", send_opts.contact, "Contact name")->required();
  send->add_option("TEXT", send_opts.text, "The message");
  send->add_flag("--json", send_opts.json, "Print JSON");

  ReadOptions read_opts;
  auto* read = app.add_subcommand("read", "Show conversations with delivery state");
  read->add_option("CONTACT", read_opts.contact, "Only this contact");
  read->add_flag("--json", read_opts.json, "Print JSON");

  ExpireOptions expire_opts;
  auto* expire = app.add_subcommand("expire", "Disappearing messages for a conversation");
  expire->add_option("CONTACT", expire_opts.contact, "Contact name")->required();
  expire->add_option("DURATION", expire_opts.duration, "e.g. 1h, 7d, or off")->required();
  expire->add_flag("--json", expire_opts.json, "Print JSON");

  SyncOptions sync_opts;
  auto* sync = app.add_subcommand("sync", "One delivery pass over your relays, then exit");
  sync->add_option("--timeout", sync_opts.timeout_seconds, "Give up after this many seconds")
      ->check(CLI::Range(1u, 3600u));
  sync->add_flag("--json", sync_opts.json, "Print JSON");

  DaemonCmdOptions daemon_opts;
  auto* daemon = app.add_subcommand(
      "daemon", "Keep the profile online: relay connections, delivery, the local API socket");
  daemon->add_option("--poll", daemon_opts.poll_seconds,
                     "Seconds between delivery passes (default 2)")
      ->check(CLI::Range(1u, 3600u));
  daemon->add_option("--poll-ms", daemon_opts.poll_ms,
                     "Milliseconds between delivery passes (overrides --poll; for tests)")
      ->check(CLI::Range(50u, 3600000u));
  daemon->add_option("--listen", daemon_opts.listen,
                     "Accept direct links from contacts on HOST:PORT (IP address; port 0: any)");
  daemon->add_option("--advertise", daemon_opts.advertise,
                     "The HOST:PORT contacts should dial, if not the --listen address");

  auto* demo = app.add_subcommand("demo", "A guided tour on this machine, in a temporary directory");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every parse error is a usage error (2).
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  if (init->parsed()) return CmdInit(g, init_opts);
  if (id->parsed()) return CmdId(g, id_json);
  if (passwd->parsed()) return CmdPasswd(g, passwd_opts);
  if (wipe->parsed()) return CmdWipe(g, wipe_yes, wipe_json);
  if (relay_add->parsed()) return CmdRelayAdd(g, relay_opts);
  if (relay_remove->parsed()) return CmdRelayRemove(g, relay_opts);
  if (relay_list->parsed()) return CmdRelayList(g, relay_list_json);
  if (invite->parsed()) return CmdInvite(g, invite_opts);
  if (accept->parsed()) return CmdAccept(g, accept_opts);
  if (contacts->parsed()) return CmdContacts(g, contacts_json);
  if (verify->parsed()) return CmdVerify(g, verify_opts);
  if (send->parsed()) return CmdSend(g, send_opts);
  if (read->parsed()) return CmdRead(g, read_opts);
  if (expire->parsed()) return CmdExpire(g, expire_opts);
  if (sync->parsed()) return CmdSync(g, sync_opts);
  if (daemon->parsed()) return CmdDaemon(g, daemon_opts);
  if (demo->parsed()) return RunDemo();
  return kExitUsage;
}

}  // namespace rhizome::client
