/*
 * Tunnel protocol v1 control messages (../shared/spec/tunnel-v1.md) and the
 * version-2 fields we add to them (docs/tunnel.md): pure parsers, builders
 * and the INIT negotiation.  No I/O, no globals, no logging; thread-safe.
 *
 * Every parser validates before it interprets: the text is parsed with a
 * size cap (PP_TUN_CTL_MAX), checked against a field table, and only then
 * copied into the plain structs below.
 */
#ifndef PP_TUNNEL_PROTO_H
#define PP_TUNNEL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PP_TUN_CTL_LABEL	"control-channel"
#define PP_TUN_PROXY_PREFIX	"proxy-"
#define PP_TUN_MAX_PORTS	50		/* more in one INIT: invalid */
#define PP_TUN_CTL_MAX		(64 * 1024)	/* largest control message */
#define PP_TUN_NAME_MAX		48		/* signaling user names */
#define PP_TUN_UUID_LEN		36
#define PP_TUN_VERSION		2		/* what we speak */
#define PP_TUN_KEY_LEN		32		/* Ed25519 public key */
#define PP_TUN_NONCE_LEN	32
#define PP_TUN_SIG_LEN		64		/* Ed25519 signature */
#define PP_TUN_INVITE_ID_LEN	16		/* invite token id (docs/identity.md) */
#define PP_TUN_INVITE_MAC_LEN	32		/* HMAC-SHA256 */

/* In negotiation order: both sides take the lower index. */
enum pp_tun_codec {
	PP_CODEC_NONE = 0,
	PP_CODEC_LZ4 = 1,
	PP_CODEC_ZSTD = 2,
	PP_CODEC_ZSTD_HC = 3,
};

enum pp_tun_proto {
	PP_TUN_TCP,
	PP_TUN_UDP,
};

/* Version-2 features, announced in INIT's "pp_features" (v1 peers ignore it). */
#define PP_TUN_F_FLOW		0x1u	/* PAUSE/RESUME flow control on proxy channels */
#define PP_TUN_F_ADAPTIVE	0x2u	/* per-message codec choice (codec bits in the flag byte) */
#define PP_TUN_F_STREAM		0x4u	/* "extended": one zstd stream per channel and direction */
#define PP_TUN_F_RESTART	0x8u	/* takes ICE restarts of the peer connection (lib/rtc) */
#define PP_TUN_F_ZEROCSUM	0x10u	/* takes SCTP packets without a checksum (lib/sctp) */
#define PP_TUN_F_ALL		0x1fu

struct pp_tun_port {
	uint16_t port;
	enum pp_tun_proto proto;
};

struct pp_tun_init {
	char il_user[PP_TUN_NAME_MAX + 1];	/* the RECEIVER's name */
	int unreliable;
	enum pp_tun_codec codec;
	int extended;
	struct pp_tun_port ports[PP_TUN_MAX_PORTS];	/* what the sender offers */
	size_t nports;
	/* Version 2; a v1 INIT parses as version 1, features 0. */
	int version;
	unsigned features;
	/* v2: the sender wants per-message adaptive compression (codec is
	 * then the strongest codec it allows itself to pick). */
	int adaptive;
	/* v2 authentication (docs/identity.md): the sender's identity key and
	 * a fresh nonce; both or neither (has_id). */
	int has_id;
	uint8_t id[PP_TUN_KEY_LEN];
	uint8_t nonce[PP_TUN_NONCE_LEN];
};

/* What both INITs settle on, fixed for the life of the peer connection. */
struct pp_tun_settings {
	enum pp_tun_codec codec;
	int extended;		/* v1 rule: both asked and codec is zstd/zstd-hc */
	int unreliable;		/* v1 rule: both asked and extended did not win */
	int version;		/* min of both */
	unsigned features;	/* PP_TUN_F_* both announced; 0 when version < 2 */
	int stream;		/* extended and both have PP_TUN_F_STREAM */
	int adaptive;		/* both asked for adaptive and both have
				 * PP_TUN_F_ADAPTIVE, and stream is off (stream
				 * wins, as extended wins over unreliable) */
	int flow;		/* both have PP_TUN_F_FLOW */
};

enum pp_tun_msg_type {
	PP_TUN_MSG_UNKNOWN,	/* a JSON object with a type we do not know: ignore */
	PP_TUN_MSG_INIT,
	PP_TUN_MSG_BEGIN_PROXY,
	PP_TUN_MSG_SUCCESS,
	PP_TUN_MSG_FAILED,
	PP_TUN_MSG_PING,	/* v2: {"type": "PING", "seq": N}; answer PONG */
	PP_TUN_MSG_PONG,	/* v2: {"type": "PONG", "seq": N} */
	PP_TUN_MSG_AUTH,	/* v2: {"type": "AUTH", "sig": B64URL} */
	PP_TUN_MSG_PORTS,	/* v2: {"type": "PORTS", "ports": [...]} after AUTH */
};

/* BEGIN_PROXY as received: the provider decides what is valid (spec order:
 * no valid uuid -> ignore; port -> INVALID_PORT; protocol -> INVALID_PROTOCOL). */
struct pp_tun_begin {
	int uuid_valid;			/* canonical lowercase UUID */
	char uuid[PP_TUN_UUID_LEN + 1];
	int port_valid;			/* an integer 1..65535 */
	uint16_t port;
	int proto_valid;		/* "TCP" or "UDP" */
	enum pp_tun_proto proto;
};

/* SUCCESS / FAILED: channel_valid only for "proxy-<uuid>" (else ignore). */
struct pp_tun_result {
	int channel_valid;
	char uuid[PP_TUN_UUID_LEN + 1];
	char reason[64];		/* FAILED; "" when absent; truncated */
};

struct pp_tun_msg {
	enum pp_tun_msg_type type;
	union {
		struct pp_tun_init init;
		struct pp_tun_begin begin;
		struct pp_tun_result result;
		uint32_t seq;		/* PING / PONG (0 when absent or invalid) */
		struct {
			int valid;
			uint8_t sig[PP_TUN_SIG_LEN];
			/* v2 invites: "invite": {"id", "mac"}; a malformed one
			 * counts as none */
			int has_invite;
			uint8_t invite_id[PP_TUN_INVITE_ID_LEN];
			uint8_t invite_mac[PP_TUN_INVITE_MAC_LEN];
		} auth;
		struct {		/* PORTS: what the sender offers us */
			struct pp_tun_port ports[PP_TUN_MAX_PORTS];
			size_t nports;
		} ports;
	} u;
};

/*
 * Parses one control message.  Returns 0 (check m->type), PP_ETOOBIG over
 * PP_TUN_CTL_MAX, or PP_EPROTO when it is not a JSON object with a string
 * "type" (the peer connection must then be torn down).  An INIT is parsed
 * leniently as the spec says (absent/invalid settings take their defaults,
 * invalid port entries are skipped, a repeated PORT:PROTO counts once)
 * except: IL_user missing, not a string or longer than PP_TUN_NAME_MAX, or
 * more than PP_TUN_MAX_PORTS valid entries, is PP_EPROTO.  m is zeroed on
 * error.  err may be NULL.  A FAILED reason is truncated at a UTF-8
 * boundary, control characters replaced by '?' (it ends up in logs).
 */
int pp_tun_msg_parse(const void *buf, size_t len, struct pp_tun_msg *m,
    char *err, size_t errlen);

/*
 * Builders: a malloc'ed NUL-terminated compact JSON text in *out (the
 * caller frees it), or -ENOMEM/PP_EINVAL with *out NULL.  INIT always
 * carries the v2 fields (pp_version: in->version, or PP_TUN_VERSION when
 * 0); v1 peers ignore them.  uuids must be canonical lowercase v4.
 */
int pp_tun_init_build(const struct pp_tun_init *in, char **out);
int pp_tun_begin_build(uint16_t port, enum pp_tun_proto proto,
    const char *uuid, char **out);
int pp_tun_success_build(const char *uuid, char **out);
int pp_tun_failed_build(const char *uuid, const char *reason, char **out);
/* v2 liveness probe, only towards peers whose INIT said pp_version >= 2. */
int pp_tun_ping_build(int pong, uint32_t seq, char **out);
int pp_tun_auth_build(const uint8_t sig[PP_TUN_SIG_LEN], char **out);
/* AUTH with an invite proof: "invite": {"id": B64URL, "mac": B64URL}. */
int pp_tun_auth_invite_build(const uint8_t sig[PP_TUN_SIG_LEN],
    const uint8_t id[PP_TUN_INVITE_ID_LEN],
    const uint8_t mac[PP_TUN_INVITE_MAC_LEN], char **out);
int pp_tun_ports_build(const struct pp_tun_port *ports, size_t n, char **out);

/*
 * What a v2 peer signs (docs/identity.md): both identities' views of the
 * session, so that a signature made for one DTLS session (one pair of
 * certificates) proves nothing in another.  Written by the signer from its
 * own side: its role, its name, the peer's name, the room, its own DTLS
 * certificate fingerprint, the one it saw from the peer, its nonce, the
 * peer's nonce.  The verifier builds the same text from the signer's side
 * (its own values in the "peer" places).  Returns the length, or
 * PP_ETOOBIG when cap is too small.
 */
struct pp_tun_auth_view {
	int offerer;			/* the signer made the SDP offer */
	const char *signer_name, *other_name, *room_uuid;
	const char *signer_fp, *other_fp;	/* "AB:CD:...", no prefix */
	const uint8_t *signer_nonce, *other_nonce;	/* PP_TUN_NONCE_LEN */
};
int pp_tun_auth_transcript(const struct pp_tun_auth_view *v, char *out,
    size_t cap);

/* Symmetric: both sides reach the same settings from the same two INITs. */
void pp_tun_negotiate(const struct pp_tun_init *ours,
    const struct pp_tun_init *theirs, struct pp_tun_settings *out);

/* "none", "lz4", "zstd", "zstd-hc"; parse returns 0 or PP_EINVAL. */
const char *pp_tun_codec_name(enum pp_tun_codec c);
int pp_tun_codec_parse(const char *s, enum pp_tun_codec *out);
const char *pp_tun_proto_name(enum pp_tun_proto p);	/* "TCP" / "UDP" */

/* "proxy-<uuid>" -> 1 and the uuid copied out; else 0. */
int pp_tun_proxy_label_parse(const char *label, char uuid[PP_TUN_UUID_LEN + 1]);

/* FAILED reasons of the spec. */
#define PP_TUN_INVALID_PORT	"INVALID_PORT"
#define PP_TUN_INVALID_PROTOCOL	"INVALID_PROTOCOL"
#define PP_TUN_ACCESS_DENIED	"ACCESS_DENIED"
#define PP_TUN_TIMEOUT		"TIMEOUT"

#endif
