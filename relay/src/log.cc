#include "log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace rhizome::relay {

namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};

struct LevelName {
  LogLevel level;
  const char* name;
};
constexpr LevelName kLevelNames[] = {{LogLevel::kError, "error"},
                                     {LogLevel::kWarn, "warn"},
                                     {LogLevel::kInfo, "info"},
                                     {LogLevel::kDebug, "debug"}};

// One line is at most this long; longer messages are cut (never split).
constexpr std::size_t kMaxLogLineBytes = 1024;

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (const auto& entry : kLevelNames) {
    if (text == entry.name) {
      *level = entry.level;
      return true;
    }
  }
  return false;
}

const char* LogLevelName(LogLevel level) {
  for (const auto& entry : kLevelNames) {
    if (entry.level == level) return entry.name;
  }
  return "info";
}

void SetLogLevel(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }

bool LogEnabled(LogLevel level) {
  return static_cast<std::uint8_t>(level) <=
         static_cast<std::uint8_t>(g_level.load(std::memory_order_relaxed));
}

void Log(LogLevel level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  char message[kMaxLogLineBytes];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof(message), format, args);
  va_end(args);
  std::fprintf(stderr, "rhizome-relay: %s: %s\n", LogLevelName(level), message);
}

}  // namespace rhizome::relay
