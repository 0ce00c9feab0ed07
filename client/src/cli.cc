// The `rhizome` command line: argument parsing (CLI11) and the commands.
#include "rhizome/client/cli.h"

#include <google/protobuf/util/json_util.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "passphrase.h"
#include "rhizome/cli/v1/cli.pb.h"
#include "rhizome/crypto/pwhash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/safety_number.h"
#include "rhizome/protocol/identity.h"
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

int CmdDemo() {
  std::string templ = (fs::temp_directory_path() / "rhizome-demo-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) return FailText("cannot create a temporary directory");
  const fs::path root = templ;
  const fs::path dir = root / "profile";
  auto& rng = crypto::SystemRandom();

  std::cout << "Rhizome demo: a throw-away profile in " << dir.string() << "\n\n";
  // A random passphrase: the demo never asks, never stores it.
  auto pass = crypto::SecretBytes::Random(rng, 24);
  auto params = crypto::Argon2idParams::Interactive();

  int rc = kExitOk;
  {
    auto identity = protocol::GenerateIdentity("Demo Representative", rng);
    auto profile = identity ? storage::Profile::Create(dir, pass.expose(), params, rng)
                            : Result<storage::Profile>(identity.error());
    if (!profile) {
      rc = Fail(profile.error());
    } else if (auto st = storage::SaveIdentity(profile->db(), *identity); !st) {
      rc = Fail(st.error());
    } else {
      std::cout << "1. Created an identity and an encrypted profile (SQLCipher, key wrapped "
                   "under Argon2id):\n";
      PrintIdentity(DescribeIdentity(*identity, dir), false);
    }
  }
  if (rc == kExitOk) {
    {
      auto reopened = storage::Profile::Open(dir, pass.expose());
      auto identity = reopened ? storage::LoadIdentity(reopened->db())
                               : Result<protocol::Identity>(reopened.error());
      if (!identity) {
        rc = Fail(identity.error());
      } else {
        std::cout << "\n2. Locked and unlocked it again with the passphrase: identity "
                  << protocol::IdentityFingerprint(identity->signing.public_key)
                  << " restored.\n";
      }
    }  // closed again here
    auto wrong = storage::Profile::Open(dir, AsBytes("not the passphrase"));
    std::cout << "3. A wrong passphrase is refused: "
              << (wrong ? "UNEXPECTEDLY ACCEPTED" : wrong.error().message) << "\n";
    if (wrong || wrong.error().code != Errc::kWrongPassphrase) rc = kExitFailed;
  }
  if (auto st = storage::Profile::Wipe(dir, rng); !st) {
    rc = Fail(st.error());
  } else {
    std::cout << "4. Wiped the profile (key file overwritten, files removed).\n";
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  if (rc == kExitOk) {
    std::cout << "\nTo make your own: rhizome init --name \"Your Name\"\n";
  }
  return rc;
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
  if (demo->parsed()) return CmdDemo();
  return kExitUsage;
}

}  // namespace rhizome::client
