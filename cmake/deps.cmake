# Every dependency comes from Debian bookworm (see docs/architecture.md).
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3 REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
# libnice 0.1.21 pulls in glib-2.0, gobject-2.0 and gio-2.0 (lib/ice).
pkg_check_modules(NICE REQUIRED IMPORTED_TARGET nice)
# usrsctp 0.9.5 (AF_CONN, no threads) for SCTP over DTLS (lib/sctp).
pkg_check_modules(USRSCTP REQUIRED IMPORTED_TARGET usrsctp)
pkg_check_modules(CMOCKA IMPORTED_TARGET cmocka)
# Tunnel compression (lib/tunnel): LZ4 frame format and zstd.
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
