/* DCEP codec (RFC 8832 section 5): bounded reader in, fixed layout out. */
#include "sctp/dcep.h"

#include <string.h>

#include "base/error.h"

/* A cursor that cannot read past the end it was given. */
struct reader {
	const uint8_t *p;
	size_t left;
};

static int
rd_u8(struct reader *r, uint8_t *v)
{
	if (r->left < 1)
		return PP_EPROTO;
	*v = r->p[0];
	r->p++;
	r->left--;
	return 0;
}

static int
rd_u16(struct reader *r, uint16_t *v)
{
	if (r->left < 2)
		return PP_EPROTO;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return 0;
}

static int
rd_u32(struct reader *r, uint32_t *v)
{
	if (r->left < 4)
		return PP_EPROTO;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
	    (uint32_t)r->p[2] << 8 | (uint32_t)r->p[3];
	r->p += 4;
	r->left -= 4;
	return 0;
}

static int
rd_bytes(struct reader *r, size_t n, const uint8_t **out)
{
	if (r->left < n)
		return PP_EPROTO;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

int
pp_dcep_channel_type_valid(uint8_t t)
{
	switch (t) {
	case PP_DCEP_RELIABLE:
	case PP_DCEP_RELIABLE_UNORDERED:
	case PP_DCEP_REXMIT:
	case PP_DCEP_REXMIT_UNORDERED:
	case PP_DCEP_TIMED:
	case PP_DCEP_TIMED_UNORDERED:
		return 1;
	default:
		return 0;
	}
}

int
pp_dcep_parse(const uint8_t *buf, size_t len, struct pp_dcep_msg *msg)
{
	struct reader r = { buf, len };
	uint16_t label_len, protocol_len;
	int rc;

	memset(msg, 0, sizeof(*msg));
	if ((rc = rd_u8(&r, &msg->type)) < 0)
		return rc;
	if (msg->type == PP_DCEP_ACK)
		return r.left == 0 ? 0 : PP_EPROTO;
	if (msg->type != PP_DCEP_OPEN)
		return PP_EPROTO;

	/* Every length is checked against what is left before it is used. */
	if ((rc = rd_u8(&r, &msg->channel_type)) < 0 ||
	    (rc = rd_u16(&r, &msg->priority)) < 0 ||
	    (rc = rd_u32(&r, &msg->reliability)) < 0 ||
	    (rc = rd_u16(&r, &label_len)) < 0 ||
	    (rc = rd_u16(&r, &protocol_len)) < 0 ||
	    (rc = rd_bytes(&r, label_len, &msg->label)) < 0 ||
	    (rc = rd_bytes(&r, protocol_len, &msg->protocol)) < 0)
		return rc;
	if (r.left != 0)
		return PP_EPROTO;
	msg->label_len = label_len;
	msg->protocol_len = protocol_len;

	if (!pp_dcep_channel_type_valid(msg->channel_type))
		return PP_EINVAL;
	/* Label and protocol become C strings upstream: no embedded NUL. */
	if ((label_len && memchr(msg->label, 0, label_len)) ||
	    (protocol_len && memchr(msg->protocol, 0, protocol_len)))
		return PP_EINVAL;
	/* RFC 8832: the parameter is ignored for reliable channels. */
	if (PP_DCEP_POLICY(msg->channel_type) == PP_DCEP_RELIABLE)
		msg->reliability = 0;
	return 0;
}

size_t
pp_dcep_open_size(const struct pp_dcep_msg *msg)
{
	return PP_DCEP_OPEN_FIXED + msg->label_len + msg->protocol_len;
}

static uint8_t *
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

int
pp_dcep_build_open(const struct pp_dcep_msg *msg, uint8_t *buf, size_t cap)
{
	uint8_t *p = buf;
	size_t need;

	if (!pp_dcep_channel_type_valid(msg->channel_type) ||
	    msg->label_len > UINT16_MAX || msg->protocol_len > UINT16_MAX)
		return PP_EINVAL;
	need = pp_dcep_open_size(msg);
	if (need > cap)
		return PP_ETOOBIG;
	*p++ = PP_DCEP_OPEN;
	*p++ = msg->channel_type;
	p = put16(p, msg->priority);
	p = put16(p, (uint16_t)(msg->reliability >> 16));
	p = put16(p, (uint16_t)msg->reliability);
	p = put16(p, (uint16_t)msg->label_len);
	p = put16(p, (uint16_t)msg->protocol_len);
	if (msg->label_len)
		memcpy(p, msg->label, msg->label_len);
	p += msg->label_len;
	if (msg->protocol_len)
		memcpy(p, msg->protocol, msg->protocol_len);
	return (int)need;
}

int
pp_dcep_build_ack(uint8_t *buf, size_t cap)
{
	if (cap < 1)
		return PP_ETOOBIG;
	buf[0] = PP_DCEP_ACK;
	return 1;
}
