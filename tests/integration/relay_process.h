// The real rhizome-relay binary as a child process on 127.0.0.1, for the
// integration tests. Header-only: RHIZOME_RELAY_BIN is defined for the
// integration test binary.
#pragma once

#include <csignal>
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

  // SIGTERM and wait; the exit code (0 expected). A handshake first proves the
  // event loop is running, so the signal meets a relay that has started.
  std::optional<int> Stop() {
    if (address_) RelayClient probe(*address_);
    child_->Signal(SIGTERM);
    return child_->Wait(std::chrono::seconds(10));
  }

 private:
  std::unique_ptr<ChildProcess> child_;
  std::string address_text_;
  std::optional<protocol::RelayAddress> address_;
  std::uint16_t metrics_port_ = 0;
};

}  // namespace rhizome::testing
