/* lib/agent/bans.c: ban ids and the evidence directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent/bans.h"
#include "base/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	close(fd);
}

static int
count_pcaps(const char *dir, int *lowest)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	*lowest = 0;
	while ((e = readdir(d)) != NULL) {
		int id = atoi(e->d_name);

		if (id > 0 && strstr(e->d_name, ".pcap")) {
			n++;
			if (*lowest == 0 || id < *lowest)
				*lowest = id;
		}
	}
	closedir(d);
	return n;
}

static void
rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Ids go on after the evidence files left by earlier bans (even when the
 * bans themselves are gone), and only the newest files are kept. */
static void
test_evidence_ids_and_prune(void **state)
{
	char dir[] = "/tmp/pp-bans-XXXXXX", ev[300], path[400];
	struct pp_bans *b;
	json_t *pcap, *got;
	int id, lowest;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(pp_bans_open(dir, &b), 0);
	assert_int_equal(pp_bans_next_id(b), 1);
	assert_int_equal(pp_bans_evidence_path(b, 1, path, sizeof(path)), 0);
	snprintf(ev, sizeof(ev), "%s/evidence", dir);
	snprintf(path + 0, sizeof(path), "%s/1.pcap", ev);
	{
		struct stat st;

		assert_int_equal(stat(ev, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	pp_bans_free(b);

	/* 300 files from earlier bans, and some that are not ours */
	for (int i = 1; i <= 300; i++) {
		snprintf(path, sizeof(path), "%s/%d.pcap", ev, i);
		touch(path);
	}
	snprintf(path, sizeof(path), "%s/notes.txt", ev);
	touch(path);
	snprintf(path, sizeof(path), "%s/0400.pcap", ev);
	touch(path);
	assert_int_equal(pp_bans_open(dir, &b), 0);
	assert_int_equal(pp_bans_next_id(b), 301);
	pcap = json_pack("{s:s, s:i}", "path", "/x/301.pcap", "packets", 4);
	id = pp_bans_add(b, "peer-one", "", 60, "test", NULL, pcap);
	assert_int_equal(id, 301);
	got = pp_bans_get(b, id);
	assert_non_null(got);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(got,
	    "pcap"), "packets")), 4);
	json_decref(got);
	json_decref(pcap);
	pp_bans_evidence_prune(b);
	assert_int_equal(count_pcaps(ev, &lowest), PP_BANS_EVIDENCE_MAX + 1);
	/* the oldest went; "0400.pcap" is not a ban's and stays */
	assert_int_equal(lowest, 300 - PP_BANS_EVIDENCE_MAX + 1);
	snprintf(path, sizeof(path), "%s/notes.txt", ev);
	assert_int_equal(access(path, F_OK), 0);
	pp_bans_free(b);
	rm_rf(dir);
}

/* Status shows the last PP_BANS_RECENT events, counts by type and the
 * bans in force; security.json gets every event. */
static void
test_security_for_status(void **state)
{
	char dir[] = "/tmp/pp-bans-XXXXXX", path[400];
	struct pp_bans *b;
	json_t *sec, *recent;
	FILE *f;
	int lines = 0, c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(pp_bans_open(dir, &b), 0);
	sec = pp_bans_security(b);
	assert_int_equal(json_object_size(json_object_get(sec, "counts")), 0);
	assert_int_equal(json_array_size(json_object_get(sec, "recent")), 0);
	json_decref(sec);
	for (int i = 0; i < PP_BANS_RECENT + 5; i++) {
		json_t *ev = json_pack("{s:s, s:i, s:s}", "peer", "p", "n", i,
		    "src_ip", "127.0.0.1");

		pp_bans_event(b, i % 3 ? "alert" : "cut", ev);
		json_decref(ev);
	}
	assert_true(pp_bans_add(b, "p", "", 60, "test", NULL, NULL) > 0);
	sec = pp_bans_security(b);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sec,
	    "counts"), "cut")), 5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sec,
	    "counts"), "alert")), 10);
	assert_int_equal(json_integer_value(json_object_get(sec, "bans")), 1);
	recent = json_object_get(sec, "recent");
	assert_int_equal(json_array_size(recent), PP_BANS_RECENT);
	/* oldest first, the newest last; eve's 5-tuple fields on top */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    json_array_get(recent, PP_BANS_RECENT - 1), "peerpipe"), "n")),
	    PP_BANS_RECENT + 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    recent, 0), "src_ip")), "127.0.0.1");
	json_decref(sec);
	snprintf(path, sizeof(path), "%s/security.json", dir);
	assert_non_null(f = fopen(path, "r"));
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	assert_int_equal(lines, PP_BANS_RECENT + 5);
	pp_bans_free(b);
	rm_rf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_evidence_ids_and_prune),
		cmocka_unit_test(test_security_for_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
