// Protocol versions and labels that every Rhizome wire format binds.
//
// The version a session speaks goes into the Noise prologue together with the
// application label and the role, so a downgrade breaks the handshake (DESIGN §5).
#pragma once

#include <cstdint>
#include <string_view>

namespace rhizome::protocol {

// The wire-protocol versions this build speaks, highest first.
inline constexpr std::uint16_t kWireVersionV1 = 1;
inline constexpr std::uint16_t kSupportedWireVersions[] = {kWireVersionV1};

// Application label at the start of every Noise prologue.
inline constexpr std::string_view kApplicationLabel = "rhizome";

// Picks the highest version both sides speak; 0 if none.
std::uint16_t HighestCommonVersion(const std::uint16_t* theirs, std::size_t count) noexcept;

}  // namespace rhizome::protocol
