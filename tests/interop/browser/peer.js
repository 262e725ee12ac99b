/*
 * PeerPipe interop test peer for Chromium: the same contract as
 * tests/interop/aiortc_peer.py (read its docstring), with RTCPeerConnection.
 *
 * Query parameters (chromium_peer.mjs sets them from its command line):
 *   url, room_uuid, room_name, name, peer, role (offer|answer),
 *   mode (drive|echo), count, timeout (seconds), window, loss_wait,
 *   sdp_format (native|legacy|modern), audio (1|0),
 *   host_address (comma-separated; when set, only local candidates with
 *   one of these addresses are signalled, plus the loopback form of UDP
 *   host candidates when 127.0.0.1 or ::1 is listed: see signalledForms).
 *
 * The result object goes to window.ppResult(JSON text) when the driver has
 * exposed that function; it is also kept in window.ppResultJSON.
 *
 * Drive mode runs in three phases like the aiortc peer: test-ordered and
 * control-channel concurrently, then test-unordered alone (loss tolerated
 * up to 10%, see loss_wait), then the large messages on test-ordered.
 *
 * Chromium specifics (see chromium_peer.mjs for the launch flags):
 *   - Chromium trickles: its offer/answer has no a=candidate lines; every
 *     candidate is sent as SDP_STATE "candidate" {candidate, sdpMid,
 *     sdpMLineIndex}.  The end-of-candidates event (null candidate) is not
 *     signalled.
 *   - Its native data m-line is "UDP/DTLS/SCTP webrtc-datachannel" with
 *     a=sctp-port:5000 and, in an offer, a=max-message-size:262144; its
 *     answer carries min(offered, 262144) and leaves the line out when that
 *     is 65536 or when the offer used the legacy form (so answering aiortc,
 *     it never has one; checked with Chromium 156).  --legacy-sdp rewrites
 *     the OFFER we send to "DTLS/SCTP 5000" + a=sctpmap (the local
 *     description stays as Chromium made it); Chromium answers a legacy
 *     offer in the legacy form itself.
 *
 * Loaded outside a browser (no `document`, e.g. node's vm), it only defines
 * globalThis.PPMessages (the test-message generators) for cross-checks.
 */
'use strict';

(function () {
	const CONTROL = 'control-channel';
	const ORDERED = 'test-ordered';
	const UNORDERED = 'test-unordered';
	const LARGE_SIZES = [65536, 262144];
	const LARGE_BASE = 0xFFFF0000;
	const DEFAULT_MAX_MESSAGE_SIZE = 65536; // RFC 8841 6.1

	// ------------------------------------------------------------ messages

	function prng(seed) {
		let x = (Math.imul(seed | 0, 2654435761 | 0) + 0x9E3779B9) >>> 0;
		if (x === 0)
			x = 1;
		return function next() {
			x = (x ^ (x << 13)) >>> 0;
			x = (x ^ (x >>> 17)) >>> 0;
			x = (x ^ (x << 5)) >>> 0;
			return x;
		};
	}

	function stringMessage(i) {
		return 'msg ' + i;
	}

	function binaryMessage(i) {
		const next = prng(i);
		const n = 1 + next() % 2000;
		const b = new Uint8Array(4 + n);
		new DataView(b.buffer).setUint32(0, i >>> 0, false);
		for (let k = 0; k < n; k++)
			b[4 + k] = next() & 0xFF;
		return b;
	}

	function largeMessage(k, size) {
		const index = (LARGE_BASE + k) >>> 0;
		const next = prng(index);
		const b = new Uint8Array(size);
		new DataView(b.buffer).setUint32(0, index, false);
		for (let p = 4; p < size; p++)
			b[p] = next() & 0xFF;
		return b;
	}

	function messageKey(msg) {
		if (typeof msg === 'string') {
			const m = /^msg (\d+)$/.exec(msg);
			return m ? 's' + Number(m[1]) : null;
		}
		const b = new Uint8Array(msg);
		if (b.length < 4)
			return null;
		return 'b' + new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false);
	}

	function describe(msg) {
		if (typeof msg === 'string')
			return 'string ' + JSON.stringify(msg.slice(0, 40));
		return 'binary of ' + (msg.byteLength) + ' bytes';
	}

	function sameMessage(want, got) {
		if (typeof want === 'string')
			return typeof got === 'string' && got === want;
		if (typeof got === 'string')
			return false;
		const g = new Uint8Array(got);
		if (g.length !== want.length)
			return false;
		for (let i = 0; i < g.length; i++)
			if (g[i] !== want[i])
				return false;
		return true;
	}

	globalThis.PPMessages = { prng, stringMessage, binaryMessage, largeMessage,
		messageKey, LARGE_BASE, LARGE_SIZES };
	if (typeof document === 'undefined')
		return;

	// ------------------------------------------------------------ params, log

	const Q = new URLSearchParams(location.search);
	const args = {
		url: Q.get('url'),
		room_uuid: Q.get('room_uuid'),
		room_name: Q.get('room_name'),
		name: Q.get('name'),
		peer: Q.get('peer'),
		role: Q.get('role'),
		mode: Q.get('mode'),
		count: Number(Q.get('count') || 100),
		timeout: Number(Q.get('timeout') || 60),
		window: Number(Q.get('window') || 16),
		loss_wait: Number(Q.get('loss_wait') || 10),
		sdp_format: Q.get('sdp_format') || 'native',
		audio: (Q.get('audio') || '1') !== '0',
		host_address: (Q.get('host_address') || '').split(',')
			.map((s) => s.trim()).filter((s) => s),
	};

	const logEl = document.getElementById('log');
	function log(...parts) {
		const line = parts.join(' ');
		console.log(line);
		if (logEl)
			logEl.textContent += line + '\n';
	}

	class PeerError extends Error {}

	// ------------------------------------------------------------ SDP helpers

	function sdpSections(sdp) {
		const sections = [];
		for (const line of sdp.split(/\r?\n/)) {
			if (line.startsWith('m='))
				sections.push({ m: line, attrs: [] });
			else if (sections.length)
				sections[sections.length - 1].attrs.push(line);
		}
		return sections;
	}

	function sdpHasAudio(sdp) {
		return sdpSections(sdp).some((s) => s.m.startsWith('m=audio '));
	}

	function sdpMaxMessageSize(sdp) {
		for (const s of sdpSections(sdp || '')) {
			if (!s.m.startsWith('m=application '))
				continue;
			for (const a of s.attrs) {
				if (a.startsWith('a=max-message-size:')) {
					const v = parseInt(a.split(':')[1], 10);
					return Number.isFinite(v) ? v : DEFAULT_MAX_MESSAGE_SIZE;
				}
			}
			return DEFAULT_MAX_MESSAGE_SIZE;
		}
		return DEFAULT_MAX_MESSAGE_SIZE;
	}

	function sizeAllowed(size, limit) {
		return limit === 0 || size <= limit;
	}

	function candidateFields(cand) {
		// "candidate:FOUNDATION COMPONENT PROTO PRIO ADDRESS PORT typ TYPE ..."
		const bits = cand.replace(/^a=/, '').split(/\s+/);
		return { bits, protocol: (bits[2] || '').toLowerCase(), address: bits[4] || '',
			type: bits[7] || '' };
	}

	// What to signal for one local candidate: [] (nothing), [cand] or a
	// rewritten form.  Without --host-address everything goes out.  With
	// it, only candidates on those addresses do -- and since Chromium never
	// gathers on loopback (its interface list leaves lo out) but binds its
	// UDP sockets to the wildcard address, a UDP host candidate is also
	// offered on 127.0.0.1 (IPv4) or ::1 (IPv6) when that is in the list:
	// same port, same socket, loopback traffic only.
	function signalledForms(cand) {
		if (!args.host_address.length)
			return [cand];
		const f = candidateFields(cand);
		if (args.host_address.includes(f.address))
			return [cand];
		if (f.type !== 'host' || f.protocol !== 'udp')
			return [];
		const loop = f.address.includes(':') ? '::1' : '127.0.0.1';
		if (!args.host_address.includes(loop))
			return [];
		const bits = f.bits.slice();
		bits[4] = loop;
		return [bits.join(' ')];
	}

	function filterSdpCandidates(sdp) {
		if (!args.host_address.length)
			return sdp;
		const out = [];
		for (const l of sdp.split('\r\n')) {
			if (!l.startsWith('a=candidate:')) {
				out.push(l);
				continue;
			}
			for (const c of signalledForms(l.slice(2)))
				out.push('a=' + c);
		}
		return out.join('\r\n');
	}

	function toLegacySctp(sdp) {
		const lines = sdp.split('\r\n');
		let port = '5000';
		for (const l of lines)
			if (l.startsWith('a=sctp-port:'))
				port = l.split(':')[1].trim();
		const out = [];
		for (const l of lines) {
			if (l.startsWith('m=application ') && l.includes('UDP/DTLS/SCTP')) {
				const bits = l.split(' ');
				out.push('m=application ' + bits[1] + ' DTLS/SCTP ' + port);
				out.push('a=sctpmap:' + port + ' webrtc-datachannel 65535');
				continue;
			}
			if (l.startsWith('a=sctp-port:'))
				continue;
			out.push(l);
		}
		return out.join('\r\n');
	}

	function toModernSctp(sdp) {
		const out = [];
		for (const l of sdp.split('\r\n')) {
			if (l.startsWith('m=application ') && / DTLS\/SCTP /.test(l) &&
				!l.includes('UDP/DTLS/SCTP')) {
				const bits = l.split(' ');
				out.push('m=application ' + bits[1] +
					' UDP/DTLS/SCTP webrtc-datachannel');
				out.push('a=sctp-port:' + (bits[3] || '5000'));
				continue;
			}
			if (l.startsWith('a=sctpmap:'))
				continue;
			out.push(l);
		}
		return out.join('\r\n');
	}

	// ------------------------------------------------------------ async bits

	// A level-triggered condition: wait(pred) resolves once pred() is true,
	// re-checked whenever notify() is called.
	class Cond {
		constructor() { this.waiters = []; }
		notify() {
			const ws = this.waiters;
			this.waiters = [];
			for (const w of ws) w();
		}
		async wait(pred) {
			while (!pred())
				await new Promise((resolve) => this.waiters.push(resolve));
		}
	}

	// ------------------------------------------------------------ signaling

	class Signaling {
		constructor() {
			this.ws = null;
			this.pending = [];
			this.sdpItems = []; // SDP_STATE data from our peer
			this.cond = new Cond();
			this.peerPresent = false;
			this.peerLeft = false;
			this.closed = false;
		}

		connect() {
			log('signaling: connecting to', args.url);
			return new Promise((resolve, reject) => {
				let ws;
				try {
					ws = new WebSocket(args.url);
				} catch (e) {
					reject(new PeerError('signaling: cannot connect to ' +
						args.url + ': ' + e));
					return;
				}
				this.ws = ws;
				let opened = false;
				ws.onopen = () => { opened = true; resolve(); };
				ws.onerror = () => {
					if (!opened)
						reject(new PeerError('signaling: cannot connect to ' +
							args.url + ' (WebSocket error)'));
				};
				ws.onclose = (e) => {
					log('signaling: connection closed (code ' + e.code + ')');
					this.closed = true;
					for (const p of this.pending)
						p.reject(new PeerError('signaling: connection closed ' +
							'before the reply to ' + p.desc));
					this.pending = [];
					this.cond.notify();
					if (!opened)
						reject(new PeerError('signaling: cannot connect to ' +
							args.url + ' (closed, code ' + e.code + ')'));
				};
				ws.onmessage = (e) => this.dispatch(e.data);
			});
		}

		dispatch(text) {
			let msg;
			try {
				msg = JSON.parse(text);
			} catch (e) {
				log('signaling: non-JSON message ignored:', String(text).slice(0, 200));
				return;
			}
			const type = msg && msg.type;
			const data = (msg && msg.data) || {};
			if (['SUCCESS', 'FAILED', 'ROOM_CREATED', 'ROOM_JOINED'].includes(type)) {
				const p = this.pending.shift();
				if (p) p.resolve(msg);
				else log('signaling: unexpected reply', text);
				return;
			}
			if (type === 'ROOM_NEW_MEMBER') {
				log('signaling:', data.name, 'joined the room');
				if (data.name === args.peer) this.peerPresent = true;
			} else if (type === 'ROOM_MEMBER_LEFT') {
				log('signaling:', data.name, 'left the room');
				if (data.name === args.peer) this.peerLeft = true;
			} else if (type === 'SDP_STATE') {
				if (data.from !== args.peer) {
					log('signaling: SDP_STATE', data.type, 'from', data.from,
						'(not our peer) ignored');
					return;
				}
				this.sdpItems.push(data);
			} else {
				log('signaling: unknown message ignored:', text);
			}
			this.cond.notify();
		}

		request(desc, obj) {
			if (this.closed || !this.ws || this.ws.readyState !== WebSocket.OPEN)
				return Promise.reject(new PeerError(
					'signaling: connection closed, cannot send ' + desc));
			return new Promise((resolve, reject) => {
				this.pending.push({ desc, resolve, reject });
				this.ws.send(JSON.stringify(obj));
			});
		}

		async join() {
			const reply = await this.request('FAST_ROOM_EXACT', {
				type: 'FAST_ROOM_EXACT', room_uuid: args.room_uuid,
				room_name: args.room_name, user_name: args.name,
			});
			const data = reply.data || {};
			if (reply.type === 'ROOM_CREATED') {
				log('signaling: created room', data.room_uuid);
			} else if (reply.type === 'ROOM_JOINED') {
				const members = data.room_members || [];
				log('signaling: joined room, members', JSON.stringify(members));
				if (members.includes(args.peer)) this.peerPresent = true;
			} else {
				throw new PeerError('signaling: FAST_ROOM_EXACT failed: ' +
					JSON.stringify(reply));
			}
			this.cond.notify();
		}

		async sendSdp(sdpType, sdpData) {
			const reply = await this.request('SDP_NEW_STATE(' + sdpType + ')', {
				type: 'SDP_NEW_STATE', room_uuid: args.room_uuid,
				room_name: args.room_name, user_name: args.name,
				target_user: args.peer, sdp_type: sdpType, sdp_data: sdpData,
			});
			if (reply.type !== 'SUCCESS')
				throw new PeerError('signaling: SDP_NEW_STATE(' + sdpType +
					') to ' + args.peer + ' failed: ' + JSON.stringify(reply));
		}

		close() {
			if (this.ws && this.ws.readyState <= WebSocket.OPEN)
				this.ws.close(1000);
		}
	}

	// ------------------------------------------------------------ the peer

	class Peer {
		constructor() {
			this.phase = 'starting';
			this.result = { ok: false, role: args.role, mode: args.mode,
				impl: 'chromium', channels: {}, remote_sdp_has_audio: false,
				selected_pair: null };
			this.sig = new Signaling();
			this.pc = null;
			this.channels = {};
			this.stats = {};
			// One condition for every change: signaling events, channel and
			// connection states; each waiter re-checks its own predicate.
			this.cond = this.sig.cond;
			this.remoteSdp = null;
			this.localSdp = null;
			this.everOpen = false;
			this.remoteSet = false;
			this.earlyRemote = []; // candidates before the remote SDP
			this.descriptionSent = false;
			this.earlyLocal = []; // our candidates before our SDP went out
			this.candidateSends = [];
		}

		stat(label) {
			if (!this.stats[label])
				this.stats[label] = { sent: 0, echoed: 0, received: 0, in_order: true };
			return this.stats[label];
		}

		watchChannel(ch) {
			const label = ch.label;
			ch.binaryType = 'arraybuffer';
			this.channels[label] = ch;
			this.stat(label);
			const changed = () => {
				if (ch.readyState === 'open') this.everOpen = true;
				log('datachannel', label, '(id ' + ch.id + '):', ch.readyState);
				this.cond.notify();
			};
			ch.addEventListener('open', changed);
			ch.addEventListener('close', changed);
			ch.addEventListener('error', (e) => {
				log('datachannel', label, 'error:', e.error ? e.error.message : e);
			});
			if (args.mode === 'echo') {
				ch.addEventListener('message', (e) => {
					const st = this.stat(label);
					st.received++;
					try {
						ch.send(e.data);
					} catch (err) {
						log('echo on', label, 'failed:', err.message);
						return;
					}
					st.sent++;
					st.echoed++;
				});
			}
			if (ch.readyState === 'open') this.everOpen = true;
			this.cond.notify();
		}

		createPc() {
			const pc = new RTCPeerConnection({ iceServers: [] });
			pc.ondatachannel = (e) => {
				const ch = e.channel;
				log('datachannel: remote opened', JSON.stringify(ch.label),
					'(id ' + ch.id + ', ordered ' + ch.ordered +
					', maxRetransmits ' + ch.maxRetransmits + ')');
				this.watchChannel(ch);
			};
			pc.onconnectionstatechange = () => {
				log('peer connection:', pc.connectionState);
				this.cond.notify();
			};
			pc.oniceconnectionstatechange = () => {
				log('ICE connection:', pc.iceConnectionState);
				this.cond.notify();
			};
			pc.onicecandidate = (e) => {
				if (!e.candidate || !e.candidate.candidate) {
					log('candidate: local gathering complete');
					return;
				}
				const forms = signalledForms(e.candidate.candidate);
				if (!forms.length) {
					log('candidate: local', e.candidate.candidate,
						'(not signalled: --host-address)');
					return;
				}
				for (const form of forms) {
					if (form !== e.candidate.candidate)
						log('candidate: local', e.candidate.candidate,
							'signalled as', form);
					const c = {
						candidate: form,
						sdpMid: e.candidate.sdpMid,
						sdpMLineIndex: e.candidate.sdpMLineIndex,
					};
					if (!this.descriptionSent)
						this.earlyLocal.push(c);
					else
						this.sendCandidate(c);
				}
			};
			pc.onicecandidateerror = (e) => {
				log('candidate error:', e.errorCode, e.errorText, e.url || '');
			};
			this.pc = pc;
			return pc;
		}

		sendCandidate(c) {
			log('candidate: sending local (mid ' + c.sdpMid + ')', c.candidate);
			const p = this.sig.sendSdp('candidate', c).catch((e) => {
				log('candidate: could not send:', e.message);
			});
			this.candidateSends.push(p);
		}

		async setRemote(type, sdp) {
			if (typeof sdp !== 'string')
				throw new PeerError('signaling: ' + type +
					' sdp_data is not a string: ' + JSON.stringify(sdp));
			log('remote', type, 'SDP:\n' + sdp.trim());
			this.remoteSdp = sdp;
			this.result.remote_sdp_has_audio = sdpHasAudio(sdp);
			try {
				await this.pc.setRemoteDescription({ type, sdp });
			} catch (e) {
				throw new PeerError('setRemoteDescription(' + type + ') failed: ' +
					e.message);
			}
			this.remoteSet = true;
			const early = this.earlyRemote;
			this.earlyRemote = [];
			for (const c of early)
				await this.addCandidate(c);
		}

		async addCandidate(data) {
			if (!data || typeof data !== 'object') {
				log('candidate: sdp_data is not an object:', JSON.stringify(data));
				return;
			}
			if (!this.remoteSet) {
				this.earlyRemote.push(data);
				return;
			}
			if (!data.candidate) {
				log('candidate: end-of-candidates from peer');
			}
			try {
				await this.pc.addIceCandidate({
					candidate: data.candidate || '',
					sdpMid: data.sdpMid === undefined ? null : data.sdpMid,
					sdpMLineIndex: data.sdpMLineIndex === undefined ? null
						: data.sdpMLineIndex,
				});
				log('candidate: added remote (mid ' + data.sdpMid + ')', data.candidate);
			} catch (e) {
				log('candidate: addIceCandidate failed:', e.message, JSON.stringify(data));
			}
		}

		async nextSdp(what) {
			const sig = this.sig;
			await this.cond.wait(() => sig.sdpItems.length || sig.peerLeft || sig.closed);
			if (sig.sdpItems.length)
				return sig.sdpItems.shift();
			if (sig.peerLeft)
				throw new PeerError('peer ' + args.peer + ' left the room while waiting for ' + what);
			throw new PeerError('signaling connection closed while waiting for ' + what);
		}

		async sdpLoop() {
			const sig = this.sig;
			for (;;) {
				await this.cond.wait(() => sig.sdpItems.length || this.stopped);
				if (this.stopped)
					return;
				const data = sig.sdpItems.shift();
				if (data.type === 'candidate')
					await this.addCandidate(data.sdp_data);
				else
					log('signaling: unexpected', data.type, 'from peer after the negotiation, ignored');
			}
		}

		async sendDescription(type, sdp) {
			this.phase = 'sending the ' + type;
			await this.sig.sendSdp(type, sdp);
			this.descriptionSent = true;
			const early = this.earlyLocal;
			this.earlyLocal = [];
			for (const c of early)
				this.sendCandidate(c);
		}

		async negotiate() {
			const pc = this.createPc();
			if (args.role === 'offer') {
				this.watchChannel(pc.createDataChannel(CONTROL, { ordered: true }));
				if (args.audio)
					pc.addTransceiver('audio', { direction: 'recvonly' });
				this.phase = 'creating the offer';
				await pc.setLocalDescription(await pc.createOffer());
				let sdp = filterSdpCandidates(pc.localDescription.sdp);
				if (args.sdp_format === 'legacy')
					sdp = toLegacySctp(sdp);
				else if (args.sdp_format === 'modern')
					sdp = toModernSctp(sdp);
				this.localSdp = sdp;
				log('local offer SDP:\n' + sdp.trim());
				await this.sendDescription('offer', sdp);
				this.phase = 'waiting for the answer from ' + args.peer;
				for (;;) {
					const data = await this.nextSdp('the answer');
					if (data.type === 'answer') {
						await this.setRemote('answer', data.sdp_data);
						break;
					}
					if (data.type === 'candidate')
						this.earlyRemote.push(data.sdp_data);
					else
						log('signaling: unexpected', data.type, 'while waiting for the answer, ignored');
				}
			} else {
				this.phase = 'waiting for the offer from ' + args.peer;
				for (;;) {
					const data = await this.nextSdp('the offer');
					if (data.type === 'offer') {
						await this.setRemote('offer', data.sdp_data);
						break;
					}
					if (data.type === 'candidate')
						this.earlyRemote.push(data.sdp_data);
					else
						log('signaling: unexpected', data.type, 'while waiting for the offer, ignored');
				}
				this.phase = 'creating the answer';
				// The answer's data m-line follows the offer's form;
				// --legacy-sdp/--modern-sdp shape offers only.
				await pc.setLocalDescription(await pc.createAnswer());
				const sdp = filterSdpCandidates(pc.localDescription.sdp);
				this.localSdp = sdp;
				log('local answer SDP:\n' + sdp.trim());
				await this.sendDescription('answer', sdp);
			}
		}

		async waitConnected() {
			this.phase = 'waiting for the peer connection to connect';
			const pc = this.pc;
			await this.cond.wait(() => ['connected', 'failed', 'closed']
				.includes(pc.connectionState));
			if (pc.connectionState !== 'connected')
				throw new PeerError('peer connection ' + pc.connectionState +
					' (ICE ' + pc.iceConnectionState + ') before connecting');
			this.result.selected_pair = await this.selectedPair();
			log('connected, selected pair:', this.result.selected_pair);
		}

		async selectedPair() {
			try {
				const stats = await this.pc.getStats();
				let pairId = null;
				stats.forEach((s) => {
					if (s.type === 'transport' && s.selectedCandidatePairId)
						pairId = s.selectedCandidatePairId;
				});
				if (!pairId) {
					stats.forEach((s) => {
						if (s.type === 'candidate-pair' && s.nominated &&
							s.state === 'succeeded' && !pairId)
							pairId = s.id;
					});
				}
				if (!pairId) return null;
				const pair = stats.get(pairId);
				const l = stats.get(pair.localCandidateId);
				const r = stats.get(pair.remoteCandidateId);
				if (!l || !r) return null;
				const addr = (c) => (c.address || c.ip || '<hidden>') + ':' + c.port;
				return l.protocol + ' ' + addr(l) + ' (' + l.candidateType +
					') <-> ' + addr(r) + ' (' + r.candidateType + ')';
			} catch (e) {
				return null;
			}
		}

		// ---------------------------------------------------- echo

		async runEcho() {
			this.phase = 'echoing (until the peer closes)';
			const pc = this.pc;
			const done = () => {
				if (['closed', 'failed'].includes(pc.connectionState))
					return true;
				const openNow = Object.values(this.channels).filter((c) =>
					c.readyState === 'open' || c.readyState === 'connecting');
				if (this.everOpen && !openNow.length)
					return true;
				if (this.sig.peerLeft && !openNow.length)
					return true;
				return false;
			};
			await this.cond.wait(done);
			log('echo done: connection', pc.connectionState, 'peer left', this.sig.peerLeft,
				'channels', JSON.stringify(Object.fromEntries(Object.entries(
					this.channels).map(([l, c]) => [l, c.readyState]))));
			if (!this.everOpen)
				throw new PeerError('no data channel ever opened (connection ' +
					pc.connectionState + ')');
		}

		// ---------------------------------------------------- drive

		async openChannel(label, init) {
			const ch = this.pc.createDataChannel(label, init);
			this.watchChannel(ch);
			await this.cond.wait(() => ch.readyState !== 'connecting');
			if (ch.readyState !== 'open')
				throw new PeerError('data channel ' + label + ' went ' +
					ch.readyState + ' instead of opening');
			return ch;
		}

		// Sends items [[key, makeMessage]] on ch and checks the echoes.
		// lossy (test-unordered, maxRetransmits=0): when no echo has come for
		// loss_wait seconds while some are outstanding, those count as lost
		// (a later echo still counts); more than 10% lost is a failure.
		async driveChannel(label, ch, items, lossy) {
			const st = this.stat(label);
			const expected = new Map();
			const order = [];
			const got = [];
			const seen = new Set();
			const lost = new Set();
			const problems = [];
			const wake = new Cond();
			const onMessage = (e) => {
				const msg = e.data;
				const key = messageKey(msg);
				const want = key === null ? undefined : expected.get(key);
				if (want === undefined)
					problems.push(label + ': unexpected echo: ' + describe(msg));
				else if (!sameMessage(want, msg))
					problems.push(label + ': echo of ' + describe(want) +
						' differs: got ' + describe(msg));
				else if (seen.has(key))
					problems.push(label + ': duplicate echo of ' + describe(msg));
				else {
					if (lost.delete(key))
						log(label + ': late echo of', describe(msg));
					seen.add(key);
					got.push(key);
					st.echoed++;
				}
				wake.notify();
			};
			const onClose = () => wake.notify();
			const pending = () => order.length - seen.size - lost.size;
			const waitUntil = async (pred) => {
				for (;;) {
					if (pred())
						return;
					if (problems.length)
						throw new PeerError(problems.slice(0, 5).join('; '));
					if (ch.readyState !== 'open')
						throw new PeerError(label + ' is ' + ch.readyState + ' with ' +
							st.echoed + ' of ' + st.sent + ' echoes back');
					let expired = false;
					let timer = null;
					if (lossy)
						timer = setTimeout(() => { expired = true; wake.notify(); },
							args.loss_wait * 1000);
					const before = got.length;
					await wake.wait(() => expired || got.length !== before ||
						problems.length || ch.readyState !== 'open');
					clearTimeout(timer);
					if (expired && got.length === before) {
						const gone = order.filter((k) => !seen.has(k) && !lost.has(k));
						log(label + ': no echo for ' + args.loss_wait + ' s: ' + gone.length +
							' outstanding message(s) counted as lost');
						for (const k of gone) lost.add(k);
					}
				}
			};
			ch.addEventListener('message', onMessage);
			ch.addEventListener('close', onClose);
			try {
				for (const [key, make] of items) {
					await waitUntil(() => pending() < args.window);
					const msg = make();
					expected.set(key, msg);
					order.push(key);
					ch.send(msg);
					st.sent++;
				}
				log(label + ': sent', order.length, 'messages, waiting for the last echoes');
				await waitUntil(() => pending() === 0);
			} finally {
				ch.removeEventListener('message', onMessage);
				ch.removeEventListener('close', onClose);
			}
			if (problems.length)
				throw new PeerError(problems.slice(0, 5).join('; '));
			const arrived = order.filter((k) => seen.has(k));
			const inOrder = got.every((k, i) => k === arrived[i]);
			st.in_order = st.in_order && inOrder;
			if (lossy) {
				st.lost = (st.lost || 0) + lost.size;
				if (lost.size > Math.floor(order.length / 10))
					throw new PeerError(label + ': ' + lost.size + ' of ' + order.length +
						' messages lost (more than 10%)');
			} else if (!inOrder) {
				const first = got.findIndex((k, i) => k !== order[i]);
				throw new PeerError(label + ': echoes out of order (first at position ' +
					first + ': got ' + got[first] + ', sent ' + order[first] + ')');
			}
			log(label + ':', seen.size, 'echoes correct' +
				(inOrder ? ', in order' : ', NOT in order') +
				(lost.size ? ', ' + lost.size + ' lost' : ''));
		}

		// Three phases, so that loss on the unreliable channel never meets
		// reliable data still being reassembled (aiortc 1.4 mishandles that):
		// 1. test-ordered and control-channel concurrently, 2. test-unordered
		// alone, 3. the large messages on test-ordered.
		async runDrive() {
			this.phase = 'opening the test channels';
			const ordered = await this.openChannel(ORDERED, { ordered: true });
			const unordered = await this.openChannel(UNORDERED,
				{ ordered: false, maxRetransmits: 0 });
			if (!this.channels[CONTROL]) {
				// The offerer creates it before the offer; its DCEP OPEN is
				// normally here already.  Give it a bounded moment.
				this.phase = 'waiting for control-channel';
				let expired = false;
				const t = setTimeout(() => { expired = true; this.cond.notify(); }, 5000);
				await this.cond.wait(() => expired || this.channels[CONTROL]);
				clearTimeout(t);
				if (!this.channels[CONTROL])
					log('no control-channel from the peer: not tested');
			}
			const remoteMax = sdpMaxMessageSize(this.remoteSdp);
			const localMax = sdpMaxMessageSize(this.localSdp);
			this.result.remote_max_message_size = remoteMax;
			this.result.local_max_message_size = localMax;
			const large = [];
			const largeResult = {};
			LARGE_SIZES.forEach((size, k) => {
				if (sizeAllowed(size, remoteMax) && sizeAllowed(size, localMax)) {
					large.push(['b' + ((LARGE_BASE + k) >>> 0), () => largeMessage(k, size), size]);
				} else {
					largeResult[String(size)] = 'skipped: max-message-size local ' +
						localMax + ', remote ' + remoteMax;
					log('large message of', size, 'bytes', largeResult[String(size)]);
				}
			});
			this.result.large_messages = largeResult;
			const regular = [];
			for (let i = 0; i < args.count; i++) {
				regular.push(['s' + i, () => stringMessage(i)]);
				regular.push(['b' + i, () => binaryMessage(i)]);
			}
			const reliable = [[ORDERED, ordered]];
			const ctrl = this.channels[CONTROL];
			if (ctrl) {
				await this.cond.wait(() => ctrl.readyState !== 'connecting');
				if (ctrl.readyState !== 'open')
					throw new PeerError('control-channel is ' + ctrl.readyState);
				reliable.push([CONTROL, ctrl]);
			}
			this.phase = 'exchanging test messages on the reliable channels';
			await Promise.all(reliable.map(([l, c]) => this.driveChannel(l, c, regular, false)));
			this.phase = 'exchanging test messages on ' + UNORDERED;
			this.stat(UNORDERED).lost = 0;
			await this.driveChannel(UNORDERED, unordered, regular, true);
			if (large.length) {
				this.phase = 'exchanging large messages on ' + ORDERED;
				await this.driveChannel(ORDERED, ordered, large, false);
				for (const [, , size] of large)
					largeResult[String(size)] = 'echoed';
			}
			this.phase = 'closing';
			for (const c of [ordered, unordered].concat(ctrl ? [ctrl] : []))
				c.close();
		}

		// ---------------------------------------------------- main

		async run() {
			this.phase = 'connecting to the signaling server';
			await this.sig.connect();
			this.phase = 'joining the room';
			await this.sig.join();
			if ((args.role === 'offer') !== (args.name < args.peer))
				log('role', args.role, 'differs from the glare rule (the smaller name ' +
					'offers): fine for a test, not for real peers');
			this.phase = 'waiting for ' + args.peer + ' to join the room';
			await this.cond.wait(() => this.sig.peerPresent || this.sig.closed);
			if (!this.sig.peerPresent)
				throw new PeerError('signaling connection closed while waiting for ' +
					args.peer + ' to join');
			await this.negotiate();
			this.sdpLoop().catch((e) => log("candidate loop failed:", e.message));
			await this.waitConnected();
			if (args.mode === 'echo')
				await this.runEcho();
			else
				await this.runDrive();
			this.result.ok = true;
		}

		async finish() {
			const out = {};
			for (const label of Object.keys(this.stats).sort()) {
				const st = this.stats[label];
				const e = { sent: st.sent, echoed: st.echoed, in_order: st.in_order };
				if (args.mode === 'echo') e.received = st.received;
				if (st.lost !== undefined) e.lost = st.lost;
				out[label] = e;
			}
			this.result.channels = out;
			if (!this.result.selected_pair && this.pc)
				this.result.selected_pair = await this.selectedPair();
		}

		close() {
			this.stopped = true;
			this.cond.notify();
			try {
				if (this.pc) this.pc.close();
			} catch (e) { /* closing anyway */ }
			this.sig.close();
		}
	}

	function missingArgs() {
		const need = ['url', 'room_uuid', 'room_name', 'name', 'peer', 'role', 'mode'];
		const missing = need.filter((k) => !args[k]);
		if (missing.length)
			return 'missing parameters: ' + missing.join(', ');
		if (!['offer', 'answer'].includes(args.role))
			return 'role must be offer or answer';
		if (!['drive', 'echo'].includes(args.mode))
			return 'mode must be drive or echo';
		if (!(args.count >= 0) || !(args.timeout > 0) || !(args.window >= 1) ||
			!(args.loss_wait > 0))
			return 'count must be >= 0, timeout > 0, window >= 1, loss_wait > 0';
		return null;
	}

	async function main() {
		const peer = new Peer();
		const started = performance.now();
		const bad = missingArgs();
		if (bad) {
			peer.result.error = bad;
		} else {
			let timer;
			const timeout = new Promise((resolve) => {
				timer = setTimeout(() => resolve('timeout'), args.timeout * 1000);
			});
			try {
				const r = await Promise.race([peer.run().then(() => 'done'), timeout]);
				if (r === 'timeout') {
					peer.result.ok = false;
					peer.result.error = 'timeout after ' + args.timeout + ' s while ' +
						peer.phase;
				}
			} catch (e) {
				peer.result.ok = false;
				peer.result.error = (e instanceof PeerError ? e.message
					: (e && e.name) + ': ' + (e && e.message)) + ' (while ' + peer.phase + ')';
			}
			clearTimeout(timer);
			await peer.finish();
			// let queued candidate sends finish before leaving (bounded)
			await Promise.race([Promise.allSettled(peer.candidateSends),
				new Promise((r) => setTimeout(r, 2000))]);
			peer.close();
		}
		if (peer.result.ok)
			delete peer.result.error;
		else if (!peer.result.error)
			peer.result.error = 'unknown failure';
		log('finished in', ((performance.now() - started) / 1000).toFixed(1), 's');
		const json = JSON.stringify(peer.result);
		window.ppResultJSON = json;
		if (typeof window.ppResult === 'function')
			await window.ppResult(json);
		else
			log('RESULT ' + json);
	}

	main();
})();
