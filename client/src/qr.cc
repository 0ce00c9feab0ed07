// Terminal QR codes: libqrencode's module matrix drawn with half blocks.
// The only file that calls libqrencode.
#include "qr.h"

#include <qrencode.h>

#include <cstdint>
#include <memory>
#include <span>

#include "rhizome/crypto/secret.h"

namespace rhizome::client {

namespace {

static_assert(kQrQuietZoneModules >= 2, "phone readers need a light border of 2+ modules");

// Frees a libqrencode symbol after wiping its matrix (it spells out the text).
struct QrCodeDeleter {
  void operator()(QRcode* code) const noexcept {
    if (code->data != nullptr && code->width > 0) {
      const auto side = static_cast<std::size_t>(code->width);
      crypto::Wipe(std::span<std::uint8_t>(code->data, side * side));
    }
    QRcode_free(code);
  }
};
using QrCodePtr = std::unique_ptr<QRcode, QrCodeDeleter>;

}  // namespace

Result<std::string> RenderQr(std::string_view text) {
  if (text.empty()) return Error{Errc::kInvalidArgument, "nothing to draw as a QR code"};
  if (text.size() > kMaxQrInputBytes) {
    return Error{Errc::kLimitExceeded, "text too long for a QR code"};
  }
  if (text.find('\0') != std::string_view::npos) {
    return Error{Errc::kInvalidArgument, "a QR code text cannot hold a NUL byte"};
  }

  // libqrencode wants a NUL-terminated string.
  std::string terminated(text);
  // Version 0: the smallest that fits. QR_MODE_8 as the hint keeps non-ASCII
  // bytes as 8-bit data; case-sensitive so that the text is read back exactly.
  QrCodePtr code(QRcode_encodeString(terminated.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1));
  crypto::Wipe(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(terminated.data()),
                                       terminated.size()));
  if (!code || code->data == nullptr || code->width <= 0) {
    return Error{Errc::kInternal, "could not encode the QR code"};
  }

  const int width = code->width;
  const int side = width + 2 * kQrQuietZoneModules;
  // Module (x, y) of the drawing, quiet zone included: true when dark. Outside
  // the symbol (quiet zone, and the half row below an odd side) is light.
  auto dark = [&](int x, int y) {
    const int sx = x - kQrQuietZoneModules;
    const int sy = y - kQrQuietZoneModules;
    if (sx < 0 || sy < 0 || sx >= width || sy >= width) return false;
    return (code->data[static_cast<std::size_t>(sy) * static_cast<std::size_t>(width) +
                       static_cast<std::size_t>(sx)] &
            1u) != 0;
  };

  const auto lines = static_cast<std::size_t>((side + 1) / 2);
  std::string out;
  // Three bytes per half-block glyph, plus the newline.
  out.reserve(lines * (static_cast<std::size_t>(side) * kQrGlyphBothLight.size() + 1));
  for (int y = 0; y < side; y += 2) {
    for (int x = 0; x < side; ++x) {
      const bool top_dark = dark(x, y);
      const bool bottom_dark = dark(x, y + 1);
      if (!top_dark && !bottom_dark) {
        out += kQrGlyphBothLight;
      } else if (!top_dark) {
        out += kQrGlyphTopLight;
      } else if (!bottom_dark) {
        out += kQrGlyphBottomLight;
      } else {
        out += kQrGlyphBothDark;
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace rhizome::client
