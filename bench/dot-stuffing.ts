/**
 * `npm run bench` (POP3 wire): how long dot-stuffing and unstuffing of a 30 MB body take, the
 * body fed to the unstuffer in 64 KiB chunks as it comes off a socket. Goal: unstuffing well
 * under 3 s. The byte-exactness of the same round trip is tested in tests/unit/pop3-wire.test.ts.
 * Run: node --import tsx bench/dot-stuffing.ts [MB]
 */
import { DotStuffer, DotUnstuffer } from '../src/shared/pop3-wire/index.js';

const MB = Number(process.argv[2] ?? 30);
const line = Buffer.from('.A line of a big message that starts with a dot, seventy-odd chars\r\n');
const body = Buffer.alloc(line.length * Math.floor((MB * 1024 * 1024) / line.length));
for (let o = 0; o < body.length; o += line.length) line.copy(body, o);

const stuffer = new DotStuffer();
const t0 = performance.now();
const wire = Buffer.concat([stuffer.push(body), stuffer.end()]);
const t1 = performance.now();
const u = new DotUnstuffer();
let total = 0;
for (let o = 0; o < wire.length; o += 65536) total += u.push(wire.subarray(o, o + 65536)).data.length;
const t2 = performance.now();
if (!u.done || total !== body.length) throw new Error(`round trip lost bytes: ${total} of ${body.length}`);
console.log(`stuff ${MB} MB: ${(t1 - t0).toFixed(0)} ms; unstuff in 64 KiB chunks: ${(t2 - t1).toFixed(0)} ms`);
