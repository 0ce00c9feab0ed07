# The warning set every Rhizome target compiles with (docs/developer-notes.md explains why).
add_library(rhizome_warnings INTERFACE)
target_compile_options(rhizome_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough
  -Wmissing-declarations)
if(RHIZOME_WERROR)
  target_compile_options(rhizome_warnings INTERFACE -Werror)
endif()
# GCC 12 reports -Wstringop-overflow inside libstdc++'s std::vector at -O3 for
# ordinary inserts (a known false positive of that release); off for GCC.
# -Wnull-dereference is not in the set for the same reason: at -O2 GCC 12 flags
# libstdc++'s std::string and Asio's scheduler. ASan/UBSan cover null derefs.
# -Wmismatched-new-delete: at -O2 GCC 12 pairs an Asio coroutine frame's
# class-specific operator delete with the global operator new it inlined through
# (relay/src/server.cc); the frames are allocated and freed by the same class.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(rhizome_warnings INTERFACE -Wno-stringop-overflow
                                                    -Wno-mismatched-new-delete)
endif()
# Hardening for release binaries.
target_compile_options(rhizome_warnings INTERFACE -fstack-protector-strong -fPIE)
target_compile_definitions(rhizome_warnings INTERFACE $<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
target_link_options(rhizome_warnings INTERFACE -pie -Wl,-z,relro -Wl,-z,now)

# Relaxed set for third-party generated code (protobuf) and GoogleTest macros.
add_library(rhizome_relaxed_warnings INTERFACE)
target_compile_options(rhizome_relaxed_warnings INTERFACE -Wall -Wextra)
