#!/usr/bin/env node
/*
 * Fake of the Amazon S3 Control "Access Grants" API for s3grantd tests.
 *
 * Contract:
 *  - Speaks the REST-XML wire format of shared/aws/models/s3control-access-grants.json
 *    (the twelve operations of WIRE.md section a, plus DeleteAccessGrantsInstance).
 *  - Verifies every API request's SigV4 signature with an independent signer
 *    (@smithy/signature-v4, S3 flavour: uriEscapePath false, applyChecksum false,
 *    service "s3"), re-signing with the request's own x-amz-date and exactly its
 *    SignedHeaders list: the canonical request and the signing key come from the
 *    signer (keys cached per key/day/region; the canonical request of a body-less
 *    request cached by its exact inputs), the string to sign is its four fixed
 *    lines, and the HMAC is computed for every request. Also checks
 *    clock skew, x-amz-content-sha256 against the body, the checksum header that
 *    httpChecksumRequired operations carry (Content-MD5 or x-amz-checksum-*), and
 *    x-amz-account-id (and the host's account prefix when there is one).
 *  - Errors use the S3 Control wrapper <ErrorResponse><Error>..</Error><RequestId/>
 *    <HostId/></ErrorResponse> plus x-amz-request-id / x-amz-id-2 headers.
 *  - Fault knobs, observability and state manipulation are under the UNSIGNED JSON
 *    control API /__fake/* (see README.md beside this file). Every knob can also be
 *    given on the command line as --knob-name VALUE.
 *  - Start: node server.js --port 0 --port-file FILE  (the bound port is written to
 *    FILE atomically, then one JSON line {"port":..} is printed on stdout; nothing
 *    else is ever written to stdout).
 *
 * One JavaScript thread holds all state: changes happen synchronously after the
 * (async) signature check, so there are no races between concurrent requests. A
 * second thread only keeps time for answers held by latency_ms (see "answer times").
 */
'use strict';

const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { crc32 } = require('./crc32');
const fs = require('fs');
const { performance } = require('perf_hooks');
const { Worker } = require('worker_threads');
const { SignatureV4, getCanonicalHeaders } = require('@smithy/signature-v4');
const { Hash } = require('@smithy/hash-node');

const Sha256 = Hash.bind(null, 'sha256');
/* One-shot digest: crypto.hash (Node >= 20.12) skips the Hash object per call. */
const digest = crypto.hash ? (alg, data, enc) => crypto.hash(alg, data, enc) :
	(alg, data, enc) => crypto.createHash(alg).update(data).digest(enc);
const XMLNS = 'http://awss3control.amazonaws.com/doc/2018-08-20/';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const MAX_BODY = 1 << 20;
const DEFAULT_ACCOUNT = '111122223333';
const DEFAULT_REGION = 'us-east-1';
const DEFAULT_CREDENTIALS = [
	{ access_key: 'AKIDEXAMPLE', secret_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
];

/* ------------------------------------------------------------------ knobs */

const DEFAULT_KNOBS = {
	latency_ms: 0,			/* delay before answering any API request */
	latency_jitter_ms: 0,		/* plus uniform [0, jitter) */
	throttle_rate: 0,		/* fraction answered 503 SlowDown (or 429) */
	throttle_next: 0,		/* answer the next N matching requests throttled */
	throttle_status: 503,		/* 503 SlowDown | 429 TooManyRequestsException */
	retry_after_ms: null,		/* x-amz-retry-after on throttled answers */
	error_rate: 0,			/* fraction answered 500 InternalError */
	error_next: 0,
	reset_rate: 0,			/* fraction whose connection is destroyed */
	reset_next: 0,
	fault_ops: null,		/* op names the faults apply to; null = all */
	clock_offset_ms: 0,		/* server clock = real clock + offset */
	max_skew_ms: 900000,		/* RequestTimeTooSkewed beyond this */
	expired_tokens: [],		/* session tokens answered 400 ExpiredToken */
	invalid_grantee_seconds: 0,	/* "Invalid Grantee" for N s after first seen */
	invalid_grantee_principals: null, /* restrict that to these; null = all */
	invalid_iam_role_seconds: 0,	/* InvalidIamRole for N s after first seen */
	list_lag_ms: 0,			/* a new grant is missing from List for N ms */
	delete_lag_ms: 0,		/* a deleted grant stays in List (and keeps its location busy) */
	grant_quota: 100000,		/* grants per instance */
	location_quota: 1000,		/* locations per instance */
	region: null,			/* accepted signing region; null = any */
	seed: null,			/* PRNG seed for fault draws and ids */
	log_limit: 2000000,		/* oldest log entries are dropped beyond this */
};

let knobs = { ...DEFAULT_KNOBS };
let startupKnobs = { ...DEFAULT_KNOBS };
let creds = new Map();		/* access key -> {secret, token, account} */
let startupCreds = [];
let rng = Math.random;

function mulberry32(a) {
	return function () {
		a |= 0; a = a + 0x6D2B79F5 | 0;
		let t = Math.imul(a ^ a >>> 15, 1 | a);
		t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t;
		return ((t ^ t >>> 14) >>> 0) / 4294967296;
	};
}

function applyKnobs(obj) {
	const next = { ...knobs };
	for (const [k, v] of Object.entries(obj)) {
		if (k === 'credentials') continue;
		if (!(k in DEFAULT_KNOBS))
			throw new Error('unknown knob ' + k);
		const def = DEFAULT_KNOBS[k];
		if (typeof def === 'number' && (typeof v !== 'number' || !isFinite(v)))
			throw new Error('knob ' + k + ' wants a number');
		if (Array.isArray(def) && !Array.isArray(v))
			throw new Error('knob ' + k + ' wants a list');
		next[k] = v;
	}
	if (next.throttle_status !== 503 && next.throttle_status !== 429)
		throw new Error('throttle_status must be 503 or 429');
	if (Array.isArray(obj.credentials))
		for (const c of obj.credentials)
			addCredential(c);
	knobs = next;
	if ('seed' in obj)
		rng = knobs.seed === null ? Math.random : mulberry32(Number(knobs.seed));
}

function addCredential(c) {
	if (!c || typeof c.access_key !== 'string' || typeof c.secret_key !== 'string')
		throw new Error('credential needs access_key and secret_key');
	creds.set(c.access_key, {
		secret: c.secret_key,
		token: c.session_token || null,
		account: c.account || null,
	});
	signingKeys.clear();
}

/* ------------------------------------------------------------------ state */

/* instances: "account|region" -> instance */
let instances = new Map();
let log = [];
let logBase = 0;		/* sequence number of log[0] */
let grantSeq = 0;
let locSeq = 0;
let firstSeenGrantee = new Map();
let firstSeenRole = new Map();
let stats;
let statsCpu;
let statsSince;

function resetStats() {
	stats = {
		requests: 0, control_requests: 0, inflight: 0, max_inflight: 0,
		resident_ms: 0,		/* API requests' time from arrival to close, summed */
		/* on a kept-alive connection, from an answer's last byte handed to the kernel
		 * to the next request's arrival, summed: the client's turnaround plus both
		 * kernels and this loop's intake */
		turnaround_ms: 0, turnarounds: 0,
		by_op: {}, by_status: {}, by_code: {},
		faults: { throttle: 0, error: 0, reset: 0 },
	};
	statsCpu = process.cpuUsage();
	statsSince = process.hrtime.bigint();
}

/* stats plus this process's CPU time since the last clear: cpu_us / requests is
 * the cost of one request, a figure that stays honest on a busy machine. */
function statsJson() {
	const cpu = process.cpuUsage(statsCpu);
	return { ...stats, cpu_user_us: cpu.user, cpu_system_us: cpu.system,
		wall_us: Number((process.hrtime.bigint() - statsSince) / 1000n) };
}

function resetState() {
	instances = new Map();
	log = [];
	logBase = 0;
	firstSeenGrantee = new Map();
	firstSeenRole = new Map();
	resetStats();
}

function nowMs() {
	return Date.now() + knobs.clock_offset_ms;
}

function uuid() {
	if (knobs.seed === null)
		return crypto.randomUUID();
	const b = Buffer.alloc(16);
	for (let i = 0; i < 16; i++)
		b[i] = Math.floor(rng() * 256);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	const h = b.toString('hex');
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function instanceArn(inst) {
	return `arn:aws:s3:${inst.region}:${inst.account}:access-grants/default`;
}

function newInstance(account, region, idcArn) {
	const inst = {
		account, region, createdAt: nowMs(),
		identityCenterInstanceArn: idcArn || null,
		identityCenterApplicationArn: idcArn ?
			`arn:aws:sso::${account}:application/${idcArn.split('/').pop()}/apl-${uuid().slice(0, 16).replace(/-/g, '')}` : null,
		tags: [],
		locations: new Map(),	/* id -> location */
		locByScope: new Map(),	/* scope -> id */
		grants: new Map(),	/* id -> grant */
		grantKeys: new Map(),	/* identity key -> id */
		order: [],		/* grants by seq (deleted ones marked) */
		dead: 0,		/* deleted entries still in order */
		tombstones: [],		/* {grant, deletedAt} for delete_lag_ms */
	};
	instances.set(account + '|' + region, inst);
	return inst;
}

function newLocation(inst, scope, role, tags) {
	const id = scope === 's3://' ? 'default' : uuid();
	const loc = {
		id, scope, role, tags: tags || [], createdAt: nowMs(), grantCount: 0, createdSeq: ++locSeq,
		arn: `arn:aws:s3:${inst.region}:${inst.account}:access-grants/default/location/${id}`,
	};
	inst.locations.set(id, loc);
	inst.locByScope.set(scope, id);
	return loc;
}

/* A string built by '+' is a tree of pieces; a grant keeps its strings for its whole
 * life, so they are flattened once (ToNumber flattens in place) instead of leaving
 * dozens of small objects per grant for every garbage collection to walk. */
function flat(s) {
	// eslint-disable-next-line no-unused-expressions
	s | 0;
	return s;
}

function grantKey(locId, sub, gtype, gid, perm, app, ptype) {
	return [locId, sub, gtype, gid, perm, app || '', ptype || ''].join('\u0000');
}

function grantScope(loc, sub, ptype) {
	if (loc.scope === 's3://')
		return 's3://' + sub;
	if (!sub)
		return loc.scope + (loc.scope.endsWith('/') ? '' : '/') + (ptype === 'Object' ? '' : '*');
	return loc.scope + (loc.scope.endsWith('/') || sub.startsWith('/') ? '' : '/') + sub;
}

function newGrant(inst, loc, f) {
	const id = uuid();
	const g = {
		id, seq: ++grantSeq, createdAt: nowMs(),
		arn: `arn:aws:s3:${inst.region}:${inst.account}:access-grants/default/grant/${id}`,
		locationId: loc.id, subPrefix: f.subPrefix || '',
		granteeType: f.granteeType, granteeId: f.granteeId, permission: f.permission,
		applicationArn: f.applicationArn || null, prefixType: f.prefixType || null,
		tags: f.tags || [], deleted: false, xml: null,
	};
	g.scope = flat(grantScope(loc, g.subPrefix, g.prefixType));
	flat(g.arn);
	g.key = grantKey(loc.id, g.subPrefix, g.granteeType, g.granteeId, g.permission,
		g.applicationArn, g.prefixType);
	inst.grants.set(id, g);
	inst.grantKeys.set(g.key, id);
	inst.order.push(g);
	loc.grantCount++;
	return g;
}

function deleteGrant(inst, g) {
	inst.grants.delete(g.id);
	inst.grantKeys.delete(g.key);
	g.deleted = true;
	inst.dead++;
	const loc = inst.locations.get(g.locationId);
	if (loc)
		loc.grantCount--;
	if (knobs.delete_lag_ms > 0)
		inst.tombstones.push({ grant: g, deletedAt: nowMs() });
	if (inst.dead > 1024 && inst.dead * 2 > inst.order.length) {
		inst.order = inst.order.filter((x) => !x.deleted);
		inst.dead = 0;
	}
}

function liveTombstones(inst, now) {
	if (inst.tombstones.length === 0)
		return inst.tombstones;
	inst.tombstones = inst.tombstones.filter((t) => now - t.deletedAt < knobs.delete_lag_ms);
	return inst.tombstones;
}

function logMutation(ctx, status, code) {
	const e = {
		seq: logBase + log.length, time: nowMs(), op: ctx.op,	/* ms; ISO on read */
		status, code: code || null, request_id: ctx.rid, account: ctx.account || null,
		region: ctx.region || null,
	};
	if (ctx.logInfo)
		Object.assign(e, ctx.logInfo);
	log.push(e);
	if (log.length > knobs.log_limit) {
		const drop = log.length - knobs.log_limit;
		log.splice(0, drop);
		logBase += drop;
	}
}

/* ------------------------------------------------------------------ XML */

const XML_ENT = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function xmlDecode(s) {
	if (s.indexOf('&') < 0)
		return s;
	return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e) => {
		if (e[0] === '#')
			return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
		if (!(e in XML_ENT))
			throw new Error('bad entity');
		return XML_ENT[e];
	});
}

const XML_SPECIAL = /[&<>"']/;

function xmlEsc(s) {
	s = String(s);
	if (!XML_SPECIAL.test(s))
		return s;
	return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);
}

function isWs(c) {
	return c === 32 || c === 10 || c === 13 || c === 9;
}

function isNameEnd(c) {
	return isWs(c) || c === 47 /* / */ || c === 62 /* > */ || c === 61 /* = */;
}

/* Minimal, strict-enough XML parser for request bodies: elements, text, entities,
 * CDATA, comments, processing instructions. Throws on malformed input. One document
 * at a time: the parser's position lives in these three variables (no closures or
 * position objects per parse). */
let xs = '';
let xi = 0;
let xn = 0;

function xmlFail() {
	throw new Error('malformed XML');
}

function xmlSkipWs() {
	const s = xs;
	let i = xi;
	while (i < xn && isWs(s.charCodeAt(i)))
		i++;
	xi = i;
}

function xmlSkipMisc() {
	for (;;) {
		xmlSkipWs();
		if (xs.startsWith('<?', xi)) {
			const e = xs.indexOf('?>', xi);
			if (e < 0) xmlFail();
			xi = e + 2;
		} else if (xs.startsWith('<!--', xi)) {
			const e = xs.indexOf('-->', xi);
			if (e < 0) xmlFail();
			xi = e + 3;
		} else {
			return;
		}
	}
}

/* Reads a (possibly prefixed) name at xi; returns where it started. */
function xmlName() {
	const s = xs;
	const st = xi;
	let i = st;
	while (i < xn && !isNameEnd(s.charCodeAt(i)))
		i++;
	if (i === st) xmlFail();
	xi = i;
	return st;
}

function xmlElement(depth) {
	if (depth > 32 || xs.charCodeAt(xi) !== 60 /* < */) xmlFail();
	xi++;
	const st = xmlName();
	const raw = xs.slice(st, xi);
	const c = raw.indexOf(':');
	const name = c < 0 ? raw : raw.slice(c + 1);
	for (;;) {	/* attributes */
		xmlSkipWs();
		if (xi >= xn) xmlFail();
		const ch = xs.charCodeAt(xi);
		if (ch === 62 /* > */) { xi++; break; }
		if (ch === 47 /* / */ && xs.charCodeAt(xi + 1) === 62) { xi += 2; return { name, kids: [], text: '' }; }
		xmlName();
		if (xs.charCodeAt(xi) !== 61 /* = */) xmlFail();
		xi++;
		const q = xs.charCodeAt(xi);
		if (q !== 34 /* " */ && q !== 39 /* ' */) xmlFail();
		const e = xs.indexOf(q === 34 ? '"' : "'", xi + 1);
		if (e < 0) xmlFail();
		xi = e + 1;
	}
	const el = { name, kids: [], text: '' };
	for (;;) {
		const lt = xs.indexOf('<', xi);
		if (lt < 0) xmlFail();
		if (lt > xi)
			el.text += xmlDecode(xs.slice(xi, lt));
		xi = lt;
		const next = xs.charCodeAt(xi + 1);
		if (next === 47 /* / */) {
			xi += 2;
			const est = xmlName();
			const endLen = xi - est;
			xmlSkipWs();
			if (endLen !== raw.length || !xs.startsWith(raw, est) || xs.charCodeAt(xi) !== 62) xmlFail();
			xi++;
			return el;
		} else if (next === 33 /* ! */ && xs.startsWith('<!--', xi)) {
			const e = xs.indexOf('-->', xi);
			if (e < 0) xmlFail();
			xi = e + 3;
		} else if (next === 33 && xs.startsWith('<![CDATA[', xi)) {
			const e = xs.indexOf(']]>', xi);
			if (e < 0) xmlFail();
			el.text += xs.slice(xi + 9, e);
			xi = e + 3;
		} else if (next === 63 /* ? */) {
			const e = xs.indexOf('?>', xi);
			if (e < 0) xmlFail();
			xi = e + 2;
		} else {
			el.kids.push(xmlElement(depth + 1));
		}
	}
}

function parseXml(s) {
	xs = s;
	xn = s.length;
	xi = s.charCodeAt(0) === 0xfeff ? 1 : 0;
	try {
		xmlSkipMisc();
		const root = xmlElement(0);
		xmlSkipMisc();
		if (xi !== xn) xmlFail();
		return root;
	} finally {
		xs = '';
	}
}

function kid(el, name) {
	if (!el)
		return undefined;
	for (const k of el.kids)
		if (k.name === name)
			return k;
	return undefined;
}

function kidText(el, name) {
	const k = kid(el, name);
	return k ? k.text : undefined;
}

/* ------------------------------------------------------------------ answer times */

/* Answers held for latency_ms are written at their due time on the monotonic clock,
 * never early and a fraction of a millisecond late (measured at 10 ms: 0.14-0.16 ms
 * late on average with 64 requests in flight, 0.3 ms with one). Node's own timers
 * cannot do that: they fire on whole milliseconds of a loop clock cached at the start
 * of each iteration, so a 10 ms hold came out 0.3-0.8 ms late when rounded up, and
 * early when not. Due answers wait in a min-heap. One worker thread sleeps in
 * Atomics.wait (whose timeout is a fraction of a millisecond) until the earliest is
 * due, then posts a message, which wakes this loop at once; while requests keep
 * coming, this loop writes what fell due after each one and the waker's message
 * finds nothing left. The earliest due time and a generation counter are shared
 * with the waker (see publishDue). */

function hrMs() {
	return Number(process.hrtime.bigint()) / 1e6;
}

const WAKER_SRC = `
const { workerData, parentPort } = require('worker_threads');
const gen = new Int32Array(workerData.gen);
const due = new Float64Array(workerData.due);
for (;;) {
	const g = Atomics.load(gen, 0);
	const d = due[0];
	const left = d - Number(process.hrtime.bigint()) / 1e6;
	if (left > 0)
		Atomics.wait(gen, 0, g, left === Infinity ? undefined : left);
	else {
		parentPort.postMessage(g);
		Atomics.wait(gen, 0, g);
	}
}`;

const heap = [];		/* [{ due, fn, ctx, status, body, extra }], min-heap by due */
let waker = null;
let wakerGen = null;
let wakerDue = null;

function heapPush(e) {
	let i = heap.length;
	heap.push(e);
	while (i > 0) {
		const p = (i - 1) >> 1;
		if (heap[p].due <= e.due)
			break;
		heap[i] = heap[p];
		i = p;
	}
	heap[i] = e;
}

function heapPop() {
	const top = heap[0];
	const last = heap.pop();
	if (heap.length) {
		let i = 0;
		for (;;) {
			const l = 2 * i + 1;
			if (l >= heap.length)
				break;
			const c = l + 1 < heap.length && heap[l + 1].due < heap[l].due ? l + 1 : l;
			if (heap[c].due >= last.due)
				break;
			heap[i] = heap[c];
			i = c;
		}
		heap[i] = last;
	}
	return top;
}

/* Tell the waker the earliest due time (Infinity: nothing held). It is woken
 * only when that time moved earlier (a later one it finds when it wakes) or
 * when it is waiting for the answer to its message (force). */
let publishedDue = Infinity;

function publishDue(force) {
	const d = heap.length ? heap[0].due : Infinity;
	wakerDue[0] = d;
	if (d < publishedDue || force) {
		Atomics.add(wakerGen, 0, 1);
		Atomics.notify(wakerGen, 0);
	}
	publishedDue = d;
}

function onWaker() {
	runDue(hrMs());
	publishDue(true);
}

function writeHeld(e) {
	try {
		e.fn(e.ctx, e.status, e.body, e.extra);
	} catch (err) {
		process.stderr.write(`s3control-fake: writing an answer failed: ${err.stack}\n`);
		e.ctx.req.socket.destroy();
	}
}

/* Also called after each request is handled: while requests keep arriving the loop is
 * awake anyway, and what fell due meanwhile goes out without a message. */
function runDue(now) {
	while (heap.length && heap[0].due <= now)
		writeHeld(heapPop());
}

/* Answers without a latency are written once the loop has handled everything it
 * read in this pass (setImmediate runs right after the poll phase), the way Redis
 * writes its replies before it sleeps again: the answers to requests that arrived
 * together leave together, so the fake pays one wake-up per burst and so does its
 * client, instead of one per answer. It holds an answer for at most one pass. */
const soon = [];

function flushSoon() {
	for (let i = 0; i < soon.length; i++)
		writeHeld(soon[i]);
	soon.length = 0;
}

function startWaker() {
	wakerGen = new Int32Array(new SharedArrayBuffer(4));
	wakerDue = new Float64Array(new SharedArrayBuffer(8));
	wakerDue[0] = Infinity;
	waker = new Worker(WAKER_SRC, { eval: true,
		workerData: { gen: wakerGen.buffer, due: wakerDue.buffer } });
	waker.on('message', onWaker);
	waker.on('error', (e) => {
		process.stderr.write(`s3control-fake: answer timer thread failed: ${e.stack || e}\n`);
		process.exit(70);
	});
	waker.unref();
}

/* Write at the end of this loop pass, or at ctx.due when a latency holds the answer. */
function deliver(ctx, fn, status, body, extra) {
	const e = { due: ctx.due, fn, ctx, status, body, extra };
	if (ctx.due === undefined || ctx.due <= hrMs()) {
		if (soon.push(e) === 1)
			setImmediate(flushSoon);
		return;
	}
	if (!waker)
		startWaker();
	heapPush(e);
	publishDue(false);
}

/* Headers (with their Date) are made when the answer is written. */
function writeAnswer(ctx, status, body, extra) {
	const res = ctx.res;
	if (res.destroyed || res.writableEnded)
		return;
	res.writeHead(status, answerHeaders(ctx, body ? Buffer.byteLength(body) : 0, extra));
	res.end(body || undefined);
}

function resetConnection(ctx) {
	ctx.req.socket.destroy();
}

/* ------------------------------------------------------------------ responses */

class ApiError {
	constructor(status, code, message, extra, headers) {
		this.status = status;
		this.code = code;
		this.message = message;
		this.extra = extra || null;	/* [[name, value], ...] inside <Error> */
		this.headers = headers || null;
	}
}

let ridCounter = crypto.randomBytes(4).readUInt32BE(0);
let dateCacheSec = -1;
let dateCacheStr = '';

function httpDate(ms) {
	const sec = Math.floor(ms / 1000);
	if (sec !== dateCacheSec) {
		dateCacheSec = sec;
		dateCacheStr = new Date(sec * 1000).toUTCString();
	}
	return dateCacheStr;
}

/* An answer's headers: a flat [name, value, ...] list (what writeHead walks
 * fastest), or an object when extra headers (Allow, x-amz-retry-after) may
 * replace one of the usual ones. */
function answerHeaders(ctx, length, extra) {
	const date = httpDate(nowMs());
	if (extra) {
		const h = { 'x-amz-request-id': ctx.rid, 'x-amz-id-2': ctx.hostId, 'Date': date };
		if (length)
			h['Content-Type'] = 'application/xml';
		h['Content-Length'] = length;
		return Object.assign(h, extra);
	}
	if (length)
		return ['x-amz-request-id', ctx.rid, 'x-amz-id-2', ctx.hostId, 'Date', date,
			'Content-Type', 'application/xml', 'Content-Length', length];
	return ['x-amz-request-id', ctx.rid, 'x-amz-id-2', ctx.hostId, 'Date', date, 'Content-Length', 0];
}

function send(ctx, status, body, extraHeaders) {
	const res = ctx.res;
	if (res.destroyed || res.writableEnded)
		return;
	deliver(ctx, writeAnswer, status, body, extraHeaders);
	count(ctx, status, null);
}

function count(ctx, status, code) {
	stats.by_status[status] = (stats.by_status[status] || 0) + 1;
	if (code)
		stats.by_code[code] = (stats.by_code[code] || 0) + 1;
}

function sendError(ctx, e) {
	const res = ctx.res;
	if (res.destroyed || res.writableEnded)
		return;
	let extra = '';
	if (e.extra)
		for (const [k, v] of e.extra)
			extra += `<${k}>${xmlEsc(v)}</${k}>`;
	const body = '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error>' +
		`<Code>${e.code}</Code><Message>${xmlEsc(e.message)}</Message>${extra}</Error>` +
		`<RequestId>${ctx.rid}</RequestId><HostId>${ctx.hostId}</HostId></ErrorResponse>`;
	deliver(ctx, writeAnswer, e.status, body, e.headers);
	count(ctx, e.status, e.code);
}

function result(root, inner) {
	return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${XMLNS}">${inner}</${root}>`;
}

function el(name, v) {
	return v === null || v === undefined ? '' : `<${name}>${xmlEsc(v)}</${name}>`;
}

let isoCacheMs = NaN;
let isoCacheStr = '';

/* Many grants share a millisecond: the last conversion is kept. */
function iso(ms) {
	if (ms !== isoCacheMs) {
		isoCacheStr = new Date(ms).toISOString();
		isoCacheMs = ms;
	}
	return isoCacheStr;
}

function instanceXml(inst) {
	return el('CreatedAt', iso(inst.createdAt)) +
		el('AccessGrantsInstanceId', 'default') +
		el('AccessGrantsInstanceArn', instanceArn(inst)) +
		el('IdentityCenterArn', inst.identityCenterApplicationArn) +
		el('IdentityCenterInstanceArn', inst.identityCenterInstanceArn) +
		el('IdentityCenterApplicationArn', inst.identityCenterApplicationArn);
}

function locationXml(loc) {
	return el('CreatedAt', iso(loc.createdAt)) +
		el('AccessGrantsLocationId', loc.id) +
		el('AccessGrantsLocationArn', loc.arn) +
		el('LocationScope', loc.scope) +
		el('IAMRoleArn', loc.role);
}

/* Grants never change once made: their XML is rendered once and kept. */
function grantXml(g) {
	if (g.xml)
		return g.xml;
	g.xml = el('CreatedAt', iso(g.createdAt)) +
		el('AccessGrantId', g.id) +
		el('AccessGrantArn', g.arn) +
		'<Grantee>' + el('GranteeType', g.granteeType) + el('GranteeIdentifier', g.granteeId) + '</Grantee>' +
		el('Permission', g.permission) +
		el('AccessGrantsLocationId', g.locationId) +
		'<AccessGrantsLocationConfiguration><S3SubPrefix>' + xmlEsc(g.subPrefix) +
		'</S3SubPrefix></AccessGrantsLocationConfiguration>' +
		el('GrantScope', g.scope) +
		el('ApplicationArn', g.applicationArn);
	return flat(g.xml);
}

/* ------------------------------------------------------------------ routing */

const MUTATING = new Set(['CreateAccessGrantsInstance', 'DeleteAccessGrantsInstance',
	'CreateAccessGrantsLocation', 'DeleteAccessGrantsLocation', 'CreateAccessGrant', 'DeleteAccessGrant']);

/* Path after /v20180820/accessgrantsinstance -> method -> operation. */
const ROUTES = new Map([
	['', { POST: 'CreateAccessGrantsInstance', GET: 'GetAccessGrantsInstance', DELETE: 'DeleteAccessGrantsInstance' }],
	['s', { GET: 'ListAccessGrantsInstances' }],
	['/prefix', { GET: 'GetAccessGrantsInstanceForPrefix' }],
	['/location', { POST: 'CreateAccessGrantsLocation' }],
	['/locations', { GET: 'ListAccessGrantsLocations' }],
	['/grant', { POST: 'CreateAccessGrant' }],
	['/grants', { GET: 'ListAccessGrants' }],
]);
const LOCATION_ROUTE = { GET: 'GetAccessGrantsLocation', DELETE: 'DeleteAccessGrantsLocation' };
const GRANT_ROUTE = { GET: 'GetAccessGrant', DELETE: 'DeleteAccessGrant' };

/* {op} for a known operation, {op: null, allowed} for a known path and another
 * method, plus id for the location and grant paths; null for an unknown path.
 * Every answer is a new object (callers may add to it). */
function route(method, p) {
	if (!p.startsWith('/v20180820/accessgrantsinstance'))
		return null;
	const r = p.slice(31);
	let m = ROUTES.get(r);
	let id;
	if (m === undefined) {
		let raw;
		if (r.startsWith('/grant/')) {
			m = GRANT_ROUTE;
			raw = r.slice(7);
		} else if (r.startsWith('/location/')) {
			m = LOCATION_ROUTE;
			raw = r.slice(10);
		} else {
			return null;
		}
		if (raw === '' || raw.indexOf('/') >= 0)
			return null;
		if (raw.indexOf('%') < 0) {
			id = raw;
		} else {
			try {
				id = decodeURIComponent(raw);
			} catch (e) {
				return null;
			}
		}
	}
	const op = m[method];
	const rt = op ? { op, allowed: undefined, id } : { op: null, allowed: Object.keys(m), id };
	return rt;
}

function parseQuery(raw) {
	const q = {};
	if (!raw)
		return q;
	for (const part of raw.split('&')) {
		if (!part)
			continue;
		const eq = part.indexOf('=');
		const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
		const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
		if (k in q)
			q[k] = Array.isArray(q[k]) ? q[k].concat(v) : [q[k], v];
		else
			q[k] = v;
	}
	return q;
}

/* ------------------------------------------------------------------ auth */

/* One signer does all the canonicalisation (@smithy/signature-v4 in its S3 flavour:
 * path used as sent, no payload checksum of its own); it holds no credentials. */
const signer = new SignatureV4({
	credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' },
	region: DEFAULT_REGION, service: 's3', sha256: Sha256,
	uriEscapePath: false, applyChecksum: false,
});

/* Derived signing keys by the Authorization header's whole Credential
 * ("akid/yyyymmdd/region/s3/aws4_request") -> hmacKey(); cleared when credentials
 * change. Bounded: a flood of distinct scopes just empties it. The signer derives
 * them (asynchronously) on a miss; a hit costs one Map lookup, so the usual request
 * is verified without leaving the current tick. */
const signingKeys = new Map();

async function deriveSigningKey(credential, ak, c, region, sdate) {
	const key = hmacKey(Buffer.from(await signer.getSigningKey(
		{ accessKeyId: ak, secretAccessKey: c.secret }, region, sdate, 's3')));
	if (signingKeys.size >= 4096)
		signingKeys.clear();
	signingKeys.set(credential, key);
}

/* HMAC-SHA256 (RFC 2104) as two one-shot SHA-256 digests over the key's padded
 * blocks: SHA256((K ^ opad) || SHA256((K ^ ipad) || message)). Node's createHmac
 * builds a Hmac object and an OpenSSL MAC context per call, which made it the
 * largest single cost of a request in the fake (about 15 us of a create's 105 us
 * with 64 requests in flight); crypto.hash (Node >= 20.12) looks its digest up
 * once and keeps it.
 * Every key is checked against createHmac once when it is made; without
 * crypto.hash, or for a message longer than the scratch buffer, createHmac does
 * the work. */
const HMAC_BLOCK = 64;
const hmacInner = Buffer.alloc(HMAC_BLOCK + 2048);	/* K ^ ipad, then the message */
const hmacOuter = Buffer.alloc(HMAC_BLOCK + 32);	/* K ^ opad, then the inner digest */

function hmacKey(raw) {
	const key = { raw, ipad: null, opad: null };
	if (!crypto.hash || raw.length > HMAC_BLOCK)
		return key;
	key.ipad = Buffer.alloc(HMAC_BLOCK, 0x36);
	key.opad = Buffer.alloc(HMAC_BLOCK, 0x5c);
	for (let i = 0; i < raw.length; i++) {
		key.ipad[i] ^= raw[i];
		key.opad[i] ^= raw[i];
	}
	const probe = 'AWS4-HMAC-SHA256\nself-check \u00e9';
	if (hmacHex(key, probe) !== crypto.createHmac('sha256', raw).update(probe).digest('hex'))
		throw new Error('HMAC-SHA256 from crypto.hash disagrees with crypto.createHmac');
	return key;
}

/* hex HMAC-SHA256 of a string (UTF-8) under a hmacKey() */
function hmacHex(key, msg) {
	if (key.ipad === null || msg.length * 3 > hmacInner.length - HMAC_BLOCK)
		return crypto.createHmac('sha256', key.raw).update(msg).digest('hex');
	key.ipad.copy(hmacInner, 0);
	const n = hmacInner.write(msg, HMAC_BLOCK, 'utf8');
	const inner = crypto.hash('sha256', hmacInner.subarray(0, HMAC_BLOCK + n), 'buffer');
	key.opad.copy(hmacOuter, 0);
	inner.copy(hmacOuter, HMAC_BLOCK);
	return crypto.hash('sha256', hmacOuter, 'hex');
}

/* SignedHeaders value -> {list, set}: clients send the same few lists. */
const signedLists = new Map();

function signedListOf(value) {
	let sl = signedLists.get(value);
	if (sl === undefined) {
		const list = value.split(';');
		sl = { list, set: new Set(list) };
		if (signedLists.size >= 256)
			signedLists.clear();
		signedLists.set(value, sl);
	}
	return sl;
}

/* The canonical request the signer made for a body-less request (GET, DELETE),
 * with its SHA-256 and header list, by everything the signer reads from it
 * (method, path, query, each signed header's value, payload hash), each part
 * length-prefixed so no two inputs share a key. The same GET is repeated within
 * one x-amz-date second; a request with a body (always a new hash) is not
 * cached. The signature itself is recomputed (HMAC) for every request. */
const canonCache = new Map();

function canonKey(ctx, signedHeaders, list, h, sha) {
	let k = ctx.req.method.length + ':' + ctx.req.method + ctx.rawPath.length + ':' + ctx.rawPath +
		ctx.rawQuery.length + ':' + ctx.rawQuery + signedHeaders.length + ':' + signedHeaders + sha.length + ':' + sha;
	for (let i = 0; i < list.length; i++) {
		let v = h[list[i]];
		if (v === undefined) {
			k += '-';
			continue;
		}
		if (Array.isArray(v))
			v = v.join(',');
		k += v.length + ':' + v;
	}
	return k;
}

/* The last x-amz-date that matched DATE_RE and its time in ms (every request of a
 * second shares it). */
let amzDateStr = null;
let amzDateMs = 0;

/* Credential ("akid/yyyymmdd/region/service/aws4_request") -> its parts; a client
 * sends one a day. Callers only read the arrays. */
const credentials = new Map();

function credentialParts(credential) {
	let parts = credentials.get(credential);
	if (parts === undefined) {
		parts = credential.split('/');
		if (credentials.size >= 256)
			credentials.clear();
		credentials.set(credential, parts);
	}
	return parts;
}

const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;
const DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function malformed(msg) {
	return new ApiError(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed; ' + msg);
}

/* The signer's canonical form of the request as received: exactly its
 * SignedHeaders (getCanonicalHeaders with them as the signable set), its path as
 * sent and its x-amz-content-sha256 as the payload hash; {canon, hash, signedHeaders}. */
function canonicalise(ctx, h, list, signedSet, sha) {
	const headers = {};
	for (let i = 0; i < list.length; i++) {
		const name = list[i];
		const v = h[name];
		if (v !== undefined)
			headers[name] = Array.isArray(v) ? v.join(',') : v;
	}
	const request = {
		method: ctx.req.method, protocol: ctx.tls ? 'https:' : 'http:',
		hostname: '', path: ctx.rawPath, query: ctx.query, headers, body: ctx.body,
	};
	const canonHeaders = getCanonicalHeaders(request, undefined, signedSet);
	const canon = signer.createCanonicalRequest(request, canonHeaders, sha);
	return { canon, hash: digest('sha256', canon, 'hex'), signedHeaders: signer.getCanonicalHeaderList(canonHeaders) };
}

/* Re-sign the request as received with the request's own x-amz-date and scope. The
 * string to sign is the fixed four lines the signer's async createStringToSign
 * returns, built here synchronously. */
function resign(key, cr, amzDate, scope) {
	const sts = 'AWS4-HMAC-SHA256\n' + amzDate + '\n' + scope + '\n' + cr.hash;
	return { sts, sig: hmacHex(key, sts) };
}

/* Returns null when the request is authentic, else an ApiError; or, the first time a
 * key/day/region is seen, a promise of that answer (after deriving the signing key). */
function verify(ctx) {
	const h = ctx.req.headers;
	const auth = h.authorization;
	if (!auth) {
		if (ctx.rawQuery.indexOf('X-Amz-Signature') >= 0)
			return new ApiError(403, 'AccessDenied', 'Query-string authentication is not supported by this fake');
		return new ApiError(403, 'AccessDenied', 'Access Denied');
	}
	const m = AUTH_RE.exec(auth);
	if (!m)
		return malformed('it must be AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...');
	const cred = credentialParts(m[1]);
	if (cred.length !== 5 || cred[4] !== 'aws4_request')
		return malformed('the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
	const [ak, sdate, region, service] = cred;
	if (service !== 's3')
		return malformed(`incorrect service "${service}". This endpoint belongs to "s3".`);
	if (knobs.region && region !== knobs.region)
		return new ApiError(400, 'AuthorizationHeaderMalformed',
			`The authorization header is malformed; the region '${region}' is wrong; expecting '${knobs.region}'`,
			[['Region', knobs.region]]);
	const amzDate = h['x-amz-date'];
	if (amzDate !== amzDateStr) {
		const dm = amzDate ? DATE_RE.exec(amzDate) : null;
		if (!dm)
			return new ApiError(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
		amzDateMs = Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]);
		amzDateStr = amzDate;
	}
	if (amzDate.slice(0, 8) !== sdate)
		return malformed('Invalid credential date. Date is not the same as X-Amz-Date.');
	const signingMs = amzDateMs;
	const server = nowMs();
	if (Math.abs(signingMs - server) > knobs.max_skew_ms)
		return new ApiError(403, 'RequestTimeTooSkewed',
			'The difference between the request time and the current time is too large.',
			[['RequestTime', amzDate], ['ServerTime', iso(server)],
				['MaxAllowedSkewMilliseconds', String(knobs.max_skew_ms)]]);
	const c = creds.get(ak);
	if (!c)
		return new ApiError(403, 'InvalidAccessKeyId',
			'The AWS Access Key Id you provided does not exist in our records.', [['AWSAccessKeyId', ak]]);
	const tok = h['x-amz-security-token'];
	if (tok !== undefined && knobs.expired_tokens.includes(tok))
		return new ApiError(400, 'ExpiredToken', 'The provided token has expired.', [['Token-0', tok]]);
	if (c.token) {
		if (tok === undefined)
			return new ApiError(403, 'InvalidAccessKeyId',
				'The AWS Access Key Id you provided does not exist in our records.', [['AWSAccessKeyId', ak]]);
		if (tok !== c.token)
			return new ApiError(400, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
	} else if (tok !== undefined) {
		return new ApiError(400, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
	}

	const sl = signedListOf(m[2]);
	const signedSet = sl.set;
	let unsigned = null;
	for (const name in h)
		if ((name.startsWith('x-amz-') || name === 'host') && !signedSet.has(name))
			(unsigned || (unsigned = [])).push(name);
	if (unsigned)
		return new ApiError(403, 'AccessDenied', 'There were headers present in the request which were not signed',
			[['HeadersNotSigned', unsigned.join(', ')]]);

	const sha = h['x-amz-content-sha256'];
	if (!sha)
		return new ApiError(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
	const bodyHash = ctx.body.length ? digest('sha256', ctx.body, 'hex') : EMPTY_SHA256;
	ctx.bodySha256 = bodyHash;
	if (sha === 'UNSIGNED-PAYLOAD') {
		if (!ctx.tls)
			return new ApiError(400, 'InvalidRequest', 'UNSIGNED-PAYLOAD is only accepted over HTTPS');
	} else if (sha !== bodyHash) {
		return new ApiError(400, 'XAmzContentSHA256Mismatch',
			"The provided 'x-amz-content-sha256' header does not match what was computed.",
			[['ClientComputedContentSHA256', sha], ['S3ComputedContentSHA256', bodyHash]]);
	}

	const key = signingKeys.get(m[1]);
	if (key === undefined)
		return deriveSigningKey(m[1], ak, c, region, sdate).then(() => verify(ctx));
	let cr;
	if (ctx.body.length === 0) {
		const ck = canonKey(ctx, m[2], sl.list, h, sha);
		cr = canonCache.get(ck);
		if (cr === undefined) {
			cr = canonicalise(ctx, h, sl.list, signedSet, sha);
			if (canonCache.size >= 1024)
				canonCache.clear();
			canonCache.set(ck, cr);
		}
	} else {
		cr = canonicalise(ctx, h, sl.list, signedSet, sha);
	}
	const p = resign(key, cr, amzDate, m[1].slice(ak.length + 1));
	if (p.sig !== m[3] || cr.signedHeaders !== m[2])
		return new ApiError(403, 'SignatureDoesNotMatch',
			'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
			[['AWSAccessKeyId', ak], ['StringToSign', p.sts], ['SignatureProvided', m[3]],
				['CanonicalRequest', cr.canon]]);
	ctx.region = region;
	ctx.callerAccount = c.account;
	return null;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/* base64 of a 32-bit number's four big-endian bytes ("AAAAAA==" for 0) */
function u32Base64(n) {
	return B64[n >>> 26] + B64[(n >>> 20) & 63] + B64[(n >>> 14) & 63] + B64[(n >>> 8) & 63] +
		B64[(n >>> 2) & 63] + B64[(n & 3) << 4] + '==';
}

/* The body's SHA-256 was taken (hex) for x-amz-content-sha256 already. */
const CHECKSUM_ALGOS = [
	['x-amz-checksum-crc32', 'CRC32', (ctx) => u32Base64(crc32(ctx.body))],
	['x-amz-checksum-sha256', 'SHA256', (ctx) => Buffer.from(ctx.bodySha256, 'hex').toString('base64')],
	['x-amz-checksum-sha1', 'SHA1', (ctx) => digest('sha1', ctx.body, 'base64')],
];

/* Host -> the 12-digit account label it starts with ("111122223333.s3-control...")
 * or null; a client uses one or two hosts. */
const hostAccounts = new Map();

function hostAccount(hostHeader) {
	const hh = hostHeader || '';
	let label = hostAccounts.get(hh);
	if (label === undefined) {
		const host = hh.replace(/:\d+$/, '');
		label = host.split('.')[0];
		if (!(host.indexOf('.') > 0 && /^\d{12}$/.test(label)))
			label = null;
		if (hostAccounts.size >= 256)
			hostAccounts.clear();
		hostAccounts.set(hh, label);
	}
	return label;
}

function checkAccountAndChecksum(ctx) {
	const h = ctx.req.headers;
	const acct = h['x-amz-account-id'];
	if (acct === undefined)
		return new ApiError(400, 'InvalidRequest', 'Missing required header for this request: x-amz-account-id');
	if (!/^\d{12}$/.test(acct))
		return new ApiError(400, 'InvalidRequest', 'Invalid account id in x-amz-account-id');
	const label = hostAccount(h.host);
	if (label !== null && label !== acct)
		return new ApiError(400, 'InvalidRequest',
			`The account id in the host name (${label}) does not match x-amz-account-id (${acct})`);
	if (ctx.callerAccount && ctx.callerAccount !== acct)
		return new ApiError(403, 'AccessDenied', 'Access Denied');
	ctx.account = acct;

	const body = ctx.body;
	const md5 = h['content-md5'];
	if (md5 !== undefined) {
		const want = digest('md5', body, 'base64');
		if (!/^[A-Za-z0-9+/]{22}==$/.test(md5))
			return new ApiError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
		if (md5 !== want)
			return new ApiError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.',
				[['ExpectedDigest', md5], ['CalculatedDigest', want]]);
		return null;
	}
	for (const [name, label2, fn] of CHECKSUM_ALGOS) {
		const v = h[name];
		if (v === undefined)
			continue;
		if (v !== fn(ctx))
			return new ApiError(400, 'BadDigest', `The ${label2} you specified did not match the calculated checksum.`);
		return null;
	}
	return new ApiError(400, 'InvalidRequest',
		'Missing required header for this request: Content-MD5 OR x-amz-checksum-*');
}

/* ------------------------------------------------------------------ operations */

function noInstance() {
	return new ApiError(404, 'AccessGrantsInstanceNotExistsError',
		'Access Grants Instance does not exist');
}

function bad(msg) {
	return new ApiError(400, 'InvalidRequest', msg);
}

function getInst(ctx) {
	const inst = instances.get(ctx.account + '|' + ctx.region);
	if (!inst)
		throw noInstance();
	return inst;
}

function parseBody(ctx, rootName, allowEmpty) {
	const s = ctx.body.toString('utf8');
	if (!s.trim()) {
		if (allowEmpty)
			return null;
		throw new ApiError(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
	}
	let root;
	try {
		root = parseXml(s);
	} catch (e) {
		throw new ApiError(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
	}
	if (root.name !== rootName)
		throw new ApiError(400, 'MalformedXML', `Expected root element ${rootName}`);
	return root;
}

function parseTags(root) {
	const t = kid(root, 'Tags');
	if (!t)
		return [];
	const tags = [];
	const seen = new Set();
	for (const k of t.kids) {
		if (k.name !== 'Tag')
			continue;
		const key = kidText(k, 'Key');
		const value = kidText(k, 'Value');
		if (key === undefined || value === undefined || key.length < 1 || key.length > 128 || value.length > 256 ||
		    !/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u.test(key) || !/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u.test(value))
			throw new ApiError(400, 'InvalidTag', 'The tag provided was not a valid tag.');
		if (key.startsWith('aws:'))
			throw new ApiError(400, 'InvalidTag', 'System tags (aws:) cannot be set.');
		if (seen.has(key))
			throw new ApiError(400, 'InvalidTag', 'Cannot provide multiple Tags with the same key');
		seen.add(key);
		tags.push({ key, value });
	}
	if (tags.length > 50)
		throw new ApiError(400, 'TooManyTags', 'The number of tags exceeds the limit of 50 tags.');
	return tags;
}

const PERMISSIONS = new Set(['READ', 'WRITE', 'READWRITE']);
const GRANTEE_TYPES = new Set(['IAM', 'DIRECTORY_USER', 'DIRECTORY_GROUP']);
const ROLE_RE = /^arn:[^:]+:iam::\d{12}:role\/.+$/;
const IAM_PRINCIPAL_RE = /^arn:[^:]+:iam::\d{12}:(role|user)\/.+$/;
const APP_RE = /^arn:[^:]+:sso::\d{12}:application\/.+$/;

/* List pagination: tokens are base64 with a fixed "+/+/" head and always '='-padded,
 * so a client that does not percent-encode them breaks. */
function makeToken(kind, after, fkey) {
	let payload = JSON.stringify({ k: kind, a: after, f: fkey });
	while ((3 + Buffer.byteLength(payload)) % 3 === 0)
		payload += ' ';
	return Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf]), Buffer.from(payload)]).toString('base64');
}

function readToken(tok, kind, fkey) {
	const invalid = bad('The continuation token provided is incorrect');
	let obj;
	try {
		const b = Buffer.from(tok, 'base64');
		if (b.length < 4 || b[0] !== 0xfb || b[1] !== 0xff || b[2] !== 0xbf)
			throw invalid;
		obj = JSON.parse(b.subarray(3).toString());
	} catch (e) {
		throw invalid;
	}
	if (!obj || obj.k !== kind || obj.f !== fkey || typeof obj.a !== 'number')
		throw invalid;
	return obj.a;
}

function maxResults(q) {
	const v = q.maxResults;
	if (v === undefined)
		return 1000;
	if (typeof v !== 'string' || !/^\d+$/.test(v) || +v > 1000)
		throw bad('maxResults must be an integer between 0 and 1000');
	return +v === 0 ? 1000 : +v;
}

function one(q, name) {
	const v = q[name];
	if (Array.isArray(v))
		throw bad(`Query parameter ${name} given more than once`);
	return v;
}

function listPage(items, q, kind, fkey, seqOf) {
	const max = maxResults(q);
	const tok = one(q, 'nextToken');
	let after = -1;
	if (tok !== undefined && tok !== '')
		after = readToken(tok, kind, fkey);
	/* items are sorted by seq: binary search the first one after the cursor */
	let lo = 0, hi = items.length;
	while (lo < hi) {
		const mid = (lo + hi) >> 1;
		if (seqOf(items[mid]) <= after) lo = mid + 1; else hi = mid;
	}
	return { start: lo, max };
}

const ops = {
	CreateAccessGrantsInstance(ctx) {
		const root = parseBody(ctx, 'CreateAccessGrantsInstanceRequest', true);
		const key = ctx.account + '|' + ctx.region;
		if (instances.has(key))
			throw new ApiError(409, 'AccessGrantsInstanceAlreadyExists',
				'Access Grants Instance already exists in this account and region');
		const idc = kidText(root, 'IdentityCenterArn');
		if (idc !== undefined && !/^arn:[^:]+:sso::(\d{12})?:instance\/.+$/.test(idc))
			throw new ApiError(400, 'InvalidIdentityCenterInstance', 'The Identity Center instance ARN is not valid');
		const tags = parseTags(root);
		const inst = newInstance(ctx.account, ctx.region, idc);
		inst.tags = tags;
		return result('CreateAccessGrantsInstanceResult', instanceXml(inst));
	},
	GetAccessGrantsInstance(ctx) {
		return result('GetAccessGrantsInstanceResult', instanceXml(getInst(ctx)));
	},
	DeleteAccessGrantsInstance(ctx) {
		const inst = getInst(ctx);
		if (inst.locations.size)
			throw new ApiError(400, 'AccessGrantsInstanceNotEmptyError',
				'Please delete all locations before deleting the Access Grants Instance');
		instances.delete(ctx.account + '|' + ctx.region);
		return '';
	},
	GetAccessGrantsInstanceForPrefix(ctx) {
		const p = one(ctx.query, 's3prefix');
		if (p === undefined || p === '')
			throw bad('Missing required parameter: s3prefix');
		if (!p.startsWith('s3://') || p.length > 2000)
			throw bad('s3prefix must be an S3 path starting with s3://');
		const inst = getInst(ctx);
		let covered = false;
		for (const scope of inst.locByScope.keys())
			if (p.startsWith(scope)) { covered = true; break; }
		if (!covered)
			throw new ApiError(404, 'AccessGrantsInstanceNotExistsError',
				'No Access Grants Instance has a location covering the prefix');
		return result('GetAccessGrantsInstanceForPrefixResult',
			el('AccessGrantsInstanceArn', instanceArn(inst)) + el('AccessGrantsInstanceId', 'default'));
	},
	ListAccessGrantsInstances(ctx) {
		const items = [];
		for (const inst of instances.values())
			if (inst.account === ctx.account && inst.region === ctx.region)
				items.push(inst);
		const { start, max } = listPage(items, ctx.query, 'i', '', (x) => x.createdAt);
		const page = items.slice(start, start + max);
		let out = '';
		if (start + max < items.length)
			out += el('NextToken', makeToken('i', page[page.length - 1].createdAt, ''));
		out += '<AccessGrantsInstancesList>';
		for (const inst of page)
			out += '<AccessGrantsInstance>' + el('AccessGrantsInstanceId', 'default') +
				el('AccessGrantsInstanceArn', instanceArn(inst)) + el('CreatedAt', iso(inst.createdAt)) +
				el('IdentityCenterArn', inst.identityCenterApplicationArn) +
				el('IdentityCenterInstanceArn', inst.identityCenterInstanceArn) +
				el('IdentityCenterApplicationArn', inst.identityCenterApplicationArn) +
				'</AccessGrantsInstance>';
		return result('ListAccessGrantsInstancesResult', out + '</AccessGrantsInstancesList>');
	},
	CreateAccessGrantsLocation(ctx) {
		const root = parseBody(ctx, 'CreateAccessGrantsLocationRequest', false);
		const inst = getInst(ctx);
		const scope = kidText(root, 'LocationScope');
		const role = kidText(root, 'IAMRoleArn');
		ctx.logInfo = { location_scope: scope || null, role: role || null };
		if (!scope || !role)
			throw bad('LocationScope and IAMRoleArn are required');
		if (!/^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?)?$/.test(scope) || scope.length > 2000)
			throw new ApiError(400, 'InvalidAccessGrantsLocation',
				'The location scope must be s3://, s3://bucket or s3://bucket/prefix');
		if (!ROLE_RE.test(role) || role.length > 2048)
			throw new ApiError(400, 'InvalidIamRole', 'The IAM role ARN is not valid');
		const tags = parseTags(root);
		if (knobs.invalid_iam_role_seconds > 0) {
			const now = nowMs();
			let seen = firstSeenRole.get(role);
			if (seen === undefined)
				firstSeenRole.set(role, seen = now);
			if (now - seen < knobs.invalid_iam_role_seconds * 1000)
				throw new ApiError(400, 'InvalidIamRole',
					'S3 Access Grants is unable to assume the IAM role; check its trust policy');
		}
		if (inst.locByScope.has(scope))
			throw new ApiError(409, 'AccessGrantsLocationAlreadyExistsError',
				'The location scope is already registered as an Access Grants location');
		if (inst.locations.size >= knobs.location_quota)
			throw new ApiError(409, 'AccessGrantsLocationsQuotaExceededError',
				`You have reached the maximum number of locations allowed (${knobs.location_quota})`);
		const loc = newLocation(inst, scope, role, tags);
		ctx.logInfo.location_id = loc.id;
		return result('CreateAccessGrantsLocationResult', locationXml(loc));
	},
	GetAccessGrantsLocation(ctx) {
		const inst = getInst(ctx);
		const loc = inst.locations.get(ctx.id);
		if (!loc)
			throw new ApiError(404, 'NoSuchAccessGrantsLocationError', 'The specified location does not exist');
		return result('GetAccessGrantsLocationResult', locationXml(loc));
	},
	ListAccessGrantsLocations(ctx) {
		const inst = getInst(ctx);
		const filter = one(ctx.query, 'locationscope');
		const items = [];
		for (const loc of inst.locations.values())
			if (filter === undefined || loc.scope === filter)
				items.push(loc);
		const { start, max } = listPage(items, ctx.query, 'l', filter || '', (x) => x.createdSeq);
		const page = items.slice(start, start + max);
		let out = '';
		if (start + max < items.length)
			out += el('NextToken', makeToken('l', page[page.length - 1].createdSeq, filter || ''));
		out += '<AccessGrantsLocationsList>';
		for (const loc of page)
			out += '<AccessGrantsLocation>' + locationXml(loc) + '</AccessGrantsLocation>';
		return result('ListAccessGrantsLocationsResult', out + '</AccessGrantsLocationsList>');
	},
	DeleteAccessGrantsLocation(ctx) {
		const inst = getInst(ctx);
		const loc = inst.locations.get(ctx.id);
		ctx.logInfo = { location_id: ctx.id, location_scope: loc ? loc.scope : null };
		if (!loc)
			throw new ApiError(404, 'NoSuchAccessGrantsLocationError', 'The specified location does not exist');
		const busy = loc.grantCount > 0 ||
			liveTombstones(inst, nowMs()).some((t) => t.grant.locationId === loc.id);
		if (busy)
			throw new ApiError(400, 'AccessGrantsLocationNotEmptyError',
				'Please delete access grants associated with this location before deleting the location');
		inst.locations.delete(loc.id);
		inst.locByScope.delete(loc.scope);
		return '';
	},
	CreateAccessGrant(ctx) {
		const root = parseBody(ctx, 'CreateAccessGrantRequest', false);
		const inst = getInst(ctx);
		const locId = kidText(root, 'AccessGrantsLocationId');
		const cfg = kid(root, 'AccessGrantsLocationConfiguration');
		const sub = cfg ? (kidText(cfg, 'S3SubPrefix') || '') : '';
		const gr = kid(root, 'Grantee');
		const gtype = kidText(gr, 'GranteeType');
		const gid = kidText(gr, 'GranteeIdentifier');
		const perm = kidText(root, 'Permission');
		const app = kidText(root, 'ApplicationArn');
		const ptype = kidText(root, 'S3PrefixType');
		ctx.logInfo = {
			location_id: locId || null, sub_prefix: sub, grantee_type: gtype || null,
			grantee: gid || null, permission: perm || null, application_arn: app || null,
		};
		if (!locId || !gr || !gtype || !gid || !perm)
			throw bad('AccessGrantsLocationId, Grantee and Permission are required');
		if (!PERMISSIONS.has(perm))
			throw bad(`Invalid Permission: ${perm}`);
		if (!GRANTEE_TYPES.has(gtype))
			throw bad(`Invalid GranteeType: ${gtype}`);
		if (gtype === 'IAM' && !IAM_PRINCIPAL_RE.test(gid))
			throw bad('Invalid Grantee in the request');
		if (app !== undefined && !APP_RE.test(app))
			throw bad('Invalid ApplicationArn');
		if (ptype !== undefined && ptype !== 'Object')
			throw bad('Invalid S3PrefixType');
		if (sub.length > 2000)
			throw bad('S3SubPrefix is too long');
		const loc = inst.locations.get(locId);
		if (!loc)
			throw new ApiError(404, 'NoSuchAccessGrantsLocationError', 'The specified location does not exist');
		if (loc.id === 'default' && !sub)
			throw bad('An S3SubPrefix is required when granting access to the default location');
		if (ptype === 'Object' && (!sub || sub.endsWith('*')))
			throw new ApiError(400, 'InvalidAccessGrant', 'An Object grant needs the full object key as S3SubPrefix');
		const tags = parseTags(root);
		if (knobs.invalid_grantee_seconds > 0 &&
		    (!knobs.invalid_grantee_principals || knobs.invalid_grantee_principals.includes(gid))) {
			const now = nowMs();
			let seen = firstSeenGrantee.get(gid);
			if (seen === undefined)
				firstSeenGrantee.set(gid, seen = now);
			if (now - seen < knobs.invalid_grantee_seconds * 1000)
				throw bad('Invalid Grantee in the request');
		}
		const key = grantKey(loc.id, sub, gtype, gid, perm, app, ptype);
		if (inst.grantKeys.has(key)) {
			ctx.logInfo.grant_id = inst.grantKeys.get(key);
			throw new ApiError(409, 'AccessGrantAlreadyExists', 'The specified access grant already exists');
		}
		if (inst.grants.size >= knobs.grant_quota)
			throw new ApiError(409, 'AccessGrantsQuotaExceededError',
				`You have reached the maximum number of access grants allowed (${knobs.grant_quota})`);
		const g = newGrant(inst, loc, {
			subPrefix: sub, granteeType: gtype, granteeId: gid, permission: perm,
			applicationArn: app, prefixType: ptype, tags,
		});
		ctx.logInfo.grant_id = g.id;
		ctx.logInfo.scope = g.scope;
		return result('CreateAccessGrantResult', grantXml(g));
	},
	GetAccessGrant(ctx) {
		const inst = getInst(ctx);
		const g = inst.grants.get(ctx.id);
		if (!g)
			throw new ApiError(404, 'NoSuchAccessGrantError', 'The specified access grant does not exist');
		return result('GetAccessGrantResult', grantXml(g));
	},
	ListAccessGrants(ctx) {
		const inst = getInst(ctx);
		const q = ctx.query;
		const f = {
			gtype: one(q, 'granteetype'), gid: one(q, 'granteeidentifier'), perm: one(q, 'permission'),
			scope: one(q, 'grantscope'), app: one(q, 'application_arn'),
		};
		if (f.perm !== undefined && !PERMISSIONS.has(f.perm))
			throw bad(`Invalid permission: ${f.perm}`);
		if (f.gtype !== undefined && !GRANTEE_TYPES.has(f.gtype))
			throw bad(`Invalid granteetype: ${f.gtype}`);
		const fkey = [f.gtype, f.gid, f.perm, f.scope, f.app].map((x) => x === undefined ? '' : x).join('|');
		const now = nowMs();
		let items = inst.order;
		const tomb = knobs.delete_lag_ms > 0 ? liveTombstones(inst, now) : [];
		if (tomb.length) {
			const set = new Set(tomb.map((t) => t.grant));
			items = items.filter((g) => !g.deleted || set.has(g));
		}
		const { start, max } = listPage(items, q, 'g', fkey, (x) => x.seq);
		const lag = knobs.list_lag_ms;
		const hasFilter = fkey !== '||||';
		let out = '';
		let n = 0;
		let last = null;
		let more = false;
		for (let i = start; i < items.length; i++) {
			const g = items[i];
			if (g.deleted && !tomb.length)
				continue;
			if (lag > 0 && now - g.createdAt < lag)
				continue;
			if (hasFilter && ((f.gtype !== undefined && g.granteeType !== f.gtype) ||
			    (f.gid !== undefined && g.granteeId !== f.gid) ||
			    (f.perm !== undefined && g.permission !== f.perm) ||
			    (f.scope !== undefined && g.scope !== f.scope) ||
			    (f.app !== undefined && g.applicationArn !== f.app)))
				continue;
			if (n === max) {
				more = true;
				break;
			}
			out += '<AccessGrant>' + grantXml(g) + '</AccessGrant>';
			n++;
			last = g;
		}
		const head = more ? el('NextToken', makeToken('g', last.seq, fkey)) : '';
		return result('ListAccessGrantsResult', head + '<AccessGrantsList>' + out + '</AccessGrantsList>');
	},
	DeleteAccessGrant(ctx) {
		const inst = getInst(ctx);
		const g = inst.grants.get(ctx.id);
		ctx.logInfo = { grant_id: ctx.id };
		if (!g)
			throw new ApiError(404, 'NoSuchAccessGrantError', 'The specified access grant does not exist');
		Object.assign(ctx.logInfo, {
			location_id: g.locationId, sub_prefix: g.subPrefix, grantee_type: g.granteeType,
			grantee: g.granteeId, permission: g.permission, scope: g.scope, application_arn: g.applicationArn,
		});
		deleteGrant(inst, g);
		return '';
	},
};

/* ------------------------------------------------------------------ request path */

function faultApplies(op) {
	return !knobs.fault_ops || knobs.fault_ops.includes(op);
}

function pickFault(op) {
	if (!faultApplies(op))
		return null;
	if (knobs.reset_next > 0) { knobs.reset_next--; return 'reset'; }
	if (knobs.throttle_next > 0) { knobs.throttle_next--; return 'throttle'; }
	if (knobs.error_next > 0) { knobs.error_next--; return 'error'; }
	if (knobs.reset_rate > 0 && rng() < knobs.reset_rate) return 'reset';
	if (knobs.throttle_rate > 0 && rng() < knobs.throttle_rate) return 'throttle';
	if (knobs.error_rate > 0 && rng() < knobs.error_rate) return 'error';
	return null;
}

/* The request is handled as soon as it has arrived (state changes then), synchronously
 * unless a signing key must be derived first; with a latency its answer (or its
 * connection reset) is written latency_ms after arrival, like a server whose reply
 * crosses a slow network. A client that hangs up meanwhile has still changed the state. */
function handleApi(ctx) {
	const rt = route(ctx.req.method, ctx.rawPath);
	ctx.op = rt ? (rt.op || 'MethodNotAllowed') : 'Unknown';
	ctx.id = rt ? rt.id : undefined;
	stats.by_op[ctx.op] = (stats.by_op[ctx.op] || 0) + 1;
	/* latency is the time from the request's arrival to the answer: the time
	 * spent reading the body counts against it */
	let delay = knobs.latency_ms;
	if (knobs.latency_jitter_ms > 0)
		delay += rng() * knobs.latency_jitter_ms;
	if (delay > 0)
		ctx.due = hrMs() + delay - (performance.now() - ctx.t0);
	answer(ctx, rt);
	if (heap.length) {
		runDue(hrMs());
		publishDue(false);
	}
}

function answer(ctx, rt) {
	const mutating = MUTATING.has(ctx.op);
	try {
		const fault = pickFault(ctx.op);
		if (fault === 'reset') {
			stats.faults.reset++;
			if (mutating)
				logMutation(ctx, 0, 'ConnectionReset');
			deliver(ctx, resetConnection, 0, null, null);
			return;
		}
		if (fault === 'throttle') {
			stats.faults.throttle++;
			const hdr = knobs.retry_after_ms !== null ? { 'x-amz-retry-after': String(knobs.retry_after_ms) } : null;
			throw knobs.throttle_status === 429 ?
				new ApiError(429, 'TooManyRequestsException', 'Too many requests, please slow down.', null, hdr) :
				new ApiError(503, 'SlowDown', 'Please reduce your request rate.', null, hdr);
		}
		if (fault === 'error') {
			stats.faults.error++;
			throw new ApiError(500, 'InternalError', 'We encountered an internal error. Please try again.');
		}
		ctx.query = parseQuery(ctx.rawQuery);
		const authErr = verify(ctx);
		if (authErr instanceof Promise) {
			authErr.then((err) => authenticated(ctx, rt, mutating, err),
				(e) => failed(ctx, mutating, e));
			return;
		}
		authenticated(ctx, rt, mutating, authErr);
	} catch (e) {
		failed(ctx, mutating, e);
	}
}

function authenticated(ctx, rt, mutating, authErr) {
	try {
		if (authErr)
			throw authErr;
		const acctErr = checkAccountAndChecksum(ctx);
		if (acctErr)
			throw acctErr;
		if (!rt)
			throw new ApiError(404, 'NoSuchResource', 'The specified resource does not exist');
		if (!rt.op)
			throw new ApiError(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.',
				null, { Allow: rt.allowed.join(', ') });
		const body = ops[ctx.op](ctx);
		if (mutating)
			logMutation(ctx, 200, null);
		send(ctx, 200, body);
	} catch (e) {
		failed(ctx, mutating, e);
	}
}

function failed(ctx, mutating, e) {
	if (!(e instanceof ApiError)) {
		if (e instanceof URIError)
			e = bad('Malformed percent-encoding in the request URI');
		else {
			process.stderr.write(`s3control-fake: internal error in ${ctx.op}: ${e.stack}\n`);
			e = new ApiError(500, 'InternalError', 'We encountered an internal error. Please try again.');
		}
	}
	if (mutating)
		logMutation(ctx, e.status, e.code);
	sendError(ctx, e);
}

/* ------------------------------------------------------------------ control API */

function sendJson(res, status, obj) {
	const body = JSON.stringify(obj);
	res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
	res.end(body);
}

function grantJson(inst, g) {
	return {
		account: inst.account, region: inst.region, id: g.id, arn: g.arn,
		created_at: iso(g.createdAt), location_id: g.locationId, sub_prefix: g.subPrefix,
		grantee_type: g.granteeType, grantee: g.granteeId, permission: g.permission,
		application_arn: g.applicationArn, s3_prefix_type: g.prefixType, scope: g.scope, tags: g.tags,
	};
}

function stateJson(q) {
	const out = { instances: [], locations: [], grants: [] };
	for (const inst of instances.values()) {
		if ((q.account && q.account !== inst.account) || (q.region && q.region !== inst.region))
			continue;
		out.instances.push({
			account: inst.account, region: inst.region, id: 'default', arn: instanceArn(inst),
			created_at: iso(inst.createdAt), identity_center_instance_arn: inst.identityCenterInstanceArn,
			tags: inst.tags,
		});
		for (const loc of inst.locations.values())
			out.locations.push({
				account: inst.account, region: inst.region, id: loc.id, arn: loc.arn, scope: loc.scope,
				role: loc.role, created_at: iso(loc.createdAt), grant_count: loc.grantCount, tags: loc.tags,
			});
		for (const g of inst.grants.values())
			out.grants.push(grantJson(inst, g));
	}
	return out;
}

/* POST /__fake/state: add instances, locations and grants "by hand" (not logged). */
function addState(body) {
	const added = { instances: [], locations: [], grants: [] };
	const acctOf = (x) => x.account || DEFAULT_ACCOUNT;
	const regionOf = (x) => x.region || knobs.region || DEFAULT_REGION;
	const ensureInst = (x) => instances.get(acctOf(x) + '|' + regionOf(x)) || newInstance(acctOf(x), regionOf(x), null);
	for (const x of body.instances || []) {
		if (instances.has(acctOf(x) + '|' + regionOf(x)))
			throw new Error('instance exists');
		const inst = newInstance(acctOf(x), regionOf(x), x.identity_center_instance_arn || null);
		added.instances.push(instanceArn(inst));
	}
	const ensureLoc = (inst, scope, role) => {
		const id = inst.locByScope.get(scope);
		if (id)
			return inst.locations.get(id);
		return newLocation(inst, scope, role || `arn:aws:iam::${inst.account}:role/fake-location-role`, []);
	};
	for (const x of body.locations || []) {
		const inst = ensureInst(x);
		if (!x.scope || inst.locByScope.has(x.scope))
			throw new Error('location scope missing or already registered: ' + x.scope);
		added.locations.push(ensureLoc(inst, x.scope, x.role).id);
	}
	for (const x of body.grants || []) {
		const inst = ensureInst(x);
		let loc;
		if (x.location_id) {
			loc = inst.locations.get(x.location_id);
			if (!loc && x.location_id === 'default')
				loc = ensureLoc(inst, 's3://', x.role);
			if (!loc)
				throw new Error('no such location ' + x.location_id);
		} else {
			loc = ensureLoc(inst, x.location_scope || 's3://', x.role);
		}
		if (!x.grantee || !x.permission)
			throw new Error('grant needs grantee and permission');
		const g = newGrant(inst, loc, {
			subPrefix: x.sub_prefix || '', granteeType: x.grantee_type || 'IAM', granteeId: x.grantee,
			permission: x.permission, applicationArn: x.application_arn || null,
			prefixType: x.s3_prefix_type || null, tags: x.tags || [],
		});
		if (x.created_at_ms !== undefined)
			g.createdAt = x.created_at_ms;
		added.grants.push(grantJson(inst, g));
	}
	return added;
}

function control(req, res, p, rawQuery) {
	stats.control_requests++;
	const chunks = [];
	let size = 0;
	req.on('data', (c) => {
		size += c.length;
		if (size <= 64 << 20)
			chunks.push(c);
	});
	req.on('end', () => {
		let body = {};
		try {
			const s = Buffer.concat(chunks).toString();
			if (s.trim())
				body = JSON.parse(s);
		} catch (e) {
			return sendJson(res, 400, { error: 'bad JSON: ' + e.message });
		}
		const q = parseQuery(rawQuery);
		const key = req.method + ' ' + p;
		try {
			switch (key) {
			case 'GET /__fake/health':
				return sendJson(res, 200, { ok: true, pid: process.pid });
			case 'GET /__fake/config':
				return sendJson(res, 200, { knobs, credentials: [...creds.keys()] });
			case 'POST /__fake/config':
				applyKnobs(body);
				return sendJson(res, 200, { knobs });
			case 'POST /__fake/credentials':
				if (body.replace)
					creds = new Map();
				for (const c of body.credentials || [body])
					addCredential(c);
				return sendJson(res, 200, { credentials: [...creds.keys()] });
			case 'GET /__fake/log': {
				const since = Math.max(0, +(q.since || 0) - logBase);
				const entries = log.slice(since).map((e) => ({ ...e, time: iso(e.time) }));
				return sendJson(res, 200, { entries, next: logBase + log.length });
			}
			case 'POST /__fake/log/clear':
				logBase += log.length;
				log = [];
				return sendJson(res, 200, { next: logBase });
			case 'GET /__fake/state':
				return sendJson(res, 200, stateJson(q));
			case 'POST /__fake/state':
				return sendJson(res, 200, addState(body));
			case 'GET /__fake/stats':
				return sendJson(res, 200, statsJson());
			case 'POST /__fake/stats/clear': {
				const inflight = stats.inflight;
				resetStats();
				stats.inflight = inflight;
				return sendJson(res, 200, statsJson());
			}
			case 'POST /__fake/reset': {
				const inflight = stats.inflight;
				resetState();
				stats.inflight = inflight;
				if (!body.keep_config) {
					knobs = { ...startupKnobs };
					rng = knobs.seed === null ? Math.random : mulberry32(Number(knobs.seed));
					creds = new Map();
					signingKeys.clear();
					for (const c of startupCreds)
						addCredential(c);
				}
				return sendJson(res, 200, { ok: true });
			}
			}
			return sendJson(res, 404, { error: 'no such control endpoint ' + key });
		} catch (e) {
			return sendJson(res, 400, { error: e.message });
		}
	});
}

function onRequest(req, res) {
	const url = req.url;
	const qi = url.indexOf('?');
	const rawPath = qi < 0 ? url : url.slice(0, qi);
	const rawQuery = qi < 0 ? '' : url.slice(qi + 1);
	if (rawPath.startsWith('/__fake/'))
		return control(req, res, rawPath, rawQuery);
	stats.requests++;
	stats.inflight++;
	if (stats.inflight > stats.max_inflight)
		stats.max_inflight = stats.inflight;
	const t0 = performance.now();
	const sock = req.socket;
	if (sock.s3gAnswered !== undefined) {
		stats.turnaround_ms += t0 - sock.s3gAnswered;
		stats.turnarounds++;
	}
	/* 'close' follows 'finish' on every response and also ends an aborted one */
	res.once('close', () => {
		const t = performance.now();
		stats.inflight--;
		stats.resident_ms += t - t0;
		sock.s3gAnswered = t;
	});
	const rid = (++ridCounter >>> 0).toString(16).toUpperCase().padStart(16, '0');
	/* every field the request path sets is here from the start: one object shape */
	const ctx = {
		req, res, rid, hostId: btoa(rid + 's3g-fake'),
		rawPath, rawQuery, tls: !!req.socket.encrypted, body: null, op: null, t0,
		id: undefined, query: null, region: null, callerAccount: null, account: null,
		bodySha256: null, logInfo: null, due: undefined,
	};
	const chunks = [];
	let size = 0;
	let tooBig = false;
	req.on('data', (c) => {
		size += c.length;
		if (size > MAX_BODY)
			tooBig = true;
		else
			chunks.push(c);
	});
	req.on('end', () => {
		if (tooBig) {
			ctx.op = 'Unknown';
			return sendError(ctx, new ApiError(400, 'EntityTooLarge',
				'Your proposed upload exceeds the maximum allowed size'));
		}
		ctx.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
		handleApi(ctx);
	});
}

/* ------------------------------------------------------------------ main */

function usage() {
	process.stderr.write(`usage: node server.js [--port N] [--host ADDR] [--port-file FILE]
  [--tls-cert FILE --tls-key FILE] [--credential AKID:SECRET[:TOKEN[:ACCOUNT]]]...
  [--no-default-credentials] [--verbose] [--KNOB VALUE]...
knobs (also settable with POST /__fake/config): ${Object.keys(DEFAULT_KNOBS).map((k) => '--' + k.replace(/_/g, '-')).join(' ')}
`);
	process.exit(2);
}

function parseArgs(argv) {
	const o = { port: 0, host: '127.0.0.1', portFile: null, tlsCert: null, tlsKey: null,
		creds: [], defaultCreds: true, verbose: false, knobs: {} };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length)
				usage();
			return argv[++i];
		};
		switch (a) {
		case '--port': o.port = +val(); break;
		case '--host': o.host = val(); break;
		case '--port-file': o.portFile = val(); break;
		case '--tls-cert': o.tlsCert = val(); break;
		case '--tls-key': o.tlsKey = val(); break;
		case '--no-default-credentials': o.defaultCreds = false; break;
		case '--verbose': o.verbose = true; break;
		case '--credential': {
			const parts = val().split(':');
			if (parts.length < 2)
				usage();
			o.creds.push({ access_key: parts[0], secret_key: parts[1], session_token: parts[2] || null,
				account: parts[3] || null });
			break;
		}
		case '-h': case '--help': usage(); break;
		default: {
			if (!a.startsWith('--'))
				usage();
			let k = a.slice(2).replace(/-/g, '_');
			if (k === 'expired_token')
				k = 'expired_tokens';
			if (!(k in DEFAULT_KNOBS)) {
				process.stderr.write(`unknown option ${a}\n`);
				usage();
			}
			const v = val();
			const def = DEFAULT_KNOBS[k];
			if (typeof def === 'number')
				o.knobs[k] = Number(v);
			else if (Array.isArray(def) || k === 'fault_ops' || k === 'invalid_grantee_principals')
				o.knobs[k] = (o.knobs[k] || []).concat(v.split(','));
			else if (k === 'retry_after_ms' || k === 'seed')
				o.knobs[k] = Number(v);
			else
				o.knobs[k] = v;
		}
		}
	}
	return o;
}

function main() {
	const o = parseArgs(process.argv.slice(2));
	process.stdout.on('error', () => {});
	applyKnobs(o.knobs);
	startupKnobs = { ...knobs };
	startupCreds = (o.defaultCreds ? DEFAULT_CREDENTIALS : []).concat(o.creds);
	for (const c of startupCreds)
		addCredential(c);
	resetState();
	let server;
	if (o.tlsCert || o.tlsKey) {
		server = https.createServer({ cert: fs.readFileSync(o.tlsCert), key: fs.readFileSync(o.tlsKey) }, onRequest);
	} else {
		server = http.createServer(onRequest);
	}
	server.keepAliveTimeout = 65000;
	server.headersTimeout = 66000;
	if (o.verbose)
		server.on('request', (req, res) => res.on('finish', () =>
			process.stderr.write(`${req.method} ${req.url} -> ${res.statusCode}\n`)));
	server.on('clientError', (err, socket) => {
		if (socket.writable)
			socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
	});
	server.listen(o.port, o.host, () => {
		const port = server.address().port;
		if (o.portFile) {
			const tmp = `${o.portFile}.${process.pid}.tmp`;
			fs.writeFileSync(tmp, String(port) + '\n');
			fs.renameSync(tmp, o.portFile);
		}
		process.stdout.write(JSON.stringify({ port, host: o.host, scheme: o.tlsCert ? 'https' : 'http', pid: process.pid }) + '\n');
	});
	const stop = () => {
		server.close();
		if (server.closeAllConnections)
			server.closeAllConnections();
		process.exit(0);
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
}

if (require.main === module)
	main();

module.exports = { parseXml, grantScope, makeToken, readToken };
