// `rhizome demo`: a guided tour on one machine (see demo.h).
#include "demo.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"
#include "rhizome/client/messenger.h"
#include "rhizome/client/relay_link.h"
#include "rhizome/crypto/pwhash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"

extern char** environ;

namespace rhizome::client {

namespace fs = std::filesystem;

namespace {

constexpr auto kStartDeadline = std::chrono::seconds(15);
constexpr auto kStopDeadline = std::chrono::seconds(10);
constexpr auto kSyncTimeout = std::chrono::seconds(15);
// The relay's first line is short; a longer one is not what we wait for.
constexpr std::size_t kMaxRelayLineBytes = 1024;
constexpr std::string_view kAddressPrefix = "relay address: ";

// The relay binary: $RHIZOME_RELAY_BIN, next to this program, in the build
// tree's relay/ directory, or on PATH.
std::string FindRelayBinary() {
  if (const char* env = std::getenv("RHIZOME_RELAY_BIN"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& candidate :
         {self.parent_path() / "rhizome-relay", self.parent_path().parent_path() / "relay" /
                                                    "rhizome-relay"}) {
      if (fs::exists(candidate, ec)) return candidate.string();
    }
  }
  return "rhizome-relay";
}

// A child process (the relay, or a daemon); its stdout is read until a line
// starting with `ready_prefix`, whose rest is kept (the relay's address).
class DemoChild {
 public:
  DemoChild(const std::string& bin, std::vector<std::string> args, const fs::path& log,
            std::string_view ready_prefix, const std::vector<std::string>& extra_env = {}) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    args.insert(args.begin(), bin);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_copy(extra_env);
    std::vector<char*> envp;
    for (auto& e : env_copy) envp.push_back(e.data());
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, bin.c_str(), &actions, nullptr, argv.data(), envp.data());
    for (auto& e : env_copy) api::WipeLine(e);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      return;
    }
    pid_ = pid;
    fd_ = out[0];
    for (int lines = 0; lines < 8; ++lines) {  // a daemon prints a line or two first
      auto line = ReadLine();
      if (!line) break;
      if (line->starts_with(ready_prefix)) {
        address_ = line->substr(ready_prefix.size());
        break;
      }
    }
  }
  ~DemoChild() { Stop(); }
  DemoChild(const DemoChild&) = delete;
  DemoChild& operator=(const DemoChild&) = delete;

  bool ok() const { return address_.has_value(); }
  const std::string& address() const { return *address_; }

  // SIGTERM, then wait (SIGKILL after kStopDeadline).
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      const auto until = std::chrono::steady_clock::now() + kStopDeadline;
      int status = 0;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= until) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      pid_ = -1;
    }
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  std::optional<std::string> ReadLine() {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + kStartDeadline;
    while (line.size() < kMaxRelayLineBytes) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char c = 0;
      if (read(fd_, &c, 1) != 1) return std::nullopt;
      if (c == '\n') return line;
      line.push_back(c);
    }
    return std::nullopt;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  std::optional<std::string> address_;
};

std::unique_ptr<DemoChild> StartRelay(const fs::path& data, const fs::path& log,
                                      std::uint16_t port) {
  return std::make_unique<DemoChild>(
      FindRelayBinary(),
      std::vector<std::string>{"--data", data.string(), "--listen", "127.0.0.1:" + std::to_string(port)},
      log, kAddressPrefix);
}

// One person of the tour: a profile and a messenger on it.
struct DemoPerson {
  std::string name;
  fs::path dir;
  std::optional<storage::Profile> profile;
  std::optional<Messenger> messenger;
};

Status MakePerson(DemoPerson& p, const std::string& relay, crypto::RandomSource& rng) {
  auto pass = crypto::SecretBytes::Random(rng, 24);  // never shown, never stored
  auto identity = protocol::GenerateIdentity(p.name, rng);
  if (!identity) return identity.error();
  auto profile =
      storage::Profile::Create(p.dir, pass.expose(), crypto::Argon2idParams::Interactive(), rng);
  if (!profile) return profile.error();
  p.profile.emplace(std::move(*profile));
  RHIZOME_TRY(storage::SaveIdentity(p.profile->db(), *identity));
  auto m = Messenger::Open(*p.profile, rng, RelayLinkConnector());
  if (!m) return m.error();
  p.messenger.emplace(std::move(*m));
  auto added = p.messenger->AddRelay(relay);
  if (!added) return added.error();
  return {};
}

void Show(DemoPerson& p) {
  auto contacts = p.messenger->ListContacts();
  auto messages = p.messenger->Read(std::nullopt);
  std::cout << "   " << p.name << " sees:\n";
  if (contacts) {
    for (const auto& c : *contacts) {
      std::cout << "     contact " << c.alias << " [" << ContactStatusName(c.status) << "]\n";
    }
  }
  if (messages) {
    for (const auto& m : *messages) {
      std::cout << "     " << (m.outgoing ? "to " : "from ") << m.contact << ": \"" << m.text
                << "\"";
      if (m.outgoing) std::cout << " (" << MessageStateName(m.state) << ")";
      std::cout << "\n";
    }
  }
}

Status SyncAll(std::vector<DemoPerson*> people, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    for (DemoPerson* p : people) {
      auto r = p->messenger->Sync(kSyncTimeout);
      if (!r) return r.error();
    }
  }
  return {};
}

// A person whose computer runs `rhizome daemon --listen`: the tour talks to it
// through its socket, as the command line does.
struct DemoDaemon {
  std::string name;
  fs::path dir;
  std::unique_ptr<DemoChild> process;
};

Status StartDaemon(DemoDaemon& d, const std::string& relay, const fs::path& log,
                   crypto::RandomSource& rng) {
  Bytes raw(16);
  rng.Fill(raw);
  std::string pass = ToHex(raw);  // random, never shown; handed to the child only
  crypto::WipeOnExit wipe_raw(raw);
  {
    auto identity = protocol::GenerateIdentity(d.name, rng);
    if (!identity) return identity.error();
    auto profile =
        storage::Profile::Create(d.dir, AsBytes(pass), crypto::Argon2idParams::Interactive(), rng);
    if (!profile) return profile.error();
    RHIZOME_TRY(storage::SaveIdentity(profile->db(), *identity));
    auto m = Messenger::Open(*profile, rng, RelayLinkConnector());
    if (!m) return m.error();
    auto added = m->AddRelay(relay);
    if (!added) return added.error();
  }  // closed: the daemon takes the profile
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Error{Errc::kIo, "cannot find this program to start its daemon"};
  // Built in place (no temporary copy of the passphrase); wiped below.
  std::vector<std::string> env(1);
  env[0].reserve(sizeof "RHIZOME_PASSPHRASE=" + pass.size());
  env[0].append("RHIZOME_PASSPHRASE=").append(pass);
  d.process = std::make_unique<DemoChild>(
      self.string(),
      std::vector<std::string>{"--profile", d.dir.string(), "daemon", "--poll-ms", "200",
                               "--listen", "127.0.0.1:0"},
      log, "daemon: listening on ", env);
  for (auto& e : env) api::WipeLine(e);
  api::WipeLine(pass);
  if (!d.process->ok()) return Error{Errc::kIo, "could not start a demo daemon"};
  return {};
}

Result<api::v1::Response> Ask(const DemoDaemon& d, api::v1::Request req) {
  auto r = CallDaemon(d.dir, req, kSyncTimeout);
  if (!r) return Error{Errc::kIo, "a demo daemon is not running"};
  if (!*r) return r->error();
  if ((*r)->has_error()) return Error{Errc::kIo, "a demo daemon refused a request"};
  return std::move(**r);
}

// Polls until `done(daemon's answer to req)` or the deadline.
template <class Done>
Result<api::v1::Response> AskUntil(const DemoDaemon& d, const api::v1::Request& req, Done done) {
  const auto until = std::chrono::steady_clock::now() + kSyncTimeout;
  for (;;) {
    auto r = Ask(d, req);
    if (!r) return r.error();
    if (done(*r)) return r;
    if (std::chrono::steady_clock::now() >= until) {
      return Error{Errc::kIo, "the demo daemons did not finish in time"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Step 6: two daemons with direct links; the relay only for first contact.
Status DirectStep(const fs::path& root, std::unique_ptr<DemoChild>& relay,
                  const std::string& relay_address, crypto::RandomSource& rng) {
  DemoDaemon dana{"Dana (warehouse rep)", root / "dana", {}};
  DemoDaemon eli{"Eli (union organiser)", root / "eli", {}};
  RHIZOME_TRY(StartDaemon(dana, relay_address, root / "dana.log", rng));
  RHIZOME_TRY(StartDaemon(eli, relay_address, root / "eli.log", rng));
  std::cout << "6. Dana and Eli keep `rhizome daemon --listen` running: their computers accept "
               "direct links\n   (Noise_XK; only a contact's device gets in). Dana makes the invite "
               "with --direct:\n";
  api::v1::Request invite;
  invite.mutable_invite_create()->set_uses(1);
  invite.mutable_invite_create()->set_lifetime_seconds(3600);
  invite.mutable_invite_create()->set_direct(true);
  auto made = Ask(dana, invite);
  if (!made) return made.error();
  api::v1::Request accept;
  accept.mutable_accept()->set_code(made->invite().code());
  accept.mutable_accept()->set_name("Dana");
  if (auto a = Ask(eli, accept); !a) return a.error();
  api::v1::Request contacts;
  contacts.mutable_contacts();
  auto confirmed = [](const api::v1::Response& r) {
    return r.contacts().contacts_size() == 1 && r.contacts().contacts(0).status() == "confirmed";
  };
  auto at_dana = AskUntil(dana, contacts, confirmed);
  if (!at_dana) return at_dana.error();
  auto at_eli = AskUntil(eli, contacts, confirmed);
  if (!at_eli) return at_eli.error();
  std::cout << "   Confirmed through the relay. Eli's device now knows where Dana's computer listens: "
            << at_eli->contacts().contacts(0).direct_address() << "\n";
  relay->Stop();
  std::cout << "   The relay goes down. They write to each other anyway:\n";
  api::v1::Request to_eli;
  to_eli.mutable_send()->set_contact(at_dana->contacts().contacts(0).name());
  to_eli.mutable_send()->set_text("The training notes are on the shared drive.");
  if (auto r = Ask(dana, to_eli); !r) return r.error();
  api::v1::Request to_dana;
  to_dana.mutable_send()->set_contact("Dana");
  to_dana.mutable_send()->set_text("Thanks. See you at the meeting.");
  if (auto r = Ask(eli, to_dana); !r) return r.error();
  api::v1::Request read;
  read.mutable_read();
  auto all_delivered = [](const api::v1::Response& r) {
    int in = 0, delivered = 0;
    for (const auto& m : r.messages().messages()) {
      if (!m.outgoing()) ++in;
      if (m.outgoing() && m.state() == "delivered") ++delivered;
    }
    return in == 1 && delivered == 1;
  };
  for (const DemoDaemon* d : {&dana, &eli}) {
    auto r = AskUntil(*d, read, all_delivered);
    if (!r) return r.error();
    std::cout << "   " << d->name << " sees:\n";
    for (const auto& m : r->messages().messages()) {
      std::cout << "     " << (m.outgoing() ? "to " : "from ") << m.contact() << ": \""
                << m.text() << "\"" << (m.outgoing() ? " (" + m.state() + ")" : "") << "\n";
    }
  }
  std::cout << "   Delivered and receipted over the direct link alone.\n\n";
  dana.process->Stop();
  eli.process->Stop();
  return {};
}

bool FileContains(const fs::path& root, const std::string& needle) {
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.find(needle) != std::string::npos) return true;
  }
  return false;
}

Status Tour(const fs::path& root, crypto::RandomSource& rng) {
  std::cout << "Rhizome demo: one relay and five people on this machine, in " << root.string()
            << "\n\n";
  auto relay = StartRelay(root / "relay", root / "relay.log", 0);
  if (!relay->ok()) {
    return Error{Errc::kIo, "could not start rhizome-relay (set RHIZOME_RELAY_BIN)"};
  }
  const std::string relay_address = relay->address();
  auto parsed = protocol::ParseRelayAddress(relay_address);
  if (!parsed) return parsed.error();
  const std::uint16_t port = parsed->port;
  std::cout << "1. Started a relay on 127.0.0.1. Its address (what you paste into a client):\n   "
            << relay_address << "\n\n";

  DemoPerson amina{"Amina (shop steward)", root / "amina", {}, {}};
  DemoPerson bruno{"Bruno (labour NGO)", root / "bruno", {}, {}};
  DemoPerson chen{"Chen (night shift rep)", root / "chen", {}, {}};
  for (DemoPerson* p : {&amina, &bruno, &chen}) RHIZOME_TRY(MakePerson(*p, relay_address, rng));
  std::cout << "2. Created three encrypted profiles, each using the relay for its mailboxes.\n\n";

  auto invite = amina.messenger->CreateInvite(2, 3600, kSyncTimeout);
  if (!invite) return invite.error();
  std::cout << "3. Amina makes an invite for two people (expires in an hour):\n   "
            << invite->code.substr(0, 60) << "...\n";
  for (DemoPerson* p : {&bruno, &chen}) {
    auto accepted = p->messenger->AcceptInvite(invite->code, "", kSyncTimeout);
    if (!accepted) return accepted.error();
  }
  std::cout << "   Bruno and Chen accept it. Contact requests go through the relay, which "
               "cannot read them.\n";
  RHIZOME_TRY(SyncAll({&amina, &bruno, &chen}, 3));
  std::cout << "   After a few sync passes cards are exchanged and each contact is confirmed "
               "(Noise_KK):\n";
  for (DemoPerson* p : {&amina, &bruno, &chen}) Show(*p);
  auto sa = amina.messenger->Safety("Bruno (labour NGO)", false);
  auto sb = bruno.messenger->Safety("Amina (shop steward)", false);
  if (sa && sb) {
    std::cout << "   Safety number on Amina's side: " << sa->safety_number << "\n"
              << "   Safety number on Bruno's side: " << sb->safety_number << "\n"
              << "   They match: compare them in person or on a call, then `rhizome verify "
                 "NAME --confirm`.\n";
  }
  std::cout << "\n";

  const std::string first = "The night shift meets Thursday at 7, back entrance.";
  auto s1 = amina.messenger->Send("Bruno (labour NGO)", first);
  if (!s1) return s1.error();
  auto s2 = amina.messenger->Send("Chen (night shift rep)", "Can you bring the overtime logs?");
  if (!s2) return s2.error();
  RHIZOME_TRY(SyncAll({&amina, &bruno, &chen}, 2));
  auto r1 = bruno.messenger->Send("Amina (shop steward)", "We will have a lawyer on call.");
  if (!r1) return r1.error();
  RHIZOME_TRY(SyncAll({&bruno, &amina, &bruno}, 1));
  std::cout << "4. Messages, end-to-end encrypted (Double Ratchet), with receipts:\n";
  for (DemoPerson* p : {&amina, &bruno, &chen}) Show(*p);
  std::cout << "\n";

  relay->Stop();
  relay.reset();
  std::cout << "5. The relay goes down. Chen writes anyway:\n";
  auto s3 = chen.messenger->Send("Amina (shop steward)", "Logs are in my locker. 12 names so far.");
  if (!s3) return s3.error();
  (void)chen.messenger->Sync(std::chrono::seconds(2));
  Show(chen);
  relay = StartRelay(root / "relay", root / "relay.log", port);
  if (!relay->ok()) return Error{Errc::kIo, "could not restart rhizome-relay"};
  std::cout << "   The relay restarts from its data directory; the next sync passes deliver:\n";
  RHIZOME_TRY(SyncAll({&chen, &amina, &chen}, 1));
  Show(amina);
  Show(chen);
  std::cout << "\n";

  RHIZOME_TRY(DirectStep(root, relay, relay_address, rng));
  relay->Stop();
  const bool leaked = FileContains(root, first) || FileContains(root, "Amina") ||
                      FileContains(root, "training notes") || FileContains(root, "Dana");
  std::cout << "7. Searched every file the relay and the five profiles wrote for message "
               "texts and names: "
            << (leaked ? "FOUND (this is a bug)" : "not found") << ".\n";
  if (leaked) return Error{Errc::kInternal, "plaintext found on disk"};
  return {};
}

}  // namespace

int RunDemo() {
  std::string templ = (fs::temp_directory_path() / "rhizome-demo-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) {
    std::fprintf(stderr, "rhizome: error: cannot create a temporary directory\n");
    return 1;
  }
  const fs::path root = templ;
  auto st = Tour(root, crypto::SystemRandom());
  std::error_code ec;
  fs::remove_all(root, ec);
  if (!st) {
    std::fprintf(stderr, "rhizome: error: %s\n", st.error().message);
    return 1;
  }
  std::cout << "\nThe demo's profiles and relay data were removed. To start for real:\n"
               "  rhizome init --name \"Your Name\"\n"
               "  rhizome relay add 'rhizome-relay://...'   (your community's relay)\n"
               "  rhizome invite   /   rhizome accept CODE\n";
  return 0;
}

}  // namespace rhizome::client
