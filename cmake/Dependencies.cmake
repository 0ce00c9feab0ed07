find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(SQLCIPHER REQUIRED IMPORTED_TARGET sqlcipher)
pkg_check_modules(QRENCODE REQUIRED IMPORTED_TARGET libqrencode)  # terminal QR codes (client)
# CRC-32 of the relay's message journal batches (relay/src/message_journal.cc):
# libdeflate's (carry-less multiplication: ~9x zlib's speed on a 1.3 KB blob).
pkg_check_modules(LIBDEFLATE REQUIRED IMPORTED_TARGET libdeflate)
# zlib's crc32(), the relay tests' independent reference for the same CRC
# (zlib1g-dev, which libprotobuf-dev already depends on).
if(RHIZOME_TESTS)
  pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
endif()
find_package(Threads REQUIRED)
find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND AND NOT EXISTS /usr/include/CLI/CLI.hpp)
  message(FATAL_ERROR "CLI11 not found: run scripts/setup.sh")
endif()
if(RHIZOME_TESTS)
  find_package(GTest REQUIRED)
  find_package(nlohmann_json 3 REQUIRED)  # test vectors are JSON (tests only)
endif()
if(RHIZOME_BENCHMARKS)
  find_package(benchmark REQUIRED)
  pkg_check_modules(SQLITE3 IMPORTED_TARGET sqlite3)
endif()
find_package(Protobuf REQUIRED)  # protoc + libprotobuf (Debian 3.21): wire schemas in protocol/proto
