// The relay's configuration file (relay/src/config.*), its logger's levels and
// its metrics text and HTTP routing (relay/src/metrics.*): a catalogue of
// malformed configs, every field applied and documented, the loopback rule,
// and the Prometheus text format.
#include "config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "log.h"
#include "metrics.h"
#include "rhizome/protocol/relay_messages.h"
#include "test_support.h"

namespace rhizome::relay {
namespace {

namespace fs = std::filesystem;
using rhizome::testing::ReadFileOrDie;
using rhizome::testing::TempDir;

fs::path SourceRoot() { return fs::path(RHIZOME_VECTORS_DIR).parent_path().parent_path(); }

// The numeric fields of config.proto: (section, name) -> the RelaySettings value.
std::map<std::string, std::uint64_t> Numbers(const RelaySettings& s) {
  const RelayLimits& l = s.limits;
  return {
      {"max_connections", s.max_connections},
      {"expire_interval_seconds", s.expire_interval_seconds},
      {"commit_interval_us", s.commit_interval_us},
      {"channel.handshake_timeout_ms", s.handshake_timeout_ms},
      {"channel.idle_timeout_ms", s.idle_timeout_ms},
      {"channel.write_timeout_ms", s.write_timeout_ms},
      {"channel.max_write_queue_bytes", s.max_write_queue_bytes},
      {"limits.message_ttl_seconds", l.message_ttl_seconds},
      {"limits.arrival_rounding_seconds", l.arrival_rounding_seconds},
      {"limits.max_messages_per_queue", l.max_messages_per_queue},
      {"limits.max_bytes_per_queue", l.max_bytes_per_queue},
      {"limits.max_items_per_board", l.max_items_per_board},
      {"limits.max_bytes_per_board", l.max_bytes_per_board},
      {"limits.max_board_ttl_seconds", l.max_board_ttl_seconds},
      {"limits.max_queues", l.max_queues},
      {"limits.max_boards", l.max_boards},
      {"limits.max_total_bytes", l.max_total_bytes},
      {"limits.max_corr_ids_remembered", l.max_corr_ids_remembered},
      {"limits.max_subscriptions_per_connection", l.max_subscriptions_per_connection},
      {"limits.max_queues_created_per_connection", l.max_queues_created_per_connection},
      {"limits.commands_per_second", l.commands_per_second},
      {"limits.command_burst", l.command_burst},
  };
}

// Field names declared in config.proto, as "section.name" ("name" at top level).
std::set<std::string> ProtoFields() {
  std::string proto = ReadFileOrDie(SourceRoot() / "relay/proto/rhizome/relay/v1/config.proto");
  std::set<std::string> fields;
  std::string section;
  std::istringstream in(proto);
  std::string line;
  const std::regex message_re(R"(^message (\w+) \{)");
  const std::regex field_re(R"(^\s+(?:optional\s+)?(\w+)\s+(\w+)\s*=\s*\d+;)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, message_re)) {
      section = m[1] == "RelayConfig" ? "" : m[1] == "ChannelConfig" ? "channel" : "limits";
    } else if (std::regex_search(line, m, field_re)) {
      if (m[1] == "ChannelConfig" || m[1] == "LimitsConfig") continue;  // the sections
      fields.insert(section.empty() ? std::string(m[2]) : section + "." + std::string(m[2]));
    }
  }
  return fields;
}

// "a.b: v" -> "a { b: v }".
std::string Setting(const std::string& path, const std::string& value) {
  auto dot = path.find('.');
  if (dot == std::string::npos) return path + ": " + value + "\n";
  return path.substr(0, dot) + " {\n  " + path.substr(dot + 1) + ": " + value + "\n}\n";
}

TEST(RelayConfig, EmptyFileKeepsEveryDefault) {
  RelaySettings s;
  ASSERT_TRUE(ApplyRelayConfigText("", s, nullptr));
  EXPECT_EQ(Numbers(s), Numbers(RelaySettings{}));
  EXPECT_EQ(s.listen, "0.0.0.0:7750");
  EXPECT_TRUE(s.metrics_listen.empty()) << "metrics are off by default";
  EXPECT_EQ(s.log_level, LogLevel::kInfo);
}

TEST(RelayConfig, DefaultsAreValid) {
  ConfigProblem p;
  EXPECT_TRUE(ValidateRelaySettings(RelaySettings{}, &p)) << p.detail;
}

TEST(RelayConfig, EveryNumericFieldOfTheSchemaIsApplied) {
  const auto defaults = Numbers(RelaySettings{});
  std::set<std::string> proto_numbers;
  for (const auto& f : ProtoFields()) {
    if (defaults.count(f) > 0) proto_numbers.insert(f);
  }
  EXPECT_EQ(proto_numbers.size(), defaults.size())
      << "a numeric setting is missing from the schema";
  for (const auto& [path, def] : defaults) {
    // A valid non-default value: one more than the default stays in range for
    // every field (no default sits at its maximum).
    const std::uint64_t value = def + 1;
    RelaySettings s;
    ConfigProblem p;
    ASSERT_TRUE(ApplyRelayConfigText(Setting(path, std::to_string(value)), s, &p))
        << path << ": " << p.detail;
    auto got = Numbers(s);
    EXPECT_EQ(got[path], value) << path << " was not applied";
    for (const auto& [other, v] : got) {
      if (other != path) {
        EXPECT_EQ(v, defaults.at(other)) << path << " changed " << other;
      }
    }
  }
}

TEST(RelayConfig, TextFieldsAreApplied) {
  RelaySettings s;
  ConfigProblem p;
  const char* text = R"(# a comment
data: "/var/lib/rhizome-relay"   # trailing comment
listen: "[::]:7751"
public_host: "relay.example.org"
metrics_listen: "127.0.0.1:9750"
log_level: "debug"
)";
  ASSERT_TRUE(ApplyRelayConfigText(text, s, &p)) << p.detail;
  EXPECT_EQ(s.data_dir, "/var/lib/rhizome-relay");
  EXPECT_EQ(s.listen, "[::]:7751");
  EXPECT_EQ(s.public_host, "relay.example.org");
  EXPECT_EQ(s.metrics_listen, "127.0.0.1:9750");
  EXPECT_EQ(s.log_level, LogLevel::kDebug);
}

TEST(RelayConfig, EveryFieldIsDocumentedAndInTheExampleConfig) {
  const std::string docs = ReadFileOrDie(SourceRoot() / "docs/relay.md");
  const std::string example = ReadFileOrDie(SourceRoot() / "relay/deploy/rhizome-relay.conf");
  const auto fields = ProtoFields();
  ASSERT_GE(fields.size(), 25u);
  for (const auto& f : fields) {
    EXPECT_NE(docs.find("`" + f + "`"), std::string::npos) << f << " is not in docs/relay.md";
    const std::string leaf = f.substr(f.find('.') == std::string::npos ? 0 : f.find('.') + 1);
    EXPECT_NE(example.find(leaf + ":"), std::string::npos) << f << " is not in the example config";
  }
}

TEST(RelayConfig, TheExampleConfigIsValid) {
  RelaySettings s;
  ConfigProblem p;
  ASSERT_TRUE(ApplyRelayConfigFile(SourceRoot() / "relay/deploy/rhizome-relay.conf", s, &p))
      << p.line << ": " << p.detail;
  EXPECT_FALSE(s.data_dir.empty());
}

TEST(RelayConfig, TheExampleConfigShowsTheRealDefaults) {
  // Uncomment every "# name: value" line of the example: the numbers it shows
  // must be the defaults in the code.
  std::istringstream in(ReadFileOrDie(SourceRoot() / "relay/deploy/rhizome-relay.conf"));
  const std::regex commented(R"(^(\s*)# ([a-z_]+: [0-9]+)\s*$)");
  std::string text, line;
  int shown = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, commented)) {
      line = std::string(m[1]) + std::string(m[2]);
      ++shown;
    }
    text += line + "\n";
  }
  EXPECT_EQ(shown, static_cast<int>(Numbers(RelaySettings{}).size()))
      << "every numeric setting is shown with its default";
  RelaySettings s;
  ConfigProblem p;
  ASSERT_TRUE(ApplyRelayConfigText(text, s, &p)) << p.line << ": " << p.detail;
  EXPECT_EQ(Numbers(s), Numbers(RelaySettings{}));
}

struct BadConfig {
  const char* what;
  const char* text;
  Errc code;
  int line;              // 1-based; 0 = no line expected
  const char* mentions;  // a substring of the detail
};

// The catalogue of malformed and refused configuration files.
const BadConfig kBadConfigs[] = {
    {"unknown top-level field", "listen: \"127.0.0.1:1\"\nfrobnicate: 1\n", Errc::kMalformed, 2,
     "frobnicate"},
    {"unknown field in a section", "limits {\n  max_queues: 5\n  max_queuez: 5\n}\n",
     Errc::kMalformed, 3, "max_queuez"},
    {"unknown section", "storage {\n}\n", Errc::kMalformed, 1, "storage"},
    {"misspelt field (case)", "Listen: \"127.0.0.1:1\"\n", Errc::kMalformed, 1, "Listen"},
    {"field given twice", "max_connections: 5\nmax_connections: 6\n", Errc::kMalformed, 2,
     "max_connections"},
    {"section given twice", "limits { max_queues: 5 }\nlimits { max_boards: 5 }\n",
     Errc::kMalformed, 2, "limits"},
    {"field number instead of name", "4: 10\n", Errc::kMalformed, 1, ""},
    {"extension syntax", "[rhizome.other]: 1\n", Errc::kMalformed, 1, ""},
    {"missing colon", "max_connections 5\n", Errc::kMalformed, 1, ""},
    {"unterminated string", "listen: \"127.0.0.1:1\n", Errc::kMalformed, 1, ""},
    {"unclosed section", "limits {\n  max_queues: 5\n", Errc::kMalformed, 3, ""},
    {"negative number", "max_connections: -1\n", Errc::kMalformed, 1, ""},
    {"uint32 overflow", "limits { command_burst: 4294967296 }\n", Errc::kMalformed, 1, ""},
    {"text for a number", "max_connections: \"many\"\n", Errc::kMalformed, 1, ""},
    {"number for text", "listen: 7750\n", Errc::kMalformed, 1, ""},
    {"float for an integer", "expire_interval_seconds: 1.5\n", Errc::kMalformed, 1, ""},
    {"binary garbage", "\x01\x02\xff\xfe{{", Errc::kMalformed, 1, ""},
    {"zero limit", "# quotas\nlimits {\n  max_queues: 0\n}\n", Errc::kInvalidArgument, 3,
     "limits.max_queues"},
    {"zero connections", "max_connections: 0\n", Errc::kInvalidArgument, 1, "max_connections"},
    {"zero rate", "limits { commands_per_second: 0 }\n", Errc::kInvalidArgument, 1,
     "limits.commands_per_second"},
    {"absurd ttl", "limits { message_ttl_seconds: 4000000000 }\n", Errc::kInvalidArgument, 1,
     "limits.message_ttl_seconds"},
    {"queue smaller than one blob", "limits { max_bytes_per_queue: 1000 }\n",
     Errc::kInvalidArgument, 1, "limits.max_bytes_per_queue"},
    {"zero deadline", "channel {\n  idle_timeout_ms: 0\n}\n", Errc::kInvalidArgument, 2,
     "channel.idle_timeout_ms"},
    {"tiny write queue", "channel { max_write_queue_bytes: 10 }\n", Errc::kInvalidArgument, 1,
     "channel.max_write_queue_bytes"},
    {"zero expire interval", "expire_interval_seconds: 0\n", Errc::kInvalidArgument, 1,
     "expire_interval_seconds"},
    {"metrics on every interface", "metrics_listen: \"0.0.0.0:9750\"\n", Errc::kInvalidArgument, 1,
     "loopback"},
    {"metrics on a LAN address", "\nmetrics_listen: \"192.168.1.10:9750\"\n",
     Errc::kInvalidArgument, 2, "loopback"},
    {"metrics by name", "metrics_listen: \"localhost:9750\"\n", Errc::kInvalidArgument, 1,
     "metrics_listen"},
    {"metrics without port", "metrics_listen: \"127.0.0.1\"\n", Errc::kInvalidArgument, 1,
     "metrics_listen"},
    {"listen by name", "listen: \"relay.example.org:7750\"\n", Errc::kInvalidArgument, 1, "listen"},
    {"listen port too large", "listen: \"127.0.0.1:65536\"\n", Errc::kInvalidArgument, 1, "listen"},
    {"unknown log level", "log_level: \"verbose\"\n", Errc::kInvalidArgument, 1, "log_level"},
    {"public host with a space", "public_host: \"relay example\"\n", Errc::kInvalidArgument, 1,
     "public_host"},
    {"data dir with NUL", "data: \"/var/lib\\000/x\"\n", Errc::kInvalidArgument, 1, "data"},
};

TEST(RelayConfig, MalformedAndOutOfRangeConfigsAreRefusedWithTheirLine) {
  for (const auto& bad : kBadConfigs) {
    RelaySettings s;
    ConfigProblem p;
    auto st = ApplyRelayConfigText(bad.text, s, &p);
    ASSERT_FALSE(st) << bad.what << " was accepted";
    EXPECT_EQ(st.error().code, bad.code) << bad.what << ": " << p.detail;
    if (bad.line > 0) {
      EXPECT_EQ(p.line, bad.line) << bad.what << ": " << p.detail;
    }
    EXPECT_NE(p.detail.find(bad.mentions), std::string::npos)
        << bad.what << ": detail \"" << p.detail << "\" does not mention " << bad.mentions;
    EXPECT_FALSE(p.detail.empty()) << bad.what;
  }
}

TEST(RelayConfig, ARefusedConfigLeavesTheSettingsUnchanged) {
  RelaySettings s;
  s.listen = "127.0.0.1:1234";
  ASSERT_FALSE(
      ApplyRelayConfigText("listen: \"127.0.0.1:9\"\nlimits { max_queues: 0 }\n", s, nullptr));
  EXPECT_EQ(s.listen, "127.0.0.1:1234");
  EXPECT_EQ(s.limits.max_queues, RelayLimits{}.max_queues);
}

TEST(RelayConfig, OversizedConfigIsRefusedBeforeParsing) {
  // Comments only: it would parse; its size alone refuses it.
  std::string text;
  while (text.size() < kMaxRelayConfigBytes) text += "# padding padding padding\n";
  text.resize(kMaxRelayConfigBytes + 1, '#');
  RelaySettings s;
  ConfigProblem p;
  auto st = ApplyRelayConfigText(text, s, &p);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kLimitExceeded);

  text.resize(kMaxRelayConfigBytes);
  text.back() = '\n';
  EXPECT_TRUE(ApplyRelayConfigText(text, s, &p)) << "exactly the limit is allowed: " << p.detail;
}

TEST(RelayConfig, FileLoaderReadsBoundsAndReportsMissingFiles) {
  TempDir dir;
  RelaySettings s;
  ConfigProblem p;
  auto missing = ApplyRelayConfigFile(dir.path() / "nope.conf", s, &p);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kIo);
  auto directory = ApplyRelayConfigFile(dir.path(), s, &p);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, Errc::kIo);

  const fs::path good = dir.path() / "good.conf";
  std::ofstream(good) << "limits { max_queues: 42 }\n";
  ASSERT_TRUE(ApplyRelayConfigFile(good, s, &p)) << p.detail;
  EXPECT_EQ(s.limits.max_queues, 42u);

  const fs::path big = dir.path() / "big.conf";
  {
    std::ofstream out(big);
    for (int i = 0; i < 100'000; ++i) out << "# a long, long comment line\n";
  }
  auto too_big = ApplyRelayConfigFile(big, s, &p);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code, Errc::kLimitExceeded);
  EXPECT_EQ(s.limits.max_queues, 42u);
}

TEST(RelayConfig, FlagValuesAreValidatedLikeFileValues) {
  RelaySettings s;
  s.metrics_listen = "10.0.0.1:9750";  // as --metrics would set it
  ConfigProblem p;
  auto st = ValidateRelaySettings(s, &p);
  ASSERT_FALSE(st);
  EXPECT_EQ(p.line, 0) << "a flag has no line";
  EXPECT_NE(p.detail.find("--metrics"), std::string::npos) << p.detail;
  s.metrics_listen = "[::1]:9750";
  EXPECT_TRUE(ValidateRelaySettings(s, &p)) << p.detail;
}

TEST(RelayConfig, OnlyLoopbackAddressesCountAsLoopback) {
  for (const char* yes : {"127.0.0.1", "127.0.0.53", "127.255.255.254", "::1"}) {
    EXPECT_TRUE(IsLoopbackAddress(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255", "localhost",
                         "::ffff:127.0.0.1", "[::1]", "127.0.0.1 ", "", "::2"}) {
    EXPECT_FALSE(IsLoopbackAddress(no)) << no;
  }
}

TEST(RelayConfig, SplitsHostAndPort) {
  std::string host;
  std::uint16_t port = 1;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:0", host, port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(SplitHostPort("[::1]:9750", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9750);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":80", "[]:80", "h:65536", "h:8x", "h:-1"}) {
    EXPECT_FALSE(SplitHostPort(bad, host, port)) << bad;
  }
}

TEST(RelayLog, LevelsParseAndFilter) {
  LogLevel level = LogLevel::kInfo;
  for (const char* name : {"error", "warn", "info", "debug"}) {
    ASSERT_TRUE(ParseLogLevel(name, &level)) << name;
    EXPECT_STREQ(LogLevelName(level), name);
  }
  EXPECT_FALSE(ParseLogLevel("INFO", &level));
  EXPECT_FALSE(ParseLogLevel("trace", &level));
  SetLogLevel(LogLevel::kWarn);
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn));
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  SetLogLevel(LogLevel::kInfo);
}

// --- Metrics -----------------------------------------------------------------

RelayEngine::Stats SampleStats() {
  RelayEngine::Stats e;
  e.connections = 3;
  e.queues = 11;
  e.boards = 2;
  e.messages_stored = 101;
  e.messages_delivered = 99;
  e.messages_expired = 5;
  e.bytes_stored = 123456789;
  e.rejections[static_cast<int>(protocol::RelayErrorCode::kAuth)] = 7;
  e.rejections[static_cast<int>(protocol::RelayErrorCode::kRateLimited)] = 4;
  e.rejections[15] = 1;  // a code without a name counts as "other"
  return e;
}

ServerCounters SampleCounters() {
  ServerCounters s;
  s.connections_open = 4;
  s.connections_accepted = 40;
  s.connections_refused = 6;
  s.handshakes_failed = 9;
  s.protocol_violations = 2;
  s.commits = 77;
  s.commit_failures = 1;
  return s;
}

// name{labels} -> value, checking the exposition format line by line.
std::map<std::string, std::uint64_t> ParseExposition(const std::string& text) {
  std::map<std::string, std::uint64_t> samples;
  std::map<std::string, std::string> type_of;
  std::set<std::string> helped;
  const std::regex help_re(R"(^# HELP ([a-z_]+) [^\n]+$)");
  const std::regex type_re(R"(^# TYPE ([a-z_]+) (counter|gauge)$)");
  const std::regex sample_re(R"(^([a-z_]+)(\{reason="[a-z_]+"\})? ([0-9]+)$)");
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, help_re)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "HELP twice: " << line;
    } else if (std::regex_match(line, m, type_re)) {
      EXPECT_TRUE(helped.count(m[1])) << "TYPE before HELP: " << line;
      EXPECT_TRUE(type_of.emplace(m[1], m[2]).second) << "TYPE twice: " << line;
      if (m[2] == "counter") {
        EXPECT_TRUE(std::string(m[1]).ends_with("_total")) << line;
      }
    } else if (std::regex_match(line, m, sample_re)) {
      EXPECT_TRUE(type_of.count(m[1])) << "sample without TYPE: " << line;
      EXPECT_TRUE(samples.emplace(std::string(m[1]) + std::string(m[2]), std::stoull(m[3])).second)
          << "duplicate sample: " << line;
    } else {
      ADD_FAILURE() << "not exposition format 0.0.4: \"" << line << "\"";
    }
  }
  return samples;
}

TEST(RelayMetrics, RenderingIsPrometheusTextWithHelpAndType) {
  const std::string text = RenderMetrics(SampleStats(), SampleCounters());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  auto s = ParseExposition(text);
  EXPECT_EQ(s["rhizome_relay_connections"], 4u);
  EXPECT_EQ(s["rhizome_relay_connections_established"], 3u);
  EXPECT_EQ(s["rhizome_relay_connections_accepted_total"], 40u);
  EXPECT_EQ(s["rhizome_relay_connections_refused_total"], 6u);
  EXPECT_EQ(s["rhizome_relay_handshakes_failed_total"], 9u);
  EXPECT_EQ(s["rhizome_relay_protocol_violations_total"], 2u);
  EXPECT_EQ(s["rhizome_relay_messages_stored_total"], 101u);
  EXPECT_EQ(s["rhizome_relay_messages_delivered_total"], 99u);
  EXPECT_EQ(s["rhizome_relay_messages_expired_total"], 5u);
  EXPECT_EQ(s["rhizome_relay_stored_bytes"], 123456789u);
  EXPECT_EQ(s["rhizome_relay_queues"], 11u);
  EXPECT_EQ(s["rhizome_relay_boards"], 2u);
  EXPECT_EQ(s["rhizome_relay_commits_total"], 77u);
  EXPECT_EQ(s["rhizome_relay_commit_failures_total"], 1u);
  EXPECT_EQ(s["rhizome_relay_rejections_total{reason=\"auth\"}"], 7u);
  EXPECT_EQ(s["rhizome_relay_rejections_total{reason=\"rate_limited\"}"], 4u);
  EXPECT_EQ(s["rhizome_relay_rejections_total{reason=\"other\"}"], 1u);
}

TEST(RelayMetrics, EveryRejectionReasonHasASampleEvenAtZero) {
  auto s = ParseExposition(RenderMetrics(RelayEngine::Stats{}, ServerCounters{}));
  for (const char* reason : {"malformed", "auth", "duplicate_corr_id", "quota", "rate_limited",
                             "too_large", "already_set", "unsupported", "internal", "other"}) {
    const std::string key =
        std::string("rhizome_relay_rejections_total{reason=\"") + reason + "\"}";
    ASSERT_EQ(s.count(key), 1u) << key;
    EXPECT_EQ(s[key], 0u);
  }
  EXPECT_EQ(s.size(), 14u + 10u) << "every metric is present, zero or not";
}

TEST(RelayMetrics, RoutesOnlyGetMetrics) {
  struct Case {
    const char* request;
    MetricsRoute route;
  };
  const Case cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n",
       MetricsRoute::kMetrics},
      {"GET /metrics HTTP/1.0\r\n\r\n", MetricsRoute::kMetrics},
      {"GET /metrics?name[]=x HTTP/1.0\n\n", MetricsRoute::kMetrics},
      {"GET / HTTP/1.0\r\n\r\n", MetricsRoute::kNotFound},
      {"GET /metricsx HTTP/1.0\r\n\r\n", MetricsRoute::kNotFound},
      {"GET /metrics HTTP/1.1\r\nHost: x", MetricsRoute::kIncomplete},
      {"GE", MetricsRoute::kIncomplete},
      {"", MetricsRoute::kIncomplete},
      {"POST /metrics HTTP/1.0\r\n\r\n", MetricsRoute::kBadRequest},
      {"HEAD /metrics HTTP/1.0\r\n\r\n", MetricsRoute::kBadRequest},
      {"get /metrics HTTP/1.0\r\n\r\n", MetricsRoute::kBadRequest},
      {"GET /metrics HTTP/2.0\r\n\r\n", MetricsRoute::kBadRequest},
      {"GET /metrics\r\n\r\n", MetricsRoute::kBadRequest},
      {"GET metrics HTTP/1.0\r\n\r\n", MetricsRoute::kBadRequest},
      {"GET /met\x01rics HTTP/1.0\r\n\r\n", MetricsRoute::kBadRequest},
      {"GET  /metrics HTTP/1.0\r\n\r\n", MetricsRoute::kBadRequest},
      {"\r\n\r\n", MetricsRoute::kBadRequest},
      {"\x16\x03\x01\x02\x01\x01\xfc\x03\x03\n\n", MetricsRoute::kBadRequest},  // TLS hello
  };
  for (const auto& c : cases) {
    EXPECT_EQ(RouteMetricsRequest(c.request), c.route) << "\"" << c.request << "\"";
  }
}

TEST(RelayMetrics, OversizedRequestIsABadRequestNotAWait) {
  std::string request = "GET /metrics HTTP/1.0\r\nX-Filler: ";
  request.resize(kMaxMetricsRequestBytes - 1, 'a');
  EXPECT_EQ(RouteMetricsRequest(request), MetricsRoute::kIncomplete);
  request.push_back('a');
  EXPECT_EQ(RouteMetricsRequest(request), MetricsRoute::kBadRequest)
      << "at the limit with no end of headers";
}

TEST(RelayMetrics, ResponsesAreCompleteHttp10WithLength) {
  const std::string body = RenderMetrics(RelayEngine::Stats{}, ServerCounters{});
  const std::string ok = MetricsHttpResponse(MetricsRoute::kMetrics, body);
  EXPECT_TRUE(ok.starts_with("HTTP/1.0 200 OK\r\n")) << ok.substr(0, 40);
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(ok.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(ok.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(ok.ends_with("\r\n\r\n" + body));

  const std::string missing = MetricsHttpResponse(MetricsRoute::kNotFound, body);
  EXPECT_TRUE(missing.starts_with("HTTP/1.0 404 ")) << missing;
  EXPECT_EQ(missing.find("rhizome_relay"), std::string::npos) << "404 must not carry metrics";
  const std::string bad = MetricsHttpResponse(MetricsRoute::kBadRequest, body);
  EXPECT_TRUE(bad.starts_with("HTTP/1.0 400 ")) << bad;
  EXPECT_EQ(bad.find("rhizome_relay"), std::string::npos);
}

}  // namespace
}  // namespace rhizome::relay
