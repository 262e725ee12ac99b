/*
 * Fuzzes the SDP parser, the trickle candidate parser, and the answer
 * generator on whatever parses.  Properties checked (abort on violation):
 * every answer we generate parses back, keeps one m-line per offered m-line
 * and accepts the data channel the offer carried; every candidate's
 * normalised text parses back to the same candidate.
 */
#include "sdp/sdp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The normalised text parses back to the same candidate. */
static void
check_candidate(const struct pp_sdp_candidate *c)
{
	struct pp_sdp_candidate again;
	char err[160];

	if (pp_sdp_parse_candidate(c->raw, strlen(c->raw), &again, err,
	    sizeof(err)) != 0 || memcmp(c, &again, sizeof(again)) != 0)
		abort();
}

static void
check_candidates(const struct pp_sdp *sdp)
{
	for (size_t i = 0; i < sdp->nmedia; i++) {
		const struct pp_sdp_media *m = &sdp->media[i];

		for (size_t j = 0; j < m->ncandidates; j++)
			check_candidate(&m->candidates[j]);
	}
}

static void
answer(const struct pp_sdp *offer, int reject)
{
	static const char *const cands[] = {
		"candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host",
		"a=candidate:2 1 tcp 1518280447 2001:db8::1 9 typ host "
		    "tcptype active",
	};
	struct pp_sdp_params p = {
		.ice_ufrag = "fuzz", .ice_pwd = "fuzzfuzzfuzzfuzzfuzzfuzz",
		.session_id = 1, .candidates = cands, .ncandidates = 2,
		.reject_bundled_media = reject,
	};
	struct pp_sdp_answer_info info;
	struct pp_sdp back;
	char err[160], *text;
	size_t len;
	int dc;

	dc = pp_sdp_find_datachannel(offer, err, sizeof(err));
	if (pp_sdp_build_answer(offer, &p, &text, &len, &info, err,
	    sizeof(err)) != 0)
		return;
	if (dc < 0 || info.dc != dc)
		abort();
	if (pp_sdp_parse(text, len, &back, err, sizeof(err)) != 0)
		abort();
	if (back.nmedia != offer->nmedia ||
	    back.media[dc].dc != offer->media[dc].dc ||
	    back.media[dc].port == 0 ||
	    strcmp(back.media[dc].mid, offer->media[dc].mid) != 0 ||
	    pp_sdp_find_datachannel(&back, err, sizeof(err)) != dc)
		abort();
	pp_sdp_fini(&back);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_sdp_candidate c;
	struct pp_sdp sdp;
	char err[160];

	if (pp_sdp_parse((const char *)data, size, &sdp, err,
	    sizeof(err)) == 0) {
		check_candidates(&sdp);
		answer(&sdp, 0);
		answer(&sdp, 1);
	}
	pp_sdp_fini(&sdp);
	if (pp_sdp_parse_candidate((const char *)data, size, &c, err,
	    sizeof(err)) == 0)
		check_candidate(&c);
	return 0;
}
