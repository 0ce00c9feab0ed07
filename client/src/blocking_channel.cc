#include "blocking_channel.h"

#include <exception>

#include "rhizome/crypto/random.h"

namespace rhizome::client::internal {

namespace {
// The channel's own handshake deadline lies this far beyond the caller's.
constexpr std::chrono::milliseconds kChannelDeadlineSlack{1'000};
}  // namespace

bool RunUntil(asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    if (io.run_one_until(until) == 0 && io.stopped()) {
      // Nothing left to run: nothing more can happen.
      io.restart();
      return done();
    }
  }
  return true;
}

std::optional<Result<std::shared_ptr<net::Channel>>> ConnectWithin(
    asio::io_context& io, const std::string& host, std::uint16_t port,
    const protocol::SecureSessionConfig& config, std::chrono::milliseconds deadline) {
  using Outcome = std::optional<Result<std::shared_ptr<net::Channel>>>;
  // Shared with the coroutine, which may outlive this call after a timeout.
  auto outcome = std::make_shared<Outcome>();
  net::ChannelLimits limits;
  limits.handshake_timeout = deadline + kChannelDeadlineSlack;
  asio::co_spawn(
      io,
      [outcome, host, port, &config, limits]() -> asio::awaitable<void> {
        // Runs inside RunUntil below, while `config` is alive: Channel::Connect
        // creates the session before it returns the awaitable.
        auto connecting = net::Channel::Connect(host, port, config, crypto::SystemRandom(), limits);
        outcome->emplace(co_await std::move(connecting));
      },
      [outcome](std::exception_ptr e) {
        if (e && !*outcome) outcome->emplace(Error{Errc::kInternal, "connection failed"});
      });
  RunUntil(io, [&] { return outcome->has_value(); }, deadline);
  return std::move(*outcome);
}

}  // namespace rhizome::client::internal
