/*
 * CRC-32 (IEEE, as x-amz-checksum-crc32): zlib.crc32 where Node has it (>= 20.15),
 * a table-driven fallback elsewhere (Debian 12 ships Node 18).
 */
'use strict';

const zlib = require('zlib');

let table = null;

function crc32js(buf) {
	if (!table) {
		table = new Int32Array(256);
		for (let n = 0; n < 256; n++) {
			let c = n;
			for (let k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
			table[n] = c;
		}
	}
	let crc = -1;
	for (let i = 0; i < buf.length; i++)
		crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
	return (crc ^ -1) >>> 0;
}

/* Returns the CRC-32 of a Buffer/string as an unsigned 32-bit number. */
function crc32(data) {
	const buf = typeof data === 'string' ? Buffer.from(data) : data;
	return typeof zlib.crc32 === 'function' ? zlib.crc32(buf) >>> 0 : crc32js(buf);
}

module.exports = { crc32, crc32js };
