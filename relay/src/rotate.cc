#include "rotate.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

#include "rhizome/protocol/relay_address.h"

namespace rhizome::relay {

namespace fs = std::filesystem;

namespace {

constexpr const char* kAddressFileName = "address";
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Host and port of the address the relay last printed, if any.
std::optional<std::pair<std::string, std::uint16_t>> ReadAddressFile(const fs::path& dir) {
  std::ifstream in(dir / kAddressFileName);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  auto parsed = protocol::ParseRelayAddress(line);
  if (!parsed) return std::nullopt;
  return std::make_pair(parsed->host, parsed->port);
}

// Replaces the address file atomically (0600: a closed relay's address holds
// its access key).
Status WriteAddressFile(const fs::path& dir, const std::string& address) {
  const fs::path tmp = dir / (std::string(kAddressFileName) + ".tmp");
  const std::string text = address + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Error{Errc::kIo, "cannot write the address file"};
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false;
    else done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), (dir / kAddressFileName).c_str()) != 0) {
    return Error{Errc::kIo, "cannot write the address file"};
  }
  return {};
}

std::string FormatUtc(std::uint64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Result<std::uint64_t> ParseTransition(std::string_view text) {
  const Error bad{Errc::kInvalidArgument,
                  "--transition takes a duration such as 0, 3600s, 90m, 12h or 30d"};
  if (text.empty()) return bad;
  std::uint64_t unit = 1;
  switch (text.back()) {
    case 's': unit = 1; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 'h': unit = 3600; text.remove_suffix(1); break;
    case 'd': unit = 86400; text.remove_suffix(1); break;
    default: break;
  }
  if (text.empty() || text.size() > 9) return bad;  // 9 digits: no overflow below
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (value * unit > kMaxTransitionSeconds) {
    return Error{Errc::kInvalidArgument, "--transition is longer than 366 days"};
  }
  return value * unit;
}

Result<RotateOutcome> RotateRelayKeys(const fs::path& data_dir, const RotateOptions& options,
                                      crypto::RandomSource& rng, std::uint64_t now) {
  auto loaded = LoadRelayKeys(data_dir);
  if (!loaded) {
    if (loaded.error().code == Errc::kNotFound) {
      return Error{Errc::kNotFound,
                   "no relay.keys in the data directory: put relay.keys back (the copy with the "
                   "signing key) and run rotate again"};
    }
    return loaded.error();
  }
  RelayKeys& old_keys = *loaded;
  if (!old_keys.has_signing_secret()) {
    return Error{Errc::kNotFound,
                 "relay.keys holds no signing key (it was moved offline): put the full relay.keys "
                 "back in the data directory, run rotate, then move the signing key offline again"};
  }

  const bool psk_changes = options.psk != PskChange::kKeep;
  const bool noise_changes = options.new_noise_key || !psk_changes;
  if (options.psk == PskChange::kOpen && !old_keys.closed() && !noise_changes) {
    return Error{Errc::kInvalidArgument, "the relay is already open"};
  }
  std::uint64_t transition = psk_changes ? 0 : kDefaultTransitionSeconds;
  if (options.transition_seconds) {
    transition = *options.transition_seconds;
    if (transition > kMaxTransitionSeconds) {
      return Error{Errc::kInvalidArgument, "--transition is longer than 366 days"};
    }
    if (psk_changes && transition > 0) {
      return Error{Errc::kInvalidArgument,
                   "a new access key (--psk or --open) takes effect at once: give --transition 0 "
                   "and hand out the new address (docs/relay.md, Rotating keys)"};
    }
  }
  const std::uint64_t last_serial = old_keys.statement ? old_keys.statement->serial : 0;
  if (last_serial == UINT64_MAX) return Error{Errc::kLimitExceeded, "no key statement serial left"};

  RelayKeys next;
  next.signing = std::move(old_keys.signing);
  next.noise = noise_changes ? crypto::X25519Generate(rng) : std::move(old_keys.noise);
  next.psk = crypto::SecretBytes(32);
  switch (options.psk) {
    case PskChange::kKeep: next.psk = old_keys.psk.Clone(); break;
    case PskChange::kOpen: break;  // zeros
    case PskChange::kNew:
      do {
        rng.Fill(next.psk.expose_mut());
      } while (protocol::IsAllZero(next.psk.expose()));
      break;
  }

  RotateOutcome outcome;
  outcome.serial = last_serial + 1;
  outcome.noise_key_changed = noise_changes;
  outcome.psk_changed = psk_changes;
  outcome.retired_running_transition =
      old_keys.previous.has_value() && now < old_keys.previous->transition_ends;
  if (transition > 0) {
    PreviousRelayKeys previous;
    previous.noise = std::move(old_keys.noise);
    previous.psk = std::move(old_keys.psk);
    previous.transition_ends = now + transition;
    next.previous.emplace(std::move(previous));
    outcome.transition_ends = now + transition;
  }

  protocol::RelayKeyStatement statement;
  statement.serial = outcome.serial;
  statement.noise_key = next.noise.public_key;
  if (next.closed()) statement.psk = next.psk.Clone();
  statement.valid_from = now;
  RHIZOME_TRY(protocol::SignRelayKeyStatement(statement, next.signing));
  next.statement.emplace(std::move(statement));

  RHIZOME_TRY(StoreRelayKeys(data_dir, next));

  if (auto where = ReadAddressFile(data_dir)) {
    auto address = FormatAddress(next, where->first, where->second);
    if (address) {
      RHIZOME_TRY(WriteAddressFile(data_dir, *address));
      outcome.address = std::move(*address);
    }
  }
  return outcome;
}

int RunRotate(const RotateArgs& args) {
  auto fail = [](const char* message) {
    std::fprintf(stderr, "rhizome-relay: error: %s\n", message);
    return kExitFailed;
  };
  if (args.psk && args.open) {
    std::fprintf(stderr, "rhizome-relay: error: give --psk or --open, not both\n");
    return kExitUsage;
  }
  RotateOptions options;
  options.new_noise_key = args.noise;
  options.psk = args.psk ? PskChange::kNew : args.open ? PskChange::kOpen : PskChange::kKeep;
  if (!args.transition.empty()) {
    auto seconds = ParseTransition(args.transition);
    if (!seconds) {
      std::fprintf(stderr, "rhizome-relay: error: %s\n", seconds.error().message);
      return kExitUsage;
    }
    options.transition_seconds = *seconds;
  }
  const auto now = static_cast<std::uint64_t>(std::time(nullptr));
  auto outcome = RotateRelayKeys(args.data, options, crypto::SystemRandom(), now);
  if (!outcome) return fail(outcome.error().message);

  std::fprintf(stderr, "rhizome-relay: rotated:%s%s (key statement %llu)\n",
               outcome->noise_key_changed ? " new Noise key" : "",
               outcome->psk_changed ? (args.open ? " relay now open" : " new access key") : "",
               static_cast<unsigned long long>(outcome->serial));
  if (outcome->retired_running_transition) {
    std::fprintf(stderr,
                 "rhizome-relay: warning: an earlier transition was still running; the key "
                 "before it is no longer accepted\n");
  }
  if (outcome->transition_ends > 0) {
    std::fprintf(stderr,
                 "rhizome-relay: the previous Noise key stays accepted until %s; clients that "
                 "connect before then follow the signed statement\n",
                 FormatUtc(outcome->transition_ends).c_str());
  } else {
    std::fprintf(stderr,
                 "rhizome-relay: no transition: clients must be given the new address\n");
  }
  std::fprintf(stderr, "rhizome-relay: restart the relay to serve the new keys\n");
  if (outcome->address.empty()) {
    std::fprintf(stderr,
                 "rhizome-relay: no address file in the data directory: start the relay to "
                 "print the new address\n");
  } else {
    std::cout << "relay address: " << outcome->address << std::endl;
  }
  return kExitOk;
}

}  // namespace rhizome::relay
