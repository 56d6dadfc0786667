#!/usr/bin/env node
/*
 * Throughput of the S3 Control fake: N keep-alive connections, each with one signed
 * request in flight at a time, for a fixed duration.
 *
 *   node loadtest.js --port PORT [--concurrency 64] [--seconds 5] [--latency-ms 0]
 *                    [--mode get|create|list]
 *
 * Requests are signed before the clock starts (the fake accepts a signature for 15
 * minutes and keeps no replay cache), so the numbers measure the fake, not this client:
 *   get    - GetAccessGrant of one grant (replayed)
 *   create - CreateAccessGrant, every request a distinct grant (quota raised for the run)
 *   list   - ListAccessGrants maxResults=10 (replayed)
 *   floor  - the unsigned control endpoint GET /__fake/health: the HTTP floor, for
 *            comparison (server_cpu_us_per_req is not meaningful in this mode)
 * Prints one JSON line: {"mode", "concurrency", "latency_ms", "requests", "seconds",
 * "rps", "statuses", "p50_ms", "p99_ms", "max_inflight", and the fake's own CPU cost:
 * "server_cpu_us_per_req", "server_cpu_share" (cores used), "one_core_capacity_rps"}.
 */
'use strict';

const http = require('http');
const crypto = require('crypto');
const { crc32 } = require('./crc32');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Hash } = require('@smithy/hash-node');

const ACCOUNT = '111122223333';
const NS = 'http://awss3control.amazonaws.com/doc/2018-08-20/';

function args() {
	const o = { port: 0, host: '127.0.0.1', concurrency: 64, seconds: 5, latency_ms: 0, mode: 'get' };
	const a = process.argv.slice(2);
	for (let i = 0; i < a.length; i += 2) {
		const k = a[i].replace(/^--/, '').replace(/-/g, '_');
		if (!(k in o))
			throw new Error('unknown option ' + a[i]);
		o[k] = typeof o[k] === 'number' ? Number(a[i + 1]) : a[i + 1];
	}
	if (!o.port)
		throw new Error('--port is required');
	return o;
}

const o = args();
const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
const signer = new SignatureV4({
	credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
	region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'),
	uriEscapePath: false, applyChecksum: true,
});

async function sign(method, path, query, body) {
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(crc32(body || ''), 0);
	const req = {
		method, protocol: 'http:', hostname: o.host, port: o.port, path, query: query || {},
		headers: {
			host: `${o.host}:${o.port}`, 'x-amz-account-id': ACCOUNT,
			'x-amz-checksum-crc32': crc.toString('base64'),
		},
		body: body || undefined,
	};
	const s = await signer.sign(req);
	const qs = Object.entries(query || {}).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
	return { method, path: path + (qs ? '?' + qs : ''), headers: s.headers, body: body || null };
}

function send(r) {
	return new Promise((resolve, reject) => {
		const req = http.request({ host: o.host, port: o.port, agent, method: r.method, path: r.path,
			headers: r.headers }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
		});
		req.on('error', reject);
		req.end(r.body || undefined);
	});
}

function control(method, path, obj) {
	return send({ method, path, headers: { 'content-type': 'application/json' },
		body: obj ? JSON.stringify(obj) : null }).then((r) => JSON.parse(r.body));
}

function grantBody(i) {
	return `<CreateAccessGrantRequest xmlns="${NS}"><AccessGrantsLocationId>default</AccessGrantsLocationId>` +
		`<AccessGrantsLocationConfiguration><S3SubPrefix>bench-bucket/p${i}/*</S3SubPrefix>` +
		'</AccessGrantsLocationConfiguration><Grantee><GranteeType>IAM</GranteeType>' +
		`<GranteeIdentifier>arn:aws:iam::${ACCOUNT}:role/bench-${i}</GranteeIdentifier></Grantee>` +
		'<Permission>READ</Permission></CreateAccessGrantRequest>';
}

async function main() {
	await control('POST', '/__fake/reset', {});
	await control('POST', '/__fake/config', { grant_quota: 10000000 });
	await send(await sign('POST', '/v20180820/accessgrantsinstance', {}, ''));
	await send(await sign('POST', '/v20180820/accessgrantsinstance/location', {},
		`<CreateAccessGrantsLocationRequest xmlns="${NS}"><LocationScope>s3://</LocationScope>` +
		`<IAMRoleArn>arn:aws:iam::${ACCOUNT}:role/loc</IAMRoleArn></CreateAccessGrantsLocationRequest>`));
	for (let i = 0; i < 20; i++) {
		const r = await send(await sign('POST', '/v20180820/accessgrantsinstance/grant', {}, grantBody('seed' + i)));
		if (r.status !== 200)
			throw new Error('setup failed: ' + r.body);
	}
	const st = await control('GET', '/__fake/state');
	const gid = st.grants[0].id;

	/* pre-sign: enough distinct creates for ~30k req/s over the run */
	let pool;
	if (o.mode === 'create') {
		const n = Math.min(400000, Math.ceil(o.seconds * 30000));
		pool = [];
		for (let i = 0; i < n; i++)
			pool.push(await sign('POST', '/v20180820/accessgrantsinstance/grant', {}, grantBody(i)));
	} else if (o.mode === 'floor') {
		pool = [{ method: 'GET', path: '/__fake/health', headers: {}, body: null }];
	} else if (o.mode === 'list') {
		pool = [await sign('GET', '/v20180820/accessgrantsinstance/grants', { maxResults: '10' })];
	} else {
		pool = [await sign('GET', `/v20180820/accessgrantsinstance/grant/${gid}`)];
	}
	await control('POST', '/__fake/config', { latency_ms: o.latency_ms });
	await control('POST', '/__fake/stats/clear', {});

	const statuses = {};
	const lat = [];
	let next = 0;
	let count = 0;
	const t0 = process.hrtime.bigint();
	const deadline = t0 + BigInt(Math.round(o.seconds * 1e9));
	async function worker() {
		for (;;) {
			const now = process.hrtime.bigint();
			if (now >= deadline)
				return;
			const r = pool[o.mode === 'create' ? next++ % pool.length : 0];
			const res = await send(r);
			const t = process.hrtime.bigint();
			statuses[res.status] = (statuses[res.status] || 0) + 1;
			if ((count++ & 7) === 0)
				lat.push(Number(t - now) / 1e6);
		}
	}
	await Promise.all(Array.from({ length: o.concurrency }, worker));
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	if (o.mode === 'floor')
		process.stdout.write(JSON.stringify({ mode: 'floor', rps: Math.round(count / secs) }) + '\n');
	const fstats = await control('GET', '/__fake/stats');
	await control('POST', '/__fake/config', { latency_ms: 0, grant_quota: 100000 });
	lat.sort((a, b) => a - b);
	const pct = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] * 100) / 100;
	process.stdout.write(JSON.stringify({
		mode: o.mode, concurrency: o.concurrency, latency_ms: o.latency_ms, requests: count,
		seconds: Math.round(secs * 100) / 100, rps: Math.round(count / secs), statuses,
		p50_ms: pct(0.5), p99_ms: pct(0.99), max_inflight: fstats.max_inflight,
		server_cpu_us_per_req: Math.round((fstats.cpu_user_us + fstats.cpu_system_us) / fstats.requests * 10) / 10,
		server_cpu_user_us_per_req: Math.round(fstats.cpu_user_us / fstats.requests * 10) / 10,
		server_cpu_share: Math.round((fstats.cpu_user_us + fstats.cpu_system_us) / fstats.wall_us * 100) / 100,
		one_core_capacity_rps: Math.round(1e6 * fstats.requests / (fstats.cpu_user_us + fstats.cpu_system_us)),
	}) + '\n');
	agent.destroy();
}

main().catch((e) => {
	process.stderr.write(String(e.stack || e) + '\n');
	process.exit(1);
});
