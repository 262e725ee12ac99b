/*
 * The IPS facade (see ips.h): netfilter + Suricata + eve + canary.
 */
#include "ips/ips.h"

#include "base/error.h"
#include "base/fsutil.h"
#include "base/log.h"
#include "ips/ips_int.h"
#include "ips/netfilter.h"

#include <errno.h>
#include <linux/capability.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "ips"
#define SELFTEST_TIMEOUT_MS 10000
/* IDS: Suricata answers on its command socket a moment before its capture
 * threads run, and AF_PACKET (unlike NFQUEUE) does not hold packets for it:
 * the canary is repeated a few times with a short timeout. */
#define IDS_ATTEMPT_MS 1500
#define IDS_ATTEMPTS 6

struct pp_ips {
	uv_loop_t *loop;
	struct pp_ips_ops ops;
	void *ctx;
	enum pp_ips_mode want, mode;
	enum pp_ips_state state;
	struct pp_nf_config nf;
	int nf_installed;
	int fail_open, no_selftest;
	unsigned selftest_timeout_ms;
	struct pp_suri_config scfg;	/* strings point into the copies below */
	struct pp_suri_service *services;
	char *state_dir, *suricata, *rules_file, *et_dir, *ids_iface;
	char eve_path[PATH_MAX];
	char canary_addr[16];
	struct pp_suri *suri;
	struct pp_eve_reader *eve;
	struct pp__canary *canary;
	int started, freed;
	unsigned attempts;
};

const char *
pp_ips_state_name(enum pp_ips_state st)
{
	switch (st) {
	case PP_IPS_STOPPED: return "stopped";
	case PP_IPS_STARTING: return "starting";
	case PP_IPS_SELFTEST: return "selftest";
	case PP_IPS_READY: return "ready";
	case PP_IPS_DOWN: return "down";
	case PP_IPS_FAILED: return "failed";
	}
	return "?";
}

static void
set_state(struct pp_ips *ips, enum pp_ips_state st, const char *reason)
{
	ips->state = st;
	if (st == PP_IPS_FAILED)
		pp_err(SUB, "IPS failed: %s", reason);
	else
		pp_info(SUB, "IPS %s: %s", pp_ips_state_name(st), reason);
	if (ips->ops.state)
		ips->ops.state(st, reason, ips->ctx);
}

static int run_canary(struct pp_ips *ips);

static void
on_canary(int status, const char *reason, void *ctx)
{
	struct pp_ips *ips = ctx;
	char msg[512];

	if (status != 0 && ips->mode == PP_IPS_IDS &&
	    ++ips->attempts < IDS_ATTEMPTS) {
		pp_debug(SUB, "self-test attempt %u: %s", ips->attempts, reason);
		run_canary(ips);
		return;
	}
	if (status == 0) {
		snprintf(msg, sizeof(msg), "self-test passed: %s", reason);
		set_state(ips, PP_IPS_READY, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "self-test failed: %s%s", reason,
	    ips->fail_open ? " (fail-open: service traffic is NOT inspected "
	    "reliably)" : "; refusing to serve");
	set_state(ips, PP_IPS_FAILED, msg);
}

static int
run_canary(struct pp_ips *ips)
{
	int rc;

	pp__canary_free(ips->canary);
	ips->canary = NULL;
	rc = pp__canary_start(ips->loop, ips->canary_addr, ips->nf.mark,
	    ips->mode == PP_IPS_INLINE, ips->mode == PP_IPS_IDS &&
	    ips->selftest_timeout_ms > IDS_ATTEMPT_MS ? IDS_ATTEMPT_MS :
	    ips->selftest_timeout_ms, on_canary, ips, &ips->canary);
	if (rc != 0) {
		char msg[256];

		snprintf(msg, sizeof(msg), "self-test could not start: %s",
		    pp_strerror(rc));
		set_state(ips, PP_IPS_FAILED, msg);
		return rc;
	}
	if (ips->state != PP_IPS_SELFTEST)
		set_state(ips, PP_IPS_SELFTEST, ips->mode == PP_IPS_INLINE ?
		    "Suricata ready; proving that the inline path drops" :
		    "Suricata ready; proving that alerts arrive (IDS)");
	return 0;
}

static void
on_suri_state(enum pp_suri_state st, const char *reason, void *ctx)
{
	struct pp_ips *ips = ctx;

	if (st != PP_SURI_READY) {
		pp__canary_free(ips->canary);
		ips->canary = NULL;
	}
	switch (st) {
	case PP_SURI_STOPPED:
		set_state(ips, PP_IPS_STOPPED, reason);
		break;
	case PP_SURI_STARTING:
		set_state(ips, PP_IPS_STARTING, reason);
		break;
	case PP_SURI_READY:
		ips->attempts = 0;
		if (ips->no_selftest)
			set_state(ips, PP_IPS_READY, reason);
		else
			run_canary(ips);
		break;
	case PP_SURI_DOWN:
		set_state(ips, PP_IPS_DOWN, reason);
		break;
	case PP_SURI_FAILED:
		set_state(ips, PP_IPS_FAILED, reason);
		break;
	}
}

static void
on_eve(const struct pp_eve_event *ev, void *ctx)
{
	struct pp_ips *ips = ctx;

	if (pp__canary_eve(ips->canary, ev))
		return;
	/* The canary address is ours alone: late events of an earlier
	 * attempt are not attacks either. */
	if (strcmp(ev->dest_ip, ips->canary_addr) == 0 ||
	    strcmp(ev->src_ip, ips->canary_addr) == 0)
		return;
	if (ips->ops.event)
		ips->ops.event(ev, ips->ctx);
}

static void
free_copies(struct pp_ips *ips)
{
	free(ips->services);
	free(ips->state_dir);
	free(ips->suricata);
	free(ips->rules_file);
	free(ips->et_dir);
	free(ips->ids_iface);
}

static char *
dup_opt(const char *s, int *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*oom = 1;
	return d;
}

int
pp_ips_new(uv_loop_t *loop, const struct pp_ips_config *cfg,
    const struct pp_ips_ops *ops, void *ctx, struct pp_ips **out, char *err,
    size_t errlen)
{
	struct pp_ips *ips;
	int oom = 0, rc;

	*out = NULL;
	if (cfg->instance == NULL || cfg->state_dir == NULL ||
	    cfg->rules_file == NULL) {
		snprintf(err, errlen, "IPS: instance, state dir and rules file "
		    "are required");
		return PP_EINVAL;
	}
	if ((ips = calloc(1, sizeof(*ips))) == NULL)
		return -ENOMEM;
	ips->loop = loop;
	if (ops)
		ips->ops = *ops;
	ips->ctx = ctx;
	ips->want = cfg->mode;
	ips->fail_open = cfg->fail_open;
	ips->no_selftest = cfg->no_selftest;
	ips->selftest_timeout_ms = cfg->selftest_timeout_ms ?
	    cfg->selftest_timeout_ms : SELFTEST_TIMEOUT_MS;
	snprintf(ips->nf.instance, sizeof(ips->nf.instance), "%s",
	    cfg->instance);
	ips->nf.mark = cfg->mark ? cfg->mark : PP_IPS_MARK_DEFAULT;
	ips->nf.mask = cfg->mark_mask ? cfg->mark_mask : PP_IPS_MASK_DEFAULT;
	ips->nf.queue_num = cfg->queue_num;
	ips->nf.fail_open = cfg->fail_open;
	if (strlen(cfg->instance) > PP_NF_INSTANCE_MAX ||
	    (rc = pp_nf_validate(&ips->nf, err, errlen)) != 0) {
		if (strlen(cfg->instance) > PP_NF_INSTANCE_MAX)
			snprintf(err, errlen, "instance name '%s': at most %d "
			    "characters", cfg->instance, PP_NF_INSTANCE_MAX);
		free(ips);
		return PP_EINVAL;
	}
	ips->services = calloc(cfg->nservices ? cfg->nservices : 1,
	    sizeof(*ips->services));
	if (ips->services == NULL)
		oom = 1;
	else if (cfg->nservices)
		memcpy(ips->services, cfg->services,
		    cfg->nservices * sizeof(*ips->services));
	for (size_t i = 0; i < cfg->nservices && !oom; i++)
		if (strchr(cfg->services[i].addr, ':'))
			ips->nf.ipv6 = 1;
	ips->state_dir = dup_opt(cfg->state_dir, &oom);
	ips->suricata = dup_opt(cfg->suricata, &oom);
	ips->rules_file = dup_opt(cfg->rules_file, &oom);
	ips->et_dir = dup_opt(cfg->et_dir, &oom);
	ips->ids_iface = dup_opt(cfg->ids_iface, &oom);
	if (oom) {
		free_copies(ips);
		free(ips);
		return -ENOMEM;
	}
	if (snprintf(ips->eve_path, sizeof(ips->eve_path), "%s/eve.sock",
	    cfg->state_dir) >= (int)sizeof(ips->eve_path)) {
		snprintf(err, errlen, "state dir '%s': too long", cfg->state_dir);
		free_copies(ips);
		free(ips);
		return PP_EINVAL;
	}
	/* One loopback address per queue number: the canary's packets are
	 * told apart from everyone else's on lo (and by an IDS capture filter). */
	snprintf(ips->canary_addr, sizeof(ips->canary_addr), "127.101.%u.%u",
	    cfg->queue_num >> 8, cfg->queue_num & 0xffu);
	ips->scfg = (struct pp_suri_config){
		.suricata = ips->suricata,
		.state_dir = ips->state_dir,
		.queue_num = cfg->queue_num,
		.iface = ips->ids_iface,
		.fail_open = cfg->fail_open,
		.rules_file = ips->rules_file,
		.et_dir = ips->et_dir,
		.et_drop_priority = cfg->et_drop_priority,
		.eve_socket = ips->eve_path,
		.services = ips->services,
		.nservices = cfg->nservices,
		.ready_timeout_ms = cfg->ready_timeout_ms,
		.restart_min_ms = cfg->restart_min_ms,
		.canary_addr = ips->canary_addr,
	};
	*out = ips;
	return 0;
}

int
pp_ips_start(struct pp_ips *ips, char *err, size_t errlen)
{
	char nferr[512];
	int rc;

	if (ips->started)
		return PP_ECONFLICT;
	if ((rc = pp_mkdir_p(ips->state_dir, 0700)) != 0) {
		snprintf(err, errlen, "state dir %s: %s", ips->state_dir,
		    strerror(-rc));
		return rc;
	}
	if ((rc = pp_eve_reader_new(ips->loop, ips->eve_path, on_eve, ips,
	    &ips->eve)) != 0) {
		snprintf(err, errlen, "eve socket %s: %s", ips->eve_path,
		    pp_strerror(rc));
		return rc;
	}
	ips->mode = ips->want == PP_IPS_IDS ? PP_IPS_IDS : PP_IPS_INLINE;
	if (ips->mode == PP_IPS_INLINE) {
		rc = pp_nf_install(&ips->nf, nferr, sizeof(nferr));
		if (rc == 0) {
			ips->nf_installed = 1;
		} else if (ips->want == PP_IPS_AUTO) {
			pp_warn(SUB, "inline IPS unavailable: %s", nferr);
			ips->mode = PP_IPS_IDS;
		} else {
			snprintf(err, errlen, "inline IPS: %s", nferr);
			goto fail;
		}
	}
	if (ips->mode == PP_IPS_IDS)
		pp_warn(SUB, "IDS FALLBACK: Suricata only watches (AF_PACKET "
		    "on %s); an attack CAN REACH THE SERVICE before the gateway "
		    "cuts the peer", ips->ids_iface ? ips->ids_iface : "lo");
	if (ips->mode == PP_IPS_IDS && !pp_nf_have_cap(CAP_NET_RAW))
		pp_warn(SUB, "no CAP_NET_RAW: Suricata inherits this process's "
		    "capabilities and needs CAP_NET_RAW to capture (AF_PACKET), "
		    "unless its program has it as a file capability; if it "
		    "cannot start, service traffic stays held (fail-closed)");
	if (ips->fail_open)
		pp_warn(SUB, "FAIL-OPEN configured: when Suricata is down or "
		    "overloaded, service traffic flows UNINSPECTED");
	ips->scfg.mode = ips->mode == PP_IPS_INLINE ? PP_SURI_INLINE :
	    PP_SURI_IDS;
	if ((rc = pp_suri_new(ips->loop, &ips->scfg, on_suri_state, ips,
	    &ips->suri, err, errlen)) != 0)
		goto fail;
	ips->started = 1;
	if ((rc = pp_suri_start(ips->suri, err, errlen)) != 0)
		goto fail;
	return 0;
fail:
	ips->started = 0;
	pp_suri_free(ips->suri);
	ips->suri = NULL;
	if (ips->nf_installed)
		pp_nf_remove(&ips->nf);
	ips->nf_installed = 0;
	pp_eve_reader_free(ips->eve);
	ips->eve = NULL;
	return rc;
}

int
pp_ips_selftest(struct pp_ips *ips)
{
	if (ips->suri == NULL || pp_suri_get_state(ips->suri) != PP_SURI_READY ||
	    ips->state == PP_IPS_SELFTEST)
		return PP_ECONFLICT;
	ips->attempts = 0;
	return run_canary(ips);
}

int
pp_ips_reload(struct pp_ips *ips, pp_suri_reload_cb cb, void *ctx)
{
	if (ips->suri == NULL)
		return PP_ECONFLICT;
	return pp_suri_reload(ips->suri, cb, ctx);
}

int
pp_ips_mark_socket(const struct pp_ips *ips, int fd)
{
	if (ips->mode != PP_IPS_INLINE)
		return 0;
	return pp_nf_mark_socket(fd, ips->nf.mark);
}

uint32_t
pp_ips_mark(const struct pp_ips *ips)
{
	return ips->nf.mark;
}

enum pp_ips_mode
pp_ips_get_mode(const struct pp_ips *ips)
{
	return ips->mode;
}

enum pp_ips_state
pp_ips_get_state(const struct pp_ips *ips)
{
	return ips->state;
}

int
pp_ips_serving(const struct pp_ips *ips)
{
	return ips->state == PP_IPS_READY || ips->fail_open;
}

struct pp_suri *
pp_ips_suricata(struct pp_ips *ips)
{
	return ips->suri;
}

void
pp_ips_eve_stats(const struct pp_ips *ips, struct pp_eve_stats *st)
{
	if (ips->eve)
		pp_eve_reader_stats(ips->eve, st);
	else
		memset(st, 0, sizeof(*st));
}

void
pp_ips_free(struct pp_ips *ips)
{
	if (ips == NULL)
		return;
	pp__canary_free(ips->canary);
	/* Rules first: nothing of ours may outlive the process.  Marked
	 * connections still open now flow uninspected; the agent closes them
	 * before freeing the IPS. */
	if (ips->nf_installed && pp_nf_remove(&ips->nf) != 0)
		pp_err(SUB, "netfilter chains of instance %s could not all be "
		    "removed", ips->nf.instance);
	pp_suri_free(ips->suri);
	pp_eve_reader_free(ips->eve);
	free_copies(ips);
	free(ips);
}
