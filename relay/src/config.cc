#include "config.h"

#include <arpa/inet.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>
#include <netinet/in.h>

#include <cstring>
#include <fstream>

#include "rhizome/relay/v1/config.pb.h"

namespace rhizome::relay {

namespace {

namespace pb = ::rhizome::relay::v1;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

constexpr std::uint64_t kDay = 24 * 3600;
constexpr std::uint64_t kMaxTtlSeconds = 366 * kDay;
constexpr std::uint64_t kTiB = 1ull << 40;
constexpr std::uint64_t kMinStoreBytes = protocol::kMaxBlobBytes;  // one blob must fit
// Text settings: host names and HOST:PORT strings, and the data directory.
constexpr std::size_t kMaxHostPortBytes = protocol::kMaxHostBytes + 8;  // "[host]:65535"
constexpr std::size_t kMaxDataDirBytes = 4096;                          // PATH_MAX

// Every numeric setting, with its range: X(name, min, max). The name is the
// same in the file (under its section) and in RelaySettings / RelayLimits.
#define RHIZOME_RELAY_TOP_NUMBERS(X) \
  X(max_connections, 1, 1'000'000)   \
  X(expire_interval_seconds, 1, kDay)       \
  X(commit_interval_us, 0, 50'000)
#define RHIZOME_RELAY_CHANNEL_NUMBERS(X) \
  X(handshake_timeout_ms, 100, 600'000)  \
  X(idle_timeout_ms, 1'000, kDay * 1000) \
  X(write_timeout_ms, 100, 3'600'000)    \
  X(max_write_queue_bytes, kMinWriteQueueBytes, 256ull << 20)
#define RHIZOME_RELAY_LIMIT_NUMBERS(X)               \
  X(message_ttl_seconds, 60, kMaxTtlSeconds)         \
  X(arrival_rounding_seconds, 1, kDay)               \
  X(max_messages_per_queue, 1, 10'000'000)           \
  X(max_bytes_per_queue, kMinStoreBytes, kTiB)       \
  X(max_items_per_board, 1, 100'000'000)             \
  X(max_bytes_per_board, kMinStoreBytes, kTiB)       \
  X(max_board_ttl_seconds, 60, kMaxTtlSeconds)       \
  X(max_queues, 1, 1'000'000'000)                    \
  X(max_boards, 1, 1'000'000'000)                    \
  X(max_total_bytes, kMinStoreBytes, 16 * kTiB)      \
  X(max_corr_ids_remembered, 16, 1'000'000)          \
  X(max_subscriptions_per_connection, 1, 1'000'000)  \
  X(max_queues_created_per_connection, 1, 1'000'000) \
  X(commands_per_second, 1, 1'000'000)               \
  X(command_burst, 1, 10'000'000)

struct NumericSetting {
  const char* section;  // "" (top level), "channel" or "limits"
  const char* name;
  std::uint64_t (*get)(const RelaySettings&);
  std::uint64_t min;
  std::uint64_t max;
};

#define RHIZOME_TOP_ENTRY(name, lo, hi) \
  {"", #name, [](const RelaySettings& s) -> std::uint64_t { return s.name; }, lo, hi},
#define RHIZOME_CHANNEL_ENTRY(name, lo, hi) \
  {"channel", #name, [](const RelaySettings& s) -> std::uint64_t { return s.name; }, lo, hi},
#define RHIZOME_LIMIT_ENTRY(name, lo, hi) \
  {"limits", #name, [](const RelaySettings& s) -> std::uint64_t { return s.limits.name; }, lo, hi},
const NumericSetting kNumericSettings[] = {RHIZOME_RELAY_TOP_NUMBERS(
    RHIZOME_TOP_ENTRY) RHIZOME_RELAY_CHANNEL_NUMBERS(RHIZOME_CHANNEL_ENTRY)
                                               RHIZOME_RELAY_LIMIT_NUMBERS(RHIZOME_LIMIT_ENTRY)};
#undef RHIZOME_TOP_ENTRY
#undef RHIZOME_CHANNEL_ENTRY
#undef RHIZOME_LIMIT_ENTRY

std::string FieldPath(const char* section, const char* name) {
  return *section == '\0' ? std::string(name) : std::string(section) + "." + name;
}

// Records the first error TextFormat reports (0-based line and column).
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (seen_) return;
    seen_ = true;
    line_ = line;
    column_ = column;
    message_ = message;
  }
  bool seen() const { return seen_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  bool seen_ = false;
  int line_ = -1;
  int column_ = -1;
  std::string message_;
};

// Sets problem's line/column to where the file gave `section`.`name`, if it did.
void Locate(const TextFormat::ParseInfoTree* tree, const char* section, const char* name,
            ConfigProblem& problem) {
  if (tree == nullptr) return;
  const Descriptor* message = pb::RelayConfig::descriptor();
  const TextFormat::ParseInfoTree* at = tree;
  if (*section != '\0') {
    const FieldDescriptor* sub = message->FindFieldByName(section);
    if (sub == nullptr) return;
    at = tree->GetTreeForNested(sub, -1);
    if (at == nullptr) return;
    message = sub->message_type();
  }
  const FieldDescriptor* field = message->FindFieldByName(name);
  if (field == nullptr) return;
  auto location = at->GetLocation(field, -1);
  if (location.line < 0) return;
  problem.line = location.line + 1;
  problem.column = location.column + 1;
}

bool AllBytesIn(std::string_view text, unsigned char lo, unsigned char hi) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < lo || u > hi) return false;
  }
  return true;
}

// Printable ASCII without spaces, 1..max bytes.
bool IsToken(std::string_view text, std::size_t max) {
  return !text.empty() && text.size() <= max && AllBytesIn(text, 0x21, 0x7e);
}

Status Invalid(ConfigProblem& problem, const TextFormat::ParseInfoTree* tree, const char* name,
               std::string detail) {
  Locate(tree, "", name, problem);
  problem.detail = std::move(detail);
  return Error{Errc::kInvalidArgument, "a config value is not valid"};
}

Status Validate(const RelaySettings& s, ConfigProblem& problem,
                const TextFormat::ParseInfoTree* tree) {
  for (const auto& n : kNumericSettings) {
    const std::uint64_t value = n.get(s);
    if (value >= n.min && value <= n.max) continue;
    Locate(tree, n.section, n.name, problem);
    problem.detail = FieldPath(n.section, n.name) + " must be between " + std::to_string(n.min) +
                     " and " + std::to_string(n.max) + " (got " + std::to_string(value) + ")";
    return Error{Errc::kInvalidArgument, "a config value is out of range"};
  }
  std::string host;
  std::uint16_t port = 0;
  if (!IsToken(s.listen, kMaxHostPortBytes) || !SplitHostPort(s.listen, host, port) ||
      !IsIpAddress(host)) {
    return Invalid(problem, tree, "listen",
                   "listen (--listen) must be HOST:PORT with HOST an IP address, e.g. "
                   "0.0.0.0:7750 or [::]:7750");
  }
  if (!s.public_host.empty() && !IsToken(s.public_host, protocol::kMaxHostBytes)) {
    return Invalid(problem, tree, "public_host",
                   "public_host (--public-host) must be a host name or IP address of at most " +
                       std::to_string(protocol::kMaxHostBytes) + " printable characters");
  }
  if (!s.metrics_listen.empty()) {
    if (!IsToken(s.metrics_listen, kMaxHostPortBytes) ||
        !SplitHostPort(s.metrics_listen, host, port) || !IsIpAddress(host)) {
      return Invalid(problem, tree, "metrics_listen",
                     "metrics_listen (--metrics) must be HOST:PORT with HOST a loopback IP "
                     "address (127.0.0.0/8 or [::1]), e.g. 127.0.0.1:9750");
    }
    // SECURITY: the metrics endpoint has no authentication and no TLS; it
    // stays on loopback (docs/relay.md: put a reverse proxy in front).
    if (!IsLoopbackAddress(host)) {
      return Invalid(problem, tree, "metrics_listen",
                     "metrics_listen (--metrics) must be a loopback address (127.0.0.0/8 or "
                     "[::1]); put a reverse proxy in front for remote scraping");
    }
  }
  if (s.data_dir.size() > kMaxDataDirBytes || !AllBytesIn(s.data_dir, 0x20, 0xff) ||
      s.data_dir.find('\x7f') != std::string::npos) {
    return Invalid(problem, tree, "data",
                   "data (--data) must be a path of at most " + std::to_string(kMaxDataDirBytes) +
                       " bytes without control characters");
  }
  return {};
}

}  // namespace

bool SplitHostPort(std::string_view text, std::string& host, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) return false;
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned long value = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned long>(c - '0');
    if (value > 65535) return false;
  }
  if (h.empty()) return false;
  host.assign(h);
  port = static_cast<std::uint16_t>(value);
  return true;
}

bool IsIpAddress(std::string_view host) {
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
  const std::string text(host);  // NUL-terminated for inet_pton
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

bool IsLoopbackAddress(std::string_view host) {
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(&v4.s_addr);  // network order
    return bytes[0] == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    return std::memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
  }
  return false;
}

Status ApplyRelayConfigText(std::string_view text, RelaySettings& settings,
                            ConfigProblem* problem) {
  ConfigProblem scratch;
  ConfigProblem& p = problem != nullptr ? *problem : scratch;
  p = ConfigProblem{};
  if (text.size() > kMaxRelayConfigBytes) {
    p.detail = "the file is larger than " + std::to_string(kMaxRelayConfigBytes) + " bytes";
    return Error{Errc::kLimitExceeded, "the config file is too large"};
  }

  pb::RelayConfig config;
  FirstErrorCollector errors;
  TextFormat::ParseInfoTree tree;
  TextFormat::Parser parser;  // defaults: unknown fields and repeated singular fields are errors
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  google::protobuf::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  if (!parser.Parse(&input, &config)) {
    if (errors.seen()) {
      p.line = errors.line() + 1;
      p.column = errors.column() + 1;
      p.detail = errors.message();
    } else {
      p.detail = "the file does not parse";
    }
    return Error{Errc::kMalformed, "the config file does not parse"};
  }

  RelaySettings next = settings;
  if (config.has_data()) next.data_dir = config.data();
  if (config.has_listen()) next.listen = config.listen();
  if (config.has_public_host()) next.public_host = config.public_host();
  if (config.has_metrics_listen()) next.metrics_listen = config.metrics_listen();
  if (config.has_log_level() && !ParseLogLevel(config.log_level(), &next.log_level)) {
    return Invalid(p, &tree, "log_level", "log_level must be one of error, warn, info, debug");
  }
#define RHIZOME_APPLY_TOP(name, lo, hi) \
  if (config.has_##name()) next.name = config.name();
#define RHIZOME_APPLY_CHANNEL(name, lo, hi) \
  if (config.channel().has_##name()) next.name = config.channel().name();
#define RHIZOME_APPLY_LIMIT(name, lo, hi) \
  if (config.limits().has_##name()) next.limits.name = config.limits().name();
  RHIZOME_RELAY_TOP_NUMBERS(RHIZOME_APPLY_TOP)
  RHIZOME_RELAY_CHANNEL_NUMBERS(RHIZOME_APPLY_CHANNEL)
  RHIZOME_RELAY_LIMIT_NUMBERS(RHIZOME_APPLY_LIMIT)
#undef RHIZOME_APPLY_TOP
#undef RHIZOME_APPLY_CHANNEL
#undef RHIZOME_APPLY_LIMIT

  RHIZOME_TRY(Validate(next, p, &tree));
  settings = std::move(next);
  return {};
}

Status ApplyRelayConfigFile(const std::filesystem::path& path, RelaySettings& settings,
                            ConfigProblem* problem) {
  ConfigProblem scratch;
  ConfigProblem& p = problem != nullptr ? *problem : scratch;
  p = ConfigProblem{};
  std::error_code ec;
  std::ifstream in;
  if (!std::filesystem::is_directory(path, ec)) in.open(path, std::ios::binary);
  if (!in.is_open()) {
    p.detail = "cannot open the file";
    return Error{Errc::kIo, "cannot read the config file"};
  }
  // Read one byte more than allowed: enough to know the file is too large.
  std::string text(kMaxRelayConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    p.detail = "cannot read the file";
    return Error{Errc::kIo, "cannot read the config file"};
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  return ApplyRelayConfigText(text, settings, problem);
}

Status ValidateRelaySettings(const RelaySettings& settings, ConfigProblem* problem) {
  ConfigProblem scratch;
  ConfigProblem& p = problem != nullptr ? *problem : scratch;
  p = ConfigProblem{};
  return Validate(settings, p, nullptr);
}

}  // namespace rhizome::relay
