# Warnings, hardening and sanitizers, applied to every target of the project.
add_compile_definitions(_GNU_SOURCE)
add_compile_options(
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wformat-security -Wpointer-arith -Wcast-qual -Wvla
  -Wno-unused-parameter
  -fno-common -fstack-protector-strong -fstack-clash-protection)
if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_definitions(_FORTIFY_SOURCE=2)
endif()
add_link_options(-Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
if(PP_WERROR)
  add_compile_options(-Werror)
endif()
if(PP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "" FORCE)
endif()
if(PP_FUZZ)
  # Coverage for the library too, not just the harness: libFuzzer is blind
  # without it.  Only the harness links the fuzzer's main (fuzz/CMakeLists).
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
