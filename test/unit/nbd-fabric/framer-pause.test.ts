// RequestFramer/OptionFramer pause(): delivery stops at once, even from inside
// a delivery callback (one socket chunk can hold thousands of requests), and
// resume() delivers what was buffered, in order. The connection's
// backpressure relies on this (src/fabrics/nbd/connection.ts).
import { describe, expect, it } from 'vitest';
import { OptionFramer, RequestFramer, type NbdRequest } from '../../../src/protocols/nbd/index.js';

function header(type: number, handle: number, length: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(0x25609513, 0);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(BigInt(handle), 8);
  b.writeUInt32BE(length, 24);
  return b;
}

describe('framer pause/resume', () => {
  it('a request framer paused from onRequest delivers nothing more until resume(), then the rest in order', () => {
    const seen: number[] = [];
    const framer: RequestFramer = new RequestFramer({
      onRequest: (req: NbdRequest) => {
        seen.push(Number(req.handle));
        if (seen.length % 3 === 0) framer.pause();
      },
      onError: (e) => {
        throw e;
      },
    });
    // Ten READ headers and one WRITE with 8 bytes of data, in one chunk.
    const chunk = Buffer.concat([...Array.from({ length: 10 }, (_, i) => header(0, i + 1, 4096)), header(1, 11, 8), Buffer.alloc(8, 7)]);
    framer.push(chunk);
    expect(seen).toEqual([1, 2, 3]);
    expect(framer.isPaused).toBe(true);
    expect(framer.bufferedBytes).toBe(chunk.length - 3 * 28);
    framer.push(Buffer.alloc(0));
    expect(seen).toEqual([1, 2, 3]);
    framer.resume();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    framer.resume();
    framer.resume();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('bytes pushed while paused wait; resume() inside a callback keeps going without re-entering', () => {
    const seen: number[] = [];
    const framer: OptionFramer = new OptionFramer({
      expectClientFlags: false,
      onOption: (f) => {
        seen.push(f.option);
        framer.pause();
        framer.resume();
      },
      onError: (e) => {
        throw e;
      },
    });
    const opt = (n: number): Buffer => {
      const b = Buffer.alloc(16);
      b.write('IHAVEOPT', 0, 'latin1');
      b.writeUInt32BE(n, 8);
      return b;
    };
    framer.pause();
    framer.push(Buffer.concat([opt(1), opt(2)]));
    expect(seen).toEqual([]);
    framer.resume();
    expect(seen).toEqual([1, 2]);
    framer.push(opt(3));
    expect(seen).toEqual([1, 2, 3]);
  });
});
