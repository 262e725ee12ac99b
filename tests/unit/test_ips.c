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
	struct pp_lines l;
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	pp_lines_init(&l, 8);
	/* Split across reads, several per read, an oversized one skipped whole. */
	assert_int_equal(pp_lines_feed(&l, "ab", 2, on_line, &g), 0);
	assert_int_equal(pp_lines_feed(&l, "c\nde\n0123456", 12, on_line,
	    &g), 0);
	assert_int_equal(pp_lines_feed(&l, "789abc\nok\n", 10, on_line,
	    &g), 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.lines[0], "abc");
	assert_string_equal(g.lines[1], "de");
	assert_string_equal(g.lines[2], "ok");
	assert_int_equal(g.toolong, 1);
	pp_lines_fini(&l);
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

static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void
test_rules_policy_file(void **state)
{
	char dir[] = "/tmp/pp-test-rules-XXXXXX", path[256], out[256], *buf;
	struct pp_rules_stats st;
	char err[256];

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
	buf = read_text(out);
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
	buf = read_text(out);
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

/*
 * Rules with $HOME_NET (or a *_SERVERS group) on both ends are about a
 * protected server attacked from inside HOME_NET -- how the peer appears
 * when the service runs on the gateway's host -- and stay on; the texts
 * are ET Open's (../shared/data/et-open).  A rule about a protected host
 * as a client (the other end outside) stays off.
 */
static const struct inspect_case {
	const char *name, *rule;
	int client_side;
} inspect_cases[] = {
	{ "ET 2043996: Impacket WMIExec (dcerpc, HOME_NET both ends)",
	  "alert dcerpc $HOME_NET any -> $HOME_NET any (msg:\"ET INFO Suspected"
	  " Impacket WMIExec Activity\"; flow:established,to_server; content:\""
	  "|3e 00 20 00 5c 00 5c 00 31 00 32 00 37 00 2e 00 30 00 2e 00 30 00 2"
	  "e 00 31 00 5c 00 41 00 44 00 4d 00 49 00 4e 00 24 00 5c 00 5f 00 5f "
	  "00|\"; fast_pattern; reference:url,thedfirreport.com/2023/01/09/unwr"
	  "apping-ursnifs-gifts; reference:url,github.com/fortra/impacket/blob/"
	  "8799a1a2c42ad74423841d21ed5f4193ea54f3d5/examples/wmiexec.py; classt"
	  "ype:bad-unknown; sid:2043996; rev:1; metadata:attack_target Client_E"
	  "ndpoint, created_at 2023_01_26, deployment Internal, former_category"
	  " INFO, confidence Low, signature_severity Informational, updated_at "
	  "2023_01_26;)",
	  0 },
	{ "ET 2024435: WINS memory corruption (tcp, HOME_NET both ends)",
	  "alert tcp $HOME_NET any -> $HOME_NET 42 (msg:\"ET EXPLOIT Possible W"
	  "INS Server Remote Memory Corruption Vulnerability\"; flow:to_server,"
	  "established; dsize:48; content:\"|00 00 78 00|\"; offset:4; depth:4;"
	  " content:\"|00 00 00 05|\"; offset:16; depth:4; fast_pattern; thresh"
	  "old: type both, count 3, seconds 1, track by_src; reference:url,blog"
	  ".fortinet.com/2017/06/14/wins-server-remote-memory-corruption-vulner"
	  "ability-in-microsoft-windows-server; classtype:attempted-user; sid:2"
	  "024435; rev:1; metadata:affected_product Windows_DNS_server, attack_"
	  "target DNS_Server, created_at 2017_06_29, deployment Datacenter, for"
	  "mer_category EXPLOIT, performance_impact Low, confidence Medium, sig"
	  "nature_severity Major, updated_at 2019_07_26;)",
	  0 },
	{ "ET 2032884: AD FS replication (http, HOME_NET both ends)",
	  "alert http $HOME_NET any -> $HOME_NET 80 (msg:\"ET EXPLOIT Possible "
	  "Local Active Directory Federation Services (AD FS) Replication Attem"
	  "pt\"; flow:established,to_server; http.method; content:\"POST\"; htt"
	  "p.uri; content:\"/adfs/services/policystoretransfer\"; startswith; f"
	  "ast_pattern; threshold:type limit,track by_src,count 1,seconds 600; "
	  "reference:url,fireeye.com/blog/threat-research/2021/04/abusing-repli"
	  "cation-stealing-adfs-secrets-over-the-network.html; classtype:web-ap"
	  "plication-attack; sid:2032884; rev:1; metadata:attack_target Server,"
	  " created_at 2021_04_28, deployment Internal, former_category EXPLOIT"
	  ", signature_severity Major, updated_at 2021_04_28;)",
	  0 },
	{ "ET 2017061: SolusVM setuid (HOME_NET -> HTTP_SERVERS)",
	  "alert http $HOME_NET any -> $HTTP_SERVERS any (msg:\"ET EXPLOIT Solu"
	  "sVM 1.13.03 Access to solusvmc-node setuid bin\"; flow:established,t"
	  "o_server; content:\"solusvmc-node\"; fast_pattern; pcre:\"/\\bsolusv"
	  "mc-node\\b/\"; classtype:trojan-activity; sid:2017061; rev:4; metada"
	  "ta:created_at 2013_06_25, updated_at 2019_10_08;)",
	  0 },
	{ "ET 2016679: WebShell title (HTTP_SERVERS -> HOME_NET, to_client)",
	  "alert http $HTTP_SERVERS any -> $HOME_NET any (msg:\"ET WEB_SERVER W"
	  "ebShell - Simple - Title\"; flow:established,to_client; file_data; c"
	  "ontent:\"- Simple Shell</title>\"; classtype:bad-unknown; sid:201667"
	  "9; rev:2; metadata:created_at 2013_03_27, updated_at 2019_07_26;)",
	  0 },
	{ "ET 2013028: curl User-Agent Outbound (HOME_NET -> EXTERNAL_NET)",
	  "alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"ET POLICY curl "
	  "User-Agent Outbound\"; flow:established,to_server; http.user_agent; "
	  "content:\"curl/\"; nocase; startswith; reference:url,www.useragentst"
	  "ring.com/pages/useragentstring.php; classtype:attempted-recon; sid:2"
	  "013028; rev:7; metadata:created_at 2011_06_14, updated_at 2022_05_03"
	  ";)",
	  1 },
	{ "ET 2002825: Web Crawl using Curl (EXTERNAL_NET -> HOME_NET)",
	  "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"ET POLICY POSSI"
	  "BLE Web Crawl using Curl\"; flow:established,to_server; threshold: t"
	  "ype both, track by_src, count 10, seconds 60; http.user_agent; conte"
	  "nt:\"curl\"; nocase; startswith; reference:url,curl.haxx.se; classty"
	  "pe:attempted-recon; sid:2002825; rev:11; metadata:created_at 2010_07"
	  "_30, updated_at 2020_10_19;)",
	  0 },
	/* an inbound/outbound pair of the same request */
	{ "inbound request",
	  "alert http $EXTERNAL_NET any -> $HOME_NET any "
	  "(msg:\"in\"; flow:established,to_server; content:\"x\"; sid:1;)", 0 },
	{ "outbound request",
	  "alert http $HOME_NET any -> $EXTERNAL_NET any "
	  "(msg:\"out\"; flow:established,to_server; content:\"x\"; sid:2;)", 1 },
	{ "outbound answer",
	  "alert http $EXTERNAL_NET any -> $HOME_NET any "
	  "(msg:\"ans\"; flow:established,to_client; content:\"x\"; sid:3;)", 1 },
	{ "answer of a protected server to HOME_NET",
	  "alert http [$HOME_NET,$HTTP_SERVERS] any -> $HOME_NET any "
	  "(msg:\"a\"; flow:from_server; content:\"x\"; sid:4;)", 0 },
	{ "DNS query from HOME_NET",
	  "alert dns $HOME_NET any -> any any "
	  "(msg:\"q\"; dns.query; content:\".top\"; sid:5;)", 1 },
	{ "DNS query to a protected DNS server",
	  "alert dns $HOME_NET any -> $DNS_SERVERS any "
	  "(msg:\"q\"; dns.query; content:\".top\"; sid:6;)", 0 },
	{ "any destination is not the home net",
	  "alert http $HOME_NET any -> any any "
	  "(msg:\"ua\"; flow:to_server; content:\"x\"; sid:7;)", 1 },
};

static void
test_rules_inspect_client_side(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(inspect_cases) / sizeof(inspect_cases[0]);
	    i++) {
		const struct inspect_case *c = &inspect_cases[i];
		struct pp_rule_info ri;

		assert_int_equal(pp_rules_inspect(c->rule, strlen(c->rule), &ri),
		    1);
		if (ri.client_side != c->client_side)
			fail_msg("%s: client_side %d, want %d", c->name,
			    ri.client_side, c->client_side);
		assert_int_equal(ri.conn_level, 0);
	}
}

/* The flowbits names, what they need, their isset groups. */
static void
test_rules_inspect_flowbits(void **state)
{
	static const char rule[] = "alert http $EXTERNAL_NET any -> $HOME_NET "
	    "any (msg:\"f; flowbits:set,fake\"; flowbits:set,a; "
	    "flowbits: isset , b | c ; flowbits:isset,d; flowbits:isnotset,e; "
	    "flowbits:unset,f; flowbits:toggle,g; flowbits:noalert; sid:1;)";
	static const char setter[] = "alert tcp any any -> any any "
	    "(flowbits:set,a; flowbits:set,b; flowbits:set,c; flowbits:set,d; "
	    "flowbits:set,g; sid:2;)";
	struct pp_rule_info ri, one;

	(void)state;
	assert_int_equal(pp_rules_inspect(rule, strlen(rule), &ri), 1);
	assert_true(ri.noalert);
	assert_int_equal(ri.nflowbits, 5);
	assert_false(ri.flowbits_more);
	/* the same names hash the same in another rule */
	assert_int_equal(pp_rules_inspect(setter, strlen(setter), &one), 1);
	assert_int_equal(one.nflowbits, 5);
	assert_int_equal(ri.flowbits[0].name, one.flowbits[0].name);	/* a */
	assert_int_equal(ri.flowbits[0].need, 0);
	assert_int_equal(ri.flowbits[1].name, one.flowbits[1].name);	/* b */
	assert_int_equal(ri.flowbits[2].name, one.flowbits[2].name);	/* c */
	assert_int_equal(ri.flowbits[1].need, 1);
	assert_int_equal(ri.flowbits[2].need, 1);
	assert_int_equal(ri.flowbits[1].group, ri.flowbits[2].group);
	assert_int_equal(ri.flowbits[3].name, one.flowbits[3].name);	/* d */
	assert_int_equal(ri.flowbits[3].need, 1);
	assert_int_not_equal(ri.flowbits[3].group, ri.flowbits[1].group);
	assert_int_equal(ri.flowbits[4].name, one.flowbits[4].name);	/* g */
	assert_int_equal(ri.flowbits[4].need, 0);
	assert_int_not_equal(one.flowbits[0].name, one.flowbits[1].name);
}

/* The line of the output that holds "sid:N;", or NULL. */
static const char *
rule_line(const char *buf, unsigned sid, char *line, size_t cap)
{
	char key[32];
	const char *p, *b, *e;

	snprintf(key, sizeof(key), "sid:%u;", sid);
	if ((p = strstr(buf, key)) == NULL)
		return NULL;
	for (b = p; b > buf && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	snprintf(line, cap, "%.*s", (int)((e ? e : p + strlen(p)) - b), b);
	return line;
}

/*
 * Flowbits across the policy: a client-side noalert rule that sets a bit an
 * active rule tests stays on (and is never a drop); a client-side rule that
 * ALERTS stays off, and a rule that tests only its bit goes off too; a
 * chain of setters is followed; "isset,a|b" needs either; isnotset needs
 * nothing.  The server-side ET rules above come out active.
 */
#define CS_OFF "# peerpipe: client-side rule, off: "

static void
test_rules_policy_flowbits(void **state)
{
	char dir[] = "/tmp/pp-test-rules-XXXXXX", path[256], out[256], err[256];
	char line[4096], *buf;
	struct pp_rules_stats st;
	FILE *f;
	unsigned ncs = 0;
	static const struct {
		unsigned sid;
		const char *prefix;	/* how its line starts in the output */
	} want[] = {
		{ 101, "# peerpipe note: " },	/* the line before it */
		{ 101, "alert http $HOME_NET" },
		{ 102, "drop http $EXTERNAL_NET" },
		{ 103, "# peerpipe: client-side rule, off: alert" },
		{ 104, "# peerpipe: flowbit dependency, off (a flowbit it tests "
		       "is set by no rule that is on): alert" },
		{ 105, "drop http $EXTERNAL_NET" },
		{ 106, "# peerpipe: client-side rule, off: alert" },
		{ 107, "# peerpipe: client-side rule, off: alert" },
		{ 108, "# peerpipe: flowbit dependency, off" },
		{ 109, "# peerpipe: flowbit dependency, off" },
		{ 110, "drop http $EXTERNAL_NET" },
		{ 111, "# peerpipe note: " },
		{ 111, "alert tcp $EXTERNAL_NET any -> $HOME_NET 5432" },
		{ 112, "drop tcp $EXTERNAL_NET" },
	};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/classification.config", dir);
	write_text(path, classes);
	snprintf(path, sizeof(path), "%s/fb.rules", dir);
	write_text(path,
	    /* x: a client-side noalert setter, an active tester */
	    "alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"set x\"; flow:established,to_server; content:\"a\"; flowbits:set,x; flowbits:noalert; classtype:trojan-activity; sid:101;)\n"
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"x?\"; flow:established,to_server; flowbits:isset,x; content:\"b\"; classtype:trojan-activity; sid:102;)\n"
	    /* y: set only by a client-side rule that alerts: both off */
	    "alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"set y, alert\"; flow:established,to_server; content:\"c\"; flowbits:set,y; classtype:trojan-activity; sid:103;)\n"
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"y?\"; flowbits:isset,y; content:\"d\"; classtype:trojan-activity; sid:104;)\n"
	    /* y or x: x is set */
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"y|x?\"; flowbits:isset,y|x; content:\"e\"; classtype:trojan-activity; sid:105;)\n"
	    /* a chain: z's setter needs w, set only by an alerting rule */
	    "alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"set z\"; flow:to_server; flowbits:isset,w; flowbits:set,z; flowbits:noalert; classtype:trojan-activity; sid:106;)\n"
	    "alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"set w, alert\"; flow:to_server; content:\"f\"; flowbits:set,w; classtype:trojan-activity; sid:107;)\n"
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"z?\"; flowbits:isset,z; content:\"g\"; classtype:trojan-activity; sid:108;)\n"
	    /* set by nobody */
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"nobody?\"; flowbits:isset,nobody; content:\"h\"; classtype:trojan-activity; sid:109;)\n"
	    /* isnotset: needs nothing */
	    "alert http $EXTERNAL_NET any -> $HOME_NET any (msg:\"!y\"; flowbits:isnotset,y; content:\"i\"; classtype:trojan-activity; sid:110;)\n"
	    /* a connection-level noalert setter, and its tester */
	    "alert tcp $EXTERNAL_NET any -> $HOME_NET 5432 (msg:\"syn\"; flags:S; flowbits:set,s; flowbits:noalert; classtype:trojan-activity; sid:111;)\n"
	    "alert tcp $EXTERNAL_NET any -> $HOME_NET 5432 (msg:\"s?\"; flowbits:isset,s; content:\"j\"; classtype:trojan-activity; sid:112;)\n");
	snprintf(path, sizeof(path), "%s/et.rules", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < sizeof(inspect_cases) / sizeof(inspect_cases[0]);
	    i++) {
		fprintf(f, "%s\n", inspect_cases[i].rule);
		ncs += (unsigned)inspect_cases[i].client_side;
	}
	fclose(f);
	/* a line over 256 KiB is left out, not passed on unchecked */
	snprintf(path, sizeof(path), "%s/big.rules", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("alert http $HOME_NET any -> $EXTERNAL_NET any (msg:\"", f);
	for (int i = 0; i < 300000; i++)
		fputc('x', f);
	fputs("\"; flow:to_server; sid:200;)\n", f);
	fclose(f);
	snprintf(out, sizeof(out), "%s/out.policy", dir);

	assert_int_equal(pp_rules_write_policy(dir, NULL, 2, out, &st, err,
	    sizeof(err)), 0);
	assert_int_equal(st.rules, 12 + sizeof(inspect_cases) /
	    sizeof(inspect_cases[0]));
	assert_int_equal(st.flowbit_setters, 2);	/* 101, 111 */
	assert_int_equal(st.flowbit_off, 3);		/* 104, 108, 109 */
	assert_int_equal(st.client_side, 3 + ncs);	/* 103, 106 (back), 107 */
	assert_int_equal(st.conn_level, 0);		/* 111 is kept */
	assert_int_equal(pp_rules_count(out), (int)(st.rules - st.client_side -
	    st.conn_level - st.flowbit_off));
	buf = read_text(out);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *l = rule_line(buf, want[i].sid, line, sizeof(line));

		assert_non_null(l);
		if (strncmp(want[i].prefix, "# peerpipe note: ", 17) == 0) {
			/* the line before the rule */
			const char *at = strstr(buf, l);

			assert_true(at > buf + 17);
			for (l = at - 1; l > buf && l[-1] != '\n'; l--)
				;
		}
		if (strncmp(l, want[i].prefix, strlen(want[i].prefix)) != 0)
			fail_msg("sid %u: %.120s, want it to start with %s",
			    want[i].sid, l, want[i].prefix);
	}
	assert_null(strstr(buf, "sid:200;"));
	/* the ET rules: only the client-side ones are off */
	for (size_t i = 0; i < sizeof(inspect_cases) / sizeof(inspect_cases[0]);
	    i++) {
		const char *s = strstr(inspect_cases[i].rule, "sid:");
		const char *l;

		assert_non_null(s);
		l = rule_line(buf, (unsigned)atoi(s + 4), line, sizeof(line));
		assert_non_null(l);
		if ((strncmp(l, CS_OFF, sizeof(CS_OFF) - 1) == 0) !=
		    inspect_cases[i].client_side)
			fail_msg("%s: %.100s", inspect_cases[i].name, l);
	}
	free(buf);
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
		cmocka_unit_test(test_rules_inspect_client_side),
		cmocka_unit_test(test_rules_inspect_flowbits),
		cmocka_unit_test(test_rules_policy_flowbits),
		cmocka_unit_test(test_yaml),
		cmocka_unit_test(test_suri_config_checks),
		cmocka_unit_test(test_nf_validate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
