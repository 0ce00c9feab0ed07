// The relay's logger: one line per event on stderr (the journal under
// systemd), filtered by a process-wide level (--log-level, default info).
//
// Invariant (SECURITY, DESIGN §2 / issue 4): nothing about clients is ever
// logged, at any level: no IP addresses, ports, queue or board ids, handshake
// hashes or keys. Callers pass only static text and counts; the format
// attribute below makes the compiler check the arguments.
//
// Thread safety: SetLogLevel/LogEnabled use an atomic; each Log() call writes
// its line with one fprintf, so lines from different threads do not interleave.
#pragma once

#include <cstdint>
#include <string_view>

namespace rhizome::relay {

enum class LogLevel : std::uint8_t { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// "error", "warn", "info" or "debug" -> the level. Returns false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);
// The name ParseLogLevel accepts. Never null.
const char* LogLevelName(LogLevel level);

// Sets the process-wide level; messages above it are dropped.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Writes "rhizome-relay: <level>: <message>\n" to stderr if `level` is enabled.
void Log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace rhizome::relay
