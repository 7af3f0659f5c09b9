// ReplyReader: hand-written reply bytes (proto.md "Simple reply message",
// "Structured reply chunk message"), fed split at every offset through one
// reused scratch buffer (as net.Socket's onread does), so a reader that kept
// a reference to a chunk would see its bytes overwritten.

import { describe, expect, it } from 'vitest';
import { ReplyReader, ReplyStreamError, type ReplyHandlers } from '../../../src/nbd-client/reply-reader.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Simple reply, error 0, handle 1, then 8 bytes of READ data.
const SIMPLE_READ = hex('67446698 00000000 0000000000000001 0102030405060708');
// Simple reply, error 5 (EIO), handle 2: no data follows.
const SIMPLE_ERR = hex('67446698 00000005 0000000000000002');
// Structured chunk: flags 0, type 1 (OFFSET_DATA), handle 3, length 8+4; offset 0x1004; data aa bb cc dd.
const DATA_CHUNK = hex('668e33ef 0000 0001 0000000000000003 0000000c 0000000000001004 aabbccdd');
// Structured chunk: flags 1 (DONE), type 2 (OFFSET_HOLE), handle 3, length 12; offset 0x1000, size 4.
const HOLE_CHUNK = hex('668e33ef 0001 0002 0000000000000003 0000000c 0000000000001000 00000004');
// Structured chunk: DONE, type 0 (NONE), handle 4, length 0.
const NONE_CHUNK = hex('668e33ef 0001 0000 0000000000000004 00000000');

const STREAM = Buffer.concat([SIMPLE_READ, SIMPLE_ERR, DATA_CHUNK, HOLE_CHUNK, NONE_CHUNK]);

interface Seen {
  events: string[];
  dest1: Buffer;
  dest3: Buffer;
  errors: unknown[];
}

function reader(): { r: ReplyReader; seen: Seen } {
  const seen: Seen = { events: [], dest1: Buffer.alloc(8), dest3: Buffer.alloc(8), errors: [] };
  const h: ReplyHandlers = {
    simpleDataLength: (handle) => (handle === 1n ? 8 : 0),
    destination: (handle) => (handle === 1n ? seen.dest1 : handle === 3n ? seen.dest3 : undefined),
    onSimple: (handle, error) => seen.events.push(`simple ${handle} ${error}`),
    onDataStart: (handle, offset, length) => {
      seen.events.push(`data-start ${handle} ${offset} ${length}`);
      return Number(offset) - 0x1000;
    },
    onDataEnd: (handle, flags, length) => seen.events.push(`data-end ${handle} ${flags} ${length}`),
    onChunk: (handle, type, flags, payload) => seen.events.push(`chunk ${handle} ${type} ${flags} ${payload.toString('hex')}`),
  };
  return { r: new ReplyReader(h, (e) => seen.errors.push(e)), seen };
}

const EXPECTED = [
  'simple 1 0',
  'simple 2 5',
  'data-start 3 4100 4',
  'data-end 3 0 4',
  'chunk 3 2 1 000000000000100000000004',
  'chunk 4 0 1 ',
];

/** Feeds `bytes` in pieces cut at `cuts`, each copied into one reused scratch buffer that is wiped after the push. */
function feed(r: ReplyReader, bytes: Buffer, cuts: number[]): void {
  const scratch = Buffer.alloc(bytes.length);
  let at = 0;
  for (const end of [...cuts, bytes.length]) {
    const n = bytes.copy(scratch, 0, at, end);
    r.push(scratch.subarray(0, n));
    scratch.fill(0xee);
    at = end;
  }
}

describe('ReplyReader', () => {
  it('delivers simple and structured replies, READ data in place', () => {
    const { r, seen } = reader();
    feed(r, STREAM, []);
    expect(seen.errors).toEqual([]);
    expect(seen.events).toEqual(EXPECTED);
    expect(seen.dest1).toEqual(hex('0102030405060708'));
    expect(seen.dest3).toEqual(hex('00000000aabbccdd'));
  });

  it('gives the same result split at every pair of offsets, through a reused buffer', () => {
    for (let a = 1; a < STREAM.length; a++) {
      for (let b = a; b < STREAM.length; b += 7) {
        const { r, seen } = reader();
        feed(r, STREAM, a === b ? [a] : [a, b]);
        expect(seen.errors, `cut at ${a},${b}`).toEqual([]);
        expect(seen.events, `cut at ${a},${b}`).toEqual(EXPECTED);
        expect(seen.dest1.toString('hex'), `cut at ${a},${b}`).toBe('0102030405060708');
        expect(seen.dest3.toString('hex'), `cut at ${a},${b}`).toBe('00000000aabbccdd');
      }
    }
  });

  it('feeds byte by byte', () => {
    const { r, seen } = reader();
    feed(r, STREAM, Array.from({ length: STREAM.length - 1 }, (_, i) => i + 1));
    expect(seen.events).toEqual(EXPECTED);
  });

  it('drops the data of a request whose destination went away, and stays in sync', () => {
    const { r, seen } = reader();
    const h = (r as unknown as { h: ReplyHandlers }).h;
    h.destination = () => undefined;
    feed(r, STREAM, [20, 40]);
    expect(seen.errors).toEqual([]);
    expect(seen.events).toEqual(EXPECTED);
    expect(seen.dest1).toEqual(Buffer.alloc(8));
  });

  it('stops at a bad magic and reports it once', () => {
    const { r, seen } = reader();
    r.push(hex('67446698 00000000 0000000000000002'));
    r.push(hex('deadbeef 00000000 0000000000000002'));
    r.push(SIMPLE_ERR);
    expect(seen.events).toEqual(['simple 2 0']);
    expect(seen.errors).toHaveLength(1);
    expect(seen.errors[0]).toBeInstanceOf(ReplyStreamError);
    expect((seen.errors[0] as Error).message).toMatch(/magic 0xdeadbeef/);
  });

  it('refuses an OFFSET_DATA chunk without data, and a payload above the cap', () => {
    const a = reader();
    a.r.push(hex('668e33ef 0000 0001 0000000000000003 00000008 0000000000001000'));
    expect((a.seen.errors[0] as Error).message).toMatch(/carries no data/);
    const b = reader();
    b.r.push(hex('668e33ef 0000 0005 0000000000000003 7fffffff'));
    expect((b.seen.errors[0] as Error).message).toMatch(/exceeds/);
  });

  it('reports what a handler throws as the stream error', () => {
    const { r, seen } = reader();
    const h = (r as unknown as { h: ReplyHandlers }).h;
    h.onDataStart = () => {
      throw new Error('outside the READ');
    };
    r.push(DATA_CHUNK);
    expect((seen.errors[0] as Error).message).toBe('outside the READ');
  });
});
