// The relay's Asio shell: accepts TCP connections, runs the NKpsk0 secure
// channel (net::Channel), parses transport messages, feeds relay commands to
// the RelayEngine and writes its replies. Commits are batched per event-loop
// turn: every command that arrives in one turn is staged, then one Flush()
// commits them together and releases their replies (DESIGN §9).
//
// Hostile clients: the channel enforces the handshake, idle and write
// deadlines; a connection that sends a malformed transport message, a
// non-command message, or outruns its write queue is closed; at most
// max_connections are served at once (others are closed on accept).
// Logs: nothing about clients (no IPs, no ids) at any level.
// Thread safety: everything runs on the one io_context thread.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "relay_keys.h"
#include "rhizome/net/channel.h"
#include "rhizome/relay/engine.h"

namespace rhizome::relay {

struct ServerOptions {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;  // 0 = pick a free port
  net::ChannelLimits channel;
  std::size_t max_connections = 20'000;
  std::chrono::seconds expire_every{60};
};

class RelayServer {
 public:
  RelayServer(asio::io_context& io, RelayEngine& engine, const RelayKeys& keys,
              ServerOptions options);
  ~RelayServer();

  // Binds and starts accepting. Errors: kIo "cannot listen on the address".
  Status Start();
  // Stops accepting, commits what is staged, closes every connection.
  void Stop();
  std::uint16_t port() const;
  std::size_t connection_count() const { return channels_.size(); }

 private:
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);
  asio::awaitable<void> ExpireLoop();
  void ScheduleFlush();
  void FlushNow();

  asio::io_context& io_;
  RelayEngine& engine_;
  const RelayKeys& keys_;
  ServerOptions options_;
  asio::ip::tcp::acceptor acceptor_;
  std::unordered_map<ConnectionId, std::shared_ptr<net::Channel>> channels_;
  std::size_t live_connections_ = 0;  // accepted, handshaking or established
  bool flush_scheduled_ = false;
  bool stopping_ = false;
  asio::steady_timer expire_timer_;
};

}  // namespace rhizome::relay
