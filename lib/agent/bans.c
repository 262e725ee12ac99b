/*
 * Bans, security events and the Sentinel's scan counters.  See bans.h.
 */
#include "agent/bans.h"

#include "base/error.h"
#include "base/log.h"
#include "tunnel/proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SUB "sentinel"
#define MAX_BANS	4096
#define MAX_SCAN	256	/* peers with refusals being counted */
#define SCAN_PORTS	64	/* refusals remembered per peer */

struct scan {
	char name[PP_TUN_NAME_MAX + 1];
	struct { uint16_t port; int udp; uint64_t at; } hits[SCAN_PORTS];
	unsigned n;
};

struct pp_bans {
	char path[1200], events_path[1200], evidence_dir[1200];
	json_t *bans;			/* array of ban objects */
	json_t *recent;			/* the last PP_BANS_RECENT events */
	json_t *counts;			/* events by type since start */
	int next_id;
	struct scan scans[MAX_SCAN];
};

static void
iso_now(char *out, size_t len)
{
	struct timeval tv;
	struct tm tm;

	char date[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	/* eve's form: 2026-11-25T07:47:42.087866+0000 */
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%.20s.%06u+0000", date,
	    (unsigned)(tv.tv_usec % 1000000));
}

/* Written whole under a temporary name and renamed: never half a file. */
static int
save(struct pp_bans *b)
{
	char tmp[1300];
	size_t i;
	json_t *v;
	FILE *f;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", b->path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    (f = fdopen(fd, "w")) == NULL) {
		int rc = -errno;

		if (fd >= 0)
			close(fd);
		pp_err(SUB, "%s: cannot write bans: %s", tmp, strerror(-rc));
		return rc;
	}
	json_array_foreach(b->bans, i, v) {
		char *s = json_dumps(v, JSON_COMPACT);

		if (s)
			fprintf(f, "%s\n", s);
		free(s);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 ||
	    rename(tmp, b->path) < 0) {
		pp_err(SUB, "%s: cannot write bans: %s", b->path, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

static void
expire(struct pp_bans *b)
{
	json_int_t now = (json_int_t)time(NULL);
	size_t i = 0;
	int changed = 0;

	while (i < json_array_size(b->bans)) {
		json_t *v = json_array_get(b->bans, i);

		if (json_integer_value(json_object_get(v, "until")) <= now) {
			pp_info(SUB, "ban %lld of %s expired",
			    (long long)json_integer_value(json_object_get(v, "id")),
			    json_string_value(json_object_get(v, "name")));
			json_array_remove(b->bans, i);
			changed = 1;
		} else {
			i++;
		}
	}
	if (changed)
		(void)save(b);
}

/* The ids of the files "<id>.pcap" in the evidence directory (malloc'd). */
static int *
evidence_ids(struct pp_bans *b, int *n)
{
	DIR *d = opendir(b->evidence_dir);
	struct dirent *e;
	int *ids = NULL, cap = 0;

	*n = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long id = strtol(e->d_name, &end, 10);

		if (id <= 0 || id > 0x7fffffff || strcmp(end, ".pcap") != 0 ||
		    e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (*n == cap) {
			int *nids = realloc(ids, (size_t)(cap ? cap * 2 : 64) *
			    sizeof(*ids));

			if (nids == NULL)
				break;
			ids = nids;
			cap = cap ? cap * 2 : 64;
		}
		ids[(*n)++] = (int)id;
	}
	closedir(d);
	return ids;
}

static int
cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return (a > b) - (a < b);
}

int
pp_bans_next_id(const struct pp_bans *b)
{
	return b->next_id;
}

int
pp_bans_evidence_path(struct pp_bans *b, int id, char *buf, size_t len)
{
	if (mkdir(b->evidence_dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (snprintf(buf, len, "%s/%d.pcap", b->evidence_dir, id) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

void
pp_bans_evidence_prune(struct pp_bans *b)
{
	int n, *ids = evidence_ids(b, &n);
	char path[1300];

	if (n > PP_BANS_EVIDENCE_MAX) {
		qsort(ids, (size_t)n, sizeof(*ids), cmp_int);
		for (int i = 0; i < n - PP_BANS_EVIDENCE_MAX; i++) {
			snprintf(path, sizeof(path), "%s/%d.pcap", b->evidence_dir,
			    ids[i]);
			if (unlink(path) == 0)
				pp_info(SUB, "evidence %s removed (more than %d "
				    "kept)", path, PP_BANS_EVIDENCE_MAX);
		}
	}
	free(ids);
}

int
pp_bans_open(const char *state_dir, struct pp_bans **out)
{
	struct pp_bans *b = calloc(1, sizeof(*b));
	char line[65536];
	FILE *f;

	if (b == NULL || (b->bans = json_array()) == NULL ||
	    (b->recent = json_array()) == NULL ||
	    (b->counts = json_object()) == NULL) {
		if (b) {
			json_decref(b->bans);
			json_decref(b->recent);
		}
		free(b);
		return -ENOMEM;
	}
	snprintf(b->path, sizeof(b->path), "%s/bans.json", state_dir);
	snprintf(b->events_path, sizeof(b->events_path), "%s/security.json",
	    state_dir);
	snprintf(b->evidence_dir, sizeof(b->evidence_dir), "%s/evidence",
	    state_dir);
	b->next_id = 1;
	/* an id whose pcap is still there is not given again */
	{
		int n = 0, newest = 0;
		int *ids = evidence_ids(b, &n);

		for (int i = 0; i < n; i++)
			if (ids[i] > newest)
				newest = ids[i];
		free(ids);
		if (newest >= b->next_id)
			b->next_id = newest + 1;
	}
	if ((f = fopen(b->path, "re")) != NULL) {
		while (fgets(line, sizeof(line), f)) {
			json_t *v = json_loads(line, 0, NULL);
			json_int_t id = json_integer_value(json_object_get(v, "id"));

			if (!json_is_object(v) || id <= 0 ||
			    !json_is_string(json_object_get(v, "name"))) {
				json_decref(v);	/* a damaged line costs only itself */
				continue;
			}
			if (id >= b->next_id)
				b->next_id = (int)id + 1;
			json_array_append_new(b->bans, v);
		}
		fclose(f);
	}
	expire(b);
	if (json_array_size(b->bans) > 0)
		pp_info(SUB, "%zu ban(s) in force from %s", json_array_size(b->bans),
		    b->path);
	*out = b;
	return 0;
}

void
pp_bans_free(struct pp_bans *b)
{
	if (b == NULL)
		return;
	json_decref(b->bans);
	json_decref(b->recent);
	json_decref(b->counts);
	free(b);
}

int
pp_bans_add(struct pp_bans *b, const char *name, const char *key,
    unsigned seconds, const char *reason, json_t *evidence, json_t *pcap)
{
	json_int_t now = (json_int_t)time(NULL);
	json_t *v;
	int id;

	expire(b);
	if (json_array_size(b->bans) >= MAX_BANS)
		json_array_remove(b->bans, 0);	/* the oldest goes first */
	id = b->next_id++;
	/* "o" steals: a reference of ours, a borrowed evidence's or a new one */
	v = json_pack("{s:i, s:s, s:s, s:I, s:I, s:s, s:o}", "id", id, "name",
	    name, "key", key ? key : "", "since", now, "until",
	    now + (json_int_t)seconds, "reason", reason,
	    "evidence", evidence ? json_incref(evidence) : json_array());
	if (v == NULL)
		return -ENOMEM;
	if (pcap)
		json_object_set(v, "pcap", pcap);
	if (json_array_append_new(b->bans, v) < 0)
		return -ENOMEM;
	(void)save(b);
	return id;
}

int
pp_bans_check(struct pp_bans *b, const char *name, const char *key,
    char *why, size_t whylen)
{
	size_t i;
	json_t *v;

	expire(b);
	json_array_foreach(b->bans, i, v) {
		const char *bn = json_string_value(json_object_get(v, "name"));
		const char *bk = json_string_value(json_object_get(v, "key"));
		time_t until = (time_t)json_integer_value(json_object_get(v, "until"));
		struct tm tm;
		char ts[32];

		if (!((bn && strcmp(bn, name) == 0) ||
		    (key && key[0] && bk && strcmp(bk, key) == 0)))
			continue;
		gmtime_r(&until, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(why, whylen, "peer %s is banned until %s (ban %lld: %s); "
		    "`peerpipe unban %s` lifts it", name, ts,
		    (long long)json_integer_value(json_object_get(v, "id")),
		    json_string_value(json_object_get(v, "reason")), name);
		return PP_EDENIED;
	}
	return 0;
}

int
pp_bans_remove(struct pp_bans *b, const char *name_or_id)
{
	char *end;
	long id = strtol(name_or_id, &end, 10);
	int n = 0;
	size_t i = 0;

	while (i < json_array_size(b->bans)) {
		json_t *v = json_array_get(b->bans, i);
		const char *bn = json_string_value(json_object_get(v, "name"));

		if ((*end == '\0' && json_integer_value(json_object_get(v, "id")) ==
		    id) || (bn && strcmp(bn, name_or_id) == 0)) {
			json_t *ev = json_pack("{s:s, s:I}", "peer", bn ? bn : "",
			    "ban_id", json_integer_value(json_object_get(v, "id")));

			pp_bans_event(b, "unban", ev);
			json_decref(ev);
			json_array_remove(b->bans, i);
			n++;
		} else {
			i++;
		}
	}
	if (n == 0)
		return PP_ENOTFOUND;
	(void)save(b);
	return n;
}

json_t *
pp_bans_list(struct pp_bans *b, int with_evidence)
{
	json_t *out = json_array(), *v;
	size_t i;

	expire(b);
	json_array_foreach(b->bans, i, v) {
		json_t *c = json_deep_copy(v);

		if (!with_evidence)
			json_object_del(c, "evidence");
		json_array_append_new(out, c);
	}
	return out;
}

json_t *
pp_bans_security(struct pp_bans *b)
{
	json_t *now = pp_bans_list(b, 0);
	json_t *r = json_pack("{s:O, s:O, s:I}", "counts", b->counts, "recent",
	    b->recent, "bans", (json_int_t)json_array_size(now));

	json_decref(now);
	return r;
}

json_t *
pp_bans_get(struct pp_bans *b, int id)
{
	size_t i;
	json_t *v;

	json_array_foreach(b->bans, i, v)
		if (json_integer_value(json_object_get(v, "id")) == id)
			return json_deep_copy(v);
	return NULL;
}

void
pp_bans_event(struct pp_bans *b, const char *event, json_t *fields)
{
	static const char *const top[] = { "src_ip", "src_port", "dest_ip",
	    "dest_port", "proto" };
	char ts[40], *s;
	json_t *ev, *pp = json_deep_copy(fields ? fields : json_object());
	FILE *f;
	int fd;

	iso_now(ts, sizeof(ts));
	ev = json_pack("{s:s, s:s}", "timestamp", ts, "event_type", "peerpipe");
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
		json_t *v = json_object_get(pp, top[i]);

		if (v) {
			json_object_set(ev, top[i], v);
			json_object_del(pp, top[i]);
		}
	}
	json_object_set_new(pp, "event", json_string(event));
	json_object_set_new(ev, "peerpipe", pp);
	s = json_dumps(ev, JSON_COMPACT);
	/* For `peerpipe status`: the last few, and how many of each. */
	if (b->recent && b->counts) {
		json_t *n = json_object_get(b->counts, event);

		json_array_append(b->recent, ev);
		while (json_array_size(b->recent) > PP_BANS_RECENT)
			json_array_remove(b->recent, 0);
		json_object_set_new(b->counts, event, json_integer(n ?
		    json_integer_value(n) + 1 : 1));
	}
	json_decref(ev);
	if (s == NULL)
		return;
	pp_warn(SUB, "security event: %s", s);
	fd = open(b->events_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && (f = fdopen(fd, "a")) != NULL) {
		fprintf(f, "%s\n", s);
		fclose(f);
	} else if (fd >= 0) {
		close(fd);
	}
	free(s);
}

int
pp_bans_scan_note(struct pp_bans *b, const char *name, uint16_t port, int udp,
    uint64_t now_s, unsigned scan_ports, unsigned window)
{
	struct scan *sc = NULL, *oldest = &b->scans[0];
	unsigned distinct = 0, keep = 0;

	for (size_t i = 0; i < MAX_SCAN; i++) {
		if (strcmp(b->scans[i].name, name) == 0) {
			sc = &b->scans[i];
			break;
		}
		if (b->scans[i].n == 0 || (oldest->n > 0 && b->scans[i].n > 0 &&
		    b->scans[i].hits[b->scans[i].n - 1].at <
		    oldest->hits[oldest->n - 1].at))
			oldest = &b->scans[i];
	}
	if (sc == NULL) {
		sc = oldest;
		memset(sc, 0, sizeof(*sc));
		snprintf(sc->name, sizeof(sc->name), "%s", name);
	}
	/* Forget what is older than the window, then count distinct ports. */
	for (unsigned i = 0; i < sc->n; i++)
		if (sc->hits[i].at + window > now_s)
			sc->hits[keep++] = sc->hits[i];
	sc->n = keep;
	if (sc->n == SCAN_PORTS)
		memmove(&sc->hits[0], &sc->hits[1], (SCAN_PORTS - 1) * sizeof(sc->hits[0])),
		    sc->n--;
	sc->hits[sc->n].port = port;
	sc->hits[sc->n].udp = udp;
	sc->hits[sc->n].at = now_s;
	sc->n++;
	for (unsigned i = 0; i < sc->n; i++) {
		unsigned j;

		for (j = 0; j < i; j++)
			if (sc->hits[j].port == sc->hits[i].port &&
			    sc->hits[j].udp == sc->hits[i].udp)
				break;
		if (j == i)
			distinct++;
	}
	if (distinct < scan_ports)
		return 0;
	memset(sc, 0, sizeof(*sc));
	return 1;
}
