#include "rhizome/relay/cli.h"

#include <asio.hpp>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "relay_keys.h"
#include "rhizome/crypto/random.h"
#include "rhizome/relay/engine.h"
#include "server.h"

namespace rhizome::relay {

namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr const char* kAddressFileName = "address";

int Fail(const char* message) {
  std::fprintf(stderr, "rhizome-relay: error: %s\n", message);
  return kExitFailed;
}

// Splits "HOST:PORT" or "[V6]:PORT".
bool SplitHostPort(const std::string& text, std::string& host, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned long value = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned long>(c - '0');
    if (value > 65535) return false;
  }
  port = static_cast<std::uint16_t>(value);
  return !host.empty();
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

struct ServeArgs {
  fs::path data;
  std::string listen = "0.0.0.0:7750";
  std::string public_host;
  bool closed = false;
};

int Serve(const ServeArgs& args) {
  std::string host;
  std::uint16_t port = 0;
  if (!SplitHostPort(args.listen, host, port)) return Fail("--listen takes HOST:PORT");
  std::string public_host = args.public_host.empty() ? host : args.public_host;
  if (IsWildcard(public_host)) {
    return Fail(
        "listening on every interface: give --public-host NAME (the name or IP address clients "
        "reach this relay at)");
  }
  bool created = false;
  auto keys = LoadOrCreateRelayKeys(args.data, args.closed, crypto::SystemRandom(), &created);
  if (!keys) return Fail(keys.error().message);
  if (!created && args.closed && !keys->closed()) {
    std::fprintf(stderr,
                 "rhizome-relay: warning: --closed is ignored for an existing open relay (use "
                 "`rhizome-relay rotate`)\n");
  }
  auto engine = RelayEngine::Open(args.data, RelayLimits{}, crypto::SystemRandom());
  if (!engine) return Fail(engine.error().message);

  asio::io_context io(1);
  ServerOptions options;
  options.listen_host = host;
  options.listen_port = port;
  RelayServer server(io, **engine, *keys, options);
  if (auto st = server.Start(); !st) return Fail(st.error().message);

  auto address = FormatAddress(*keys, public_host, server.port());
  if (!address) return Fail(address.error().message);
  if (auto st = WriteAddressFile(args.data, *address); !st) return Fail(st.error().message);
  std::cout << "relay address: " << *address << std::endl;
  std::fprintf(stderr, "rhizome-relay: serving (%s relay)\n", keys->closed() ? "closed" : "open");

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (ec) return;
    std::fprintf(stderr, "rhizome-relay: shutting down\n");
    server.Stop();  // stops accepting, commits what is staged, closes connections
    io.stop();
  });
  io.run();
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

  ServeArgs serve;
  app.add_option("--data", serve.data, "Data directory (keys and stored messages)");
  app.add_option("--listen", serve.listen, "HOST:PORT to listen on (default 0.0.0.0:7750)");
  app.add_option("--public-host", serve.public_host,
                 "Host name or IP address clients use to reach this relay (for the address)");
  app.add_flag("--closed", serve.closed,
               "On first start: make a closed relay (the address carries an access key)");

  fs::path address_data;
  auto* address = app.add_subcommand("address", "Print the relay address again");
  address->add_option("--data", address_data, "Data directory")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help/--version: 0; errors: 2
  }
  if (address->parsed()) return PrintAddress(address_data);
  if (serve.data.empty()) return Fail("give --data DIR (where the relay keeps its keys and data)");
  return Serve(serve);
}

}  // namespace rhizome::relay
