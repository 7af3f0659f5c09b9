// Time-boxed properties: decode(encode(x)) == x for requests, replies and
// haggling payloads, and the RequestFramer agrees with itself however the
// stream is chunked.
import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import {
  RequestFramer,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeReplyChunkHeader,
  decodeRequest,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeReplyChunkHeader,
  encodeRequest,
  type NbdRequest,
} from '../../../src/protocols/nbd/index.js';

const u16 = fc.nat({ max: 0xffff });
const u32 = fc.nat({ max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });
const name = fc.string({ maxLength: 40 });
const arbReq = fc.record({ flags: u16, type: fc.constantFrom(0, 2, 3, 4, 5, 6, 7), handle: u64, offset: u64, length: u32 });

describe('NBD round trips', () => {
  test.prop([arbReq, fc.boolean()], { numRuns: 300, interruptAfterTimeLimit: 3000 })('request', (r, ext) => {
    expect(decodeRequest(encodeRequest(r, ext), ext)).toEqual(r);
  });

  test.prop([fc.record({ flags: u16, type: u16, handle: u64, offset: u64, length: u32 }), fc.boolean()], {
    numRuns: 300,
    interruptAfterTimeLimit: 3000,
  })('reply chunk header', (h, ext) => {
    const v = ext ? h : { ...h, offset: 0n };
    expect(decodeReplyChunkHeader(encodeReplyChunkHeader(v, ext))).toEqual(v);
  });

  test.prop([name, fc.array(u16, { maxLength: 8 }), fc.array(name, { maxLength: 5 })], {
    numRuns: 200,
    interruptAfterTimeLimit: 3000,
  })('INFO and meta context requests', (exportName, infos, queries) => {
    expect(decodeInfoRequest(encodeInfoRequest({ exportName, infos }))).toEqual({ exportName, infos });
    expect(decodeMetaContextRequest(encodeMetaContextRequest({ exportName, queries }))).toEqual({ exportName, queries });
  });

  test.prop(
    [
      fc.array(fc.tuple(arbReq, fc.uint8Array({ maxLength: 20 })), { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat({ max: 40 }), { minLength: 1, maxLength: 10 }),
    ],
    { numRuns: 150, interruptAfterTimeLimit: 3000 },
  )('RequestFramer is chunking-independent', (items, cuts) => {
    const reqs: NbdRequest[] = items.map(([r, p], i) => (i % 2 === 0 ? { ...r, type: 1, length: p.length } : r));
    const stream = Buffer.concat(
      reqs.flatMap((r, i) => (r.type === 1 ? [encodeRequest(r), Buffer.from(items[i][1])] : [encodeRequest(r)])),
    );
    const got: string[] = [];
    const f = new RequestFramer({
      onRequest: (r, p) => got.push(`${r.handle}:${r.type}:${p.toString('hex')}`),
      onError: (e) => got.push(e.code),
    });
    let pos = 0;
    for (const c of cuts) {
      f.push(stream.subarray(pos, Math.min(stream.length, pos + c)));
      pos = Math.min(stream.length, pos + c);
    }
    f.push(stream.subarray(pos));
    expect(got).toEqual(reqs.map((r, i) => `${r.handle}:${r.type}:${r.type === 1 ? Buffer.from(items[i][1]).toString('hex') : ''}`));
  });
});
