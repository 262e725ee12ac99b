/*
 * Fuzzes the tunnel control message parser.  Whatever parses must also
 * survive the way back: an INIT, BEGIN_PROXY or SUCCESS/FAILED rebuilt by
 * our builders parses to the same thing, and negotiating an INIT with
 * itself keeps the v1 rules' invariants.
 */
#include "base/error.h"
#include "tunnel/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_init(const struct pp_tun_init *in)
{
	struct pp_tun_settings s;
	struct pp_tun_msg m;
	char *text;

	pp_tun_negotiate(in, in, &s);
	if ((s.extended && s.codec < PP_CODEC_ZSTD) ||
	    (s.unreliable && s.extended) || (s.stream && !s.extended) ||
	    (s.adaptive && s.stream) || s.codec != in->codec ||
	    (s.features & ~PP_TUN_F_ALL))
		abort();
	if (in->il_user[0] == '\0')	/* the builder refuses it, rightly */
		return;
	if (pp_tun_init_build(in, &text) < 0)
		abort();
	if (pp_tun_msg_parse(text, strlen(text), &m, NULL, 0) != 0 ||
	    m.type != PP_TUN_MSG_INIT)
		abort();
	free(text);
	if (strcmp(m.u.init.il_user, in->il_user) != 0 ||
	    m.u.init.codec != in->codec || m.u.init.extended != in->extended ||
	    m.u.init.unreliable != in->unreliable ||
	    m.u.init.nports != in->nports || m.u.init.version != in->version ||
	    m.u.init.features != in->features ||
	    m.u.init.adaptive != in->adaptive)
		abort();
	for (size_t i = 0; i < in->nports; i++)
		if (m.u.init.ports[i].port != in->ports[i].port ||
		    m.u.init.ports[i].proto != in->ports[i].proto)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_tun_msg m, m2;
	char err[128], *text = NULL;
	int rc;

	rc = pp_tun_msg_parse(data, size, &m, err, sizeof(err));
	if (rc != 0) {
		if (rc != PP_EPROTO && rc != PP_ETOOBIG)
			abort();
		return 0;
	}
	switch (m.type) {
	case PP_TUN_MSG_INIT:
		check_init(&m.u.init);
		break;
	case PP_TUN_MSG_BEGIN_PROXY:
		if (!m.u.begin.uuid_valid || !m.u.begin.port_valid ||
		    !m.u.begin.proto_valid)
			break;
		if (pp_tun_begin_build(m.u.begin.port, m.u.begin.proto,
		    m.u.begin.uuid, &text) < 0 ||
		    pp_tun_msg_parse(text, strlen(text), &m2, NULL, 0) != 0 ||
		    m2.type != PP_TUN_MSG_BEGIN_PROXY ||
		    memcmp(&m2.u.begin, &m.u.begin, sizeof(m.u.begin)) != 0)
			abort();
		break;
	case PP_TUN_MSG_SUCCESS:
	case PP_TUN_MSG_FAILED:
		if (strlen(m.u.result.reason) >= sizeof(m.u.result.reason))
			abort();
		if (!m.u.result.channel_valid)
			break;
		rc = m.type == PP_TUN_MSG_SUCCESS ?
		    pp_tun_success_build(m.u.result.uuid, &text) :
		    pp_tun_failed_build(m.u.result.uuid, "TIMEOUT", &text);
		if (rc < 0 || pp_tun_msg_parse(text, strlen(text), &m2, NULL,
		    0) != 0 || m2.type != m.type || !m2.u.result.channel_valid ||
		    strcmp(m2.u.result.uuid, m.u.result.uuid) != 0)
			abort();
		break;
	case PP_TUN_MSG_PING:
	case PP_TUN_MSG_PONG:
		if (pp_tun_ping_build(m.type == PP_TUN_MSG_PONG, m.u.seq,
		    &text) < 0 || pp_tun_msg_parse(text, strlen(text), &m2,
		    NULL, 0) != 0 || m2.type != m.type || m2.u.seq != m.u.seq)
			abort();
		break;
	case PP_TUN_MSG_AUTH:
		if (!m.u.auth.valid)
			break;
		if ((m.u.auth.has_invite ? pp_tun_auth_invite_build(m.u.auth.sig,
		    m.u.auth.invite_id, m.u.auth.invite_mac, &text) :
		    pp_tun_auth_build(m.u.auth.sig, &text)) < 0 ||
		    pp_tun_msg_parse(text, strlen(text), &m2, NULL, 0) != 0 ||
		    m2.type != PP_TUN_MSG_AUTH || !m2.u.auth.valid ||
		    memcmp(m2.u.auth.sig, m.u.auth.sig, sizeof(m.u.auth.sig)) != 0 ||
		    m2.u.auth.has_invite != m.u.auth.has_invite ||
		    (m.u.auth.has_invite && (memcmp(m2.u.auth.invite_id,
		    m.u.auth.invite_id, sizeof(m.u.auth.invite_id)) != 0 ||
		    memcmp(m2.u.auth.invite_mac, m.u.auth.invite_mac,
		    sizeof(m.u.auth.invite_mac)) != 0)))
			abort();
		break;
	case PP_TUN_MSG_PORTS:
		if (m.u.ports.nports > PP_TUN_MAX_PORTS)
			abort();
		if (pp_tun_ports_build(m.u.ports.ports, m.u.ports.nports,
		    &text) < 0 || pp_tun_msg_parse(text, strlen(text), &m2,
		    NULL, 0) != 0 || m2.type != PP_TUN_MSG_PORTS ||
		    m2.u.ports.nports != m.u.ports.nports)
			abort();
		break;
	case PP_TUN_MSG_UNKNOWN:
		break;
	}
	free(text);
	return 0;
}
