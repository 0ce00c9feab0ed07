#include "rhizome/relay/cli.h"

#include <asio.hpp>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "config.h"
#include "log.h"
#include "relay_keys.h"
#include "rotate.h"
#include "rhizome/crypto/random.h"
#include "rhizome/relay/engine.h"
#include "server.h"

namespace rhizome::relay {

namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;  // bad flags or a bad config file
constexpr const char* kAddressFileName = "address";

// RelaySettings repeats the shell's defaults (config.h has no Asio): keep them equal.
static_assert(RelaySettings{}.max_connections == ServerOptions{}.max_connections);
static_assert(RelaySettings{}.expire_interval_seconds == ServerOptions{}.expire_every.count());
static_assert(RelaySettings{}.commit_interval_us == ServerOptions{}.commit_interval.count());
static_assert(RelaySettings{}.handshake_timeout_ms ==
              net::ChannelLimits{}.handshake_timeout.count());
static_assert(RelaySettings{}.idle_timeout_ms == net::ChannelLimits{}.idle_timeout.count());
static_assert(RelaySettings{}.write_timeout_ms == net::ChannelLimits{}.write_timeout.count());
static_assert(RelaySettings{}.max_write_queue_bytes == net::ChannelLimits{}.max_write_queue_bytes);

int Fail(const char* message) {
  Log(LogLevel::kError, "%s", message);
  return kExitFailed;
}

// A configuration the relay refuses to start with: exit 2, saying where and why.
int BadConfig(const std::string& file, const ConfigProblem& problem, const char* message) {
  const std::string& why = problem.detail.empty() ? std::string(message) : problem.detail;
  if (file.empty()) {
    Log(LogLevel::kError, "%s", why.c_str());
  } else if (problem.line > 0) {
    Log(LogLevel::kError, "config %s:%d:%d: %s", file.c_str(), problem.line, problem.column,
        why.c_str());
  } else {
    Log(LogLevel::kError, "config %s: %s", file.c_str(), why.c_str());
  }
  return kExitUsage;
}

bool IsWildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// The address is public apart from a closed relay's access key: 0600.
Status WriteAddressFile(const fs::path& dir, const std::string& address) {
  const fs::path path = dir / kAddressFileName;
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Error{Errc::kIo, "cannot write the address file"};
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  out << address << "\n";
  return out ? Status{} : Status(Error{Errc::kIo, "cannot write the address file"});
}

int Serve(const RelaySettings& settings, bool closed) {
  std::string host;
  std::uint16_t port = 0;
  if (!SplitHostPort(settings.listen, host, port)) return Fail("--listen takes HOST:PORT");
  std::string public_host = settings.public_host.empty() ? host : settings.public_host;
  if (IsWildcard(public_host)) {
    return Fail(
        "listening on every interface: give --public-host NAME (the name or IP address clients "
        "reach this relay at)");
  }
  const fs::path data = settings.data_dir;
  bool created = false;
  auto keys = LoadOrCreateRelayKeys(data, closed, crypto::SystemRandom(), &created);
  if (!keys) return Fail(keys.error().message);
  if (!created && closed && !keys->closed()) {
    Log(LogLevel::kWarn,
        "--closed is ignored for an existing open relay (use `rhizome-relay rotate`)");
  }
  // Commits are fsynced by the server's sync thread (group commit, engine.h).
  auto engine = RelayEngine::Open(data, settings.limits, crypto::SystemRandom(),
                                  Durability::kFsyncByCaller);
  if (!engine) return Fail(engine.error().message);

  asio::io_context io(1);
  ServerOptions options;
  options.listen_host = host;
  options.listen_port = port;
  options.max_connections = settings.max_connections;
  options.expire_every = std::chrono::seconds(settings.expire_interval_seconds);
  options.commit_interval = std::chrono::microseconds(settings.commit_interval_us);
  options.channel.handshake_timeout = std::chrono::milliseconds(settings.handshake_timeout_ms);
  options.channel.idle_timeout = std::chrono::milliseconds(settings.idle_timeout_ms);
  options.channel.write_timeout = std::chrono::milliseconds(settings.write_timeout_ms);
  options.channel.max_write_queue_bytes = settings.max_write_queue_bytes;
  if (!settings.metrics_listen.empty() &&
      !SplitHostPort(settings.metrics_listen, options.metrics_host, options.metrics_port)) {
    return Fail("--metrics takes HOST:PORT");
  }
  // Signals are caught from here on (a SIGTERM that arrives before
  // async_wait is queued, not fatal): a supervisor may stop the relay as soon
  // as it has printed its address.
  asio::signal_set signals(io, SIGTERM, SIGINT);
  RelayServer server(io, **engine, *keys, options);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (ec) return;
    Log(LogLevel::kInfo, "shutting down");
    server.Stop();  // stops accepting, commits what is staged, closes connections
    io.stop();
  });
  if (auto st = server.Start(); !st) return Fail(st.error().message);

  auto address = FormatAddress(*keys, public_host, server.port());
  if (!address) return Fail(address.error().message);
  if (auto st = WriteAddressFile(data, *address); !st) return Fail(st.error().message);
  std::cout << "relay address: " << *address << std::endl;
  if (server.metrics_port() != 0) {
    // The operator's own loopback endpoint (not a client's address).
    const bool v6 = options.metrics_host.find(':') != std::string::npos;
    std::cout << "metrics address: " << (v6 ? "[" : "") << options.metrics_host
              << (v6 ? "]" : "") << ":" << server.metrics_port() << std::endl;
  }
  Log(LogLevel::kInfo, "serving (%s relay, log level %s, metrics %s)",
      keys->closed() ? "closed" : "open", LogLevelName(settings.log_level),
      server.metrics_port() != 0 ? "on" : "off");

  io.run();
  if (server.failed()) {
    // SECURITY/durability: exit without closing the database. SQLite's last
    // close would checkpoint the WAL into relay.db from a page cache that an
    // I/O error has made untrustworthy, then delete the WAL (SQLite 3.15
    // cannot turn that off). The next start recovers from what is on disk.
    Log(LogLevel::kError, "stopped: the relay database could not be synced to disk");
    std::_Exit(kExitFailed);
  }
  return kExitOk;
}

int PrintAddress(const fs::path& data) {
  std::ifstream in(data / kAddressFileName);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) {
    return Fail("no address yet: start the relay once with this --data directory");
  }
  std::cout << "relay address: " << line << "\n";
  return kExitOk;
}

}  // namespace

int RunRelayCli(int argc, char** argv) {
  CLI::App app{
      "rhizome-relay: an untrusted store-and-forward relay for Rhizome.\n"
      "It holds only encrypted, padded blobs in one-way mailboxes and group boards.",
      "rhizome-relay"};
  app.set_version_flag("--version", std::string("rhizome-relay ") + RHIZOME_VERSION);

  // Flags override the config file; both override the defaults (docs/relay.md).
  std::string data, listen, public_host, metrics, log_level, config_file;
  bool closed = false;
  auto* data_opt = app.add_option("--data", data, "Data directory (keys and stored messages)");
  app.add_option("--config", config_file,
                 "Configuration file (protobuf text format; docs/relay.md, "
                 "relay/deploy/rhizome-relay.conf)");
  auto* listen_opt =
      app.add_option("--listen", listen, "HOST:PORT to listen on (default 0.0.0.0:7750)");
  auto* public_host_opt =
      app.add_option("--public-host", public_host,
                     "Host name or IP address clients use to reach this relay (for the address)");
  auto* metrics_opt = app.add_option(
      "--metrics", metrics,
      "Serve Prometheus metrics at http://HOST:PORT/metrics; HOST must be loopback (default off)");
  auto* log_level_opt = app.add_option("--log-level", log_level,
                                       "error, warn, info (default) or debug")
                            ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  app.add_flag("--closed", closed,
               "On first start: make a closed relay (the address carries an access key)");

  std::string address_data, address_config;
  auto* address = app.add_subcommand("address", "Print the relay address again");
  address->add_option("--data", address_data, "Data directory");
  address->add_option("--config", address_config, "Configuration file naming the data directory");

  // Key rotation with a signed statement (relay/src/rotate.h, docs/relay.md).
  RotateArgs rotate_args;
  auto* rotate = app.add_subcommand(
      "rotate", "Replace the Noise key or the access key; restart the relay afterwards");
  rotate->add_option("--data", rotate_args.data, "Data directory (relay.keys with its signing key)")
      ->required();
  rotate->add_flag("--noise", rotate_args.noise, "New Noise static key (the default)");
  auto* rotate_psk = rotate->add_flag("--psk", rotate_args.psk, "New access key (closed relay)");
  rotate->add_flag("--open", rotate_args.open, "Drop the access key (open relay)")
      ->excludes(rotate_psk);
  rotate->add_option("--transition", rotate_args.transition,
                     "How long the old Noise key stays accepted: 0, 90m, 12h, 30d (default 30d; "
                     "0 when the access key changes)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help/--version: 0; errors: 2
  }
  if (rotate->parsed()) return RunRotate(rotate_args);

  RelaySettings settings;
  const std::string& file = address->parsed() ? address_config : config_file;
  if (!file.empty()) {
    ConfigProblem problem;
    if (auto st = ApplyRelayConfigFile(file, settings, &problem); !st) {
      return BadConfig(file, problem, st.error().message);
    }
  }
  if (address->parsed()) {
    if (!address_data.empty()) settings.data_dir = address_data;
    if (settings.data_dir.empty()) return Fail("give --data DIR or --config FILE");
    return PrintAddress(settings.data_dir);
  }

  if (data_opt->count() > 0) settings.data_dir = data;
  if (listen_opt->count() > 0) settings.listen = listen;
  if (public_host_opt->count() > 0) settings.public_host = public_host;
  if (metrics_opt->count() > 0) settings.metrics_listen = metrics;
  if (log_level_opt->count() > 0) (void)ParseLogLevel(log_level, &settings.log_level);
  {
    ConfigProblem problem;
    if (auto st = ValidateRelaySettings(settings, &problem); !st) {
      return BadConfig("", problem, st.error().message);
    }
  }
  SetLogLevel(settings.log_level);
  if (settings.data_dir.empty()) {
    return Fail("give --data DIR (where the relay keeps its keys and data)");
  }
  return Serve(settings, closed);
}

}  // namespace rhizome::relay
