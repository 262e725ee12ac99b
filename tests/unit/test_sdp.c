/* lib/sdp: the SDP parser, the trickle candidate parser and the generators. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "sdp/sdp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRLEN 256

/*
 * Real aiortc 1.4 output (Debian python3-aiortc 1.4.0, aioice 0.8): the
 * offer of an existing PeerPipe peer, a data channel plus a recvonly audio
 * transceiver.  Note the legacy DTLS/SCTP m-line and the per-m-line ICE
 * credentials.
 */
static const char aiortc_offer[] =
	"v=0\r\n"
	"o=- 4004567733 4004567733 IN IP4 0.0.0.0\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE 0 1\r\n"
	"a=msid-semantic:WMS *\r\n"
	"m=audio 32987 UDP/TLS/RTP/SAVPF 96 0 8\r\n"
	"c=IN IP4 192.0.2.2\r\n"
	"a=recvonly\r\n"
	"a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
	"a=mid:0\r\n"
	"a=msid:b2132e9f-6b98-4c46-8d96-cba38ed11bfb 645832ba-f45d-452c-a8f0-0f2117d318cc\r\n"
	"a=rtcp:9 IN IP4 0.0.0.0\r\n"
	"a=rtcp-mux\r\n"
	"a=ssrc:702401969 cname:1997e52f-3990-4bef-9d5f-cbe518005afd\r\n"
	"a=rtpmap:96 opus/48000/2\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=candidate:f957a2332b1715da3b0ef8ba684454eb 1 udp 2130706431 192.0.2.2 32987 typ host\r\n"
	"a=candidate:d0bcf3d9c29a2bc887618212a1623bfa 1 udp 2130706431 fd00::2 32974 typ host\r\n"
	"a=end-of-candidates\r\n"
	"a=ice-ufrag:QiC2\r\n"
	"a=ice-pwd:GMYIi9kiBMdhF24bLv4brE\r\n"
	"a=fingerprint:sha-256 DC:5B:22:53:9A:72:43:4D:3C:CC:B9:68:20:DC:BB:00:E5:3C:A6:F4:D6:BC:B8:D0:62:A1:72:18:66:10:95:ED\r\n"
	"a=setup:actpass\r\n"
	"m=application 45412 DTLS/SCTP 5000\r\n"
	"c=IN IP4 192.0.2.2\r\n"
	"a=mid:1\r\n"
	"a=sctpmap:5000 webrtc-datachannel 65535\r\n"
	"a=max-message-size:65536\r\n"
	"a=candidate:f957a2332b1715da3b0ef8ba684454eb 1 udp 2130706431 192.0.2.2 45412 typ host\r\n"
	"a=candidate:d0bcf3d9c29a2bc887618212a1623bfa 1 udp 2130706431 fd00::2 51949 typ host\r\n"
	"a=end-of-candidates\r\n"
	"a=ice-ufrag:3qCu\r\n"
	"a=ice-pwd:MrkbkNxn906AORN0u9w6NW\r\n"
	"a=fingerprint:sha-256 DC:5B:22:53:9A:72:43:4D:3C:CC:B9:68:20:DC:BB:00:E5:3C:A6:F4:D6:BC:B8:D0:62:A1:72:18:66:10:95:ED\r\n"
	"a=setup:actpass\r\n";

/* Real aiortc 1.4 answer to our current-format offer. */
static const char aiortc_answer[] =
	"v=0\r\n"
	"o=- 4004568333 4004568333 IN IP4 0.0.0.0\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE 0\r\n"
	"a=msid-semantic:WMS *\r\n"
	"m=application 54903 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	"c=IN IP4 192.0.2.2\r\n"
	"a=mid:0\r\n"
	"a=sctp-port:5000\r\n"
	"a=max-message-size:65536\r\n"
	"a=candidate:f957a2332b1715da3b0ef8ba684454eb 1 udp 2130706431 192.0.2.2 54903 typ host\r\n"
	"a=candidate:d0bcf3d9c29a2bc887618212a1623bfa 1 udp 2130706431 fd00::2 40182 typ host\r\n"
	"a=end-of-candidates\r\n"
	"a=ice-ufrag:IKnM\r\n"
	"a=ice-pwd:2B2hoVinfz6RJGskcyK2E6\r\n"
	"a=fingerprint:sha-256 80:99:28:D6:7F:E5:30:B0:B2:80:72:B5:8E:08:2A:68:58:4F:8B:A9:02:56:9A:8D:DE:6A:B1:01:DB:EA:77:56\r\n"
	"a=setup:active\r\n";

#define FP1 "0C:D5:B2:03:8B:0A:74:BB:A5:EA:11:3B:F3:E2:75:B2:B0:BF:9D:FC:BD:87:2C:B6:45:CC:81:81:58:4C:E0:53"
#define FP2 "4D:60:68:77:2F:26:F6:6C:28:FC:D0:51:E6:B6:FA:62:CC:BE:91:30:D1:E4:9C:F9:99:16:54:3C:03:72:BE:BC"

/*
 * Real Chromium 156 output (headless, mDNS host obfuscation off): the offer
 * of a page that made a data channel and a recvonly audio transceiver.
 */
static const char chromium156_offer[] =
	"v=0\r\n"
	"o=- 4994572132683788535 2 IN IP4 127.0.0.1\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE 0 1\r\n"
	"a=extmap-allow-mixed\r\n"
	"a=msid-semantic: WMS\r\n"
	"m=audio 35289 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
	"c=IN IP4 192.0.2.2\r\n"
	"a=rtcp:9 IN IP4 0.0.0.0\r\n"
	"a=candidate:2229654414 1 udp 2113937151 192.0.2.2 35289 typ host generation 0 network-cost 999\r\n"
	"a=candidate:2605546122 1 udp 2113942271 fd00::2 36063 typ host generation 0 network-cost 999\r\n"
	"a=ice-ufrag:5a9W\r\n"
	"a=ice-pwd:liUPd77SItcRMM9dR8l0FkDb\r\n"
	"a=ice-options:trickle\r\n"
	"a=fingerprint:sha-256 B1:20:01:E8:48:C7:2E:88:1E:04:69:D0:58:0E:88:66:13:FE:97:2F:C0:26:91:FF:45:6D:46:49:FE:60:26:C3\r\n"
	"a=setup:actpass\r\n"
	"a=mid:0\r\n"
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=recvonly\r\n"
	"a=rtcp-mux\r\n"
	"a=rtcp-rsize\r\n"
	"a=rtcp-xr:rcvr-rtt=all\r\n"
	"a=rtpmap:111 opus/48000/2\r\n"
	"a=rtcp-fb:111 transport-cc\r\n"
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n"
	"a=rtpmap:63 red/48000/2\r\n"
	"a=fmtp:63 111/111\r\n"
	"a=rtpmap:9 G722/8000\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:13 CN/8000\r\n"
	"a=rtpmap:110 telephone-event/48000\r\n"
	"a=rtpmap:126 telephone-event/8000\r\n"
	"m=application 43465 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	"c=IN IP4 192.0.2.2\r\n"
	"a=candidate:2229654414 1 udp 2113937151 192.0.2.2 43465 typ host generation 0 network-cost 999\r\n"
	"a=candidate:2605546122 1 udp 2113942271 fd00::2 51518 typ host generation 0 network-cost 999\r\n"
	"a=ice-ufrag:5a9W\r\n"
	"a=ice-pwd:liUPd77SItcRMM9dR8l0FkDb\r\n"
	"a=ice-options:trickle\r\n"
	"a=fingerprint:sha-256 B1:20:01:E8:48:C7:2E:88:1E:04:69:D0:58:0E:88:66:13:FE:97:2F:C0:26:91:FF:45:6D:46:49:FE:60:26:C3\r\n"
	"a=setup:actpass\r\n"
	"a=mid:1\r\n"
	"a=sctp-port:5000\r\n"
	"a=max-message-size:262144\r\n";

/* Chromium's data-channel-only offer (written from its usual output). */
static const char chromium_offer[] =
	"v=0\r\n"
	"o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE 0\r\n"
	"a=extmap-allow-mixed\r\n"
	"a=msid-semantic: WMS\r\n"
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=candidate:3885250869 1 udp 2122260223 192.168.1.23 50624 typ host generation 0 network-id 1 network-cost 10\r\n"
	"a=candidate:2437072876 1 udp 2122262783 2001:db8:85a3::8a2e:370:7334 50625 typ host generation 0 network-id 2 network-cost 10\r\n"
	"a=candidate:1510613869 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0 network-id 1 network-cost 10\r\n"
	"a=candidate:842163049 1 udp 1686052607 203.0.113.7 50624 typ srflx raddr 192.168.1.23 rport 50624 generation 0 network-id 1 network-cost 10\r\n"
	"a=candidate:2807129381 1 udp 41885439 198.51.100.20 61523 typ relay raddr 203.0.113.7 rport 50624 generation 0 network-id 1 network-cost 10\r\n"
	"a=ice-ufrag:Hc7t\r\n"
	"a=ice-pwd:wPkQ2Hb7ItKAu1VAt3HlXc0P\r\n"
	"a=ice-options:trickle\r\n"
	"a=fingerprint:sha-256 " FP1 "\r\n"
	"a=setup:actpass\r\n"
	"a=mid:0\r\n"
	"a=sctp-port:5000\r\n"
	"a=max-message-size:262144\r\n";

/* Chromium with a recvonly audio transceiver, mDNS host candidate, LF only. */
#define CHROMIUM_TRANSPORT \
	"a=candidate:1410398476 1 udp 2113937151 6a1f3a8e-7b2c-4d5e-9f01-23456789abcd.local 54400 typ host generation 0 network-cost 999\n" \
	"a=candidate:842163049 1 udp 1677729535 203.0.113.7 54400 typ srflx raddr 0.0.0.0 rport 0 generation 0 network-cost 999\n" \
	"a=ice-ufrag:9xQe\n" \
	"a=ice-pwd:Kp4vXb2TqLmN8sRw0YzA1cDf\n" \
	"a=ice-options:trickle\n" \
	"a=fingerprint:sha-256 " FP2 "\n" \
	"a=setup:actpass\n"
static const char chromium_audio_offer[] =
	"v=0\n"
	"o=- 7602946310985717712 2 IN IP4 127.0.0.1\n"
	"s=-\n"
	"t=0 0\n"
	"a=group:BUNDLE 0 1\n"
	"a=extmap-allow-mixed\n"
	"a=msid-semantic: WMS\n"
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\n"
	"c=IN IP4 0.0.0.0\n"
	"a=rtcp:9 IN IP4 0.0.0.0\n"
	CHROMIUM_TRANSPORT
	"a=mid:0\n"
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n"
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\n"
	"a=recvonly\n"
	"a=rtcp-mux\n"
	"a=rtpmap:111 opus/48000/2\n"
	"a=rtcp-fb:111 transport-cc\n"
	"a=fmtp:111 minptime=10;useinbandfec=1\n"
	"a=rtpmap:63 red/48000/2\n"
	"a=rtpmap:9 G722/8000\n"
	"a=rtpmap:0 PCMU/8000\n"
	"a=rtpmap:8 PCMA/8000\n"
	"a=rtpmap:13 CN/8000\n"
	"a=rtpmap:110 telephone-event/48000\n"
	"a=rtpmap:126 telephone-event/8000\n"
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
	"c=IN IP4 0.0.0.0\n"
	CHROMIUM_TRANSPORT
	"a=mid:1\n"
	"a=sctp-port:5000\n"
	"a=max-message-size:262144\n";

/* The pre-RFC 8841 format, with a non-numeric mid and TCP candidates. */
static const char legacy_offer[] =
	"v=0\r\n"
	"o=- 1733169920468712370 2 IN IP4 127.0.0.1\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE data\r\n"
	"m=application 9 DTLS/SCTP 5000\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=candidate:1 1 UDP 2122252543 10.0.0.5 49203 typ host\r\n"
	"a=candidate:2 1 TCP 2105524479 10.0.0.5 9 typ host tcptype active\r\n"
	"a=candidate:3 1 TCP 2105458943 10.0.0.5 49204 typ host tcptype passive\r\n"
	"a=ice-ufrag:a1b2c3d4\r\n"
	"a=ice-pwd:0123456789abcdef0123456789abcdef\r\n"
	"a=fingerprint:sha-256 " FP1 "\r\n"
	"a=setup:actpass\r\n"
	"a=mid:data\r\n"
	"a=sctpmap:5000 webrtc-datachannel 1024\r\n"
	"a=max-message-size:1073741823\r\n";

/* Session-level ICE/DTLS attributes (Firefox style); media overrides pwd. */
static const char session_offer[] =
	"v=0\r\n"
	"o=mozilla...THIS_IS_SDPARTA-99.0 6044217452327404396 0 IN IP4 0.0.0.0\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=fingerprint:sha-256 " FP2 "\r\n"
	"a=fingerprint:sha-1 0C:D5:B2:03:8B:0A:74:BB:A5:EA:11:3B:F3:E2:75:B2:B0:BF:9D:FC\r\n"
	"a=ice-ufrag:5f4c1b7e\r\n"
	"a=ice-pwd:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d\r\n"
	"a=ice-options:trickle\r\n"
	"a=setup:actpass\r\n"
	"a=inactive\r\n"
	"a=end-of-candidates\r\n"
	"a=group:BUNDLE 0 1\r\n"
	"m=video 0 UDP/TLS/RTP/SAVPF 120\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=mid:0\r\n"
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=sendrecv\r\n"
	"a=candidate:0 1 UDP 2122187007 fd00:0:0:1::17 60000 typ host\r\n"
	"a=ice-pwd:ffeeddccbbaa99887766554433221100\r\n"
	"a=mid:1\r\n"
	"a=setup:passive\r\n"
	"a=sctp-port:5001\r\n";

static const struct sample {
	const char *name, *sdp;
	uint64_t session_id, session_version;
	size_t nmedia, nbundle;
	int dc;				/* pp_sdp_find_datachannel() */
	enum pp_sdp_dc format;
	const char *mid, *ufrag, *pwd;
	int trickle, eoc;
	enum pp_sdp_setup setup;
	uint8_t fp_first, fp_last;	/* sha-256 bytes 0 and 31 */
	uint16_t sctp_port, streams;
	uint64_t max_msg;
	size_t ncand;
} samples[] = {
	{ "aiortc offer", aiortc_offer, 4004567733u, 4004567733u, 2, 2, 1,
	  PP_SDP_DC_LEGACY, "1", "3qCu", "MrkbkNxn906AORN0u9w6NW", 0, 1,
	  PP_SDP_SETUP_ACTPASS, 0xdc, 0xed, 5000, 65535, 65536, 2 },
	{ "aiortc answer", aiortc_answer, 4004568333u, 4004568333u, 1, 1, 0,
	  PP_SDP_DC_CURRENT, "0", "IKnM", "2B2hoVinfz6RJGskcyK2E6", 0, 1,
	  PP_SDP_SETUP_ACTIVE, 0x80, 0x56, 5000, 0, 65536, 2 },
	{ "chromium offer", chromium_offer, 4215775240449105457u, 2, 1, 1, 0,
	  PP_SDP_DC_CURRENT, "0", "Hc7t", "wPkQ2Hb7ItKAu1VAt3HlXc0P", 1, 0,
	  PP_SDP_SETUP_ACTPASS, 0x0c, 0x53, 5000, 0, 262144, 5 },
	{ "chromium audio offer", chromium_audio_offer, 7602946310985717712u,
	  2, 2, 2, 1, PP_SDP_DC_CURRENT, "1", "9xQe",
	  "Kp4vXb2TqLmN8sRw0YzA1cDf", 1, 0, PP_SDP_SETUP_ACTPASS, 0x4d, 0xbc,
	  5000, 0, 262144, 2 },
	{ "chromium 156 offer", chromium156_offer, 4994572132683788535u, 2, 2,
	  2, 1, PP_SDP_DC_CURRENT, "1", "5a9W", "liUPd77SItcRMM9dR8l0FkDb", 1,
	  0, PP_SDP_SETUP_ACTPASS, 0xb1, 0xc3, 5000, 0, 262144, 2 },
	{ "legacy offer", legacy_offer, 1733169920468712370u, 2, 1, 1, 0,
	  PP_SDP_DC_LEGACY, "data", "a1b2c3d4",
	  "0123456789abcdef0123456789abcdef", 0, 0, PP_SDP_SETUP_ACTPASS,
	  0x0c, 0x53, 5000, 1024, 1073741823, 3 },
	{ "session-level offer", session_offer, 6044217452327404396u, 0, 2, 2,
	  1, PP_SDP_DC_CURRENT, "1", "5f4c1b7e",
	  "ffeeddccbbaa99887766554433221100", 1, 1, PP_SDP_SETUP_PASSIVE,
	  0x4d, 0xbc, 5001, 0, 65536, 1 },
};

static void
test_samples(void **state)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];
		const struct pp_sdp_media *m;
		const uint8_t *fp;
		struct pp_sdp sdp;
		char err[ERRLEN];
		int dc;

		print_message("sample: %s\n", s->name);
		assert_int_equal(pp_sdp_parse(s->sdp, strlen(s->sdp), &sdp, err,
		    sizeof(err)), 0);
		assert_true(sdp.session_id == s->session_id);
		assert_true(sdp.session_version == s->session_version);
		assert_int_equal(sdp.nmedia, s->nmedia);
		assert_true(sdp.has_bundle);
		assert_int_equal(sdp.nbundle, s->nbundle);
		dc = pp_sdp_find_datachannel(&sdp, err, sizeof(err));
		assert_int_equal(dc, s->dc);
		m = &sdp.media[dc];
		assert_int_equal(m->kind, PP_SDP_APPLICATION);
		assert_int_equal(m->dc, s->format);
		assert_string_equal(m->mid, s->mid);
		assert_string_equal(m->t.ice_ufrag, s->ufrag);
		assert_string_equal(m->t.ice_pwd, s->pwd);
		assert_int_equal(m->t.ice_trickle, s->trickle);
		assert_int_equal(m->end_of_candidates, s->eoc);
		assert_int_equal(m->t.setup, s->setup);
		assert_non_null(fp = pp_sdp_sha256(m));
		assert_int_equal(fp[0], s->fp_first);
		assert_int_equal(fp[31], s->fp_last);
		assert_int_equal(m->sctp_port, s->sctp_port);
		assert_int_equal(m->sctp_streams, s->streams);
		assert_true(m->max_message_size == s->max_msg);
		assert_int_equal(m->ncandidates, s->ncand);
		pp_sdp_fini(&sdp);
	}
}

/* Fields of the non-data-channel m-lines and of session-level inheritance. */
static void
test_sample_details(void **state)
{
	struct pp_sdp sdp;
	char err[ERRLEN];
	const struct pp_sdp_media *a, *v, *d;

	assert_int_equal(pp_sdp_parse(aiortc_offer, strlen(aiortc_offer), &sdp,
	    err, sizeof(err)), 0);
	a = &sdp.media[0];
	assert_int_equal(a->kind, PP_SDP_AUDIO);
	assert_string_equal(a->media, "audio");
	assert_int_equal(a->port, 32987);
	assert_string_equal(a->proto, "UDP/TLS/RTP/SAVPF");
	assert_string_equal(a->fmt, "96 0 8");
	assert_int_equal(a->direction, PP_SDP_RECVONLY);
	assert_string_equal(a->rtpmap, "96 opus/48000/2");
	assert_string_equal(a->t.ice_ufrag, "QiC2");
	assert_string_equal(sdp.bundle[0], "0");
	assert_string_equal(sdp.bundle[1], "1");
	assert_int_equal(sdp.media[1].direction, PP_SDP_SENDRECV);
	assert_int_equal(sdp.ice_lite, 0);
	pp_sdp_fini(&sdp);

	assert_int_equal(pp_sdp_parse(session_offer, strlen(session_offer),
	    &sdp, err, sizeof(err)), 0);
	v = &sdp.media[0];
	d = &sdp.media[1];
	/* Session values flow down; the media level wins where it has one. */
	assert_int_equal(v->port, 0);
	assert_int_equal(v->kind, PP_SDP_VIDEO);
	assert_int_equal(v->direction, PP_SDP_INACTIVE);
	assert_string_equal(v->t.ice_pwd, "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d");
	assert_int_equal(v->t.setup, PP_SDP_SETUP_ACTPASS);
	assert_int_equal(v->t.nfingerprints, 2);
	assert_int_equal(v->end_of_candidates, 1);
	assert_int_equal(v->dc, PP_SDP_DC_NONE);
	assert_int_equal(v->sctp_port, 0);
	assert_int_equal(d->direction, PP_SDP_SENDRECV);
	assert_string_equal(d->t.ice_ufrag, "5f4c1b7e");
	assert_string_equal(sdp.session.ice_pwd,
	    "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d");
	assert_string_equal(d->t.fingerprints[1].hash, "sha-1");
	assert_int_equal(d->t.fingerprints[1].len, 20);
	assert_int_equal(d->t.fingerprints[1].value[19], 0xfc);
	pp_sdp_fini(&sdp);
}

/* LF-only and CRLF parse to the same thing; trailing blank lines are fine. */
static void
test_line_endings(void **state)
{
	size_t n = strlen(chromium_offer);
	char *lf = malloc(n + 3), *o;
	struct pp_sdp a, b;
	char err[ERRLEN];

	assert_non_null(lf);
	o = lf;
	for (size_t i = 0; i < n; i++)
		if (chromium_offer[i] != '\r')
			*o++ = chromium_offer[i];
	*o++ = '\n';
	*o = '\0';
	assert_int_equal(pp_sdp_parse(chromium_offer, n, &a, err, sizeof(err)),
	    0);
	assert_int_equal(pp_sdp_parse(lf, strlen(lf), &b, err, sizeof(err)), 0);
	assert_int_equal(a.nmedia, b.nmedia);
	assert_memory_equal(&a.media[0].t, &b.media[0].t,
	    sizeof(a.media[0].t));
	assert_int_equal(a.media[0].ncandidates, b.media[0].ncandidates);
	for (size_t i = 0; i < a.media[0].ncandidates; i++)
		assert_memory_equal(&a.media[0].candidates[i],
		    &b.media[0].candidates[i], sizeof(a.media[0].candidates[i]));
	pp_sdp_fini(&a);
	pp_sdp_fini(&b);
	/* No final line ending at all. */
	lf[strlen(lf) - 2] = '\0';
	assert_int_equal(pp_sdp_parse(lf, strlen(lf), &a, err, sizeof(err)), 0);
	assert_true(a.media[0].max_message_size == 262144);
	pp_sdp_fini(&a);
	free(lf);
}

static const struct pp_sdp_candidate *
candidate(const struct pp_sdp *sdp, size_t m, size_t i)
{
	assert_true(m < sdp->nmedia && i < sdp->media[m].ncandidates);
	return &sdp->media[m].candidates[i];
}

/* a=candidate lines of the samples, as parsed in context. */
static void
test_sample_candidates(void **state)
{
	const struct pp_sdp_candidate *c;
	struct pp_sdp sdp;
	char err[ERRLEN];

	assert_int_equal(pp_sdp_parse(chromium_offer, strlen(chromium_offer),
	    &sdp, err, sizeof(err)), 0);
	c = candidate(&sdp, 0, 1);
	assert_int_equal(c->addr_kind, PP_SDP_ADDR_IP6);
	assert_string_equal(c->address, "2001:db8:85a3::8a2e:370:7334");
	c = candidate(&sdp, 0, 2);
	assert_int_equal(c->transport, PP_SDP_TCP);
	assert_int_equal(c->tcptype, PP_SDP_TCPTYPE_ACTIVE);
	assert_int_equal(c->port, 9);
	c = candidate(&sdp, 0, 4);
	assert_int_equal(c->type, PP_SDP_RELAY);
	assert_string_equal(c->raddr, "203.0.113.7");
	assert_int_equal(c->rport, 50624);
	assert_string_equal(c->raw, "candidate:2807129381 1 udp 41885439 "
	    "198.51.100.20 61523 typ relay raddr 203.0.113.7 rport 50624 "
	    "generation 0 network-id 1 network-cost 10");
	pp_sdp_fini(&sdp);

	assert_int_equal(pp_sdp_parse(chromium_audio_offer,
	    strlen(chromium_audio_offer), &sdp, err, sizeof(err)), 0);
	c = candidate(&sdp, 1, 0);
	assert_int_equal(c->addr_kind, PP_SDP_ADDR_FQDN);
	assert_string_equal(c->address,
	    "6a1f3a8e-7b2c-4d5e-9f01-23456789abcd.local");
	c = candidate(&sdp, 1, 1);
	assert_int_equal(c->type, PP_SDP_SRFLX);
	assert_string_equal(c->raddr, "0.0.0.0");
	assert_int_equal(c->rport, 0);
	pp_sdp_fini(&sdp);
}

#define CBAD(in_, err_) { .in = in_, .rc = PP_EINVAL, .err = err_ }

static const struct cand_case {
	const char *in;
	int rc;
	const char *err;
	/* when rc == 0 */
	const char *foundation;
	unsigned component;
	enum pp_sdp_transport transport;
	uint32_t priority;
	enum pp_sdp_addr addr_kind;
	const char *address;
	uint16_t port;
	enum pp_sdp_cand_type type;
	const char *raddr;
	uint16_t rport;
	enum pp_sdp_tcptype tcptype;
	const char *raw;		/* NULL: the same as in */
	const char *ufrag;		/* NULL: "" */
	enum pp_sdp_addr raddr_kind;	/* when raddr */
} cand_cases[] = {
	{ "candidate:3885250869 1 udp 2122260223 192.168.1.23 50624 typ host generation 0 network-id 1",
	  0, NULL, "3885250869", 1, PP_SDP_UDP, 2122260223u, PP_SDP_ADDR_IP4,
	  "192.168.1.23", 50624, PP_SDP_HOST, NULL, 0, PP_SDP_TCPTYPE_NONE,
	  "candidate:3885250869 1 udp 2122260223 192.168.1.23 50624 typ host generation 0 network-id 1",
	  NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:d0bcf3d9c29a2bc887618212a1623bfa 1 udp 2130706431 fd00::2 32974 typ host",
	  0, NULL, "d0bcf3d9c29a2bc887618212a1623bfa", 1, PP_SDP_UDP,
	  2130706431u, PP_SDP_ADDR_IP6, "fd00::2", 32974, PP_SDP_HOST, NULL,
	  0, PP_SDP_TCPTYPE_NONE, NULL, NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:1510613869 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0",
	  0, NULL, "1510613869", 1, PP_SDP_TCP, 1518280447u, PP_SDP_ADDR_IP4,
	  "192.168.1.23", 9, PP_SDP_HOST, NULL, 0, PP_SDP_TCPTYPE_ACTIVE, NULL,
	  NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:3 1 TCP 2105458943 2001:db8::5 49204 typ host tcptype passive",
	  0, NULL, "3", 1, PP_SDP_TCP, 2105458943u, PP_SDP_ADDR_IP6,
	  "2001:db8::5", 49204, PP_SDP_HOST, NULL, 0, PP_SDP_TCPTYPE_PASSIVE,
	  NULL, NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:4 1 tcp 1 10.0.0.1 5000 typ srflx raddr 10.0.0.2 rport 5001 tcptype so",
	  0, NULL, "4", 1, PP_SDP_TCP, 1, PP_SDP_ADDR_IP4, "10.0.0.1", 5000,
	  PP_SDP_SRFLX, "10.0.0.2", 5001, PP_SDP_TCPTYPE_SO, NULL,
	  NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:2807129381 2 udp 41885439 198.51.100.20 61523 typ relay raddr 203.0.113.7 rport 50624",
	  0, NULL, "2807129381", 2, PP_SDP_UDP, 41885439u, PP_SDP_ADDR_IP4,
	  "198.51.100.20", 61523, PP_SDP_RELAY, "203.0.113.7", 50624,
	  PP_SDP_TCPTYPE_NONE, NULL, NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:1410398476 1 udp 2113937151 6a1f3a8e-7b2c-4d5e-9f01-23456789abcd.local 54400 typ host generation 0 network-cost 999",
	  0, NULL, "1410398476", 1, PP_SDP_UDP, 2113937151u, PP_SDP_ADDR_FQDN,
	  "6a1f3a8e-7b2c-4d5e-9f01-23456789abcd.local", 54400, PP_SDP_HOST,
	  NULL, 0, PP_SDP_TCPTYPE_NONE, NULL, NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:9 1 udp 1862270975 10.1.1.1 1234 typ prflx raddr ::1 rport 1",
	  0, NULL, "9", 1, PP_SDP_UDP, 1862270975u, PP_SDP_ADDR_IP4,
	  "10.1.1.1", 1234, PP_SDP_PRFLX, "::1", 1, PP_SDP_TCPTYPE_NONE, NULL,
	  NULL, PP_SDP_ADDR_IP6 },
	{ "candidate:9 1 udp 1862270975 10.1.1.1 1234 typ srflx raddr stun.example rport 1",
	  0, NULL, "9", 1, PP_SDP_UDP, 1862270975u, PP_SDP_ADDR_IP4,
	  "10.1.1.1", 1234, PP_SDP_SRFLX, "stun.example", 1,
	  PP_SDP_TCPTYPE_NONE, NULL, NULL, PP_SDP_ADDR_FQDN },
	/* Chromium's trickled form: the ufrag extension names the generation */
	{ "candidate:842163049 1 udp 1677729535 203.0.113.7 50123 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag EsAw network-id 1 network-cost 10",
	  0, NULL, "842163049", 1, PP_SDP_UDP, 1677729535u, PP_SDP_ADDR_IP4,
	  "203.0.113.7", 50123, PP_SDP_SRFLX, "0.0.0.0", 0,
	  PP_SDP_TCPTYPE_NONE, NULL, "EsAw", PP_SDP_ADDR_IP4 },
	/* an IPv6 address is kept as written */
	{ "candidate:3 1 TCP 1518280447 2001:DB8::1 9 typ host tcptype active",
	  0, NULL, "3", 1, PP_SDP_TCP, 1518280447u, PP_SDP_ADDR_IP6,
	  "2001:DB8::1", 9, PP_SDP_HOST, NULL, 0, PP_SDP_TCPTYPE_ACTIVE, NULL,
	  NULL, PP_SDP_ADDR_IP4 },
	/* unknown transport and type are kept for the caller to skip */
	{ "candidate:a+/Z 1 sctp 1 10.1.1.1 1 typ magic",
	  0, NULL, "a+/Z", 1, PP_SDP_TRANSPORT_OTHER, 1, PP_SDP_ADDR_IP4,
	  "10.1.1.1", 1, PP_SDP_CAND_OTHER, NULL, 0, PP_SDP_TCPTYPE_NONE,
	  NULL, NULL, PP_SDP_ADDR_IP4 },
	/* "a=" prefix (libnice), extra blanks and keyword case normalised */
	{ "a=candidate:1  1\tudp 5 10.0.0.1 7 TYP HOST  ",
	  0, NULL, "1", 1, PP_SDP_UDP, 5, PP_SDP_ADDR_IP4, "10.0.0.1", 7,
	  PP_SDP_HOST, NULL, 0, PP_SDP_TCPTYPE_NONE,
	  "candidate:1 1 udp 5 10.0.0.1 7 typ host",
	  NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:8 1 TCP 5 10.0.0.1 9 Typ Relay RADDR 10.0.0.2 RPORT 1 TCPTYPE Passive UFRAG AbCd Network-Cost 10",
	  0, NULL, "8", 1, PP_SDP_TCP, 5, PP_SDP_ADDR_IP4, "10.0.0.1", 9,
	  PP_SDP_RELAY, "10.0.0.2", 1, PP_SDP_TCPTYPE_PASSIVE,
	  "candidate:8 1 TCP 5 10.0.0.1 9 typ relay raddr 10.0.0.2 rport 1 tcptype passive ufrag AbCd Network-Cost 10",
	  "AbCd", PP_SDP_ADDR_IP4 },
	/* the SDP line form: "a=" and a CRLF or LF */
	{ "a=candidate:abc+/ 1 udp 1 10.0.0.1 9 typ host\r\n",
	  0, NULL, "abc+/", 1, PP_SDP_UDP, 1, PP_SDP_ADDR_IP4, "10.0.0.1", 9,
	  PP_SDP_HOST, NULL, 0, PP_SDP_TCPTYPE_NONE,
	  "candidate:abc+/ 1 udp 1 10.0.0.1 9 typ host",
	  NULL, PP_SDP_ADDR_IP4 },
	{ "candidate:1 1 udp 1 10.0.0.1 9 typ host\n",
	  0, NULL, "1", 1, PP_SDP_UDP, 1, PP_SDP_ADDR_IP4, "10.0.0.1", 9,
	  PP_SDP_HOST, NULL, 0, PP_SDP_TCPTYPE_NONE,
	  "candidate:1 1 udp 1 10.0.0.1 9 typ host",
	  NULL, PP_SDP_ADDR_IP4 },
	CBAD("",
	    "candidate: must start with \"candidate:\""),
	CBAD("1 1 udp 5 10.0.0.1 7 typ host",
	    "candidate: must start with \"candidate:\""),
	CBAD(" candidate:1 1 udp 5 10.0.0.1 7 typ host",
	    "candidate: must start with \"candidate:\""),
	CBAD("candidate:",
	    "candidate: expected <foundation> <component> <transport> <priority> <address> <port> typ <type>"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ",
	    "candidate: expected <foundation> <component> <transport> <priority> <address> <port> typ <type>"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 type host",
	    "candidate: expected <foundation> <component> <transport> <priority> <address> <port> typ <type>"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 70000 typ host",
	    "candidate: port must be 0-65535"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 -1 typ host",
	    "candidate: port must be 0-65535"),
	CBAD("candidate:1 0 udp 5 10.0.0.1 7 typ host",
	    "candidate: component id must be 1-256"),
	CBAD("candidate:1 257 udp 5 10.0.0.1 7 typ host",
	    "candidate: component id must be 1-256"),
	CBAD("candidate:1 1 udp 4294967296 10.0.0.1 7 typ host",
	    "candidate: priority must be 0-4294967295"),
	CBAD("candidate:1 1 udp -1 10.0.0.1 7 typ host",
	    "candidate: priority must be 0-4294967295"),
	CBAD("candidate:1-2 1 udp 5 10.0.0.1 7 typ host",
	    "candidate: foundation must be 1-32 characters from [A-Za-z0-9+/]"),
	CBAD("candidate:123456789012345678901234567890123 1 udp 5 10.0.0.1 7 typ host",
	    "candidate: foundation must be 1-32 characters from [A-Za-z0-9+/]"),
	CBAD("candidate:f\xc3\xa9 1 udp 5 10.0.0.1 7 typ host",
	    "candidate: foundation must be 1-32 characters from [A-Za-z0-9+/]"),
	CBAD("candidate:1 1 udp 5 10.0.0.256 7 typ host",
	    "candidate: connection address is neither an IP address nor a host name"),
	CBAD("candidate:1 1 udp 5 fe80::1%eth0 7 typ host",
	    "candidate: connection address is neither an IP address nor a host name"),
	CBAD("candidate:1 1 udp 5 -bad-.local 7 typ host",
	    "candidate: connection address is neither an IP address nor a host name"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host raddr",
	    "candidate: extension attribute without a value"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ srflx raddr x_y rport 1",
	    "candidate: raddr is neither an IP address nor a host name"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ srflx raddr 1.2.3.4 rport 99999",
	    "candidate: rport must be 0-65535"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ srflx raddr 1.2.3.4 raddr 1.2.3.4",
	    "candidate: more than one raddr"),
	CBAD("candidate:1 1 tcp 5 10.0.0.1 7 typ host tcptype both",
	    "candidate: tcptype must be active, passive or so"),
	CBAD("candidate:1 1 ud(p 5 10.0.0.1 7 typ host",
	    "candidate: transport is not a token"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host\r\na=ice-lite",
	    "candidate: control character"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host\r",
	    "candidate: control character"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host\r\n\r\n",
	    "candidate: control character"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host typ relay",
	    "candidate: more than one typ"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host ufrag a",
	    "candidate: ufrag must be 4-256 characters from [A-Za-z0-9+/]"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host ufrag ab:d",
	    "candidate: ufrag must be 4-256 characters from [A-Za-z0-9+/]"),
	CBAD("candidate:1 1 udp 5 10.0.0.1 7 typ host ufrag abcd ufrag abcd",
	    "candidate: more than one ufrag"),
};

static void
test_candidates(void **state)
{
	for (size_t i = 0; i < sizeof(cand_cases) / sizeof(cand_cases[0]); i++) {
		const struct cand_case *t = &cand_cases[i];
		struct pp_sdp_candidate c;
		char err[ERRLEN] = "";
		int rc;

		print_message("candidate case %zu\n", i);
		rc = pp_sdp_parse_candidate(t->in, strlen(t->in), &c, err,
		    sizeof(err));
		assert_int_equal(rc, t->rc);
		if (rc < 0) {
			assert_string_equal(err, t->err);
			continue;
		}
		assert_string_equal(c.foundation, t->foundation);
		assert_int_equal(c.component, t->component);
		assert_int_equal(c.transport, t->transport);
		assert_true(c.priority == t->priority);
		assert_int_equal(c.addr_kind, t->addr_kind);
		assert_string_equal(c.address, t->address);
		assert_int_equal(c.port, t->port);
		assert_int_equal(c.type, t->type);
		assert_int_equal(c.has_raddr, t->raddr != NULL);
		assert_int_equal(c.has_rport, t->raddr != NULL);
		if (t->raddr != NULL) {
			assert_string_equal(c.raddr, t->raddr);
			assert_int_equal(c.raddr_kind, t->raddr_kind);
			assert_int_equal(c.rport, t->rport);
		}
		assert_int_equal(c.tcptype, t->tcptype);
		assert_string_equal(c.raw, t->raw ? t->raw : t->in);
		assert_string_equal(c.ufrag, t->ufrag ? t->ufrag : "");
	}
}

static void
test_candidate_too_long(void **state)
{
	char in[PP_SDP_LINE_MAX + 2], err[ERRLEN];
	struct pp_sdp_candidate c;
	int n;

	n = snprintf(in, sizeof(in), "candidate:1 1 udp 5 10.0.0.1 7 typ host x ");
	memset(in + n, 'y', 520);
	in[n + 520] = '\0';
	assert_int_equal(pp_sdp_parse_candidate(in, strlen(in), &c, err,
	    sizeof(err)), PP_ETOOBIG);
	assert_string_equal(err, "candidate: longer than 512 bytes");
	memset(in, 'y', sizeof(in) - 1);
	assert_int_equal(pp_sdp_parse_candidate(in, sizeof(in) - 1, &c, err,
	    sizeof(err)), PP_ETOOBIG);
	assert_string_equal(err, "candidate: longer than 1024 bytes");
}

/* The ice-char checks behind a=ice-ufrag, a=ice-pwd and the ufrag extension. */
static void
test_ice_credentials(void **state)
{
	static const struct {
		const char *s;
		size_t n;	/* 0: strlen */
		int ufrag, pwd;
	} cases[] = {
		{ "abcd", 0, 1, 0 },
		{ "abc", 0, 0, 0 },
		{ "ab:d", 0, 0, 0 },
		{ "ab d", 0, 0, 0 },
		{ "", 0, 0, 0 },
		{ "abcd!", 4, 1, 0 },	/* only n bytes are looked at */
		{ "0123456789abcdefghij+/", 0, 1, 1 },
		{ "0123456789abcdefghij+", 0, 1, 0 },
		{ "0123456789abcdefghij+\xc3\xa9", 0, 0, 0 },
	};
	char big[PP_SDP_UFRAG_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].n ? cases[i].n : strlen(cases[i].s);

		print_message("credential case %zu\n", i);
		assert_int_equal(!!pp_sdp_ice_ufrag_valid(cases[i].s, n),
		    cases[i].ufrag);
		assert_int_equal(!!pp_sdp_ice_pwd_valid(cases[i].s, n),
		    cases[i].pwd);
	}
	memset(big, 'A', sizeof(big));
	assert_true(pp_sdp_ice_ufrag_valid(big, PP_SDP_UFRAG_MAX));
	assert_true(pp_sdp_ice_pwd_valid(big, PP_SDP_PWD_MAX));
	assert_false(pp_sdp_ice_ufrag_valid(big, PP_SDP_UFRAG_MAX + 1));
	assert_false(pp_sdp_ice_pwd_valid(big, PP_SDP_PWD_MAX + 1));
}

/* A description that is valid up to line 4; each case appends to it. */
#define HDR "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
#define DCM "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"

static const struct bad_case {
	const char *sdp;
	int rc;
	const char *err;
} bad_cases[] = {
	{ "", PP_EINVAL, "sdp: empty description" },
	{ "\r\n\r\n", PP_EINVAL, "sdp: empty description" },
	{ "o=- 1 2 IN IP4 0.0.0.0\r\n", PP_EINVAL,
	  "sdp line 1: expected v=0 first" },
	{ "v=1\r\n", PP_EINVAL, "sdp line 1: expected v=0 first" },
	{ "v=0\r\ns=-\r\nt=0 0\r\n", PP_EINVAL, "sdp: missing o= line" },
	{ HDR "x\r\n", PP_EINVAL, "sdp line 5: expected <type>=<value>" },
	{ HDR "A=x\r\n", PP_EINVAL, "sdp line 5: expected <type>=<value>" },
	{ HDR "v=0\r\n", PP_EINVAL, "sdp line 5: more than one v= line" },
	{ HDR "o=- 1 2 IN IP4 127.0.0.1\r\n", PP_EINVAL,
	  "sdp line 5: more than one o= line" },
	{ "v=0\r\no=- abc 2 IN IP4 0.0.0.0\r\n", PP_EINVAL,
	  "sdp line 2: o=: session id and version must be decimal 64-bit numbers" },
	{ "v=0\r\no=- 18446744073709551616 2 IN IP4 0.0.0.0\r\n", PP_EINVAL,
	  "sdp line 2: o=: session id and version must be decimal 64-bit numbers" },
	{ "v=0\r\no=- 1 2 IN IP4\r\n", PP_EINVAL,
	  "sdp line 2: o=: expected <username> <sess-id> <sess-version> <nettype> <addrtype> <address>" },
	{ HDR "s=a\rb\r\n", PP_EINVAL,
	  "sdp line 5: carriage return not followed by line feed" },
	{ HDR "s=a\x01\r\n", PP_EINVAL, "sdp line 5: control character 0x01" },
	{ HDR "m=application 70000 UDP/DTLS/SCTP webrtc-datachannel\r\n",
	  PP_EINVAL, "sdp line 5: m=: port must be 0-65535" },
	{ HDR "m=application 9/x UDP/DTLS/SCTP webrtc-datachannel\r\n",
	  PP_EINVAL, "sdp line 5: m=: port must be 0-65535" },
	{ HDR "m=application 9 UDP/DTLS/SCTP\r\n", PP_EINVAL,
	  "sdp line 5: m=: expected <media> <port> <proto> <format> ..." },
	{ HDR "m=application 9 UDP/DTLS/SC:TP webrtc-datachannel\r\n",
	  PP_EINVAL, "sdp line 5: m=: proto is not 1-32 token characters and '/'" },
	{ HDR "m=appli(cation 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
	  PP_EINVAL, "sdp line 5: m=: media is not a token of 1-32 characters" },
	{ HDR "m=audio 9 RTP/AVP 0 [8]\r\n", PP_EINVAL,
	  "sdp line 5: m=: format is not a token" },
	{ HDR DCM "a=ice-ufrag:ab\r\n", PP_EINVAL,
	  "sdp line 6: a=ice-ufrag: expected 4-256 characters from [A-Za-z0-9+/]" },
	{ HDR DCM "a=ice-ufrag\r\n", PP_EINVAL,
	  "sdp line 6: a=ice-ufrag: expected 4-256 characters from [A-Za-z0-9+/]" },
	{ HDR DCM "a=ice-pwd:abcdefghijklmnopqrstu-wxyz\r\n", PP_EINVAL,
	  "sdp line 6: a=ice-pwd: expected 22-256 characters from [A-Za-z0-9+/]" },
	{ HDR DCM "a=ice-ufrag:abcd\r\na=ice-ufrag:abcd\r\n", PP_EINVAL,
	  "sdp line 7: a=ice-ufrag: more than one at this level" },
	{ HDR DCM "a=setup:client\r\n", PP_EINVAL,
	  "sdp line 6: a=setup: expected actpass, active, passive or holdconn" },
	{ HDR DCM "a=sctp-port:0\r\n", PP_EINVAL,
	  "sdp line 6: a=sctp-port: expected a port 1-65535" },
	{ HDR DCM "a=max-message-size:-1\r\n", PP_EINVAL,
	  "sdp line 6: a=max-message-size: expected a decimal 64-bit number" },
	{ HDR DCM "a=sctpmap:5000\r\n", PP_EINVAL,
	  "sdp line 6: a=sctpmap: expected <port 1-65535> <protocol> [<streams 1-65535>]" },
	{ HDR DCM "a=sctpmap:5000 webrtc-datachannel 0\r\n", PP_EINVAL,
	  "sdp line 6: a=sctpmap: expected <port 1-65535> <protocol> [<streams 1-65535>]" },
	{ HDR DCM "a=mid:0\r\n" DCM "a=mid:0\r\n", PP_EINVAL,
	  "sdp line 8: a=mid: same as the mid of m-line 1" },
	{ HDR DCM "a=mid:a b\r\n", PP_EINVAL,
	  "sdp line 6: a=mid: expected a token of 1-64 characters" },
	{ HDR DCM "a=mid:\r\n", PP_EINVAL,
	  "sdp line 6: a=mid: expected a token of 1-64 characters" },
	{ HDR DCM "a=:x\r\n", PP_EINVAL, "sdp line 6: a=: missing attribute name" },
	{ HDR DCM "a=sendrecv\r\na=recvonly\r\n", PP_EINVAL,
	  "sdp line 7: a=recvonly: more than one direction attribute at this level" },
	{ HDR "a=group:BUNDLE 0 (1)\r\n", PP_EINVAL,
	  "sdp line 5: a=group: mid is not a token of 1-64 characters" },
	{ HDR DCM "a=candidate:1 1 udp 5 10.0.0.1 99999 typ host\r\n", PP_EINVAL,
	  "sdp line 6: a=candidate: port must be 0-65535" },
	{ HDR DCM "a=candidate:\r\n", PP_EINVAL,
	  "sdp line 6: a=candidate: expected <foundation> <component> <transport> <priority> <address> <port> typ <type>" },
	{ HDR DCM "a=fingerprint:sha-256\r\n", PP_EINVAL,
	  "sdp line 6: a=fingerprint: expected <hash-function> <hex byte pairs>" },
	{ HDR DCM "a=fingerprint:sha-256 " FP1 " extra\r\n", PP_EINVAL,
	  "sdp line 6: a=fingerprint: expected <hash-function> <hex byte pairs>" },
	{ HDR "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	  "o=- 1 2 IN IP4 0.0.0.0\r\n", PP_EINVAL,
	  "sdp line 6: o= inside a media section" },
};

static void
test_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *t = &bad_cases[i];
		struct pp_sdp sdp;
		char err[ERRLEN] = "";

		print_message("malformed case %zu\n", i);
		assert_int_equal(pp_sdp_parse(t->sdp, strlen(t->sdp), &sdp, err,
		    sizeof(err)), t->rc);
		assert_string_equal(err, t->err);
		/* Failure leaves an empty struct that fini accepts. */
		assert_null(sdp.media);
		assert_int_equal(sdp.nmedia, 0);
		pp_sdp_fini(&sdp);
	}
}

static void
test_nul_and_no_err(void **state)
{
	static const char in[] = HDR "s=a\0b\r\n";
	static const char unknown[] = HDR "z=anything\r\nb=AS:30\r\n"
	    "a=x-unknown:1 2 3\r\na=ice-lite\r\n" DCM "a=rtcp-fb:* nack\r\n"
	    "a=ice-lite\r\na=group:BUNDLE 0\r\n";
	struct pp_sdp sdp;
	char err[ERRLEN];

	assert_int_equal(pp_sdp_parse(in, sizeof(in) - 1, &sdp, err,
	    sizeof(err)), PP_EINVAL);
	assert_string_equal(err, "sdp line 5: control character 0x00");
	/* err is optional */
	assert_int_equal(pp_sdp_parse(in, sizeof(in) - 1, &sdp, NULL, 0),
	    PP_EINVAL);
	/* a tiny err buffer is truncated, not overrun */
	assert_int_equal(pp_sdp_parse(in, sizeof(in) - 1, &sdp, err, 6),
	    PP_EINVAL);
	assert_string_equal(err, "sdp l");
	/* unknown lines and attributes are ignored, and so are known ones
	 * at the wrong level */
	assert_int_equal(pp_sdp_parse(unknown, strlen(unknown), &sdp, err,
	    sizeof(err)), 0);
	assert_int_equal(sdp.ice_lite, 1);
	assert_int_equal(sdp.has_bundle, 0);
	pp_sdp_fini(&sdp);
	pp_sdp_fini(&sdp);	/* twice is fine */
}

/* Builds HDR DCM plus one fingerprint line; the hash value from pairs(). */
static char *
pairs(size_t n, const char *hash, char sep)
{
	static char buf[1024];
	size_t len = (size_t)snprintf(buf, sizeof(buf),
	    HDR DCM "a=fingerprint:%s ", hash);

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%02X",
		    i ? (char[2]){ sep, 0 } : "", (unsigned)(i * 7 + 1) & 0xff);
	snprintf(buf + len, sizeof(buf) - len, "\r\n");
	return buf;
}

static void
test_fingerprints(void **state)
{
	static const struct {
		size_t n;
		const char *hash;
		char sep;
		int rc;
		size_t len;
		const char *err;
	} t[] = {
		{ 32, "sha-256", ':', 0, 32, NULL },
		{ 32, "SHA-256", ':', 0, 32, NULL },
		{ 31, "sha-256", ':', PP_EINVAL, 0,
		  "sdp line 6: a=fingerprint: expected 32 hex byte pairs for sha-256" },
		{ 33, "sha-256", ':', PP_EINVAL, 0,
		  "sdp line 6: a=fingerprint: expected 32 hex byte pairs for sha-256" },
		{ 32, "sha-256", '-', PP_EINVAL, 0,
		  "sdp line 6: a=fingerprint: expected 32 hex byte pairs for sha-256" },
		{ 20, "sha-1", ':', 0, 20, NULL },
		{ 32, "sha-1", ':', PP_EINVAL, 0,
		  "sdp line 6: a=fingerprint: expected 20 hex byte pairs for sha-1" },
		{ 48, "sha-384", ':', 0, 48, NULL },
		{ 64, "sha-512", ':', 0, 64, NULL },
		{ 3, "x-future", ':', 0, 3, NULL },
		{ 65, "x-future", ':', PP_EINVAL, 0,
		  "sdp line 6: a=fingerprint: expected hex byte pairs separated by ':'" },
	};
	static const char *const odd[] = {
		"sha-256 " FP1 ":",			/* trailing colon */
		"sha-256 0" FP1,			/* odd digit count */
		"sha-256 GC:D5:B2:03:8B:0A:74:BB:A5:EA:11:3B:F3:E2:75:B2:B0:BF:9D:FC:BD:87:2C:B6:45:CC:81:81:58:4C:E0:53",
		"sha-256 0C::D5:B2:03:8B:0A:74:BB:A5:EA:11:3B:F3:E2:75:B2:B0:BF:9D:FC:BD:87:2C:B6:45:CC:81:81:58:4C:E0",
	};
	struct pp_sdp sdp;
	char err[ERRLEN], in[512];
	const char *s;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		print_message("fingerprint %s x%zu\n", t[i].hash, t[i].n);
		s = pairs(t[i].n, t[i].hash, t[i].sep);
		assert_int_equal(pp_sdp_parse(s, strlen(s), &sdp, err,
		    sizeof(err)), t[i].rc);
		if (t[i].rc < 0) {
			assert_string_equal(err, t[i].err);
			continue;
		}
		assert_int_equal(sdp.media[0].t.nfingerprints, 1);
		assert_int_equal(sdp.media[0].t.fingerprints[0].len, t[i].len);
		assert_int_equal(sdp.media[0].t.fingerprints[0].value[1], 8);
		assert_int_equal(pp_sdp_sha256(&sdp.media[0]) != NULL,
		    t[i].len == 32);
		pp_sdp_fini(&sdp);
	}
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(in, sizeof(in), HDR DCM "a=fingerprint:%s\r\n", odd[i]);
		assert_int_equal(pp_sdp_parse(in, strlen(in), &sdp, err,
		    sizeof(err)), PP_EINVAL);
		assert_string_equal(err, "sdp line 6: a=fingerprint: expected "
		    "32 hex byte pairs for sha-256");
	}
	/* lowercase hex is the same fingerprint */
	snprintf(in, sizeof(in), HDR DCM "a=fingerprint:sha-256 %s\r\n",
	    "0c:d5:b2:03:8b:0a:74:bb:a5:ea:11:3b:f3:e2:75:b2:b0:bf:9d:fc:bd:87:2c:b6:45:cc:81:81:58:4c:e0:53");
	assert_int_equal(pp_sdp_parse(in, strlen(in), &sdp, err, sizeof(err)),
	    0);
	assert_int_equal(pp_sdp_sha256(&sdp.media[0])[2], 0xb2);
	pp_sdp_fini(&sdp);
}

/* A growable text buffer for the cap tests. */
struct text {
	char *p;
	size_t len;
};

static void add(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	t->p = realloc(t->p, t->len + (size_t)n + 1);
	assert_non_null(t->p);
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void
expect(struct text *t, int rc, const char *msg)
{
	struct pp_sdp sdp;
	char err[ERRLEN] = "";

	assert_int_equal(pp_sdp_parse(t->p, t->len, &sdp, err, sizeof(err)),
	    rc);
	if (msg != NULL)
		assert_string_equal(err, msg);
	pp_sdp_fini(&sdp);
	free(t->p);
	t->p = NULL;
	t->len = 0;
}

static void
test_caps(void **state)
{
	struct text t = { NULL, 0 };

	/* total size: exactly the cap parses, one byte more does not */
	add(&t, HDR);
	while (t.len < PP_SDP_MAX_SIZE - 200)
		add(&t, "a=x-pad:%0100d\r\n", 0);
	add(&t, "a=x-pad:%0*d\r\n", (int)(PP_SDP_MAX_SIZE - t.len - 10), 0);
	assert_int_equal(t.len, PP_SDP_MAX_SIZE);
	expect(&t, 0, NULL);
	add(&t, HDR);
	while (t.len < PP_SDP_MAX_SIZE + 1)
		add(&t, "a=x-pad:%0100d\r\n", 0);
	expect(&t, PP_ETOOBIG, NULL);
	add(&t, HDR);
	add(&t, "a=x-pad:%065484d\r\n", 0);
	assert_int_equal(t.len, PP_SDP_MAX_SIZE + 1);
	expect(&t, PP_ETOOBIG, "sdp: 65537 bytes exceeds the 65536-byte cap");

	/* lines */
	add(&t, HDR);
	for (int i = 4; i < PP_SDP_MAX_LINES; i++)
		add(&t, "a=x\r\n");
	expect(&t, 0, NULL);
	add(&t, HDR);
	for (int i = 4; i < PP_SDP_MAX_LINES + 1; i++)
		add(&t, "a=x\n");
	expect(&t, PP_ETOOBIG, "sdp line 1025: more than 1024 lines");

	/* line length */
	add(&t, HDR "s=%01022d\r\n", 0);
	expect(&t, 0, NULL);
	add(&t, HDR "s=%01023d\r\n", 0);
	expect(&t, PP_ETOOBIG, "sdp line 5: longer than 1024 bytes");

	/* m-lines */
	add(&t, HDR);
	for (int i = 0; i < PP_SDP_MAX_MEDIA; i++)
		add(&t, DCM "a=mid:%d\r\n", i);
	expect(&t, 0, NULL);
	add(&t, HDR);
	for (int i = 0; i < PP_SDP_MAX_MEDIA + 1; i++)
		add(&t, DCM "a=mid:%d\r\n", i);
	expect(&t, PP_ETOOBIG, "sdp line 37: m=: more than 16 m-lines");

	/* candidates per m-line */
	add(&t, HDR DCM);
	for (int i = 0; i < PP_SDP_MAX_CANDIDATES; i++)
		add(&t, "a=candidate:%d 1 udp 1 10.0.0.1 %d typ host\r\n", i, i);
	add(&t, DCM "a=candidate:1 1 udp 1 10.0.0.1 1 typ host\r\n");
	expect(&t, 0, NULL);
	add(&t, HDR DCM);
	for (int i = 0; i < PP_SDP_MAX_CANDIDATES + 1; i++)
		add(&t, "a=candidate:%d 1 udp 1 10.0.0.1 %d typ host\r\n", i, i);
	expect(&t, PP_ETOOBIG,
	    "sdp line 70: a=candidate: more than 64 in one m-line");

	/* one candidate's length */
	add(&t, HDR DCM "a=candidate:1 1 udp 1 10.0.0.1 1 typ host x %0500d\r\n",
	    0);
	expect(&t, PP_ETOOBIG, "sdp line 6: a=candidate: longer than 512 bytes");

	/* fingerprints per level */
	add(&t, HDR);
	for (int i = 0; i < PP_SDP_MAX_FINGERPRINTS + 1; i++)
		add(&t, "a=fingerprint:sha-256 " FP1 "\r\n");
	expect(&t, PP_ETOOBIG,
	    "sdp line 9: a=fingerprint: more than 4 at this level");

	/* mids in BUNDLE */
	add(&t, HDR "a=group:BUNDLE");
	for (int i = 0; i < PP_SDP_MAX_MEDIA + 1; i++)
		add(&t, " %d", i);
	add(&t, "\r\n");
	expect(&t, PP_ETOOBIG, "sdp line 5: a=group: more than 16 mids in BUNDLE");

	/* format list, ICE credential and mid lengths */
	add(&t, HDR "m=video 9 UDP/TLS/RTP/SAVPF");
	for (int i = 0; i < 200; i++)
		add(&t, " %d", i);
	add(&t, "\r\n");
	expect(&t, PP_ETOOBIG, "sdp line 5: m=: format list longer than 512 bytes");
	add(&t, HDR DCM "a=ice-ufrag:%0256d\r\n", 0);
	expect(&t, 0, NULL);
	add(&t, HDR DCM "a=ice-ufrag:%0257d\r\n", 0);
	expect(&t, PP_EINVAL, "sdp line 6: a=ice-ufrag: expected 4-256 "
	    "characters from [A-Za-z0-9+/]");
	add(&t, HDR DCM "a=mid:%065d\r\n", 0);
	expect(&t, PP_EINVAL,
	    "sdp line 6: a=mid: expected a token of 1-64 characters");
}

#define UFRAG "pPuf"
#define PWD "pPpwdpPpwdpPpwdpPpwd12"

static struct pp_sdp_params
params(void)
{
	static const char *const cands[] = {
		"candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host",
		"a=candidate:2 1 udp 1694498815 203.0.113.1 40000 typ srflx raddr 192.0.2.1 rport 40000",
	};
	struct pp_sdp_params p = {
		.ice_ufrag = UFRAG, .ice_pwd = PWD, .session_id = 123456789,
		.session_version = 2, .candidates = cands, .ncandidates = 2,
	};

	for (int i = 0; i < PP_SDP_SHA256_LEN; i++)
		p.fingerprint[i] = (uint8_t)(i * 8);
	return p;
}

#define OUR_FP "00:08:10:18:20:28:30:38:40:48:50:58:60:68:70:78:80:88:90:98:A0:A8:B0:B8:C0:C8:D0:D8:E0:E8:F0:F8"
#define OUR_TRANSPORT \
	"a=candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host\r\n" \
	"a=candidate:2 1 udp 1694498815 203.0.113.1 40000 typ srflx raddr 192.0.2.1 rport 40000\r\n" \
	"a=ice-ufrag:" UFRAG "\r\n" \
	"a=ice-pwd:" PWD "\r\n" \
	"a=ice-options:trickle\r\n" \
	"a=fingerprint:sha-256 " OUR_FP "\r\n"

static void
test_offer_golden(void **state)
{
	struct pp_sdp_params p = params();
	char *out, err[ERRLEN];
	size_t len;

	assert_int_equal(pp_sdp_build_offer(&p, &out, &len, err, sizeof(err)),
	    0);
	assert_string_equal(out,
	    "v=0\r\n"
	    "o=- 123456789 2 IN IP4 127.0.0.1\r\n"
	    "s=-\r\n"
	    "t=0 0\r\n"
	    "a=group:BUNDLE 0\r\n"
	    "a=msid-semantic: WMS\r\n"
	    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	    "c=IN IP4 0.0.0.0\r\n"
	    OUR_TRANSPORT
	    "a=setup:actpass\r\n"
	    "a=mid:0\r\n"
	    "a=sctp-port:5000\r\n"
	    "a=max-message-size:262144\r\n");
	assert_int_equal(len, strlen(out));
	free(out);

	p.legacy = 1;
	p.mid = "data";
	p.sctp_port = 5001;
	p.sctp_streams = 65535;
	p.max_message_size = 65536;
	p.ncandidates = 0;
	p.end_of_candidates = 1;
	assert_int_equal(pp_sdp_build_offer(&p, &out, &len, err, sizeof(err)),
	    0);
	assert_string_equal(out,
	    "v=0\r\n"
	    "o=- 123456789 2 IN IP4 127.0.0.1\r\n"
	    "s=-\r\n"
	    "t=0 0\r\n"
	    "a=group:BUNDLE data\r\n"
	    "a=msid-semantic: WMS\r\n"
	    "m=application 9 DTLS/SCTP 5001\r\n"
	    "c=IN IP4 0.0.0.0\r\n"
	    "a=end-of-candidates\r\n"
	    "a=ice-ufrag:" UFRAG "\r\n"
	    "a=ice-pwd:" PWD "\r\n"
	    "a=ice-options:trickle\r\n"
	    "a=fingerprint:sha-256 " OUR_FP "\r\n"
	    "a=setup:actpass\r\n"
	    "a=mid:data\r\n"
	    "a=sctpmap:5001 webrtc-datachannel 65535\r\n"
	    "a=max-message-size:65536\r\n");
	free(out);
}

/* Our offers parse back to what went in; random session ids differ. */
static void
test_offer_round_trip(void **state)
{
	for (int legacy = 0; legacy <= 1; legacy++) {
		struct pp_sdp_params p = params();
		const struct pp_sdp_media *m;
		char *a, *b, err[ERRLEN];
		struct pp_sdp sdp, sdp2;
		size_t len;

		p.legacy = legacy;
		p.session_id = 0;
		assert_int_equal(pp_sdp_build_offer(&p, &a, &len, err,
		    sizeof(err)), 0);
		assert_int_equal(pp_sdp_build_offer(&p, &b, &len, err,
		    sizeof(err)), 0);
		assert_int_equal(pp_sdp_parse(a, strlen(a), &sdp, err,
		    sizeof(err)), 0);
		assert_int_equal(pp_sdp_parse(b, strlen(b), &sdp2, err,
		    sizeof(err)), 0);
		assert_true(sdp.session_id != sdp2.session_id);
		assert_true(sdp.session_id < (UINT64_C(1) << 63));
		assert_int_equal(pp_sdp_find_datachannel(&sdp, err,
		    sizeof(err)), 0);
		m = &sdp.media[0];
		assert_int_equal(m->dc, legacy ? PP_SDP_DC_LEGACY :
		    PP_SDP_DC_CURRENT);
		assert_int_equal(m->sctp_port, 5000);
		assert_int_equal(m->sctp_streams, legacy ? 1024 : 0);
		assert_true(m->max_message_size == 262144);
		assert_int_equal(m->t.setup, PP_SDP_SETUP_ACTPASS);
		assert_int_equal(m->t.ice_trickle, 1);
		assert_string_equal(m->t.ice_ufrag, UFRAG);
		assert_memory_equal(pp_sdp_sha256(m), p.fingerprint, 32);
		assert_int_equal(m->ncandidates, 2);
		assert_string_equal(m->candidates[1].raw, p.candidates[1] + 2);
		pp_sdp_fini(&sdp);
		pp_sdp_fini(&sdp2);
		free(a);
		free(b);
	}
}

static char *
answer_to(const char *offer_text, struct pp_sdp_params *p,
    struct pp_sdp_answer_info *info, struct pp_sdp *answer)
{
	struct pp_sdp offer;
	char *out, err[ERRLEN];
	size_t len;

	assert_int_equal(pp_sdp_parse(offer_text, strlen(offer_text), &offer,
	    err, sizeof(err)), 0);
	assert_int_equal(pp_sdp_build_answer(&offer, p, &out, &len, info, err,
	    sizeof(err)), 0);
	pp_sdp_fini(&offer);
	/* CRLF everywhere, no bare LF */
	for (size_t i = 0; i < len; i++)
		if (out[i] == '\n')
			assert_true(i > 0 && out[i - 1] == '\r');
	assert_int_equal(pp_sdp_parse(out, len, answer, err, sizeof(err)), 0);
	return out;
}

/*
 * An existing peer's offer: audio is bundled with the data channel, so by
 * default it is answered inactive inside the bundle (what aiortc 1.4 needs),
 * and the connection runs over the audio m-line's transport.
 */
static void
test_answer_aiortc(void **state)
{
	struct pp_sdp_params p = params();
	struct pp_sdp_answer_info info;
	const struct pp_sdp_media *a, *d;
	struct pp_sdp ans;
	char *out;

	p.session_id = 0;
	out = answer_to(aiortc_offer, &p, &info, &ans);
	assert_int_equal(info.dc, 1);
	assert_int_equal(info.transport, 0);
	assert_int_equal(ans.nmedia, 2);
	assert_int_equal(ans.nbundle, 2);
	assert_string_equal(ans.bundle[0], "0");
	assert_string_equal(ans.bundle[1], "1");
	a = &ans.media[0];
	assert_int_equal(a->kind, PP_SDP_AUDIO);
	assert_int_equal(a->port, 9);
	assert_string_equal(a->proto, "UDP/TLS/RTP/SAVPF");
	assert_string_equal(a->fmt, "96");
	assert_string_equal(a->rtpmap, "96 opus/48000/2");
	assert_string_equal(a->mid, "0");
	assert_int_equal(a->direction, PP_SDP_INACTIVE);
	assert_int_equal(a->t.setup, PP_SDP_SETUP_ACTIVE);
	assert_string_equal(a->t.ice_ufrag, UFRAG);
	assert_int_equal(a->ncandidates, 2);
	assert_non_null(strstr(out, "a=mid:0\r\na=inactive\r\na=rtcp-mux\r\n"
	    "a=rtpmap:96 opus/48000/2\r\nm=application"));
	d = &ans.media[1];
	assert_int_equal(d->dc, PP_SDP_DC_LEGACY);
	assert_int_equal(d->port, 9);
	assert_string_equal(d->mid, "1");
	assert_int_equal(d->t.setup, PP_SDP_SETUP_ACTIVE);
	assert_int_equal(d->sctp_port, 5000);
	assert_int_equal(d->sctp_streams, 1024);
	assert_int_equal(pp_sdp_find_datachannel(&ans, NULL, 0), 1);
	pp_sdp_fini(&ans);
	free(out);
}

/* The JSEP shape, on request: port 0, same proto and formats, out of the
 * bundle; the data channel keeps its own transport. */
static void
test_answer_reject(void **state)
{
	struct pp_sdp_params p = params();
	struct pp_sdp_answer_info info;
	struct pp_sdp ans;
	char *out;

	p.reject_bundled_media = 1;
	out = answer_to(aiortc_offer, &p, &info, &ans);
	assert_int_equal(info.dc, 1);
	assert_int_equal(info.transport, 1);
	assert_int_equal(ans.nbundle, 1);
	assert_string_equal(ans.bundle[0], "1");
	assert_non_null(strstr(out, "a=group:BUNDLE 1\r\n"));
	assert_non_null(strstr(out,
	    "m=audio 0 UDP/TLS/RTP/SAVPF 96 0 8\r\n"
	    "c=IN IP4 0.0.0.0\r\n"
	    "a=mid:0\r\n"
	    "a=inactive\r\n"
	    "m=application 9 DTLS/SCTP 5000\r\n"));
	assert_int_equal(ans.media[0].port, 0);
	assert_int_equal(ans.media[0].direction, PP_SDP_INACTIVE);
	assert_int_equal(ans.media[1].port, 9);
	pp_sdp_fini(&ans);
	free(out);

	/* Chromium's offer: same transport in every m-line anyway. */
	out = answer_to(chromium_audio_offer, &p, &info, &ans);
	assert_int_equal(info.transport, 1);
	assert_int_equal(ans.media[0].port, 0);
	assert_string_equal(ans.media[0].fmt, "111 63 9 0 8 13 110 126");
	assert_int_equal(ans.media[1].dc, PP_SDP_DC_CURRENT);
	pp_sdp_fini(&ans);
	free(out);
}

/* What is never accepted: port-0, unbundled or unknown media, a second
 * data channel; mids are any token. */
static void
test_answer_rejects_others(void **state)
{
	static const char offer[] =
		HDR
		"a=group:BUNDLE x.1 data-chan video\r\n"
		"m=video 0 UDP/TLS/RTP/SAVPF 96\r\n"
		"a=mid:video\r\n"
		"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
		"a=mid:lonely\r\n"
		"m=text 9 RTP/AVP t140\r\n"
		"a=mid:x.1\r\n"
		"m=application 9 DTLS/SCTP 5000\r\n"
		"a=mid:data-chan\r\n"
		"a=ice-ufrag:abcd\r\n"
		"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
		"a=fingerprint:sha-256 " FP1 "\r\n"
		"a=setup:active\r\n"
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
		"a=mid:second\r\n";
	struct pp_sdp_params p = params();
	struct pp_sdp_answer_info info;
	struct pp_sdp ans;
	char *out;

	out = answer_to(offer, &p, &info, &ans);
	assert_int_equal(info.dc, 3);
	assert_int_equal(info.transport, 3);
	assert_int_equal(ans.nmedia, 5);
	assert_int_equal(ans.nbundle, 1);
	assert_string_equal(ans.bundle[0], "data-chan");
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(ans.media[i].port, i == 3 ? 9 : 0);
	assert_string_equal(ans.media[0].mid, "video");
	assert_string_equal(ans.media[1].mid, "lonely");
	assert_string_equal(ans.media[2].media, "text");
	assert_string_equal(ans.media[2].fmt, "t140");
	assert_string_equal(ans.media[4].proto, "UDP/DTLS/SCTP");
	assert_int_equal(ans.media[3].dc, PP_SDP_DC_LEGACY);
	/* The offer said active, so we are the DTLS server. */
	assert_int_equal(ans.media[3].t.setup, PP_SDP_SETUP_PASSIVE);
	pp_sdp_fini(&ans);
	free(out);
}

/* A current-format offer gets a current-format answer, a legacy one a
 * legacy answer, each with the offer's mid. */
static void
test_answer_formats(void **state)
{
	static const struct {
		const char *offer;
		enum pp_sdp_dc dc;
		const char *mid;
		int bundled;
	} t[] = {
		{ chromium_offer, PP_SDP_DC_CURRENT, "0", 1 },
		{ legacy_offer, PP_SDP_DC_LEGACY, "data", 1 },
		{ HDR DCM "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
		  "a=fingerprint:sha-256 " FP1 "\r\n", PP_SDP_DC_CURRENT, "", 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pp_sdp_params p = params();
		struct pp_sdp ans;
		char *out;

		out = answer_to(t[i].offer, &p, NULL, &ans);
		assert_int_equal(ans.nmedia, 1);
		assert_int_equal(ans.media[0].dc, t[i].dc);
		assert_string_equal(ans.media[0].mid, t[i].mid);
		assert_int_equal(ans.has_bundle, t[i].bundled);
		assert_int_equal(ans.media[0].ncandidates, 2);
		assert_true(ans.session_id == 123456789);
		pp_sdp_fini(&ans);
		free(out);
	}
}

/* Legacy all the way: our legacy offer, answered by us, parsed back. */
static void
test_legacy_round_trip(void **state)
{
	struct pp_sdp_params p = params();
	struct pp_sdp ans;
	char *offer, *out, err[ERRLEN];
	size_t len;

	p.legacy = 1;
	p.sctp_port = 5002;
	assert_int_equal(pp_sdp_build_offer(&p, &offer, &len, err,
	    sizeof(err)), 0);
	p.legacy = 0;		/* ignored by the answer */
	p.sctp_port = 5003;
	out = answer_to(offer, &p, NULL, &ans);
	assert_int_equal(ans.media[0].dc, PP_SDP_DC_LEGACY);
	assert_int_equal(ans.media[0].sctp_port, 5003);
	assert_int_equal(ans.media[0].sctp_streams, 1024);
	assert_int_equal(ans.media[0].t.setup, PP_SDP_SETUP_ACTIVE);
	assert_non_null(strstr(out, "m=application 9 DTLS/SCTP 5003\r\n"));
	assert_non_null(strstr(out, "a=sctpmap:5003 webrtc-datachannel 1024\r\n"));
	pp_sdp_fini(&ans);
	free(out);
	free(offer);
}

static void
test_answer_setup(void **state)
{
	static const struct {
		const char *offered;	/* NULL: no a=setup */
		enum pp_sdp_setup wanted, result;
		int rc;
	} t[] = {
		{ "actpass", PP_SDP_SETUP_NONE, PP_SDP_SETUP_ACTIVE, 0 },
		{ "actpass", PP_SDP_SETUP_PASSIVE, PP_SDP_SETUP_PASSIVE, 0 },
		{ "actpass", PP_SDP_SETUP_ACTIVE, PP_SDP_SETUP_ACTIVE, 0 },
		{ "actpass", PP_SDP_SETUP_ACTPASS, 0, PP_EINVAL },
		{ "active", PP_SDP_SETUP_NONE, PP_SDP_SETUP_PASSIVE, 0 },
		{ "active", PP_SDP_SETUP_ACTIVE, 0, PP_EINVAL },
		{ "passive", PP_SDP_SETUP_NONE, PP_SDP_SETUP_ACTIVE, 0 },
		{ "passive", PP_SDP_SETUP_PASSIVE, 0, PP_EINVAL },
		{ NULL, PP_SDP_SETUP_NONE, PP_SDP_SETUP_PASSIVE, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pp_sdp_params p = params();
		struct pp_sdp offer, ans;
		char in[1024], *out, err[ERRLEN];
		size_t len;

		snprintf(in, sizeof(in), HDR DCM "a=ice-ufrag:abcd\r\n"
		    "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
		    "a=fingerprint:sha-256 " FP1 "\r\n%s%s%s",
		    t[i].offered ? "a=setup:" : "",
		    t[i].offered ? t[i].offered : "",
		    t[i].offered ? "\r\n" : "");
		assert_int_equal(pp_sdp_parse(in, strlen(in), &offer, err,
		    sizeof(err)), 0);
		p.setup = t[i].wanted;
		assert_int_equal(pp_sdp_build_answer(&offer, &p, &out, &len,
		    NULL, err, sizeof(err)), t[i].rc);
		pp_sdp_fini(&offer);
		if (t[i].rc < 0) {
			assert_null(out);
			assert_non_null(strstr(err, "does not allow setup"));
			continue;
		}
		assert_int_equal(pp_sdp_parse(out, len, &ans, err,
		    sizeof(err)), 0);
		assert_int_equal(ans.media[0].t.setup, t[i].result);
		pp_sdp_fini(&ans);
		free(out);
	}
}

static void
test_answer_errors(void **state)
{
	static const struct {
		const char *offer;
		const char *err;
	} t[] = {
		{ HDR "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n",
		  "sdp: no data-channel m-line (UDP/DTLS/SCTP or DTLS/SCTP with a nonzero port)" },
		{ HDR "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n",
		  "sdp: no data-channel m-line (UDP/DTLS/SCTP or DTLS/SCTP with a nonzero port)" },
		{ HDR "m=application 9 TCP/DTLS/SCTP webrtc-datachannel\r\n",
		  "sdp: no data-channel m-line (UDP/DTLS/SCTP or DTLS/SCTP with a nonzero port)" },
		{ HDR DCM "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
		  "sdp m-line 1: no a=ice-ufrag" },
		{ HDR DCM "a=ice-ufrag:abcd\r\n", "sdp m-line 1: no a=ice-pwd" },
		{ HDR DCM "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
		  "a=fingerprint:sha-1 0C:D5:B2:03:8B:0A:74:BB:A5:EA:11:3B:F3:E2:75:B2:B0:BF:9D:FC\r\n",
		  "sdp m-line 1: no sha-256 a=fingerprint" },
		{ HDR "a=setup:holdconn\r\n" DCM "a=ice-ufrag:abcd\r\n"
		  "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
		  "a=fingerprint:sha-256 " FP1 "\r\n",
		  "sdp m-line 1: a=setup:holdconn refuses the DTLS connection" },
		/* the bundle's transport m-line is checked as well */
		{ HDR "a=group:BUNDLE 0 1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
		  DCM "a=mid:1\r\na=ice-ufrag:abcd\r\n"
		  "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
		  "a=fingerprint:sha-256 " FP1 "\r\n",
		  "sdp m-line 1: no a=ice-ufrag" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pp_sdp_params p = params();
		struct pp_sdp offer;
		char *out = (char *)1, err[ERRLEN];
		size_t len;

		print_message("answer error %zu\n", i);
		assert_int_equal(pp_sdp_parse(t[i].offer, strlen(t[i].offer),
		    &offer, err, sizeof(err)), 0);
		assert_int_equal(pp_sdp_build_answer(&offer, &p, &out, &len,
		    NULL, err, sizeof(err)), PP_EINVAL);
		assert_null(out);
		assert_string_equal(err, t[i].err);
		pp_sdp_fini(&offer);
	}
}

/* Whatever the caller passes, nothing can inject a line. */
static void
test_params_errors(void **state)
{
	static const char *const crlf[] = {
		"candidate:1 1 udp 5 10.0.0.1 7 typ host\r\na=ice-lite",
	};
	static const char *const nocand[] = { "1 1 udp 5 10.0.0.1 7 typ host" };
	static const char *const nullcand[] = { NULL };
	static const struct {
		const char *ufrag, *pwd, *mid;
		enum pp_sdp_setup setup;
		const char *const *cands;
		size_t ncands;
		int rc;
		const char *err;
	} t[] = {
		{ "abc", PWD, NULL, 0, NULL, 0, PP_EINVAL,
		  "sdp params: ice_ufrag: expected 4-256 characters from [A-Za-z0-9+/]" },
		{ NULL, PWD, NULL, 0, NULL, 0, PP_EINVAL,
		  "sdp params: ice_ufrag: expected 4-256 characters from [A-Za-z0-9+/]" },
		{ UFRAG, PWD "\r\na=ice-lite", NULL, 0, NULL, 0, PP_EINVAL,
		  "sdp params: ice_pwd: expected 22-256 characters from [A-Za-z0-9+/]" },
		{ UFRAG, "short", NULL, 0, NULL, 0, PP_EINVAL,
		  "sdp params: ice_pwd: expected 22-256 characters from [A-Za-z0-9+/]" },
		{ UFRAG, PWD, "0\r\na=x", 0, NULL, 0, PP_EINVAL,
		  "sdp params: mid: expected a token of 1-64 characters" },
		{ UFRAG, PWD, "", 0, NULL, 0, PP_EINVAL,
		  "sdp params: mid: expected a token of 1-64 characters" },
		{ UFRAG, PWD, NULL, PP_SDP_SETUP_ACTIVE, NULL, 0, PP_EINVAL,
		  "sdp params: setup: an offer must say actpass (RFC 8842)" },
		{ UFRAG, PWD, NULL, 0, crlf, 1, PP_EINVAL,
		  "sdp params: candidate 0: control character" },
		{ UFRAG, PWD, NULL, 0, nocand, 1, PP_EINVAL,
		  "sdp params: candidate 0: must start with \"candidate:\"" },
		{ UFRAG, PWD, NULL, 0, nullcand, 1, PP_EINVAL,
		  "sdp params: candidate 0 is NULL" },
		{ UFRAG, PWD, NULL, 0, NULL, 1, PP_EINVAL,
		  "sdp params: candidates is NULL" },
		{ UFRAG, PWD, NULL, 0, nocand, PP_SDP_MAX_CANDIDATES + 1,
		  PP_ETOOBIG, "sdp params: more than 64 candidates" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pp_sdp_params p = params();
		char *out = (char *)1, err[ERRLEN];
		size_t len;

		print_message("params error %zu\n", i);
		p.ice_ufrag = t[i].ufrag;
		p.ice_pwd = t[i].pwd;
		p.mid = t[i].mid;
		p.setup = t[i].setup;
		p.candidates = t[i].cands;
		p.ncandidates = t[i].ncands;
		assert_int_equal(pp_sdp_build_offer(&p, &out, &len, err,
		    sizeof(err)), t[i].rc);
		assert_null(out);
		assert_string_equal(err, t[i].err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_sample_details),
		cmocka_unit_test(test_line_endings),
		cmocka_unit_test(test_sample_candidates),
		cmocka_unit_test(test_candidates),
		cmocka_unit_test(test_candidate_too_long),
		cmocka_unit_test(test_ice_credentials),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_nul_and_no_err),
		cmocka_unit_test(test_fingerprints),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_offer_golden),
		cmocka_unit_test(test_offer_round_trip),
		cmocka_unit_test(test_answer_aiortc),
		cmocka_unit_test(test_answer_reject),
		cmocka_unit_test(test_answer_rejects_others),
		cmocka_unit_test(test_answer_formats),
		cmocka_unit_test(test_legacy_round_trip),
		cmocka_unit_test(test_answer_setup),
		cmocka_unit_test(test_answer_errors),
		cmocka_unit_test(test_params_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
