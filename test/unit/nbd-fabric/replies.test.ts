// Reply framing (replies.ts) against hand-written bytes: simple, structured
// and extended replies for READ, errors, block status and data-less commands.
import { describe, expect, it } from 'vitest';
import { encodeReply } from '../../../src/fabrics/nbd/replies.js';
import type { NbdRequest } from '../../../src/protocols/nbd/index.js';

const hex = (s: string): string => s.replace(/\s+/g, '');
const joined = (parts: Buffer[]): string => Buffer.concat(parts).toString('hex');

const read: NbdRequest = { flags: 0, type: 0, handle: 0x0102030405060708n, offset: 0x1000n, length: 4 };
const flush: NbdRequest = { flags: 0, type: 3, handle: 0xaan, offset: 0n, length: 0 };
const status: NbdRequest = { flags: 0, type: 7, handle: 0xbbn, offset: 0x200n, length: 0x3000 };
const data = Buffer.from('abcd');

const SIMPLE = { structured: false, extended: false };
const STRUCTURED = { structured: true, extended: false };
const EXTENDED = { structured: true, extended: true };

describe('encodeReply', () => {
  it('simple: header, then READ data; an error has no data', () => {
    expect(joined(encodeReply(read, { error: 0, data }, SIMPLE))).toBe(hex('67446698 00000000 0102030405060708 61626364'));
    expect(joined(encodeReply(read, { error: 5, message: 'x' }, SIMPLE))).toBe(hex('67446698 00000005 0102030405060708'));
  });

  it('simple READ data is the caller buffer itself, not a copy', () => {
    const parts = encodeReply(read, { error: 0, data }, SIMPLE);
    expect(parts[parts.length - 1]).toBe(data);
  });

  it('structured READ: one OFFSET_DATA chunk with DONE (what NBD_CMD_FLAG_DF asks)', () => {
    expect(joined(encodeReply(read, { error: 0, data }, STRUCTURED))).toBe(
      hex('668e33ef 0001 0001 0102030405060708 0000000c 0000000000001000 61626364'),
    );
  });

  it('structured error: ERROR chunk with errno, message length and message', () => {
    expect(joined(encodeReply(flush, { error: 22, message: 'no' }, STRUCTURED))).toBe(
      hex('668e33ef 0001 8001 00000000000000aa 00000008 00000016 0002 6e6f'),
    );
  });

  it('structured success without data: NONE chunk', () => {
    expect(joined(encodeReply(flush, { error: 0 }, STRUCTURED))).toBe(hex('668e33ef 0001 0000 00000000000000aa 00000000'));
  });

  it('structured BLOCK_STATUS: context id, then 32-bit length/flags pairs', () => {
    const out = { error: 0, context: 1, extents: [{ length: 0x1000, flags: 3 }, { length: 0x2000, flags: 0 }] };
    expect(joined(encodeReply(status, out, STRUCTURED))).toBe(
      hex('668e33ef 0001 0005 00000000000000bb 00000014 00000001 00001000 00000003 00002000 00000000'),
    );
  });

  it('extended READ: 32-byte header with the request offset and a 64-bit length', () => {
    expect(joined(encodeReply(read, { error: 0, data }, EXTENDED))).toBe(
      hex('6e8a278c 0001 0001 0102030405060708 0000000000001000 000000000000000c 0000000000001000 61626364'),
    );
  });

  it('extended NONE and ERROR carry the request offset too', () => {
    expect(joined(encodeReply(status, { error: 0 }, EXTENDED))).toBe(hex('6e8a278c 0001 0000 00000000000000bb 0000000000000200 0000000000000000'));
    expect(joined(encodeReply(status, { error: 1, message: '' }, EXTENDED))).toBe(
      hex('6e8a278c 0001 8001 00000000000000bb 0000000000000200 0000000000000006 00000001 0000'),
    );
  });

  it('extended BLOCK_STATUS_EXT: context id, count, then 64-bit length/flags pairs', () => {
    const out = { error: 0, context: 1, extents: [{ length: 0x1_0000_0000, flags: 1 }] };
    expect(joined(encodeReply(status, out, EXTENDED))).toBe(
      hex('6e8a278c 0001 0006 00000000000000bb 0000000000000200 0000000000000018 00000001 00000001 0000000100000000 0000000000000001'),
    );
  });
});
