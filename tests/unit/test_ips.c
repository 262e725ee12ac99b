/* lib/ips: the eve parser, the line splitter, the ET Open policy, the
 * generated suricata.yaml and the netfilter config checks.  (Suricata itself
 * runs in tests/integration/test_ips.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "ips/eve.h"
#include "ips/ips_int.h"
#include "ips/netfilter.h"
#include "ips/rules.h"
#include "ips/suricata.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- eve ------------------------------------------------------------------ */

#define ALERT_HEAD "{\"timestamp\":\"2026-11-25T07:14:33.680825+0000\"," \
	"\"flow_id\":389810895046986,\"event_type\":\"alert\"," \
	"\"src_ip\":\"127.0.0.1\",\"src_port\":46498,\"dest_ip\":\"127.0.0.1\"," \
	"\"dest_port\":47035,\"proto\":\"TCP\",\"direction\":\"to_server\","

static const struct eve_case {
	const char *name, *in;
	int rc;
	enum pp_eve_type type;
	uint32_t sid;
	enum pp_eve_action action;
	uint8_t proto;
	int has_alert;
} eve_cases[] = {
	{ "a blocked alert as Suricata 7 writes it", ALERT_HEAD
	  "\"alert\":{\"action\":\"blocked\",\"gid\":1,\"signature_id\":9000001,"
	  "\"rev\":1,\"signature\":\"PEERPIPE demo\",\"category\":\"Attempted "
	  "Administrator Privilege Gain\",\"severity\":1},\"app_proto\":\"http\"}",
	  0, PP_EVE_ALERT, 9000001, PP_EVE_BLOCKED, IPPROTO_TCP, 1 },
	{ "an allowed alert (IDS)", ALERT_HEAD
	  "\"alert\":{\"action\":\"allowed\",\"signature_id\":2000001}}",
	  0, PP_EVE_ALERT, 2000001, PP_EVE_ALLOWED, IPPROTO_TCP, 1 },
	{ "a drop caused by a rule",
	  "{\"timestamp\":\"t\",\"event_type\":\"drop\",\"src_ip\":\"::1\","
	  "\"src_port\":1,\"dest_ip\":\"::1\",\"dest_port\":2,\"proto\":\"UDP\","
	  "\"drop\":{\"reason\":\"rules\"},\"alert\":{\"action\":\"blocked\","
	  "\"signature_id\":7}}",
	  0, PP_EVE_DROP, 7, PP_EVE_BLOCKED, IPPROTO_UDP, 1 },
	{ "a flow drop without a rule",
	  "{\"timestamp\":\"t\",\"event_type\":\"drop\",\"src_ip\":\"1.2.3.4\","
	  "\"dest_ip\":\"5.6.7.8\",\"proto\":\"047\",\"drop\":{\"reason\":"
	  "\"flow drop\"}}",
	  0, PP_EVE_DROP, 0, PP_EVE_ALLOWED, 47, 0 },
	{ "another event type is skipped",
	  "{\"timestamp\":\"t\",\"event_type\":\"stats\",\"stats\":{}}",
	  PP_ENOTFOUND, 0, 0, 0, 0, 0 },
	{ "an alert without its rule", ALERT_HEAD "\"x\":1}",
	  PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "an unknown action", ALERT_HEAD
	  "\"alert\":{\"action\":\"maybe\",\"signature_id\":1}}",
	  PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "a port out of range",
	  "{\"timestamp\":\"t\",\"event_type\":\"alert\",\"src_ip\":\"1.2.3.4\","
	  "\"src_port\":70000,\"dest_ip\":\"5.6.7.8\",\"proto\":\"TCP\","
	  "\"alert\":{\"action\":\"allowed\",\"signature_id\":1}}",
	  PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "not an address",
	  "{\"timestamp\":\"t\",\"event_type\":\"alert\",\"src_ip\":\"1.2.3\","
	  "\"dest_ip\":\"5.6.7.8\",\"proto\":\"TCP\","
	  "\"alert\":{\"action\":\"allowed\",\"signature_id\":1}}",
	  PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "no addresses",
	  "{\"timestamp\":\"t\",\"event_type\":\"alert\",\"proto\":\"TCP\","
	  "\"alert\":{\"action\":\"allowed\",\"signature_id\":1}}",
	  PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "a negative sid",
	  "{\"timestamp\":\"t\",\"event_type\":\"alert\",\"src_ip\":\"1.2.3.4\","
	  "\"dest_ip\":\"5.6.7.8\",\"proto\":\"TCP\","
	  "\"alert\":{\"action\":\"allowed\",\"signature_id\":-1}}",
	  PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "duplicate keys", ALERT_HEAD "\"event_type\":\"alert\","
	  "\"alert\":{\"action\":\"allowed\",\"signature_id\":1}}",
	  PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "garbage", "EVIL 0xdeadc0de", PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "an array", "[1,2,3]", PP_EINVAL, 0, 0, 0, 0, 0 },
	{ "empty", "", PP_EINVAL, 0, 0, 0, 0, 0 },
};

static void
test_eve_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(eve_cases) / sizeof(eve_cases[0]); i++) {
		const struct eve_case *c = &eve_cases[i];
		struct pp_eve_event ev;
		int rc = pp_eve_parse(c->in, strlen(c->in), &ev);

		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
		if (rc != 0)
			continue;
		if (ev.type != c->type || ev.signature_id != c->sid ||
		    ev.action != c->action || ev.proto != c->proto ||
		    ev.has_alert != c->has_alert)
			fail_msg("%s: fields differ", c->name);
	}
}

static void
test_eve_fields(void **state)
{
	const char *in = ALERT_HEAD "\"alert\":{\"action\":\"blocked\","
	    "\"gid\":1,\"signature_id\":9000001,\"rev\":2,\"signature\":"
	    "\"a\\nb\\u0007c\",\"category\":\"cat\",\"severity\":2}}";
	struct pp_eve_event ev;

	(void)state;
	assert_int_equal(pp_eve_parse(in, strlen(in), &ev), 0);
	assert_string_equal(ev.src_ip, "127.0.0.1");
	assert_int_equal(ev.src_port, 46498);
	assert_int_equal(ev.dest_port, 47035);
	assert_true(ev.flow_id == 389810895046986ull);
	assert_int_equal(ev.to_server, 1);
	assert_int_equal(ev.rev, 2);
	assert_int_equal(ev.severity, 2);
	/* Control characters cannot reach a log line. */
	assert_string_equal(ev.signature, "a?b?c");
	assert_string_equal(ev.category, "cat");
	assert_string_equal(ev.timestamp, "2026-11-25T07:14:33.680825+0000");
}

static void
test_eve_long_signature_truncated(void **state)
{
	char in[2048], sig[600];
	struct pp_eve_event ev;

	(void)state;
	memset(sig, 'x', sizeof(sig) - 1);
	sig[sizeof(sig) - 1] = '\0';
	snprintf(in, sizeof(in), ALERT_HEAD "\"alert\":{\"action\":\"allowed\","
	    "\"signature_id\":1,\"signature\":\"%s\"}}", sig);
	assert_int_equal(pp_eve_parse(in, strlen(in), &ev), 0);
	assert_int_equal(strlen(ev.signature), PP_EVE_SIG_MAX - 1);
}

static void
test_eve_too_big(void **state)
{
	size_t n = PP_EVE_LINE_MAX + 1;
	char *big = malloc(n);
	struct pp_eve_event ev;

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	assert_int_equal(pp_eve_parse(big, n, &ev), PP_ETOOBIG);
	free(big);
}

/* --- lines ---------------------------------------------------------------- */

struct got {
	char lines[8][32];
	int n, toolong;
};

static int
on_line(void *arg, const char *line, size_t len)
{
	struct got *g = arg;

	if (line == NULL) {
		g->toolong++;
		return 0;
	}
	snprintf(g->lines[g->n++ % 8], 32, "%.*s", (int)len, line);
	return 0;
}

static void
test_lines(void **state)
{
	struct pp__ips_lines l;
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	pp__ips_lines_init(&l, 8);
	/* Split across reads, several per read, an oversized one skipped whole. */
	assert_int_equal(pp__ips_lines_feed(&l, "ab", 2, on_line, &g), 0);
	assert_int_equal(pp__ips_lines_feed(&l, "c\nde\n0123456", 12, on_line,
	    &g), 0);
	assert_int_equal(pp__ips_lines_feed(&l, "789abc\nok\n", 10, on_line,
	    &g), 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.lines[0], "abc");
	assert_string_equal(g.lines[1], "de");
	assert_string_equal(g.lines[2], "ok");
	assert_int_equal(g.toolong, 1);
	pp__ips_lines_fini(&l);
}

/* --- rules policy ---------------------------------------------------------- */

static const char classes[] =
	"# comment\n"
	"config classification: trojan-activity,A Network Trojan was detected, 1\n"
	"config classification: bad-unknown,Potentially Bad Traffic, 2\n"
	"config classification: broken\n";

static void
test_rules_priority(void **state)
{
	struct pp_rules_classmap *cm = calloc(1, sizeof(*cm));
	size_t off, alen;
	static const struct { const char *rule; int prio; } cases[] = {
		{ "alert tcp any any -> any any (msg:\"x\"; classtype:trojan-activity; sid:1;)", 1 },
		{ "alert tcp any any -> any any (msg:\"x\"; classtype:bad-unknown; sid:1;)", 2 },
		{ "alert tcp any any -> any any (msg:\"x\"; sid:1;)", 3 },
		{ "alert tcp any any -> any any (msg:\"x\"; classtype:nope; sid:1;)", 3 },
		{ "alert tcp any any -> any any (classtype:bad-unknown; priority:1; sid:1;)", 1 },
		/* Inside quotes, with escapes, a priority is only text. */
		{ "alert tcp any any -> any any (msg:\"a; priority:1; \\\"q\"; classtype:bad-unknown; sid:1;)", 2 },
		{ "  drop tcp any any -> any any (msg:\"x\"; sid:1;)", 3 },
		{ "# alert tcp any any -> any any (msg:\"x\"; sid:1;)", 0 },
		{ "", 0 },
		{ "alerting is not an action (sid:1;)", 0 },
	};

	(void)state;
	assert_non_null(cm);
	pp_rules_classmap_parse(cm, classes, strlen(classes));
	assert_int_equal(cm->n, 2);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int p = pp_rules_priority(cases[i].rule, strlen(cases[i].rule), cm,
		    &off, &alen);

		if (p != cases[i].prio)
			fail_msg("%s: priority %d, want %d", cases[i].rule, p,
			    cases[i].prio);
	}
	free(cm);
}

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_rules_policy_file(void **state)
{
	char dir[] = "/tmp/pp-test-rules-XXXXXX", path[256], out[256], *buf;
	struct pp_rules_stats st;
	char err[256];
	FILE *f;
	long n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/classification.config", dir);
	write_text(path, classes);
	snprintf(path, sizeof(path), "%s/b.rules", dir);
	write_text(path,
	    "alert tcp any any -> any any (msg:\"hi\"; classtype:trojan-activity; sid:1;)\n"
	    "alert tcp any any -> any any (msg:\"lo\"; classtype:bad-unknown; sid:2;)\n"
	    "#alert tcp any any -> any any (msg:\"off\"; classtype:trojan-activity; sid:3;)\n");
	snprintf(path, sizeof(path), "%s/a.rules", dir);
	write_text(path, "alert tcp any any -> any any (msg:\"p\"; priority:1; sid:4;)");
	snprintf(path, sizeof(path), "%s/ignored.txt", dir);
	write_text(path, "alert tcp any any -> any any (sid:5;)\n");
	snprintf(out, sizeof(out), "%s/out.rules", dir);

	assert_int_equal(pp_rules_write_policy(dir, NULL, 1, out, &st, err,
	    sizeof(err)), 0);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.rules, 3);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.alerts, 1);
	f = fopen(out, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	assert_non_null(strstr(buf, "drop tcp any any -> any any (msg:\"hi\""));
	assert_non_null(strstr(buf, "alert tcp any any -> any any (msg:\"lo\""));
	assert_non_null(strstr(buf, "#alert tcp any any -> any any (msg:\"off\""));
	/* a.rules first (sorted), its last line without '\n' still ends one. */
	assert_true(strstr(buf, "(msg:\"p\"") < strstr(buf, "(msg:\"hi\""));
	assert_non_null(strstr(buf, "drop tcp any any -> any any (msg:\"p\"; priority:1; sid:4;)\n"));
	assert_null(strstr(buf, "sid:5"));
	assert_int_equal(pp_rules_count(out), 3);
	free(buf);

	/* noalert rules (flowbit setters) are never turned into drops;
	 * rules about a protected host as a client are commented out. */
	snprintf(path, sizeof(path), "%s/c.rules", dir);
	write_text(path,
	    "alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"ua\"; flow:established,to_server; classtype:trojan-activity; sid:10;)\n"
	    "alert http $EXTERNAL_NET any -> [$HOME_NET, $HTTP_SERVERS] any (msg:\"dl\"; flow:from_server,established; classtype:trojan-activity; sid:11;)\n"
	    "alert dns $HOME_NET any -> any any (msg:\"q\"; dns.query; content:\".top\"; classtype:trojan-activity; sid:12;)\n"
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"in\"; flow:established,to_server; classtype:trojan-activity; sid:13;)\n"
	    "alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"resp\"; flow:established,to_client; classtype:trojan-activity; sid:14;)\n"
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"bit\"; flow:established,to_server; flowbits:set,x; flowbits:noalert; classtype:trojan-activity; sid:15;)\n"
	    "alert http any any -> any any (msg:\"bit2\"; noalert; flowbits:set,y; classtype:trojan-activity; sid:16;)\n"
	    "alert http !$HOME_NET any -> $EXTERNAL_NET any (msg:\"neg\"; flow:to_server; classtype:trojan-activity; sid:17;)\n"
	    "alert tcp $EXTERNAL_NET any -> $HOME_NET 5432 (msg:\"syn\"; flow:to_server; flags:S; threshold: type limit, count 5, seconds 60, track by_src; classtype:trojan-activity; sid:18;)\n"
	    "alert tcp $EXTERNAL_NET any -> $HOME_NET 80 (msg:\"sync\"; flags:S,12; content:\"x\"; classtype:trojan-activity; sid:19;)\n");
	unlink(out);	/* it is in dir and would be read as a rules file */
	assert_int_equal(pp_rules_write_policy(dir, NULL, 1, out, &st, err,
	    sizeof(err)), 0);
	assert_int_equal(st.rules, 13);
	assert_int_equal(st.client_side, 3);
	assert_int_equal(st.conn_level, 1);
	assert_int_equal(st.dropped, 2 + 4);
	assert_int_equal(pp_rules_count(out), 13 - 3 - 1);
	f = fopen(out, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	assert_non_null(strstr(buf, "# peerpipe: client-side rule, off: alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"ua\""));
	assert_non_null(strstr(buf, "# peerpipe: client-side rule, off: alert http $EXTERNAL_NET any -> [$HOME_NET, $HTTP_SERVERS] any (msg:\"dl\""));
	assert_non_null(strstr(buf, "# peerpipe: client-side rule, off: alert dns $HOME_NET any -> any any (msg:\"q\""));
	assert_non_null(strstr(buf, "\ndrop http $EXTERNAL_NET any -> $HOME_NET any (msg:\"in\""));
	assert_non_null(strstr(buf, "\ndrop http $HOME_NET any -> $EXTERNAL_NET any (msg:\"resp\""));
	assert_non_null(strstr(buf, "\nalert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"bit\""));
	assert_non_null(strstr(buf, "\nalert http any any -> any any (msg:\"bit2\""));
	assert_non_null(strstr(buf, "\ndrop http !$HOME_NET any -> $EXTERNAL_NET any (msg:\"neg\""));
	assert_non_null(strstr(buf, "# peerpipe: connection-level rule, off: alert tcp $EXTERNAL_NET any -> $HOME_NET 5432 (msg:\"syn\""));
	assert_non_null(strstr(buf, "\ndrop tcp $EXTERNAL_NET any -> $HOME_NET 80 (msg:\"sync\""));
	free(buf);

	/* drop_priority 0: nothing rewritten. */
	assert_int_equal(pp_rules_write_policy(dir, NULL, 0, out, &st, err,
	    sizeof(err)), 0);
	assert_int_equal(st.dropped, 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/* --- suricata.yaml --------------------------------------------------------- */

static void
test_yaml(void **state)
{
	static const struct pp_suri_service svc[] = {
		{ "10.0.0.5", 8080, PP_SURI_HTTP },
		{ "0:0::1", 5432, PP_SURI_SQL },
	};
	struct pp_suri_config cfg = {
		.state_dir = "/tmp/pp-yaml", .mode = PP_SURI_INLINE,
		.queue_num = 7, .rules_file = "/r/peerpipe.rules",
		.et_dir = "/et", .eve_socket = "/tmp/pp-yaml/eve.sock",
		.services = svc, .nservices = 2,
	};
	uv_loop_t loop;
	struct pp_suri *s;
	char err[256], *y = malloc(65536);
	int n;

	(void)state;
	assert_non_null(y);
	uv_loop_init(&loop);
	assert_int_equal(pp_suri_new(&loop, &cfg, NULL, NULL, &s, err,
	    sizeof(err)), 0);
	n = pp_suri_render_yaml(s, y, 65536);
	assert_true(n > 0);
	assert_non_null(strstr(y, "HOME_NET: \"[10.0.0.5,::1,127.0.0.1]\""));
	assert_non_null(strstr(y, "bpf-filter: \"host 127.0.0.1 or (host 10.0.0.5 and port 8080) or (host ::1 and port 5432)\""));
	assert_non_null(strstr(y, "EXTERNAL_NET: \"any\""));
	assert_non_null(strstr(y, "HTTP_PORTS: \"[80,8080]\""));
	assert_non_null(strstr(y, "SQL_PORTS: \"[1433,3306,5432,5432]\""));
	assert_non_null(strstr(y, "checksum-validation: no"));
	assert_non_null(strstr(y, "filetype: unix_stream"));
	assert_non_null(strstr(y, "filename: \"/tmp/pp-yaml/eve.sock\""));
	assert_non_null(strstr(y, "filename: \"/tmp/pp-yaml/cmd.sock\""));
	assert_non_null(strstr(y, "fail-open: no"));
	assert_non_null(strstr(y, "exception-policy: auto"));
	assert_non_null(strstr(y, "  - \"/tmp/pp-yaml/et-open-policy.rules\""));
	/* Too small a buffer is an error, not a truncated config. */
	assert_int_equal(pp_suri_render_yaml(s, y, 100), PP_ETOOBIG);
	pp_suri_free(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(y);
}

static void
test_suri_config_checks(void **state)
{
	static const struct pp_suri_service bad_svc[] = { { "example.com", 80, 0 } };
	struct pp_suri_config cfg = {
		.state_dir = "/tmp/pp-yaml", .rules_file = "/r/x.rules",
		.eve_socket = "/tmp/pp-yaml/eve.sock",
	};
	uv_loop_t loop;
	struct pp_suri *s;
	char err[256];

	(void)state;
	uv_loop_init(&loop);
	cfg.rules_file = "/r/x\".rules\n  - /etc/passwd";	/* YAML injection */
	assert_int_equal(pp_suri_new(&loop, &cfg, NULL, NULL, &s, err,
	    sizeof(err)), PP_EINVAL);
	cfg.rules_file = "relative.rules";
	assert_int_equal(pp_suri_new(&loop, &cfg, NULL, NULL, &s, err,
	    sizeof(err)), PP_EINVAL);
	cfg.rules_file = "/r/x.rules";
	cfg.services = bad_svc;
	cfg.nservices = 1;
	assert_int_equal(pp_suri_new(&loop, &cfg, NULL, NULL, &s, err,
	    sizeof(err)), PP_EINVAL);
	assert_non_null(strstr(err, "example.com"));
	uv_loop_close(&loop);
}

/* --- netfilter config ------------------------------------------------------ */

static void
test_nf_validate(void **state)
{
	struct pp_nf_config c = { .instance = "gw_1", .mark = 0x5050,
	    .mask = 0xffff, .queue_num = 3 };
	char err[256], m[32], o[32], i[32];

	(void)state;
	assert_int_equal(pp_nf_validate(&c, err, sizeof(err)), 0);
	pp_nf_chain_names(&c, m, o, i);
	assert_string_equal(m, "PP-gw_1-MARK");
	assert_string_equal(o, "PP-gw_1-OUT");
	assert_string_equal(i, "PP-gw_1-IN");
	snprintf(c.instance, sizeof(c.instance), "a b");
	assert_int_equal(pp_nf_validate(&c, err, sizeof(err)), PP_EINVAL);
	snprintf(c.instance, sizeof(c.instance), "-j");
	assert_int_equal(pp_nf_validate(&c, err, sizeof(err)), PP_EINVAL);
	c.instance[0] = '\0';
	assert_int_equal(pp_nf_validate(&c, err, sizeof(err)), PP_EINVAL);
	snprintf(c.instance, sizeof(c.instance), "gw");
	c.mark = 0x15050;	/* outside the mask */
	assert_int_equal(pp_nf_validate(&c, err, sizeof(err)), PP_EINVAL);
	c.mark = 0;
	assert_int_equal(pp_nf_validate(&c, err, sizeof(err)), PP_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eve_table),
		cmocka_unit_test(test_eve_fields),
		cmocka_unit_test(test_eve_long_signature_truncated),
		cmocka_unit_test(test_eve_too_big),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_rules_priority),
		cmocka_unit_test(test_rules_policy_file),
		cmocka_unit_test(test_yaml),
		cmocka_unit_test(test_suri_config_checks),
		cmocka_unit_test(test_nf_validate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
