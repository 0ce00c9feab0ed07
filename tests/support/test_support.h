// Helpers shared by Rhizome's tests: vector loading, temporary directories,
// hex shorthands. Tests only.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "rhizome/crypto/bytes.h"

namespace rhizome::testing {

// Absolute path of a file in tests/vectors/.
std::filesystem::path VectorPath(std::string_view file_name);

// Reads a whole file; aborts the test on error.
std::string ReadFileOrDie(const std::filesystem::path& path);

// Hex to bytes; aborts the test on malformed hex.
Bytes Hex(std::string_view hex);

// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace rhizome::testing
