import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder as LibBase64Decoder } from 'libbase64';
import { Base64Decoder, LeafBody } from '../../src/mail/part-body.js';
import type { MimePart } from '../../src/mail/types.js';

/** Decodes the writes with libbase64's Decoder stream, the decoder LeafBody used before. */
async function libbase64Decode(writes: Buffer[]): Promise<Buffer> {
  const decoder = new LibBase64Decoder();
  const out: Buffer[] = [];
  decoder.on('data', (chunk: Buffer) => out.push(chunk));
  const ended = new Promise((resolve) => decoder.on('end', resolve));
  for (const write of writes) decoder.write(write);
  decoder.end();
  await ended;
  return Buffer.concat(out);
}

function base64Decode(writes: Buffer[]): Buffer {
  const decoder = new Base64Decoder();
  const out: Buffer[] = [];
  // The emitted view is reused, so each piece is copied.
  const emit = (chunk: Buffer): void => {
    out.push(Buffer.from(chunk));
  };
  for (const write of writes) decoder.write(write, emit);
  decoder.end(emit);
  return Buffer.concat(out);
}

/** Deterministic generator (mulberry32), so that a failure can be repeated. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function split(input: Buffer, next: () => number, maxWrite: number): Buffer[] {
  const writes: Buffer[] = [];
  for (let pos = 0; pos < input.length; ) {
    const length = 1 + Math.floor(next() * maxWrite);
    writes.push(input.subarray(pos, pos + length));
    pos += length;
  }
  return writes;
}

test('base64: RFC 4648 section 10 test vectors', () => {
  const vectors: Array<[string, string]> = [
    ['', ''],
    ['Zg==', 'f'],
    ['Zm8=', 'fo'],
    ['Zm9v', 'foo'],
    ['Zm9vYg==', 'foob'],
    ['Zm9vYmE=', 'fooba'],
    ['Zm9vYmFy', 'foobar'],
  ];
  for (const [encoded, decoded] of vectors) {
    assert.equal(base64Decode([Buffer.from(encoded)]).toString('latin1'), decoded, encoded);
  }
});

test('base64: wrapped lines, one-byte writes and unpadded ends decode like libbase64', async () => {
  const data = Buffer.from('The quick brown fox jumps over the lazy dog, twice over. \x00\xff\x80');
  const wrapped = data.toString('base64').replace(/.{1,19}/g, '$&\r\n');
  for (const text of [wrapped, wrapped.replace(/=/g, ''), 'QUJD\r\nRA', 'QUJD\nR', 'Q']) {
    const input = Buffer.from(text, 'latin1');
    const oneByte = [...input].map((byte) => Buffer.from([byte]));
    const expected = await libbase64Decode([input]);
    assert.deepEqual(base64Decode([input]), expected, JSON.stringify(text));
    assert.deepEqual(base64Decode(oneByte), expected, JSON.stringify(text));
  }
  assert.deepEqual(base64Decode([Buffer.from(wrapped)]), data);
});

test('base64: hostile input (garbage bytes, padding inside, odd lines) decodes like libbase64', async () => {
  const next = random(20_24);
  const alphabet = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
  const hostile = Buffer.from('=\r\n \t-_.:*\x00\x80\xff\xbd');
  for (let round = 0; round < 400; round++) {
    const length = Math.floor(next() * 300);
    const input = Buffer.alloc(length);
    const garbageRate = next() * 0.5;
    for (let i = 0; i < length; i++) {
      const pool = next() < garbageRate ? hostile : alphabet;
      input[i] = pool[Math.floor(next() * pool.length)];
    }
    const writes = split(input, next, 1 + Math.floor(next() * 40));
    const expected = await libbase64Decode(writes);
    assert.deepEqual(base64Decode(writes), expected, `round ${round}: ${input.toString('latin1')}`);
  }
});

test('base64: long input crossing the internal output step', async () => {
  const next = random(7);
  const data = Buffer.alloc(300_000);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(next() * 256);
  const input = Buffer.from(data.toString('base64').replace(/.{1,76}/g, '$&\r\n'));
  const writes = split(input, next, 200_000);
  assert.deepEqual(base64Decode(writes), data);
  assert.deepEqual(base64Decode(writes), await libbase64Decode(writes));
});

function leafPart(): MimePart {
  return { path: '1', contentType: 'text/plain', size: 0, isAttachment: false };
}

test('LeafBody: an empty part has the digests of zero bytes', async () => {
  for (const encoding of ['', 'base64']) {
    const part = leafPart();
    let done = 0;
    const leaf = new LeafBody(part, encoding, () => done++);
    leaf.write(Buffer.from('\r\n'.repeat(encoding === 'base64' ? 2 : 0)));
    leaf.end();
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(done, 1);
    assert.equal(part.size, 0);
    // FIPS 180-4 / RFC 1321 digests of the empty string.
    assert.equal(part.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(part.sha1, 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
    assert.equal(part.md5, 'd41d8cd98f00b204e9800998ecf8427e');
  }
});

test('LeafBody: base64 body is hashed decoded', async () => {
  const part = leafPart();
  const leaf = new LeafBody(part, 'base64', () => undefined);
  leaf.write(Buffer.from('YW'));
  leaf.write(Buffer.from('Jj\r\n'));
  leaf.end();
  await new Promise((resolve) => process.nextTick(resolve));
  // "abc": the FIPS 180-2 and RFC 1321 test vectors.
  assert.equal(part.size, 3);
  assert.equal(part.sha256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(part.sha1, 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(part.md5, '900150983cd24fb0d6963f7d28e17f72');
});
