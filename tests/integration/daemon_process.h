// A profile run by a real `rhizome daemon` child process, and one-line calls
// to its API socket (docs/api.md), for the integration tests. Header-only;
// RHIZOME_CLI_BIN is defined for the integration test binary.
#pragma once

#include <nlohmann/json.hpp>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "process.h"

namespace rhizome::testing {

inline constexpr const char* kDaemonTestPassphrase = "daemon-test-passphrase";

// One request line to a daemon's socket; its response, or nullopt if the
// daemon is not there or died before answering.
inline std::optional<nlohmann::json> Api(const std::filesystem::path& socket_path, const nlohmann::json& request,
                        std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = socket_path.string();
  if (path.size() >= sizeof addr.sun_path) return std::nullopt;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return std::nullopt;
  }
  const std::string line = request.dump() + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    return std::nullopt;
  }
  std::string in;
  const auto until = std::chrono::steady_clock::now() + deadline;
  char buf[65536];
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    in.append(buf, static_cast<std::size_t>(n));
    if (auto nl = in.find('\n'); nl != std::string::npos) {
      return nlohmann::json::parse(in.substr(0, nl), nullptr, false);
    }
  }
  return std::nullopt;
}

// A TCP port on 127.0.0.1 that was free a moment ago (for daemons that must
// come back on the same port after a kill). 0 if none could be had.
inline std::uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// A profile and (while it runs) its daemon.
class Node {
 public:
  Node(std::filesystem::path dir, std::string name, std::filesystem::path log)
      : dir_(std::move(dir)), name_(std::move(name)), log_(std::move(log)) {}

  bool Init() {
    ProcessOptions opts;
    opts.env = {{"RHIZOME_PASSPHRASE", kDaemonTestPassphrase}};
    auto r = RunProcess(RHIZOME_CLI_BIN, {"--profile", dir_.string(), "init", "--name", name_,
                                          "--kdf-cost", "interactive"},
                        opts);
    return r.exit_code == 0;
  }

  // Arguments added to every later `daemon` start (e.g. --listen).
  void set_daemon_args(std::vector<std::string> args) { daemon_args_ = std::move(args); }

  bool Start() {
    std::vector<std::string> args{"--profile", dir_.string(), "daemon", "--poll-ms", "100"};
    args.insert(args.end(), daemon_args_.begin(), daemon_args_.end());
    daemon_ = std::make_unique<ChildProcess>(
        RHIZOME_CLI_BIN, std::move(args),
        std::map<std::string, std::string>{{"RHIZOME_PASSPHRASE", kDaemonTestPassphrase}}, log_.string());
    return daemon_->WaitForLinePrefix("daemon: listening on ", std::chrono::seconds(20)).has_value();
  }

  void Kill() {
    if (!daemon_) return;
    daemon_->Signal(SIGKILL);
    (void)daemon_->Wait(std::chrono::seconds(10));
    daemon_.reset();
  }

  std::optional<int> Stop() {
    if (!daemon_) return std::nullopt;
    daemon_->Signal(SIGTERM);
    auto rc = daemon_->Wait(std::chrono::seconds(20));
    daemon_.reset();
    return rc;
  }

  bool running() const { return daemon_ != nullptr; }
  std::optional<nlohmann::json> Call(const nlohmann::json& request) { return Api(dir_ / "profile.sock", request); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string name_;
  std::filesystem::path log_;
  std::vector<std::string> daemon_args_;
  std::unique_ptr<ChildProcess> daemon_;
};

inline bool IsOk(const std::optional<nlohmann::json>& r) { return r && !r->is_discarded() && !r->contains("error"); }

// Waits (up to `deadline`) until each node has exactly one contact and it is
// confirmed; returns the name `a` gave its contact, or nullopt.
inline std::optional<std::string> WaitConfirmed(Node& a, Node& b,
                                                std::chrono::milliseconds deadline) {
  const nlohmann::json contacts = {{"contacts", nlohmann::json::object()}};
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    auto ca = a.Call(contacts);
    auto cb = b.Call(contacts);
    if (IsOk(ca) && IsOk(cb) && (*ca)["contacts"]["contacts"].size() == 1 &&
        (*cb)["contacts"]["contacts"].size() == 1 &&
        (*ca)["contacts"]["contacts"][0]["status"] == "confirmed" &&
        (*cb)["contacts"]["contacts"][0]["status"] == "confirmed") {
      return (*ca)["contacts"]["contacts"][0]["name"].get<std::string>();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::nullopt;
}


}  // namespace rhizome::testing
