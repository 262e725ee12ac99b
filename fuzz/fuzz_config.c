/*
 * Fuzzes the agent's config parser, and checks what it promises: errors
 * exactly when it fails, each message "FILE:..." and NUL-terminated, and on
 * success every required field set and every list within its bounds.
 */
#include "agent/config.h"
#include "base/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Large: keep them off the stack. */
static struct pp_cfg cfg;
static struct pp_cfg_errors errs;

static void
check(int ok)
{
	if (!ok)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc = pp_cfg_parse("fuzz.conf", (const char *)data, size, &cfg, &errs);

	check(rc == 0 || rc == PP_ECONFIG);
	check((rc == 0) == (errs.n == 0));
	for (size_t i = 0; i < errs.n && i < PP_CFG_MAX_ERRORS; i++) {
		check(memchr(errs.msg[i], '\0', sizeof(errs.msg[i])) != NULL);
		check(strncmp(errs.msg[i], "fuzz.conf:", 10) == 0);
	}
	check(cfg.nservices <= PP_CFG_MAX_SERVICES);
	check(cfg.nforwards <= PP_CFG_MAX_FORWARDS);
	check(cfg.npeers <= PP_CFG_MAX_PEERS);
	check(cfg.nstun <= PP_CFG_MAX_ICE && cfg.nturn <= PP_CFG_MAX_ICE);
	if (rc != 0)
		return 0;
	check(cfg.name[0] && cfg.url[0] && cfg.room_name[0]);
	check(strlen(cfg.room_uuid) == PP_TUN_UUID_LEN);
	check(cfg.control_mode == 0600 || cfg.control_mode == 0660);
	check((cfg.port_min == 0) == (cfg.port_max == 0));
	check(cfg.port_min <= cfg.port_max);
	for (size_t i = 0; i < cfg.nservices; i++) {
		const struct pp_cfg_service *s = &cfg.services[i];

		check(s->port != 0 && s->target_port != 0 && s->host[0]);
		for (size_t j = 0; j < i; j++)
			check(cfg.services[j].port != s->port ||
			    cfg.services[j].proto != s->proto);
	}
	for (size_t i = 0; i < cfg.nforwards; i++) {
		const struct pp_cfg_forward *f = &cfg.forwards[i];

		check(f->port != 0 && f->listen_port != 0);
		check(f->peer[0] && f->listen_host[0]);
	}
	for (size_t i = 0; i < cfg.nturn; i++)
		check(cfg.turn[i].username[0] && cfg.turn[i].password[0]);
	return 0;
}
