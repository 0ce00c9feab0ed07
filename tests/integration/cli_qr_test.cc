// QR codes from the `rhizome` binary, run as real processes on real profiles
// against a real rhizome-relay on 127.0.0.1: `invite --qr` draws, right after
// the code it prints, a QR code whose modules are exactly libqrencode's matrix
// of that code at level M (with a light quiet zone), and `verify` draws the 60
// safety-number digits under the number. With --json neither adds anything.
// (No QR decoder is installed here, so the matrix comparison stands in for a
// scan; tests/unit/client/qr_test.cc checks the drawing's structure too.)
#include <gtest/gtest.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli_process.h"
#include "qr_drawing.h"

namespace rhizome::testing {
namespace {

using nlohmann::json;

constexpr const char* kPass = "cli-qr passphrase 7d02aa";
constexpr std::string_view kCodeScheme = "rhizome-invite:";
constexpr int kExitUsage = 2;
constexpr std::size_t kMinQuietZone = 2;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The drawing must be `text`'s symbol, centred in a light quiet zone of at
// least kMinQuietZone modules (plus at most a light half row at the bottom).
void ExpectDrawingEncodes(const QrGrid& drawing, const std::string& text) {
  const QrGrid symbol = QrReferenceMatrix(text);
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

class CliQr : public CliWithRelay {
 protected:
  CliQr() : CliWithRelay(kPass) {}

  void InitWithRelay(const std::string& who, const std::string& name) {
    ASSERT_NO_FATAL_FAILURE(Init(who, name));
    AddRelay(who);
  }
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
  auto drawing = ReadQrDrawing(lines, 2, &end);
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
  EXPECT_FALSE(HasQrHalfBlocks(plain.out)) << plain.out;
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
  EXPECT_FALSE(HasQrHalfBlocks(safety.dump()));

  ProcessResult r = Run("amina", {"verify", "Bruno Costa"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = Lines(r.out);
  std::size_t at = 0;
  while (at < lines.size() && lines[at] != "  " + grouped) ++at;
  ASSERT_LT(at + 2, lines.size()) << "no safety number line:\n" << r.out;
  EXPECT_TRUE(lines[at + 1].empty());
  std::size_t end = 0;
  auto drawing = ReadQrDrawing(lines, at + 2, &end);
  ASSERT_TRUE(drawing.has_value()) << "no QR drawing under the number:\n" << r.out;
  std::string digits;
  for (char c : grouped) {
    if (c != ' ') digits += c;
  }
  ASSERT_EQ(digits.size(), 60u);
  ExpectDrawingEncodes(*drawing, digits);
  // 60 digits in numeric mode at level M: a version 2 symbol.
  EXPECT_EQ(QrReferenceMatrix(digits).size(), 25u);
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
  auto b_drawing = ReadQrDrawing(b_lines, b_at + 2, &b_end);
  ASSERT_TRUE(b_drawing.has_value()) << b.out;
  EXPECT_EQ(*b_drawing, *drawing);
}

}  // namespace
}  // namespace rhizome::testing
