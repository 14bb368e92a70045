// Counts the packets cap delivers on an interface with a filter and does nothing else with them:
// the rate the capture binding alone sustains, for the live load test. Prints "ready" when the
// capture is open and the count when it gets SIGTERM.
//
// Usage: node bench/lib/cap-count.mjs IFACE FILTER BUFFER_BYTES
import { createRequire } from 'node:module';

const [iface, filter, bufferBytes] = process.argv.slice(2);
const { Cap } = createRequire(import.meta.url)('cap');
const cap = new Cap();
// cap writes each packet into this buffer through a raw pointer, without holding a reference to
// it, so the buffer (and the handle) must stay reachable for as long as the capture runs.
const buffer = Buffer.alloc(262144);
globalThis.capCountRetained = [cap, buffer];
cap.open(iface, filter, Number(bufferBytes), buffer);
let packets = 0;
cap.on('packet', () => {
  packets++;
});
process.on('SIGTERM', () => {
  process.stdout.write(`${packets}\n`, () => process.exit(0));
});
console.log('ready');
