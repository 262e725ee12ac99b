/* lib/agent/config: the agent's configuration file parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent/config.h"
#include "base/error.h"
#include "base/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_NAME	"test.conf"

/* The three required sections, 2 + 2 + 3 lines. */
#define AGENT		"[agent]\nname = test-agent\n"
#define SIGNALING	"[signaling]\nurl = wss://127.0.0.1:46466/ws\n"
#define ROOM		"[room]\nname = test-room\n" \
			"uuid = 123e4567-e89b-42d3-a456-426614174000\n"
#define BASE		AGENT SIGNALING ROOM	/* lines 1-7 */

/* Big: keep them off the stack (cmocka's tests run on the main stack, but
 * ASan's frames are large). */
static struct pp_cfg cfg;
static struct pp_cfg_errors errs;

static int
parse(const char *text)
{
	return pp_cfg_parse(FILE_NAME, text, strlen(text), &cfg, &errs);
}

static void
print_errors(void)
{
	for (size_t i = 0; i < errs.n && i < PP_CFG_MAX_ERRORS; i++)
		print_message("  %s\n", errs.msg[i]);
}

static void
assert_ok(const char *text)
{
	int rc = parse(text);

	if (rc != 0)
		print_errors();
	assert_int_equal(rc, 0);
	assert_int_equal(errs.n, 0);
}

/* msg is "test.conf:LINE: ..." (or "test.conf: ..." for line 0) and has sub. */
static void
assert_msg(const char *msg, int line, const char *sub)
{
	char prefix[64];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), FILE_NAME ":%d: ", line);
	else
		snprintf(prefix, sizeof(prefix), FILE_NAME ": ");
	if (strncmp(msg, prefix, strlen(prefix)) != 0 || strstr(msg, sub) == NULL) {
		print_message("want %s...%s\n got %s\n", prefix, sub, msg);
		fail();
	}
}

static const char full[] =
	"# Every key, with values that are not the defaults.\n"	/* 1 */
	"[agent]\n"
	"name = gw one\n"
	"control = /run/pp/ctl.sock\n"
	"control_mode = 0660\n"						/* 5 */
	"state_dir = /var/lib/peerpipe\n"
	"log_level = debug\n"
	"log_format = json\n"
	"\n"
	"[signaling]\n"							/* 10 */
	"url = wss://signal.example.com:46466/ws\n"
	"ca = /etc/peerpipe/ca.pem\n"
	"insecure = yes\n"
	"\n"
	"[room]\n"							/* 15 */
	"name = office (main)\n"
	"uuid = 123e4567-e89b-42d3-a456-426614174000\n"
	"\n"
	"[ice]\n"
	"stun = stun.example.net:3478\n"				/* 20 */
	"stun = 192.0.2.1:19302\n"
	"turn = turn:turn.example.net:3478?transport=udp alice s3cret\n"
	"turn = turns:turn.example.net:5349 bob two words\n"
	"port_min = 50000\n"
	"port_max = 50100\n"						/* 25 */
	"\n"
	"[tunnel]\n"
	"compression = zstd-hc\n"
	"unreliable = on\n"
	"extended = true\n"						/* 30 */
	"\n"
	"[service web]\n"
	"target = 127.0.0.1:8080\n"
	"port = 80\n"
	"\n"								/* 35 */
	"[service dns]\n"
	"target = resolver.internal:53\n"
	"proto = udp\n"
	"\n"
	"[service dns-tcp]\n"						/* 40 */
	"target = resolver.internal:53\n"
	"\n"
	"[consume]\n"
	"bind = 127.0.0.1\n"
	"peers = alice-laptop, bob (home)\n"				/* 45 */
	"\n"
	"[forward pg]\n"
	"peer = db-gateway\n"
	"port = 5432\n"
	"listen = 127.0.0.1:15432\n"					/* 50 */
	"\n"
	"[forward syslog]\n"
	"peer = db-gateway\n"
	"port = 514\n"
	"proto = udp\n"							/* 55 */
	"listen = 0.0.0.0:1514\n";

static void
test_full(void **state)
{
	(void)state;
	assert_ok(full);
	assert_string_equal(cfg.path, FILE_NAME);
	assert_string_equal(cfg.name, "gw one");
	assert_string_equal(cfg.control, "/run/pp/ctl.sock");
	assert_int_equal(cfg.control_mode, 0660);
	assert_string_equal(cfg.state_dir, "/var/lib/peerpipe");
	assert_int_equal(cfg.log_level, PP_LOG_DEBUG);
	assert_int_equal(cfg.log_json, 1);
	assert_string_equal(cfg.url, "wss://signal.example.com:46466/ws");
	assert_string_equal(cfg.ca, "/etc/peerpipe/ca.pem");
	assert_int_equal(cfg.insecure, 1);
	assert_string_equal(cfg.room_name, "office (main)");
	assert_string_equal(cfg.room_uuid, "123e4567-e89b-42d3-a456-426614174000");

	assert_int_equal(cfg.nstun, 2);
	assert_string_equal(cfg.stun[0], "stun.example.net:3478");
	assert_string_equal(cfg.stun[1], "192.0.2.1:19302");
	assert_int_equal(cfg.nturn, 2);
	assert_string_equal(cfg.turn[0].url, "turn:turn.example.net:3478?transport=udp");
	assert_string_equal(cfg.turn[0].username, "alice");
	assert_string_equal(cfg.turn[0].password, "s3cret");
	assert_string_equal(cfg.turn[1].url, "turns:turn.example.net:5349");
	assert_string_equal(cfg.turn[1].username, "bob");
	assert_string_equal(cfg.turn[1].password, "two words");
	assert_int_equal(cfg.port_min, 50000);
	assert_int_equal(cfg.port_max, 50100);

	assert_int_equal(cfg.compression, PP_CFG_COMP_ZSTD_HC);
	assert_int_equal(cfg.unreliable, 1);
	assert_int_equal(cfg.extended, 1);

	assert_int_equal(cfg.nservices, 3);
	assert_string_equal(cfg.services[0].name, "web");
	assert_string_equal(cfg.services[0].host, "127.0.0.1");
	assert_int_equal(cfg.services[0].target_port, 8080);
	assert_int_equal(cfg.services[0].port, 80);
	assert_int_equal(cfg.services[0].proto, PP_TUN_TCP);
	assert_int_equal(cfg.services[0].line, 32);
	assert_string_equal(cfg.services[1].name, "dns");
	assert_string_equal(cfg.services[1].host, "resolver.internal");
	assert_int_equal(cfg.services[1].port, 53);	/* the target's */
	assert_int_equal(cfg.services[1].proto, PP_TUN_UDP);
	/* Same port, other protocol: not a duplicate. */
	assert_int_equal(cfg.services[2].port, 53);
	assert_int_equal(cfg.services[2].proto, PP_TUN_TCP);

	assert_string_equal(cfg.bind, "127.0.0.1");
	assert_int_equal(cfg.npeers, 2);
	assert_string_equal(cfg.peers[0], "alice-laptop");
	assert_string_equal(cfg.peers[1], "bob (home)");

	assert_int_equal(cfg.nforwards, 2);
	assert_string_equal(cfg.forwards[0].name, "pg");
	assert_string_equal(cfg.forwards[0].peer, "db-gateway");
	assert_int_equal(cfg.forwards[0].port, 5432);
	assert_int_equal(cfg.forwards[0].proto, PP_TUN_TCP);
	assert_string_equal(cfg.forwards[0].listen_host, "127.0.0.1");
	assert_int_equal(cfg.forwards[0].listen_port, 15432);
	assert_int_equal(cfg.forwards[0].line, 47);
	assert_int_equal(cfg.forwards[1].proto, PP_TUN_UDP);
	assert_string_equal(cfg.forwards[1].listen_host, "0.0.0.0");
}

static void
test_defaults(void **state)
{
	struct pp_cfg *d = malloc(sizeof(*d));

	(void)state;
	assert_non_null(d);
	memset(d, 0xa5, sizeof(*d));
	pp_cfg_defaults(d);
	assert_int_equal(d->control_mode, 0600);
	assert_int_equal(d->log_level, PP_LOG_INFO);
	assert_int_equal(d->log_json, 0);
	assert_int_equal(d->compression, PP_CFG_COMP_NONE);
	assert_int_equal(d->nservices + d->nforwards + d->npeers, 0);
	assert_int_equal(d->nstun + d->nturn, 0);
	assert_string_equal(d->control, "");
	assert_string_equal(d->bind, "");

	/* The minimal file gives the defaults, and parse resets a used cfg. */
	assert_ok(full);
	assert_ok(BASE);
	assert_int_equal(cfg.control_mode, 0600);
	assert_int_equal(cfg.log_level, PP_LOG_INFO);
	assert_int_equal(cfg.insecure, 0);
	assert_int_equal(cfg.turn_from_signaling, 0);
	assert_int_equal(cfg.compression, PP_CFG_COMP_NONE);
	assert_int_equal(cfg.unreliable + cfg.extended, 0);
	assert_int_equal(cfg.port_min + cfg.port_max, 0);
	assert_int_equal(cfg.nservices + cfg.nforwards + cfg.npeers, 0);
	assert_string_equal(cfg.state_dir, "");
	free(d);
}

static void
test_quoting_comments(void **state)
{
	(void)state;
	assert_ok("\xef\xbb\xbf# a byte order mark, then comments\r\n"
	    "  ; indented comment\r\n"
	    "\t# tab\r\n"
	    "[agent]   # trailing after a header\r\n"
	    "name = \"  #1 ;x\"   ; quotes keep # ; and leading spaces\r\n"
	    "state_dir = \"/tmp/a \\\"b\\\" \\\\c\"#comment right after\r\n"
	    "control = /run/a;b#c   # ; and # without a space before stay\r\n"
	    "[signaling]\r\n"
	    "url=wss://h.example:1/ws#frag\r\n"
	    "[ room ]\r\n"
	    "name\t=\ttest-room\t\r\n"
	    "uuid = 123e4567-e89b-42d3-a456-426614174000 ; comment\r\n"
	    "[tunnel]\n"
	    "extended = OFF\n"
	    "unreliable = 1\n"
	    "[consume]\n"
	    "peers = \"ab#cd, efgh\"\n");
	assert_int_equal(cfg.nlegacy_peers, 0);
	assert_string_equal(cfg.name, "  #1 ;x");
	assert_string_equal(cfg.state_dir, "/tmp/a \"b\" \\c");
	assert_string_equal(cfg.control, "/run/a;b#c");
	assert_string_equal(cfg.url, "wss://h.example:1/ws#frag");
	assert_string_equal(cfg.room_name, "test-room");
	assert_string_equal(cfg.room_uuid, "123e4567-e89b-42d3-a456-426614174000");
	assert_int_equal(cfg.extended, 0);
	assert_int_equal(cfg.unreliable, 1);
	assert_int_equal(cfg.npeers, 2);
	assert_string_equal(cfg.peers[0], "ab#cd");
	assert_string_equal(cfg.peers[1], "efgh");
}

static void
test_ipv6(void **state)
{
	(void)state;
	assert_ok(AGENT
	    "[signaling]\nurl = wss://[::1]:46466/ws\n" ROOM
	    "[ice]\nstun = [2001:db8::1]:3478\n"
	    "turn = turn:[2001:db8::2]:3478 u p\n"
	    "[service web]\ntarget = [2001:db8::5]:443\n"
	    "[consume]\nbind = [::1]\n"
	    "[forward f]\npeer = some-peer\nport = 443\nlisten = [::1]:8443\n");
	assert_string_equal(cfg.url, "wss://[::1]:46466/ws");
	assert_string_equal(cfg.stun[0], "[2001:db8::1]:3478");
	assert_string_equal(cfg.services[0].host, "2001:db8::5");
	assert_int_equal(cfg.services[0].target_port, 443);
	assert_int_equal(cfg.services[0].port, 443);
	assert_string_equal(cfg.bind, "::1");
	assert_string_equal(cfg.forwards[0].listen_host, "::1");
	assert_int_equal(cfg.forwards[0].listen_port, 8443);

	assert_ok(BASE "[consume]\nbind = fd00::7\n");
	assert_string_equal(cfg.bind, "fd00::7");
}

static void
test_ips_policy_address(void **state)
{
	(void)state;
	/* defaults */
	assert_ok(BASE);
	assert_int_equal(cfg.ips_mode, PP_CFG_IPS_AUTO);
	assert_int_equal(cfg.ips_evidence_bytes, 65536);
	assert_int_equal(cfg.ips_evidence_total_bytes, 64 * 1024 * 1024);
	assert_int_equal(cfg.ban_seconds, 3600);
	assert_int_equal(cfg.scan_ports, 5);
	assert_int_equal(cfg.scan_window, 60);
	assert_int_equal(cfg.ips_react_severity, 2);
	assert_int_equal(cfg.ips_et_drop_priority, 2);
	assert_string_equal(cfg.policy, "");
	assert_ok(BASE
	    "[ips]\nmode = inline\ninterface = eth0\nrules = /etc/pp.rules\n"
	    "et_open = /var/lib/suricata/rules\net_drop_priority = 2\n"
	    "queue = 7\nfail_open = yes\nreact = blocked\nreact_severity = 1\n"
	    "ban_seconds = 60\nscan_ports = 3\nscan_window = 10\n"
	    "evidence_bytes = 4096\nsuricata = /opt/suricata/bin/suricata\n"
	    "evidence_total_bytes = 1048576\n"
	    "[ice]\naddress = 127.0.0.1\naddress = ::1\n");
	assert_int_equal(cfg.ips_mode, PP_CFG_IPS_INLINE);
	assert_int_equal(cfg.ips_evidence_bytes, 4096);
	assert_int_equal(cfg.ips_evidence_total_bytes, 1048576);
	assert_string_equal(cfg.ips_suricata, "/opt/suricata/bin/suricata");
	assert_string_equal(cfg.ips_interface, "eth0");
	assert_string_equal(cfg.ips_rules, "/etc/pp.rules");
	assert_int_equal(cfg.ips_queue, 7);
	assert_true(cfg.ips_fail_open);
	assert_true(cfg.ips_react_blocked_only);
	assert_int_equal(cfg.ips_react_severity, 1);
	assert_int_equal(cfg.ban_seconds, 60);
	assert_int_equal(cfg.scan_ports, 3);
	assert_int_equal(cfg.naddrs, 2);
	assert_string_equal(cfg.addrs[1], "::1");
	assert_ok(BASE "[ips]\nmode = off\nevidence_bytes = 0\n");
	assert_int_equal(cfg.ips_mode, PP_CFG_IPS_OFF);
	assert_int_equal(cfg.ips_evidence_bytes, 0);
}

struct bad {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	int line;
	const char *sub;
};

/* Each text has exactly one error, at line, with sub in its message. */
static const struct bad bad[] = {
	/* structure */
	{ BASE "[bogus]\nfoo = 1\n", 0, 8, "unknown section \"bogus\": valid sections are [agent], [signaling], [room], [ice], [tunnel], [service NAME], [consume], [forward NAME], [ips]" },
	{ BASE "[tunnel]\nfoo = 1\n", 0, 9, "unknown key \"foo\" in [tunnel]: valid keys are compression, unreliable, extended" },
	{ BASE "[tunnel]\nurl = wss://x/\n", 0, 9, "(`url` belongs in [signaling])" },
	{ BASE "[tunnel]\ncompression = lz4\ncompression = zstd\n", 0, 10, "[tunnel] duplicate key `compression` (first at line 9): remove one" },
	{ BASE "[agent]\n", 0, 8, "[agent] already opened at line 1: merge the two sections" },
	{ BASE "[tunnel\n", 0, 8, "section header without `]`" },
	{ BASE "[tunnel] x\n", 0, 8, "unexpected text after `]`" },
	{ BASE "[tunnel web]\n", 0, 8, "[tunnel] takes no name: write [tunnel]" },
	{ BASE "[service]\ntarget = h:1\n", 0, 8, "[service] needs a name: write [service NAME]" },
	{ BASE "[service a b]\ntarget = h:1\n", 0, 8, "service name \"a b\" invalid" },
	{ BASE "just words\n", 0, 8, "expected `key = value`, a [section] or a # comment" },
	{ BASE "= 1\n", 0, 8, "missing key before `=`" },
	{ BASE "[tunnel]\nCompression = lz4\n", 0, 9, "invalid key \"Compression\": keys are lowercase" },
	{ "name = x\n" BASE, 0, 1, "key `name` outside a section: put it under its [section] header" },
	/* [ips], [ice] address, [agent] policy */
	{ BASE "[ips]\nmode = on\n", 0, 9, "[ips] mode \"on\" unknown: use off, auto, inline or ids" },
	{ BASE "[ips]\nreact = some\n", 0, 9, "use alerts (cut on every alert) or blocked" },
	{ BASE "[ips]\nreact_severity = 5\n", 0, 9, "react_severity \"5\": use a whole number from 1 to 4" },
	{ BASE "[ips]\nscan_ports = 1\n", 0, 9, "scan_ports \"1\": use a whole number from 2 to 1000" },
	{ BASE "[ips]\nban_seconds = -3\n", 0, 9, "ban_seconds \"-3\": use a whole number" },
	{ BASE "[ips]\ninterface = eth0/1\n", 0, 9, "is not a network interface name" },
	{ BASE "[ips]\nsuricata = suricata\n", 0, 9, "suricata \"suricata\": give the absolute path" },
	{ BASE "[ips]\nevidence_bytes = 100\n", 0, 9, "evidence_bytes 100: use 0 (no pcap evidence) or at least 1024" },
	{ BASE "[ips]\nevidence_bytes = 99999999\n", 0, 9, "evidence_bytes \"99999999\": use a whole number from 0 to 16777216" },
	{ BASE "[ips]\nevidence_total_bytes = 1000\n", 0, 9, "evidence_total_bytes \"1000\": use a whole number from 1024 to 1073741824" },
	{ BASE "[ips]\nevidence_total_bytes = 2147483648\n", 0, 9, "evidence_total_bytes \"2147483648\": use a whole number from 1024 to 1073741824" },
	{ BASE "[ips]\nmode = ids\nmode = inline\n", 0, 10, "duplicate key `mode`" },
	{ BASE "[ice]\naddress = my-laptop\n", 0, 9, "[ice] address \"my-laptop\": use an IP address" },
	{ BASE "[tunnel]\ncompression =\n", 0, 9, "[tunnel] compression is empty: give a value, or remove the line" },
	{ BASE "[tunnel]\ncompression = \"\"\n", 0, 9, "compression is empty" },
	/* quoting */
	{ "[agent]\nname = \"test-agent\n" SIGNALING ROOM, 0, 2, "missing closing `\"` in the value" },
	{ "[agent]\nname = \"test\\agent\"\n" SIGNALING ROOM, 0, 2, "unknown escape in quoted value" },
	{ "[agent]\nname = \"test-agent\" x\n" SIGNALING ROOM, 0, 2, "text after the closing `\"`" },
	/* bytes */
	{ BASE "# a\0b\n", sizeof(BASE "# a\0b\n") - 1, 8, "NUL byte at column 4" },
	{ BASE "# caf\xc3(\n", 0, 8, "invalid UTF-8 at column 6" },
	{ BASE "# overlong \xc0\xaf\n", 0, 8, "invalid UTF-8 at column 12" },
	{ BASE "# surrogate \xed\xa0\x80\n", 0, 8, "invalid UTF-8" },
	{ BASE "# cut \xe2\x82\n", 0, 8, "invalid UTF-8" },
	{ BASE "# bell \a\n", 0, 8, "control character 0x07 at column 8" },
	{ BASE "# cr \r in the middle\n", 0, 8, "control character 0x0d" },
	/* [agent] */
	{ "[agent]\nname = abc\n" SIGNALING ROOM, 0, 2, "[agent] name \"abc\" is not a valid name: use 4-48 characters" },
	{ "[agent]\nname = t\xc3\xa9st-agent\n" SIGNALING ROOM, 0, 2, "is not a valid name" },
	{ AGENT "control_mode = 0644\n" SIGNALING ROOM, 0, 3, "[agent] control_mode \"0644\" not allowed: use 0600 (owner only) or 0660" },
	{ AGENT "log_level = loud\n" SIGNALING ROOM, 0, 3, "[agent] log_level \"loud\" unknown: use error, warn, info or debug" },
	{ AGENT "log_format = xml\n" SIGNALING ROOM, 0, 3, "[agent] log_format \"xml\" unknown: use text or json" },
	/* [signaling] */
	{ AGENT "[signaling]\nurl = https://h/ws\n" ROOM, 0, 4, "[signaling] url \"https://h/ws\" must start with wss:// (or ws:// without TLS)" },
	{ AGENT "[signaling]\nurl = wss:///ws\n" ROOM, 0, 4, "has no host" },
	{ AGENT "[signaling]\nurl = wss://\n" ROOM, 0, 4, "has no host" },
	{ AGENT "[signaling]\nurl = ws://:80/\n" ROOM, 0, 4, "missing host before `:PORT`" },
	{ AGENT "[signaling]\nurl = wss://h:99999/ws\n" ROOM, 0, 4, "port 99999 out of range 1-65535" },
	{ AGENT "[signaling]\nurl = wss://u@h/ws\n" ROOM, 0, 4, "user names in the url are not supported" },
	{ AGENT "[signaling]\nurl = wss://h/a b\n" ROOM, 0, 4, "contains a space" },
	{ AGENT "[signaling]\nurl = wss://h/ws\ninsecure = maybe\n" ROOM, 0, 5, "[signaling] insecure \"maybe\" is not a boolean: use yes or no" },
	/* [room] */
	{ AGENT SIGNALING "[room]\nname = test-room\nuuid = 123E4567-E89B-42D3-A456-426614174000\n", 0, 7, "must be lowercase: write 123e4567-e89b-42d3-a456-426614174000" },
	{ AGENT SIGNALING "[room]\nname = test-room\nuuid = 123e4567-e89b-12d3-a456-426614174000\n", 0, 7, "is not a canonical UUID version 4" },
	{ AGENT SIGNALING "[room]\nname = test-room\n", 0, 5, "[room] uuid missing: add `uuid = ...` (generate one with `cat /proc/sys/kernel/random/uuid`)" },
	{ AGENT SIGNALING "[room]\nname = x\nuuid = 123e4567-e89b-42d3-a456-426614174000\n", 0, 6, "[room] name \"x\" is not a valid name" },
	/* [ice] */
	{ BASE "[ice]\nstun = stun.example.net\n", 0, 9, "missing `:PORT`" },
	{ BASE "[ice]\nturn_from_signaling = sometimes\n", 0, 9, "[ice] turn_from_signaling \"sometimes\" is not a boolean: use yes or no" },
	{ BASE "[ice]\nstun = 2001:db8::1:3478\n", 0, 9, "IPv6 addresses need brackets, like [2001:db8::1]:" },
	{ BASE "[ice]\nstun = [2001:db8::1:3478\n", 0, 9, "missing `]` after the IPv6 address" },
	{ BASE "[ice]\nstun = [zz::1]:3478\n", 0, 9, "\"zz::1\" is not an IPv6 address" },
	{ BASE "[ice]\nstun = 300.1.1.1:3478\n", 0, 9, "\"300.1.1.1\" is not a host name or IP address" },
	{ BASE "[ice]\nstun = bad!host:3478\n", 0, 9, "is not a host name or IP address" },
	{ BASE "[ice]\nturn = stun:h:3478 u p\n", 0, 9, "must start with turn: or turns:" },
	{ BASE "[ice]\nturn = turn:h:3478\n", 0, 9, "missing user name and password: write `turn = URL USER PASSWORD`" },
	{ BASE "[ice]\nturn = turn:h:3478 user\n", 0, 9, "missing user name and password" },
	{ BASE "[ice]\nturn = turns:h:5349?transport=udp u p\n", 0, 9, "turns: takes no parameter but ?transport=tcp" },
	{ BASE "[ice]\nturn = turn:h:3478?transport=sctp u p\n", 0, 9, "the only parameter is ?transport=udp or ?transport=tcp" },
	{ BASE "[ice]\nturn = turn:h u p\n", 0, 9, "missing `:PORT`" },
	{ BASE "[ice]\nport_min = 40000\n", 0, 9, "[ice] port_min without port_max" },
	{ BASE "[ice]\nport_max = 40000\n", 0, 9, "[ice] port_max without port_min" },
	{ BASE "[ice]\nport_max = 40000\nport_min = 40001\n", 0, 9, "[ice] port_max 40000 is below port_min 40001" },
	{ BASE "[ice]\nport_min = 0\nport_max = 1\n", 0, 9, "[ice] port_min 0 out of range 1-65535" },
	/* [tunnel] */
	{ BASE "[tunnel]\ncompression = gzip\n", 0, 9, "[tunnel] compression \"gzip\" unknown: use none, lz4, zstd, zstd-hc or adaptive" },
	/* [service] */
	{ BASE "[service db]\ntarget = h:5432\nport = 70000\n", 0, 10, "service \"db\": port 70000 out of range 1-65535" },
	{ BASE "[service db]\ntarget = h:5432\nport = 0\n", 0, 10, "service \"db\": port 0 out of range 1-65535" },
	{ BASE "[service db]\ntarget = h:5432\nport = 99999999999999999999999\n", 0, 10, "out of range 1-65535" },
	{ BASE "[service db]\ntarget = h:5432\nport = -1\n", 0, 10, "service \"db\": port \"-1\" is not a number: use 1-65535" },
	{ BASE "[service db]\ntarget = h:5432\nport = 5432x\n", 0, 10, "is not a number" },
	{ BASE "[service db]\ntarget = h:70000\n", 0, 9, "service \"db\": target \"h:70000\": port 70000 out of range 1-65535" },
	{ BASE "[service db]\ntarget = h:\n", 0, 9, "port \"\" is not a number" },
	{ BASE "[service db]\ntarget = ::1:5432\n", 0, 9, "IPv6 addresses need brackets" },
	{ BASE "[service db]\ntarget = [::1]5432\n", 0, 9, "expected `:PORT` after `]`" },
	{ BASE "[service db]\nport = 5432\n", 0, 8, "service \"db\": target missing: add `target = HOST:PORT`" },
	{ BASE "[service db]\ntarget = h:5432\nproto = sctp\n", 0, 10, "service \"db\": proto \"sctp\" unknown: use tcp or udp" },
	{ BASE "[service db]\ntarget = h:1\n[service db]\ntarget = h:2\n", 0, 10, "service \"db\" already defined at line 8" },
	{ BASE "[service a]\ntarget = h:5432\n[service b]\ntarget = g:5432\n", 0, 11, "service \"b\": port 5432/tcp already offered by service \"a\" (line 8)" },
	{ BASE "[service a]\ntarget = h:1\nport = 99\n[service b]\ntarget = g:2\nport = 99\n", 0, 13, "port 99/tcp already offered" },
	{ BASE "[service a]\ntarget = h:1\nproto = udp\nport = 99\n[service b]\nproto = udp\ntarget = g:99\n", 0, 14, "port 99/udp already offered" },
	/* [consume] */
	{ BASE "[consume]\nbind = localhost\n", 0, 9, "[consume] bind \"localhost\": use auto or an IP address" },
	{ BASE "[consume]\npeers = alice-laptop, ab\n", 0, 9, "[consume] peers: \"ab\" is not a valid user name" },
	{ BASE "[consume]\npeers = alice-laptop,,bob-laptop\n", 0, 9, "empty name between commas" },
	{ BASE "[consume]\npeers = alice-laptop,\n", 0, 9, "empty name between commas" },
	{ BASE "[consume]\npeers = alice-laptop, alice-laptop\n", 0, 9, "\"alice-laptop\" is listed twice" },
	{ AGENT "legacy_peers = old-scanner, v1\n" SIGNALING ROOM, 0, 3, "[agent] legacy_peers: \"v1\" is not a valid user name" },
	{ AGENT "legacy_peers = old-scanner, old-scanner\n" SIGNALING ROOM, 0, 3, "[agent] legacy_peers: \"old-scanner\" is listed twice" },
	/* [forward] */
	{ BASE "[forward pg]\npeer = some-peer\nport = 5432\n", 0, 8, "forward \"pg\": listen missing: add `listen = ADDRESS:PORT`" },
	{ BASE "[forward pg]\nport = 5432\nlisten = 127.0.0.1:5432\n", 0, 8, "forward \"pg\": peer missing" },
	{ BASE "[forward pg]\npeer = some-peer\nlisten = 127.0.0.1:5432\n", 0, 8, "forward \"pg\": port missing" },
	{ BASE "[forward pg]\npeer = some-peer\nport = 5432\nlisten = localhost:5432\n", 0, 11, "\"localhost\" is not an IP address (a name is not allowed here)" },
	{ BASE "[forward pg]\npeer = x\nport = 5432\nlisten = 127.0.0.1:5432\n", 0, 9, "forward \"pg\": peer \"x\" is not a valid name" },
	{ BASE "[forward a]\npeer = some-peer\nport = 1\nlisten = 127.0.0.1:80\n"
	    "[forward b]\npeer = some-peer\nport = 2\nlisten = 127.0.0.1:80\n", 0, 15, "forward \"b\": listen address already used by forward \"a\" (line 8)" },
	{ BASE "[forward a]\npeer = some-peer\nport = 1\nlisten = 127.0.0.1:80\n"
	    "[forward a]\npeer = some-peer\nport = 2\nlisten = 127.0.0.1:81\n", 0, 12, "forward \"a\" already defined at line 8" },
};

static void
test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad *b = &bad[i];
		size_t len = b->len ? b->len : strlen(b->text);
		int rc = pp_cfg_parse(FILE_NAME, b->text, len, &cfg, &errs);

		if (rc != PP_ECONFIG || errs.n != 1) {
			print_message("case %zu (%s): rc %d, %zu errors\n", i,
			    b->sub, rc, errs.n);
			print_errors();
			fail();
		}
		assert_msg(errs.msg[0], b->line, b->sub);
	}
}

static void
test_required(void **state)
{
	(void)state;
	/* Nothing at all: four errors, none with a line. */
	assert_int_equal(parse(""), PP_ECONFIG);
	assert_int_equal(errs.n, 4);
	assert_msg(errs.msg[0], 0, "[agent] name missing: add `name = ...` under [agent]");
	assert_msg(errs.msg[1], 0, "[signaling] url missing: add `url = wss://HOST:46466/ws` under [signaling]");
	assert_msg(errs.msg[2], 0, "[room] name missing");
	assert_msg(errs.msg[3], 0, "[room] uuid missing: add `uuid = ...` under [room] (generate one with `cat /proc/sys/kernel/random/uuid`)");
	assert_string_equal(errs.msg[3], FILE_NAME ": [room] uuid missing: add `uuid = ...` under [room] (generate one with `cat /proc/sys/kernel/random/uuid`)");

	/* Sections present but empty: the section's line. */
	assert_int_equal(parse("\n[agent]\n[signaling]\n\n[room]\n"), PP_ECONFIG);
	assert_int_equal(errs.n, 4);
	assert_msg(errs.msg[0], 2, "[agent] name missing");
	assert_msg(errs.msg[1], 3, "[signaling] url missing");
	assert_msg(errs.msg[2], 5, "[room] name missing");
	assert_msg(errs.msg[3], 5, "[room] uuid missing");

	/* A key that is present but invalid is reported once, not as missing. */
	assert_int_equal(parse(AGENT SIGNALING "[room]\nname = test-room\nuuid = nope\n"), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
}

static void
test_many_errors(void **state)
{
	size_t cap = 64 * 16 + 256, o = 0;
	char *text = malloc(cap);

	(void)state;
	assert_non_null(text);
	/* Different kinds in one file, each reported in order. */
	assert_int_equal(parse(
	    "[agent]\n"				/* 1 */
	    "name = ab\n"			/* 2: invalid name */
	    "log_level = loud\n"		/* 3 */
	    "[signaling]\n"
	    "url = http://x/\n"			/* 5 */
	    "[room]\n"
	    "name = test-room\n"
	    "uuid = 123e4567-e89b-42d3-a456-426614174000\n"
	    "[service db]\n"			/* 9: no target */
	    "port = 70000\n"			/* 10 */
	    "[bogus]\n"				/* 11 */
	    "[tunnel]\n"
	    "extended = perhaps\n"),		/* 13 */
	    PP_ECONFIG);
	assert_int_equal(errs.n, 7);
	assert_msg(errs.msg[0], 2, "name \"ab\"");
	assert_msg(errs.msg[1], 3, "log_level");
	assert_msg(errs.msg[2], 5, "url");
	assert_msg(errs.msg[3], 10, "service \"db\": port 70000 out of range 1-65535");
	assert_msg(errs.msg[4], 9, "service \"db\": target missing");
	assert_msg(errs.msg[5], 11, "unknown section");
	assert_msg(errs.msg[6], 13, "extended");

	/* More than can be stored: all counted, the first ones kept. */
	o += (size_t)snprintf(text + o, cap - o, "%s", BASE);
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(text + o, cap - o, "junk %d\n", i);
	assert_int_equal(parse(text), PP_ECONFIG);
	assert_int_equal(errs.n, 40);
	for (int i = 0; i < PP_CFG_MAX_ERRORS; i++)
		assert_msg(errs.msg[i], 8 + i, "expected `key = value`");
	free(text);
}

static void
test_long_line(void **state)
{
	size_t n = PP_CFG_LINE_MAX + 200;
	char *text = malloc(n + sizeof(BASE) + 16);
	size_t o;

	(void)state;
	assert_non_null(text);
	/* Exactly the limit is fine (a comment line of 4096 bytes). */
	o = (size_t)sprintf(text, "%s", BASE);
	text[o++] = '#';
	memset(text + o, 'x', PP_CFG_LINE_MAX - 1);
	o += PP_CFG_LINE_MAX - 1;
	text[o++] = '\n';
	text[o] = '\0';
	assert_ok(text);

	/* One byte more is an error, and the next line is still read. */
	o = (size_t)sprintf(text, "%s", BASE);
	text[o++] = '#';
	memset(text + o, 'x', PP_CFG_LINE_MAX);
	o += PP_CFG_LINE_MAX;
	o += (size_t)sprintf(text + o, "\n[tunnel]\nfoo = 1");	/* no final newline */
	assert_int_equal(parse(text), PP_ECONFIG);
	assert_int_equal(errs.n, 2);
	assert_msg(errs.msg[0], 8, "line is 4097 bytes long, at most 4096");
	assert_msg(errs.msg[1], 10, "unknown key");
	free(text);

	/* A whole file over the cap is refused before it is read. */
	n = PP_CFG_FILE_MAX + 1;
	text = malloc(n);
	assert_non_null(text);
	memset(text, '\n', n);
	assert_int_equal(pp_cfg_parse(FILE_NAME, text, n, &cfg, &errs), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 0, "file is 1048577 bytes, at most 1048576");
	free(text);
}

/* head, then line(i) for each i < count. */
static char *
repeat(const char *head, int count, int (*line)(char *, size_t, int))
{
	size_t cap = strlen(head) + (size_t)count * 96 + 1, o;
	char *text = malloc(cap);

	assert_non_null(text);
	o = (size_t)snprintf(text, cap, "%s", head);
	for (int i = 0; i < count; i++)
		o += (size_t)line(text + o, cap - o, i);
	return text;
}

static int
service_line(char *b, size_t n, int i)
{
	return snprintf(b, n, "[service s%d]\ntarget = h:%d\n", i, i + 1);
}

static int
stun_line(char *b, size_t n, int i)
{
	return snprintf(b, n, "stun = s%d.example:%d\n", i, i + 1);
}

static int
turn_line(char *b, size_t n, int i)
{
	return snprintf(b, n, "turn = turn:t%d.example:%d u p\n", i, i + 1);
}

static int
forward_line(char *b, size_t n, int i)
{
	return snprintf(b, n, "[forward f%d]\npeer = some-peer\nport = 1\n"
	    "listen = 127.0.0.1:%d\n", i, i + 1);
}

static int
peer_item(char *b, size_t n, int i)
{
	return snprintf(b, n, ", peer%d-%d", i, i + 1);
}

static void
test_limits(void **state)
{
	char *t;

	(void)state;
	t = repeat(BASE, PP_CFG_MAX_SERVICES, service_line);
	assert_ok(t);
	assert_int_equal(cfg.nservices, PP_CFG_MAX_SERVICES);
	free(t);
	t = repeat(BASE, PP_CFG_MAX_SERVICES + 2, service_line);
	assert_int_equal(parse(t), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 8 + 2 * PP_CFG_MAX_SERVICES, "too many services: at most 50");
	assert_int_equal(cfg.nservices, PP_CFG_MAX_SERVICES);
	free(t);

	t = repeat(BASE "[ice]\n", PP_CFG_MAX_ICE, stun_line);
	assert_ok(t);
	assert_int_equal(cfg.nstun, PP_CFG_MAX_ICE);
	free(t);
	t = repeat(BASE "[ice]\n", PP_CFG_MAX_ICE + 1, stun_line);
	assert_int_equal(parse(t), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 9 + PP_CFG_MAX_ICE, "[ice] stun: at most 8 servers");
	free(t);

	t = repeat(BASE "[ice]\n", PP_CFG_MAX_ICE + 1, turn_line);
	assert_int_equal(parse(t), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 9 + PP_CFG_MAX_ICE, "[ice] turn: at most 8 servers");
	assert_int_equal(cfg.nturn, PP_CFG_MAX_ICE);
	free(t);

	t = repeat(BASE, PP_CFG_MAX_FORWARDS + 1, forward_line);
	assert_int_equal(parse(t), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 8 + 4 * PP_CFG_MAX_FORWARDS, "too many forwards: at most 64");
	free(t);

	/* 65 peer names on one line. */
	t = repeat(BASE "[consume]\npeers = p000", PP_CFG_MAX_PEERS, peer_item);
	assert_int_equal(parse(t), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 9, "[consume] peers: at most 64 names");
	assert_int_equal(cfg.npeers, PP_CFG_MAX_PEERS);
	free(t);

	/* Values longer than their field. */
	{
		char text[2048];
		char dir[1100];

		memset(dir, 'd', sizeof(dir) - 1);
		dir[sizeof(dir) - 1] = '\0';
		snprintf(text, sizeof(text), AGENT "state_dir = /%s\n" SIGNALING ROOM, dir);
		assert_int_equal(parse(text), PP_ECONFIG);
		assert_int_equal(errs.n, 1);
		assert_msg(errs.msg[0], 3, "[agent] state_dir is 1100 bytes long, at most 1023");
	}
}

static void
test_turn_password(void **state)
{
	(void)state;
	/* Quoting the whole value lets the password hold # and ;. */
	assert_ok(BASE "[ice]\nturn = \"turn:t.example:3478  user   p#ss; word\"\n");
	assert_string_equal(cfg.turn[0].url, "turn:t.example:3478");
	assert_string_equal(cfg.turn[0].username, "user");
	assert_string_equal(cfg.turn[0].password, "p#ss; word");
	/* An error on a turn line never echoes the password. */
	assert_int_equal(parse(BASE "[ice]\nturn = turn:t.example:99999 user hunter2\n"), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_null(strstr(errs.msg[0], "hunter2"));
}

static void
test_load(void **state)
{
	char path[] = "/tmp/pp-test-config-XXXXXX";
	char dir[] = "/tmp/pp-test-config-dir-XXXXXX";
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, BASE "[tunnel]\nfoo = 1\n", sizeof(BASE "[tunnel]\nfoo = 1\n") - 1),
	    (ssize_t)(sizeof(BASE "[tunnel]\nfoo = 1\n") - 1));
	close(fd);
	assert_int_equal(pp_cfg_load(path, &cfg, &errs), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_string_equal(cfg.path, path);
	/* The file's own name leads the message. */
	assert_true(strncmp(errs.msg[0], path, strlen(path)) == 0);
	assert_non_null(strstr(errs.msg[0], ":9: unknown key \"foo\""));
	assert_string_equal(cfg.name, "test-agent");

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, BASE, sizeof(BASE) - 1), (ssize_t)(sizeof(BASE) - 1));
	close(fd);
	assert_int_equal(pp_cfg_load(path, &cfg, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(cfg.room_name, "test-room");
	unlink(path);

	/* Unreadable: one error "PATH: cannot read: why". */
	assert_int_equal(pp_cfg_load(path, &cfg, &errs), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_true(strncmp(errs.msg[0], path, strlen(path)) == 0);
	assert_non_null(strstr(errs.msg[0], ": cannot read: No such file or directory"));
	assert_string_equal(cfg.name, "");

	assert_non_null(mkdtemp(dir));
	assert_int_equal(pp_cfg_load(dir, &cfg, &errs), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], ": cannot read: Is a directory"));
	rmdir(dir);
}

static void
test_legacy_peers(void **state)
{
	(void)state;
	assert_int_equal(parse(AGENT "legacy_peers = old-scanner , v1 laptop\n"
	    SIGNALING ROOM), 0);
	assert_int_equal(cfg.nlegacy_peers, 2);
	assert_string_equal(cfg.legacy_peers[0], "old-scanner");
	assert_string_equal(cfg.legacy_peers[1], "v1 laptop");
}

static void
test_examples(void **state)
{
	(void)state;
	assert_int_equal(pp_cfg_load(PP_SOURCE_DIR "/examples/gateway.conf", &cfg, &errs), 0);
	assert_string_equal(cfg.name, "office-gateway");
	assert_string_equal(cfg.url, "wss://127.0.0.1:46466/ws");
	assert_int_equal(cfg.nservices, 2);
	assert_string_equal(cfg.services[0].name, "web");
	assert_int_equal(cfg.services[0].port, 80);
	assert_int_equal(cfg.services[1].port, 5432);

	assert_int_equal(pp_cfg_load(PP_SOURCE_DIR "/examples/connect.conf", &cfg, &errs), 0);
	assert_string_equal(cfg.name, "alice-laptop");
	assert_string_equal(cfg.bind, "auto");
	assert_int_equal(cfg.npeers, 1);
	assert_string_equal(cfg.peers[0], "office-gateway");
	assert_int_equal(cfg.nforwards, 1);
	assert_int_equal(cfg.forwards[0].port, 5432);
	assert_int_equal(cfg.forwards[0].listen_port, 15432);
}

static void
test_turn_from_signaling(void **state)
{
	(void)state;
	assert_ok(BASE "[ice]\nturn_from_signaling = yes\n");
	assert_int_equal(cfg.turn_from_signaling, 1);
	assert_int_equal(cfg.nturn, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_turn_from_signaling),
		cmocka_unit_test(test_quoting_comments),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_ips_policy_address),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_turn_password),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_legacy_peers),
		cmocka_unit_test(test_examples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
