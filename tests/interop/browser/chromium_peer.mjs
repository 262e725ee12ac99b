#!/usr/bin/env node
// PeerPipe interop test peer in Chromium: launches Debian's /usr/bin/chromium
// headless through playwright-core, opens peer.html (file://) with the
// options in its query string, waits for the page's result and prints it as
// one line, `RESULT {json}`, on stdout.  Exit code 0 when ok, 1 otherwise;
// logs (ours and the page's console) go to stderr.
//
//   node tests/interop/browser/chromium_peer.mjs --url wss://127.0.0.1:PORT/ws \
//       --room-uuid UUID --room-name NAME --name ME --peer OTHER \
//       --role offer|answer --mode drive|echo [--count N] [--timeout SECS] \
//       [--legacy-sdp|--modern-sdp] [--audio|--no-audio] [--window N] \
//       [--loss-wait SECS] [--host-address ADDR ...]
//
// The options mean what they mean for tests/interop/aiortc_peer.py, except
// --host-address: Chromium cannot be told where to gather, so the page only
// signals the local candidates whose address is in the list.  Chromium never
// gathers on loopback (its interface list leaves lo out; the switch
// --allow-loopback-in-peer-connection changes nothing there, checked with
// Chromium 156), but it binds its UDP sockets to the wildcard address, so
// with 127.0.0.1 (::1) in the list the page also signals each IPv4 (IPv6)
// UDP host candidate with the loopback address and the same port.
//
// Chromium flags, beyond the fixed set the project uses for headless runs:
//   --disable-features=WebRtcHideLocalIpsWithMdns
//       host candidates carry real IP addresses instead of random
//       "<uuid>.local" mDNS names (which a peer would have to resolve with
//       multicast DNS: aiortc would try, our tests must not).
//   --ignore-certificate-errors
//       the signaling server's self-signed certificate.
// playwright-core does not accept --user-data-dir in `args`: the fresh
// temporary profile goes through launchPersistentContext(userDataDir).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const CHROMIUM = '/usr/bin/chromium';
const here = path.dirname(fileURLToPath(import.meta.url));
const startedAt = Date.now();

function log(...parts) {
	const t = ((Date.now() - startedAt) / 1000).toFixed(3);
	process.stderr.write(`chromium_peer[${name || '?'}] +${t}s ${parts.join(' ')}\n`);
}

let name = null;
let opts;
try {
	({ values: opts } = parseArgs({
		options: {
			url: { type: 'string' },
			'room-uuid': { type: 'string' },
			'room-name': { type: 'string' },
			name: { type: 'string' },
			peer: { type: 'string' },
			role: { type: 'string' },
			mode: { type: 'string' },
			count: { type: 'string', default: '100' },
			timeout: { type: 'string', default: '60' },
			window: { type: 'string', default: '16' },
			'loss-wait': { type: 'string', default: '10' },
			'legacy-sdp': { type: 'boolean', default: false },
			'modern-sdp': { type: 'boolean', default: false },
			audio: { type: 'boolean' },
			'no-audio': { type: 'boolean' },
			'host-address': { type: 'string', multiple: true, default: [] },
			help: { type: 'boolean', short: 'h', default: false },
		},
		strict: true,
		allowPositionals: false,
	}));
} catch (e) {
	process.stderr.write(`chromium_peer: ${e.message}\n`);
	process.exit(2);
}

function usage(msg) {
	if (msg)
		process.stderr.write(`chromium_peer: ${msg}\n`);
	process.stderr.write('usage: node chromium_peer.mjs --url wss://HOST:PORT/ws ' +
		'--room-uuid UUID --room-name NAME --name ME --peer OTHER ' +
		'--role offer|answer --mode drive|echo [--count N] [--timeout SECS] ' +
		'[--legacy-sdp|--modern-sdp] [--audio|--no-audio] [--window N] ' +
		'[--loss-wait SECS] ' +
		'[--host-address ADDR ...]\n');
	process.exit(2);
}

if (opts.help)
	usage();
for (const k of ['url', 'room-uuid', 'room-name', 'name', 'peer', 'role', 'mode'])
	if (!opts[k])
		usage(`--${k} is required`);
if (!['offer', 'answer'].includes(opts.role))
	usage('--role must be offer or answer');
if (!['drive', 'echo'].includes(opts.mode))
	usage('--mode must be drive or echo');
if (opts['legacy-sdp'] && opts['modern-sdp'])
	usage('--legacy-sdp and --modern-sdp exclude each other');
if (opts.audio && opts['no-audio'])
	usage('--audio and --no-audio exclude each other');
const count = Number(opts.count);
const timeout = Number(opts.timeout);
const windowSize = Number(opts.window);
const lossWait = Number(opts['loss-wait']);
if (!Number.isInteger(count) || count < 0)
	usage('--count must be an integer >= 0');
if (!(timeout > 0))
	usage('--timeout must be > 0');
if (!Number.isInteger(windowSize) || windowSize < 1)
	usage('--window must be an integer >= 1');
if (!(lossWait > 0))
	usage('--loss-wait must be > 0');
name = opts.name;

const hostAddresses = opts['host-address'].flatMap((v) => v.split(','))
	.map((s) => s.trim()).filter((s) => s);
const query = new URLSearchParams({
	url: opts.url,
	room_uuid: opts['room-uuid'],
	room_name: opts['room-name'],
	name: opts.name,
	peer: opts.peer,
	role: opts.role,
	mode: opts.mode,
	count: String(count),
	timeout: String(timeout),
	window: String(windowSize),
	loss_wait: String(lossWait),
	sdp_format: opts['legacy-sdp'] ? 'legacy' : opts['modern-sdp'] ? 'modern' : 'native',
	audio: opts['no-audio'] ? '0' : '1',
	host_address: hostAddresses.join(','),
});

const baseResult = {
	ok: false, role: opts.role, mode: opts.mode, impl: 'chromium',
	channels: {}, remote_sdp_has_audio: false, selected_pair: null,
};

let printed = false;

// Prints the one RESULT line (only the first call prints).
function finish(result) {
	if (!result.ok && !result.error)
		result.error = 'unknown failure';
	if (!printed) {
		printed = true;
		process.stdout.write('RESULT ' + JSON.stringify(result) + '\n');
	}
	return result.ok ? 0 : 1;
}

let context = null;
let userDataDir = null;
let terminating = false;

function removeProfile() {
	if (!userDataDir)
		return;
	try {
		// Chromium may still be writing while it exits: retry a little.
		fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 10,
			retryDelay: 100 });
	} catch (e) {
		log('could not remove', userDataDir + ':', e.message);
	}
}

// SIGTERM/SIGINT/SIGHUP: close Chromium, drop the profile, report, exit 1.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
	process.on(sig, () => {
		if (terminating)
			return;
		terminating = true;
		log('got', sig + ': closing Chromium');
		const done = () => {
			removeProfile();
			finish({ ...baseResult, error: 'terminated by ' + sig });
			process.exit(1);
		};
		const closing = context ? context.close() : Promise.resolve();
		closing.catch(() => {}).then(done);
		setTimeout(done, 10000).unref();
	});
}

async function main() {
	if (!fs.existsSync(CHROMIUM))
		return finish({ ...baseResult, error: `${CHROMIUM} not found: run scripts/install-browser.sh` });
	userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pp-chromium-'));
	let result = null;
	try {
		log('launching', CHROMIUM);
		context = await chromium.launchPersistentContext(userDataDir, {
			executablePath: CHROMIUM,
			headless: true,
			timeout: 60000,
			handleSIGINT: false,
			handleSIGTERM: false,
			handleSIGHUP: false,
			args: [
				'--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
				'--no-first-run', '--disable-background-networking',
				'--disable-component-update', '--disable-sync',
				'--ignore-certificate-errors',
				'--disable-features=WebRtcHideLocalIpsWithMdns',
			],
		});
		const page = context.pages()[0] || await context.newPage();
		let resolveResult;
		const resultPromise = new Promise((resolve) => { resolveResult = resolve; });
		page.on('console', (m) => {
			for (const line of m.text().split('\n'))
				log('page:', line);
		});
		page.on('pageerror', (e) => {
			log('page error:', e.message);
			resolveResult({ ...baseResult, error: 'page error: ' + e.message });
		});
		page.on('crash', () => {
			resolveResult({ ...baseResult, error: 'the Chromium page crashed' });
		});
		context.on('close', () => {
			resolveResult({ ...baseResult, error: 'Chromium closed before the result' });
		});
		await page.exposeFunction('ppResult', (json) => {
			try {
				resolveResult(JSON.parse(json));
			} catch (e) {
				resolveResult({ ...baseResult, error: 'bad result from the page: ' + json });
			}
		});
		const url = pathToFileURL(path.join(here, 'peer.html')).href + '?' + query.toString();
		log('opening', url);
		await page.goto(url, { waitUntil: 'load', timeout: 60000 });
		// The page enforces --timeout itself; this is only a backstop.
		let timer;
		const backstop = new Promise((resolve) => {
			timer = setTimeout(() => resolve({ ...baseResult,
				error: `no result from the page ${timeout + 30} s after it loaded` }),
			(timeout + 30) * 1000);
		});
		result = await Promise.race([resultPromise, backstop]);
		clearTimeout(timer);
	} catch (e) {
		result = { ...baseResult, error: 'chromium: ' + (e && e.message ? e.message.split('\n')[0] : e) };
	} finally {
		if (context) {
			await context.close().catch((e) => log('closing Chromium:', e.message));
		}
		if (!terminating)
			removeProfile();
	}
	if (terminating)
		return 1; // the signal handler cleans up and reports
	return finish(result);
}

main().then((code) => {
	if (!terminating)
		process.exitCode = code;
}, (e) => {
	process.stderr.write(`chromium_peer: ${e && e.stack || e}\n`);
	process.exitCode = finish({ ...baseResult, error: String(e && e.message || e) });
});
