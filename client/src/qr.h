// QR codes drawn in the terminal (DESIGN §13): `rhizome invite --qr` draws the
// invite code and `rhizome verify` the safety number, for a phone camera to
// read off the screen.
//
// A symbol is encoded by libqrencode (the smallest version that holds the
// text, error-correction level M, numeric/alphanumeric/8-bit segments chosen
// by the library, case kept) and drawn with Unicode half blocks: each
// character cell holds two modules stacked vertically, so a symbol of W
// modules takes W + 2 * kQrQuietZoneModules columns and half as many lines.
//
// Colours: a glyph paints the LIGHT modules ("█" both light, "▀" top light,
// "▄" bottom light) and a space leaves a DARK module to the terminal's
// background. On the usual light-text-on-dark terminal the symbol therefore
// shows dark modules on a light field with a light quiet zone, as on paper,
// which every phone reader decodes. On a dark-text-on-light terminal it comes
// out inverted (light on dark); many readers still decode that, not all. No
// colour escape codes are written, so the output is plain text in any pipe.
//
// Invariants of a rendering: only the four glyphs above, spaces and "\n";
// every line the same number of cells; a light quiet zone of at least
// kQrQuietZoneModules on every side (the last line's lower half, when the
// module count is odd, is quiet zone too).
//
// Thread safety: RenderQr is a pure function; Debian's libqrencode is built
// with its internal lock, so concurrent calls are safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "rhizome/crypto/result.h"

namespace rhizome::client {

// Longest text drawn (bytes). Invite codes are a few hundred characters and a
// safety number 60 digits; a version 40 symbol at level M holds 2331 bytes, so
// any accepted text fits.
inline constexpr std::size_t kMaxQrInputBytes = 2048;

// Light modules around the symbol. The standard asks for 4; 2 is read
// reliably off a screen and keeps a one-relay invite code (about 340 bytes: a
// 73-module symbol, 77 columns) within an 80-column terminal.
inline constexpr int kQrQuietZoneModules = 2;

// The UTF-8 glyphs of a rendering, by the two modules of a cell.
inline constexpr std::string_view kQrGlyphBothLight = "\u2588";   // █
inline constexpr std::string_view kQrGlyphTopLight = "\u2580";    // ▀
inline constexpr std::string_view kQrGlyphBottomLight = "\u2584"; // ▄
inline constexpr std::string_view kQrGlyphBothDark = " ";

// Draws `text` (any bytes but NUL, taken as they are: UTF-8 stays UTF-8) as a
// QR code at level M, one "\n"-terminated line per two module rows.
// SECURITY: the text may be secret (an invite code); the module matrix and the
// copy handed to libqrencode are wiped before they are freed (libqrencode's own
// intermediate buffers are not reachable: best effort). The result is as
// sensitive as the text.
// Errors: kInvalidArgument (empty, or holds a NUL byte); kLimitExceeded
// (longer than kMaxQrInputBytes); kInternal (libqrencode failed, e.g. out of
// memory).
Result<std::string> RenderQr(std::string_view text);

}  // namespace rhizome::client
