// QR codes from the `rhizome` binary, run as real processes on real profiles
// against a real rhizome-relay on 127.0.0.1: `invite --qr` draws, right after
// the code it prints, a QR code whose modules are exactly libqrencode's matrix
// of that code at level M (with a light quiet zone), and `verify` draws the 60
// safety-number digits under the number. With --json neither adds anything.
// (No QR decoder is installed here, so the matrix comparison stands in for a
// scan; tests/unit/client/qr_test.cc checks the drawing's structure too.)
#include <gtest/gtest.h>
#include <qrencode.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "process.h"
#include "relay_process.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPass = "cli-qr passphrase 7d02aa";
constexpr std::chrono::milliseconds kRunDeadline{30000};
constexpr const char* kSyncTimeoutSeconds = "5";
constexpr std::string_view kCodeScheme = "rhizome-invite:";
constexpr int kExitUsage = 2;
constexpr std::size_t kMinQuietZone = 2;

// The four glyphs of a drawing: both modules light, top light, bottom light,
// both dark (the glyph paints light modules).
constexpr std::string_view kBothLight = "\u2588";
constexpr std::string_view kTopLight = "\u2580";
constexpr std::string_view kBottomLight = "\u2584";

using Grid = std::vector<std::vector<bool>>;  // dark[y][x]

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// One line of half blocks as two module rows; nullopt if it holds anything
// else (or nothing).
std::optional<std::pair<std::vector<bool>, std::vector<bool>>> ReadLine(std::string_view line) {
  std::vector<bool> top, bottom;
  while (!line.empty()) {
    bool t = false, b = false;
    std::size_t n = 1;
    if (line.starts_with(kBothLight)) {
      n = kBothLight.size();
    } else if (line.starts_with(kTopLight)) {
      n = kTopLight.size();
      b = true;
    } else if (line.starts_with(kBottomLight)) {
      n = kBottomLight.size();
      t = true;
    } else if (line[0] == ' ') {
      t = b = true;
    } else {
      return std::nullopt;
    }
    line.remove_prefix(n);
    top.push_back(t);
    bottom.push_back(b);
  }
  if (top.empty()) return std::nullopt;
  return std::make_pair(std::move(top), std::move(bottom));
}

// The drawing in lines[first...] up to the next empty line: every line must
// be half blocks of one length. Sets *end to the index after the drawing.
std::optional<Grid> ReadDrawing(const std::vector<std::string>& lines, std::size_t first,
                                std::size_t* end) {
  Grid grid;
  std::size_t i = first;
  for (; i < lines.size() && !lines[i].empty(); ++i) {
    auto rows = ReadLine(lines[i]);
    if (!rows) return std::nullopt;
    if (!grid.empty() && rows->first.size() != grid[0].size()) return std::nullopt;
    grid.push_back(std::move(rows->first));
    grid.push_back(std::move(rows->second));
  }
  *end = i;
  if (grid.empty()) return std::nullopt;
  return grid;
}

struct QrFree {
  void operator()(QRcode* c) const { QRcode_free(c); }
};

// libqrencode's own matrix for `text`: smallest version, level M, case kept.
Grid Reference(const std::string& text) {
  std::unique_ptr<QRcode, QrFree> code(
      QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1));
  if (!code) return {};
  const auto w = static_cast<std::size_t>(code->width);
  Grid m(w, std::vector<bool>(w));
  for (std::size_t y = 0; y < w; ++y) {
    for (std::size_t x = 0; x < w; ++x) m[y][x] = (code->data[y * w + x] & 1) != 0;
  }
  return m;
}

// The drawing must be `text`'s symbol, centred in a light quiet zone of at
// least kMinQuietZone modules (plus at most a light half row at the bottom).
void ExpectDrawingEncodes(const Grid& drawing, const std::string& text) {
  const Grid symbol = Reference(text);
  ASSERT_FALSE(symbol.empty());
  const std::size_t w = symbol.size();
  const std::size_t side = drawing[0].size();
  ASSERT_GE(side, w + 2 * kMinQuietZone) << "no room for a quiet zone";
  ASSERT_EQ((side - w) % 2, 0u);
  const std::size_t q = (side - w) / 2;
  ASSERT_TRUE(drawing.size() == side || drawing.size() == side + 1) << "not square";
  for (std::size_t y = 0; y < drawing.size(); ++y) {
    for (std::size_t x = 0; x < side; ++x) {
      const bool inside = y >= q && y < q + w && x >= q && x < q + w;
      const bool want_dark = inside && symbol[y - q][x - q];
      ASSERT_EQ(drawing[y][x], want_dark) << "module " << x << "," << y << " (quiet zone " << q
                                          << ", symbol " << w << ")";
    }
  }
}

bool HasHalfBlocks(const std::string& text) {
  return text.find(kBothLight) != std::string::npos || text.find(kTopLight) != std::string::npos ||
         text.find(kBottomLight) != std::string::npos;
}

class CliQr : public ::testing::Test {
 protected:
  void SetUp() override {
    relay_.emplace(dir_.path() / "relay", dir_.path() / "relay.log", 0);
    ASSERT_TRUE(relay_->ok()) << "rhizome-relay did not start";
  }

  void TearDown() override {
    if (relay_ && relay_->ok()) {
      EXPECT_EQ(relay_->Stop(), 0);
    }
  }

  ProcessResult Run(const std::string& who, std::vector<std::string> args) {
    args.insert(args.begin(), {"--profile", (dir_.path() / who).string()});
    ProcessOptions opts;
    opts.env = {{"RHIZOME_PASSPHRASE", kPass}, {"HOME", dir_.path().string()}};
    opts.deadline = kRunDeadline;
    ProcessResult r = RunProcess(RHIZOME_CLI_BIN, args, opts);
    EXPECT_FALSE(r.timed_out) << args[2];
    return r;
  }

  json RunJson(const std::string& who, std::vector<std::string> args) {
    args.push_back("--json");
    ProcessResult r = Run(who, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ADD_FAILURE() << "not a JSON object: " << r.out;
      return json::object();
    }
    return j;
  }

  void InitWithRelay(const std::string& who, const std::string& name) {
    auto r = Run(who, {"init", "--name", name, "--kdf-cost", "interactive"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(RunJson(who, {"relay", "add", relay_->address_text()}).value("address", ""),
              relay_->address_text());
  }

  void Sync(const std::string& who) {
    json report = RunJson(who, {"sync", "--timeout", kSyncTimeoutSeconds});
    EXPECT_EQ(report.value("relaysUnreachable", "?"), "0") << who;
  }

  TempDir dir_;
  std::optional<RelayProcess> relay_;
};

TEST_F(CliQr, InviteQrIsDrawnRightAfterTheCodeAndEncodesIt) {
  InitWithRelay("amina", "Amina Diallo");
  ProcessResult r = Run("amina", {"invite", "--qr"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  const auto lines = Lines(r.out);
  ASSERT_GE(lines.size(), 4u) << r.out;
  const std::string& code = lines[0];
  ASSERT_EQ(code.rfind(kCodeScheme, 0), 0u) << r.out;
  EXPECT_TRUE(lines[1].empty());
  std::size_t end = 0;
  auto drawing = ReadDrawing(lines, 2, &end);
  ASSERT_TRUE(drawing.has_value()) << "no QR drawing after the code:\n" << r.out;
  ExpectDrawingEncodes(*drawing, code);
  // The explanation follows the drawing, after one empty line.
  ASSERT_LT(end + 1, lines.size());
  EXPECT_EQ(lines[end + 1].rfind("Give this code", 0), 0u) << lines[end + 1];

  // The code still works: it is an open invite.
  json open = RunJson("amina", {"invite", "--list"});
  EXPECT_EQ(open["invites"].size(), 1u);

  // Without --qr, no drawing; with --json, the JSON alone.
  ProcessResult plain = Run("amina", {"invite"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_FALSE(HasHalfBlocks(plain.out)) << plain.out;
  json with_json = RunJson("amina", {"invite", "--qr"});
  EXPECT_EQ(with_json.value("code", "").rfind(kCodeScheme, 0), 0u) << with_json.dump();

  // --qr only draws a new code: with --list or --revoke it is a usage error.
  ProcessResult list = Run("amina", {"invite", "--list", "--qr"});
  EXPECT_EQ(list.exit_code, kExitUsage) << list.out;
  EXPECT_TRUE(list.out.empty()) << list.out;
  ProcessResult revoke = Run("amina", {"invite", "--revoke", "00000000", "--qr"});
  EXPECT_EQ(revoke.exit_code, kExitUsage) << revoke.out;
  EXPECT_EQ(RunJson("amina", {"invite", "--list"})["invites"].size(), 3u);
}

TEST_F(CliQr, VerifyDrawsTheSafetyNumberDigitsUnderTheNumber) {
  InitWithRelay("amina", "Amina Diallo");
  InitWithRelay("bruno", "Bruno Costa");
  const std::string code = RunJson("amina", {"invite"}).value("code", "");
  ASSERT_FALSE(code.empty());
  EXPECT_EQ(RunJson("bruno", {"accept", code, "--name", "Amina"}).value("name", ""), "Amina");
  Sync("amina");
  Sync("bruno");
  Sync("amina");
  Sync("bruno");

  const json safety = RunJson("amina", {"verify", "Bruno Costa"});
  const std::string grouped = safety.value("safetyNumber", "");
  ASSERT_TRUE(std::regex_match(grouped, std::regex("(\\d{5} ){11}\\d{5}"))) << safety.dump();
  EXPECT_FALSE(HasHalfBlocks(safety.dump()));

  ProcessResult r = Run("amina", {"verify", "Bruno Costa"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = Lines(r.out);
  std::size_t at = 0;
  while (at < lines.size() && lines[at] != "  " + grouped) ++at;
  ASSERT_LT(at + 2, lines.size()) << "no safety number line:\n" << r.out;
  EXPECT_TRUE(lines[at + 1].empty());
  std::size_t end = 0;
  auto drawing = ReadDrawing(lines, at + 2, &end);
  ASSERT_TRUE(drawing.has_value()) << "no QR drawing under the number:\n" << r.out;
  std::string digits;
  for (char c : grouped) {
    if (c != ' ') digits += c;
  }
  ASSERT_EQ(digits.size(), 60u);
  ExpectDrawingEncodes(*drawing, digits);
  // 60 digits in numeric mode at level M: a version 2 symbol.
  EXPECT_EQ(Reference(digits).size(), 25u);
  ASSERT_LT(end + 1, lines.size());
  EXPECT_EQ(lines[end + 1].rfind("Compare it", 0), 0u) << lines[end + 1];

  // Bruno's side draws the same symbol.
  ProcessResult b = Run("bruno", {"verify", "Amina"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto b_lines = Lines(b.out);
  std::size_t b_at = 0;
  while (b_at < b_lines.size() && b_lines[b_at] != "  " + grouped) ++b_at;
  ASSERT_LT(b_at + 2, b_lines.size()) << b.out;
  std::size_t b_end = 0;
  auto b_drawing = ReadDrawing(b_lines, b_at + 2, &b_end);
  ASSERT_TRUE(b_drawing.has_value()) << b.out;
  EXPECT_EQ(*b_drawing, *drawing);
}

}  // namespace
}  // namespace rhizome::testing
