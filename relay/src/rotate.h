// `rhizome-relay rotate`: replaces the relay's Noise static key and/or access
// PSK and signs a key statement announcing them (DESIGN §9; protocol:
// docs/protocol/relay-key-statement.md; operator guide: docs/relay.md
// "Rotating keys").
//
// What a rotation writes (one atomic replacement of relay.keys, relay_keys.h):
// the new current keys, the signed statement (serial = last + 1), and — when
// the transition is longer than zero — the replaced Noise key, which the
// relay keeps accepting until the transition ends. A running relay keeps the
// keys it started with: restart it after rotating.
//
// Rules (each a clear error otherwise):
// - the signing key's secret must be in relay.keys (it signs the statement);
// - a PSK change (new key or --open) takes effect at once: it has no
//   transition, because a SecureSession takes one PSK for all static keys and
//   because a transition would hand the new PSK to everyone who holds the old
//   one — including whoever the change is meant to shut out;
// - a new rotation during a running transition retires the older key at once
//   (only one previous key is kept); the outcome says so.
//
// Thread safety: functions only; one rotation at a time per data directory
// (the operator's job, as for starting the relay).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "relay_keys.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/result.h"

namespace rhizome::relay {

// The transition when none is given, for a Noise key change.
inline constexpr std::uint64_t kDefaultTransitionSeconds = 30ull * 24 * 3600;
// The longest transition accepted.
inline constexpr std::uint64_t kMaxTransitionSeconds = 366ull * 24 * 3600;

enum class PskChange { kKeep, kNew, kOpen };

struct RotateOptions {
  bool new_noise_key = false;  // with kKeep, the rotation renews the Noise key anyway
  PskChange psk = PskChange::kKeep;
  // Seconds the replaced Noise key stays accepted; empty = the default
  // (kDefaultTransitionSeconds, or 0 when the PSK changes).
  std::optional<std::uint64_t> transition_seconds;
};

struct RotateOutcome {
  std::uint64_t serial = 0;           // of the new statement
  std::uint64_t transition_ends = 0;  // Unix seconds; 0 = no transition
  bool noise_key_changed = false;
  bool psk_changed = false;
  bool retired_running_transition = false;  // an older previous key was dropped early
  std::string address;  // the new address, or empty if the data directory has no address file
};

// Rotates the keys in data_dir/relay.keys at Unix time `now`, updates
// data_dir/address (same host and port) if it exists, and reports what it did.
// Errors: kNotFound (no relay.keys; or its signing secret is not there, moved
// offline); kInvalidArgument (transition above kMaxTransitionSeconds; a PSK
// change with a transition; --open on an open relay without a Noise change);
// kCorrupt / kIo from LoadRelayKeys / StoreRelayKeys.
Result<RotateOutcome> RotateRelayKeys(const std::filesystem::path& data_dir,
                                      const RotateOptions& options, crypto::RandomSource& rng,
                                      std::uint64_t now);

// "0", "90s", "45m", "12h", "30d" (decimal, one optional unit; no unit =
// seconds). Errors: kInvalidArgument if malformed or above kMaxTransitionSeconds.
Result<std::uint64_t> ParseTransition(std::string_view text);

// The command line's arguments for `rotate`.
struct RotateArgs {
  std::filesystem::path data;
  bool noise = false;
  bool psk = false;
  bool open = false;
  std::string transition;  // empty = default
};

// Runs the subcommand: prints the new address on stdout as
// "relay address: <address>" and notes on stderr. Returns the exit code
// (0 ok, 1 failed, 2 usage).
int RunRotate(const RotateArgs& args);

}  // namespace rhizome::relay
