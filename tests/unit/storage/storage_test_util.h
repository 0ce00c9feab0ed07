// Helpers shared by the storage unit tests. Tests only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/pwhash.h"
#include "rhizome/crypto/result.h"

namespace rhizome::storage::testing {

// libsodium's minimum Argon2id cost: valid and fast, so the suite stays quick.
inline crypto::Argon2idParams FastParams() { return {1, 8192}; }

// Every regular file under `dir` (recursively), by path relative to `dir`.
inline std::map<std::string, std::string> SnapshotDir(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    files[std::filesystem::relative(entry.path(), dir).string()] = std::move(bytes);
  }
  return files;
}

inline std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void WriteAll(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline bool Contains(std::string_view haystack, std::string_view needle) {
  return !needle.empty() && haystack.find(needle) != std::string_view::npos;
}

inline bool Contains(std::string_view haystack, ByteSpan needle) {
  return Contains(haystack,
                  std::string_view(reinterpret_cast<const char*>(needle.data()), needle.size()));
}

inline std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

// EXPECT an error with a given code; prints the message on mismatch.
#define EXPECT_ERRC(expr, errc)                                               \
  do {                                                                        \
    const auto& rhizome_r_ = (expr);                                          \
    ASSERT_FALSE(rhizome_r_.ok()) << "expected an error from " #expr;         \
    EXPECT_EQ(rhizome_r_.error().code, (errc)) << rhizome_r_.error().message; \
  } while (0)

#define ASSERT_OK(expr)                                                          \
  do {                                                                           \
    const auto& rhizome_r_ = (expr);                                             \
    ASSERT_TRUE(rhizome_r_.ok()) << #expr << ": " << rhizome_r_.error().message; \
  } while (0)

}  // namespace rhizome::storage::testing
