// Reading back a QR code drawn in the terminal (client/src/qr.h), for the
// tests of the drawing (tests/unit/client/qr_test.cc) and of the `rhizome`
// commands that print one (tests/integration/cli_qr_test.cc); and
// libqrencode's own matrix of a text, to compare a drawing against.
//
// A drawing is lines of Unicode half blocks, two module rows per line: a glyph
// paints the LIGHT modules ("█" both light, "▀" top light, "▄" bottom light)
// and a space leaves both modules dark. The glyphs are spelled out here rather
// than taken from the renderer, so a change of glyph is a change the tests see.
//
// Header-only; the binaries that include it link libqrencode. Pure functions,
// safe from any thread.
#pragma once

#include <qrencode.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rhizome::testing {

// A drawing or a symbol as modules: dark[y][x].
using QrGrid = std::vector<std::vector<bool>>;

// The glyphs of a drawing, by the two modules of a character cell.
inline constexpr std::string_view kQrDrawnBothLight = "\u2588";
inline constexpr std::string_view kQrDrawnTopLight = "\u2580";
inline constexpr std::string_view kQrDrawnBottomLight = "\u2584";
inline constexpr std::string_view kQrDrawnBothDark = " ";

// Whether `text` holds any of the three half-block glyphs (a drawing, or a
// piece of one).
inline bool HasQrHalfBlocks(std::string_view text) {
  return text.find(kQrDrawnBothLight) != std::string_view::npos ||
         text.find(kQrDrawnTopLight) != std::string_view::npos ||
         text.find(kQrDrawnBottomLight) != std::string_view::npos;
}

// One line of a drawing (without its "\n") as its two module rows, top then
// bottom. nullopt if the line is empty or holds anything but the four glyphs.
inline std::optional<std::pair<std::vector<bool>, std::vector<bool>>> ReadQrLine(
    std::string_view line) {
  std::vector<bool> top, bottom;
  while (!line.empty()) {
    bool t = false, b = false;  // dark?
    std::size_t n = 0;
    if (line.starts_with(kQrDrawnBothLight)) {
      n = kQrDrawnBothLight.size();
    } else if (line.starts_with(kQrDrawnTopLight)) {
      n = kQrDrawnTopLight.size();
      b = true;
    } else if (line.starts_with(kQrDrawnBottomLight)) {
      n = kQrDrawnBottomLight.size();
      t = true;
    } else if (line.starts_with(kQrDrawnBothDark)) {
      n = kQrDrawnBothDark.size();
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

// Appends `line`'s two module rows to `grid`; false (grid unchanged) if the
// line is not half blocks or not as long as the lines before it.
inline bool AppendQrLine(QrGrid& grid, std::string_view line) {
  auto rows = ReadQrLine(line);
  if (!rows) return false;
  if (!grid.empty() && rows->first.size() != grid[0].size()) return false;
  grid.push_back(std::move(rows->first));
  grid.push_back(std::move(rows->second));
  return true;
}

// A whole rendering: every line "\n"-terminated, half blocks, one length.
// nullopt otherwise (also for an empty text or an empty line).
inline std::optional<QrGrid> ReadQrDrawing(std::string_view drawing) {
  QrGrid grid;
  while (!drawing.empty()) {
    const std::size_t end = drawing.find('\n');
    if (end == std::string_view::npos) return std::nullopt;
    if (!AppendQrLine(grid, drawing.substr(0, end))) return std::nullopt;
    drawing.remove_prefix(end + 1);
  }
  if (grid.empty()) return std::nullopt;
  return grid;
}

// The drawing in a program's output lines, from lines[first] up to the next
// empty line (or the end): every line must be half blocks of one length.
// Sets *end to the index after the drawing. nullopt if there is no such
// drawing at `first`.
inline std::optional<QrGrid> ReadQrDrawing(const std::vector<std::string>& lines, std::size_t first,
                                           std::size_t* end) {
  QrGrid grid;
  std::size_t i = first;
  for (; i < lines.size() && !lines[i].empty(); ++i) {
    if (!AppendQrLine(grid, lines[i])) return std::nullopt;
  }
  *end = i;
  if (grid.empty()) return std::nullopt;
  return grid;
}

struct QrCodeFree {
  void operator()(QRcode* c) const { QRcode_free(c); }
};

// libqrencode's matrix for `text` with the parameters the client documents
// (smallest version, level M, 8-bit hint, case-sensitive), quiet zone not
// included. Empty if libqrencode cannot encode the text.
inline QrGrid QrReferenceMatrix(const std::string& text) {
  std::unique_ptr<QRcode, QrCodeFree> code(
      QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1));
  if (!code) return {};
  const auto w = static_cast<std::size_t>(code->width);
  QrGrid m(w, std::vector<bool>(w));
  for (std::size_t y = 0; y < w; ++y) {
    for (std::size_t x = 0; x < w; ++x) m[y][x] = (code->data[y * w + x] & 1) != 0;
  }
  return m;
}

}  // namespace rhizome::testing
