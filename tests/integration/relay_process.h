// The real rhizome-relay binary as a child process on 127.0.0.1, for the
// integration tests. Header-only: RHIZOME_RELAY_BIN is defined for the
// integration test binary.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <csignal>
#include <regex>
#include <sstream>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "child_process.h"
#include "relay_client.h"
#include "rhizome/protocol/relay_address.h"

namespace rhizome::testing {

// Starts `rhizome-relay --data DATA --listen 127.0.0.1:PORT EXTRA...` (port 0:
// any free port), logging to `log`, and reads the address it prints (and,
// with `metrics`, the metrics address). ok() tells whether it started.
class RelayProcess {
 public:
  RelayProcess(const std::filesystem::path& data, const std::filesystem::path& log,
               std::uint16_t port, std::vector<std::string> extra = {}, bool metrics = false,
               std::chrono::milliseconds start_deadline = std::chrono::seconds(15)) {
    std::vector<std::string> args = {"--data", data.string(), "--listen",
                                     "127.0.0.1:" + std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    child_ = std::make_unique<ChildProcess>(RHIZOME_RELAY_BIN, args,
                                            std::map<std::string, std::string>{}, log.string());
    auto text = child_->WaitForLinePrefix("relay address: ", start_deadline);
    if (!text) return;
    address_text_ = *text;
    auto parsed = protocol::ParseRelayAddress(*text);
    if (parsed) address_.emplace(std::move(*parsed));
    if (metrics) {
      auto m = child_->WaitForLinePrefix("metrics address: ", std::chrono::seconds(5));
      if (m && m->rfind("127.0.0.1:", 0) == 0) {
        metrics_port_ = static_cast<std::uint16_t>(std::stoi(m->substr(10)));
      }
    }
  }

  bool ok() const { return address_.has_value(); }
  const protocol::RelayAddress& address() const { return *address_; }
  const std::string& address_text() const { return address_text_; }
  std::uint16_t metrics_port() const { return metrics_port_; }
  ChildProcess& process() { return *child_; }

  // SIGTERM and wait; the exit code (0 expected). The relay installs its
  // signal handlers before it prints its address, so a relay that printed one
  // handles SIGTERM.
  std::optional<int> Stop() {
    child_->Signal(SIGTERM);
    return child_->Wait(std::chrono::seconds(10));
  }

 private:
  std::unique_ptr<ChildProcess> child_;
  std::string address_text_;
  std::optional<protocol::RelayAddress> address_;
  std::uint16_t metrics_port_ = 0;
};

// One HTTP exchange on 127.0.0.1:port: sends `request` raw, returns everything
// read until the server closes (bounded by a 5 s receive timeout).
inline std::string HttpExchange(std::uint16_t port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    (void)!write(fd, request.data(), request.size());
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return out;
}

// name{labels} -> value from a Prometheus text body.
inline std::map<std::string, std::uint64_t> Samples(const std::string& body) {
  std::map<std::string, std::uint64_t> out;
  std::istringstream in(body);
  std::string line;
  const std::regex sample_re(R"(^([a-z_]+(?:\{[^}]*\})?) ([0-9]+)$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, sample_re)) out[m[1]] = std::stoull(m[2]);
  }
  return out;
}

}  // namespace rhizome::testing
