// Terminal QR codes (client/src/qr.h): the drawing is read back into a module
// grid and checked for its shape (square, quiet zone, only the four glyphs),
// module by module against libqrencode's own matrix for the same text at level
// M, and, independently of libqrencode, for the structures a reader looks for
// first: the three finder patterns, the timing patterns and the format
// information (which must say level M). No QR decoder is installed here
// (zbarimg), so reading the symbol's data is left to the matrix comparison.
#include "qr.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "qr_drawing.h"

namespace rhizome::client {
namespace {

using rhizome::testing::QrGrid;
using rhizome::testing::QrReferenceMatrix;
using rhizome::testing::ReadQrDrawing;

// The symbol inside the drawing (quiet zone stripped), after checking the
// drawing's shape. Empty on failure (with the reason reported).
QrGrid SymbolOf(const std::string& drawing) {
  auto grid = ReadQrDrawing(drawing);
  if (!grid) {
    ADD_FAILURE() << "not a drawing of the four glyphs in equal lines:\n" << drawing;
    return {};
  }
  const std::size_t side = (*grid)[0].size();
  const std::size_t quiet = static_cast<std::size_t>(kQrQuietZoneModules);
  // Square: as many module rows as columns, plus at most the half row that
  // completes the last line.
  EXPECT_TRUE(grid->size() == side || grid->size() == side + 1)
      << grid->size() << " module rows, " << side << " columns";
  EXPECT_GT(side, 2 * quiet);
  if (side <= 2 * quiet) return {};
  // Everything outside the symbol is light, at least `quiet` modules deep.
  const std::size_t width = side - 2 * quiet;
  for (std::size_t y = 0; y < grid->size(); ++y) {
    for (std::size_t x = 0; x < side; ++x) {
      const bool inside = y >= quiet && y < quiet + width && x >= quiet && x < quiet + width;
      if (!inside) {
        EXPECT_FALSE((*grid)[y][x]) << "dark quiet-zone module at " << x << "," << y;
      }
    }
  }
  QrGrid symbol(width, std::vector<bool>(width));
  for (std::size_t y = 0; y < width; ++y) {
    for (std::size_t x = 0; x < width; ++x) symbol[y][x] = (*grid)[y + quiet][x + quiet];
  }
  return symbol;
}

// The 7x7 finder pattern with its top-left corner at (x0, y0).
bool FinderAt(const QrGrid& m, std::size_t x0, std::size_t y0) {
  for (std::size_t dy = 0; dy < 7; ++dy) {
    for (std::size_t dx = 0; dx < 7; ++dx) {
      const std::size_t ring = std::max(dx > 3 ? dx - 3 : 3 - dx, dy > 3 ? dy - 3 : 3 - dy);
      const bool want_dark = ring != 2;  // dark 7x7 edge, light ring, dark 3x3 core
      if (m[y0 + dy][x0 + dx] != want_dark) return false;
    }
  }
  return true;
}

// The 15 format bits, bit i as ISO/IEC 18004 places it: first copy around the
// top-left finder, second split between the other two.
unsigned FormatBits(const QrGrid& m, bool second_copy) {
  const std::size_t n = m.size();
  unsigned bits = 0;
  for (unsigned i = 0; i < 15; ++i) {
    std::size_t x, y;
    if (!second_copy) {
      if (i <= 5) {
        x = 8, y = i;
      } else if (i == 6) {
        x = 8, y = 7;
      } else if (i == 7) {
        x = 8, y = 8;
      } else if (i == 8) {
        x = 7, y = 8;
      } else {
        x = 14 - i, y = 8;
      }
    } else if (i < 8) {
      x = n - 1 - i, y = 8;
    } else {
      x = 8, y = n - 15 + i;
    }
    if (m[y][x]) bits |= 1u << i;
  }
  return bits;
}

// The format bits a correct symbol carries for (level bits, mask): BCH(15,5)
// with generator 0x537, masked with 0x5412.
unsigned ExpectedFormatBits(unsigned data5) {
  unsigned rem = data5;
  for (int i = 0; i < 10; ++i) rem = (rem << 1) ^ ((rem >> 9) * 0x537u);
  return ((data5 << 10) | (rem & 0x3FFu)) ^ 0x5412u;
}

// Checks, without libqrencode, what a reader needs to find and orient the
// symbol and to learn its level: finders, timing rows, dark module, format.
void ExpectReadableStructureAtLevelM(const QrGrid& m) {
  const std::size_t n = m.size();
  ASSERT_GE(n, 21u);
  EXPECT_EQ((n - 17) % 4, 0u) << "not a QR symbol side: " << n;
  EXPECT_TRUE(FinderAt(m, 0, 0)) << "top-left finder";
  EXPECT_TRUE(FinderAt(m, n - 7, 0)) << "top-right finder";
  EXPECT_TRUE(FinderAt(m, 0, n - 7)) << "bottom-left finder";
  EXPECT_FALSE(FinderAt(m, n - 7, n - 7)) << "a fourth finder: symbol is mirrored";
  for (std::size_t i = 8; i < n - 8; ++i) {
    EXPECT_EQ(m[6][i], i % 2 == 0) << "horizontal timing at " << i;
    EXPECT_EQ(m[i][6], i % 2 == 0) << "vertical timing at " << i;
  }
  EXPECT_TRUE(m[n - 8][8]) << "the always-dark module";
  const unsigned first = FormatBits(m, false);
  EXPECT_EQ(first, FormatBits(m, true)) << "the two format copies differ";
  const unsigned data5 = (first ^ 0x5412u) >> 10;
  EXPECT_EQ(first, ExpectedFormatBits(data5)) << "format bits fail their BCH check";
  EXPECT_EQ(data5 >> 3, 0u) << "error-correction level is not M (bits " << (data5 >> 3) << ")";
}

void ExpectDrawingOf(const std::string& text, std::size_t expected_width = 0) {
  auto drawing = RenderQr(text);
  ASSERT_TRUE(drawing.ok()) << drawing.error().message;
  QrGrid symbol = SymbolOf(*drawing);
  ASSERT_FALSE(symbol.empty());
  EXPECT_EQ(symbol, QrReferenceMatrix(text)) << "the drawing is not libqrencode's matrix";
  ExpectReadableStructureAtLevelM(symbol);
  if (expected_width != 0) {
    EXPECT_EQ(symbol.size(), expected_width);
  }
}

// The length of a one-relay invite code from `rhizome invite` (342 bytes).
std::string InviteLikeCode() {
  std::string code = "rhizome-invite:";
  const std::string_view base32 = "abcdefghijklmnopqrstuvwxyz234567";
  while (code.size() < 342) code += base32[(code.size() * 7) % base32.size()];
  return code;
}

TEST(QrTest, DrawsTheModulesOfLibqrencodeMatrixAtLevelM) {
  ExpectDrawingOf("rhizome test: half blocks");
}

TEST(QrTest, DrawingIsSquareWithQuietZoneAndOnlyTheFourGlyphs) {
  auto drawing = RenderQr("HELLO");
  ASSERT_TRUE(drawing.ok());
  // Version 1 (21 modules) plus the quiet zone on each side; 12 lines of 25.
  const std::size_t side = 21 + 2 * static_cast<std::size_t>(kQrQuietZoneModules);
  auto grid = ReadQrDrawing(*drawing);
  ASSERT_TRUE(grid.has_value()) << *drawing;
  EXPECT_EQ((*grid)[0].size(), side);
  EXPECT_EQ(grid->size(), side + side % 2);
  // The first line is quiet zone only; the symbol starts below it.
  const std::string first_line = drawing->substr(0, drawing->find('\n'));
  std::string all_light;
  for (std::size_t i = 0; i < side; ++i) all_light += kQrGlyphBothLight;
  EXPECT_EQ(first_line, all_light);
  EXPECT_EQ(drawing->back(), '\n');
}

TEST(QrTest, SafetyNumberDigitsFitAVersionTwoSymbol) {
  // 60 digits in numeric mode: version 2 (25 modules) at level M.
  ExpectDrawingOf(std::string(60, '7'), 25);
  ExpectDrawingOf("123456789012345678901234567890123456789012345678901234567890", 25);
}

TEST(QrTest, InviteSizedCodeIsDrawnExactly) {
  const std::string code = InviteLikeCode();
  ASSERT_EQ(code.size(), 342u);
  // 342 bytes in 8-bit mode at level M: version 14, 73 modules; with a quiet
  // zone of 2 the drawing fits an 80-column terminal.
  ExpectDrawingOf(code, 73);
  auto drawing = RenderQr(code);
  ASSERT_TRUE(drawing.ok());
  EXPECT_LE(ReadQrDrawing(*drawing)->at(0).size(), 80u);
}

TEST(QrTest, TextOfTheLimitIsDrawnAndOneByteMoreIsRefused) {
  const std::string at_limit(kMaxQrInputBytes, 'x');
  ExpectDrawingOf(at_limit);
  auto over = RenderQr(at_limit + "x");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::kLimitExceeded);
  auto far_over = RenderQr(std::string(1 << 20, '1'));
  ASSERT_FALSE(far_over.ok());
  EXPECT_EQ(far_over.error().code, Errc::kLimitExceeded);
}

TEST(QrTest, EmptyTextAndEmbeddedNulAreRefused) {
  auto empty = RenderQr("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Errc::kInvalidArgument);
  // A NUL would silently cut the text short in libqrencode's string API.
  auto nul = RenderQr(std::string_view("before\0after", 12));
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.error().code, Errc::kInvalidArgument);
}

TEST(QrTest, NonAsciiUtf8IsDrawnAsItsBytes) {
  ExpectDrawingOf("Gr\xC3\xBC\xC3\x9F" "e \xE2\x80\x94 \xE4\xBD\xA0\xE5\xA5\xBD");
}

TEST(QrTest, CaseIsKept) {
  // Case-insensitive encoding would draw both the same.
  auto lower = RenderQr("rhizome-invite:abc");
  auto upper = RenderQr("RHIZOME-INVITE:ABC");
  ASSERT_TRUE(lower.ok() && upper.ok());
  EXPECT_NE(*lower, *upper);
  ExpectDrawingOf("rhizome-invite:abc");
}

}  // namespace
}  // namespace rhizome::client
