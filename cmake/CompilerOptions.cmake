# Warnings, sanitizers and ccache for every callgate target.
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  # Paths under the source tree are hashed relative to it, so a fresh clone elsewhere (as CI
  # makes) reuses the cache of earlier builds on the same machine.
  set(CMAKE_CXX_COMPILER_LAUNCHER
    ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_NOHASHDIR=1
    ${CCACHE_PROGRAM})
endif()

add_library(callgate_options INTERFACE)
target_compile_options(callgate_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough -Wmissing-declarations
  # Option structs are filled with designated initializers and rely on member defaults;
  # g++ 12 would flag every field left out (-Wextra), which is the intended use.
  -Wno-missing-field-initializers)
if(CALLGATE_WERROR)
  target_compile_options(callgate_options INTERFACE -Werror)
endif()

if(CALLGATE_SANITIZE)
  # -O0: at -O1 a Beast translation unit needs ~250 s and 3 GB under ASan+UBSan on 2 cores.
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang 14 cannot compile coroutines with -fsanitize=function.
    list(APPEND _san -fno-sanitize=function)
  endif()
  add_compile_options(${_san} -O0 -g)
  add_link_options(${_san})
endif()

if(CALLGATE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CALLGATE_FUZZ needs clang (CXX=clang++)")
  endif()
  # Instrument the libraries too, or libFuzzer sees no coverage in the code under test.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function -g -O1)
  add_link_options(-fsanitize=address,undefined)
endif()
