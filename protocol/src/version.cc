#include "rhizome/protocol/version.h"

namespace rhizome::protocol {

std::uint16_t HighestCommonVersion(const std::uint16_t* theirs, std::size_t count) noexcept {
  std::uint16_t best = 0;
  for (std::uint16_t ours : kSupportedWireVersions) {
    for (std::size_t i = 0; i < count; ++i) {
      if (theirs[i] == ours && ours > best) best = ours;
    }
  }
  return best;
}

}  // namespace rhizome::protocol
