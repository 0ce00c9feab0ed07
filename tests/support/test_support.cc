#include "test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace rhizome::testing {

std::filesystem::path VectorPath(std::string_view file_name) {
  return std::filesystem::path(RHIZOME_VECTORS_DIR) / std::string(file_name);
}

std::string ReadFileOrDie(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Bytes Hex(std::string_view hex) {
  auto r = FromHex(hex);
  if (!r) {
    ADD_FAILURE() << "bad hex in test: " << hex;
    std::abort();
  }
  return std::move(r).value();
}

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "rhizome-test-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) std::abort();
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace rhizome::testing
