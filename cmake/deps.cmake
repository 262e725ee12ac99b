# Every dependency comes from Debian bookworm (see docs/architecture.md).
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3 REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
# libnice 0.1.21 pulls in glib-2.0, gobject-2.0 and gio-2.0 (lib/ice).
pkg_check_modules(NICE REQUIRED IMPORTED_TARGET nice)
# usrsctp 0.9.5 (AF_CONN, no threads) for SCTP over DTLS (lib/sctp), as
# pp_usrsctp.  Preferred: the static library scripts/build-usrsctp.sh builds
# from Debian's source package with Debian's -O2 flags; Debian's own
# libusrsctp2 binary is built -O0 and costs the tunnel about a tenth more CPU
# per byte.  Either way the same version and the same usrsctp.h.
set(PP_USRSCTP_DIR /usr/local/lib/peerpipe-usrsctp CACHE PATH
  "optimised usrsctp from scripts/build-usrsctp.sh (empty: Debian's libusrsctp2)")
if(PP_USRSCTP_DIR AND EXISTS ${PP_USRSCTP_DIR}/lib/libusrsctp.a
    AND EXISTS ${PP_USRSCTP_DIR}/include/usrsctp.h)
  find_package(Threads REQUIRED)
  add_library(pp_usrsctp STATIC IMPORTED)
  set_target_properties(pp_usrsctp PROPERTIES
    IMPORTED_LOCATION ${PP_USRSCTP_DIR}/lib/libusrsctp.a
    INTERFACE_INCLUDE_DIRECTORIES ${PP_USRSCTP_DIR}/include
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  set(PP_USRSCTP_VERSION "(version unknown)")
  if(EXISTS ${PP_USRSCTP_DIR}/VERSION)
    file(READ ${PP_USRSCTP_DIR}/VERSION PP_USRSCTP_VERSION)
    string(STRIP "${PP_USRSCTP_VERSION}" PP_USRSCTP_VERSION)
  endif()
  message(STATUS "usrsctp: optimised static build ${PP_USRSCTP_VERSION} in ${PP_USRSCTP_DIR}")
else()
  pkg_check_modules(USRSCTP REQUIRED IMPORTED_TARGET usrsctp)
  add_library(pp_usrsctp INTERFACE IMPORTED)
  set_target_properties(pp_usrsctp PROPERTIES
    INTERFACE_LINK_LIBRARIES PkgConfig::USRSCTP)
  message(WARNING "usrsctp: Debian's libusrsctp2, built without optimisation: "
    "the tunnel uses more CPU per byte.  scripts/build-usrsctp.sh builds an "
    "optimised one from Debian's source package (then re-run cmake).")
endif()
pkg_check_modules(CMOCKA IMPORTED_TARGET cmocka)
# Tunnel compression (lib/tunnel): LZ4 frame format and zstd.
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
