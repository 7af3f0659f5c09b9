// Golden bytes for every NBD message: hand-written hex from proto.md field
// layouts, checked both ways (encode -> bytes, bytes -> decode).
import { describe, expect, it } from 'vitest';
import { hex } from './hex.js';
import {
  NbdCmd,
  NbdCmdFlag,
  NbdErrno,
  NbdInfo,
  NbdOpt,
  NbdRep,
  NbdReplyType,
  cmdFlagNames,
  cmdName,
  decodeBlockStatus,
  decodeBlockStatusExt,
  decodeClientFlags,
  decodeErrorChunk,
  decodeExportNameData,
  decodeExportNameReply,
  decodeGreeting,
  decodeInfoReply,
  decodeInfoRequest,
  decodeMetaContextReply,
  decodeMetaContextRequest,
  decodeOffsetData,
  decodeOffsetHole,
  decodeOptionHeader,
  decodeOptionReplyHeader,
  decodeReplyChunkHeader,
  decodeRequest,
  decodeServerReply,
  decodeSimpleReply,
  encodeBlockStatus,
  encodeBlockStatusExt,
  encodeClientFlags,
  encodeErrorChunk,
  encodeErrorMessage,
  encodeExportNameData,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoReply,
  encodeInfoRequest,
  encodeMetaContextReply,
  encodeMetaContextRequest,
  encodeOffsetDataPrefix,
  encodeOffsetHole,
  encodeOptionReply,
  encodeOptionRequest,
  encodeReplyChunkHeader,
  encodeRequest,
  encodeServerReply,
  encodeSimpleReply,
  errnoName,
  isLunkitError,
  isRepError,
  isReplyTypeError,
  optName,
  repName,
  replyTypeName,
  transmissionFlagNames,
} from '../../../src/protocols/nbd/index.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isLunkitError(e) ? e.code : 'not-lunkit';
  }
  return undefined;
}

describe('handshake golden bytes', () => {
  it('greeting: NBDMAGIC IHAVEOPT flags', () => {
    const g = hex('4e42444d41474943 | 49484156454f5054 | 0003');
    expect(encodeGreeting(3)).toEqual(g);
    expect(decodeGreeting(g)).toEqual({ handshakeFlags: 3 });
    expect(code(() => decodeGreeting(hex('4e42444d41474944 49484156454f5054 0003')))).toBe('ERR_NBD_BAD_MAGIC');
    // Oldstyle greeting (cliserv_magic) is refused.
    expect(code(() => decodeGreeting(hex('4e42444d41474943 0000420281861253 0000')))).toBe('ERR_NBD_BAD_MAGIC');
    expect(code(() => decodeGreeting(hex('4e42444d41474943')))).toBe('ERR_NBD_MALFORMED');
  });

  it('client flags', () => {
    expect(encodeClientFlags(3)).toEqual(hex('00000003'));
    expect(decodeClientFlags(hex('00000001'))).toBe(1);
  });

  it('option request: IHAVEOPT, option, length, data', () => {
    const b = hex('49484156454f5054 | 00000001 | 00000003 | 666f6f');
    expect(encodeOptionRequest(NbdOpt.EXPORT_NAME, encodeExportNameData('foo'))).toEqual(b);
    expect(decodeOptionHeader(b)).toEqual({ option: 1, length: 3 });
    expect(decodeExportNameData(hex('666f6f'))).toBe('foo');
    expect(encodeOptionRequest(NbdOpt.ABORT)).toEqual(hex('49484156454f5054 00000002 00000000'));
    expect(code(() => decodeOptionHeader(hex('49484156454f5055 00000002 00000000')))).toBe('ERR_NBD_BAD_MAGIC');
  });

  it('option reply: magic 0x3e889045565a9, option, type, length, data', () => {
    const ack = hex('0003e889045565a9 | 00000007 | 00000001 | 00000000');
    expect(encodeOptionReply(NbdOpt.GO, NbdRep.ACK)).toEqual(ack);
    expect(decodeOptionReplyHeader(ack)).toEqual({ option: 7, type: 1, length: 0 });
    const err = hex('0003e889045565a9 | 00000063 | 80000001 | 00000002 | 6e6f');
    expect(encodeOptionReply(0x63, NbdRep.ERR_UNSUP, encodeErrorMessage('no'))).toEqual(err);
    expect(decodeOptionReplyHeader(err)).toEqual({ option: 0x63, type: 0x80000001, length: 2 });
    expect(code(() => decodeOptionReplyHeader(hex('0003e889045565a8 00000007 00000001 00000000')))).toBe('ERR_NBD_BAD_MAGIC');
  });

  it('EXPORT_NAME reply with and without the 124 zeroes', () => {
    const short = hex('0000000040000000 | 0043');
    expect(encodeExportNameReply(0x40000000n, 0x43, true)).toEqual(short);
    expect(encodeExportNameReply(0x40000000n, 0x43, false)).toEqual(Buffer.concat([short, Buffer.alloc(124)]));
    expect(decodeExportNameReply(short)).toEqual({ size: 0x40000000n, transmissionFlags: 0x43 });
  });

  it('INFO/GO request: name length, name, count, info types', () => {
    const b = hex('00000002 | 6869 | 0002 | 0003 0002');
    const v = { exportName: 'hi', infos: [NbdInfo.BLOCK_SIZE, NbdInfo.DESCRIPTION] };
    expect(encodeInfoRequest(v)).toEqual(b);
    expect(decodeInfoRequest(b)).toEqual(v);
    expect(decodeInfoRequest(hex('00000000 0000'))).toEqual({ exportName: '', infos: [] });
    expect(code(() => decodeInfoRequest(hex('00000005 6869 0000')))).toBe('ERR_NBD_MALFORMED');
    expect(code(() => decodeInfoRequest(hex('00000000 0000 00')))).toBe('ERR_NBD_MALFORMED');
  });

  it('INFO payloads: EXPORT, NAME, DESCRIPTION, BLOCK_SIZE, unknown', () => {
    const cases: [Buffer, Parameters<typeof encodeInfoReply>[0]][] = [
      [hex('0000 | 0000000100000000 | 010d'), { info: NbdInfo.EXPORT, size: 0x100000000n, transmissionFlags: 0x10d }],
      [hex('0001 | 6578706f7274'), { info: NbdInfo.NAME, name: 'export' }],
      [hex('0002 | 64656d6f'), { info: NbdInfo.DESCRIPTION, description: 'demo' }],
      [hex('0003 | 00000001 | 00001000 | 02000000'), { info: NbdInfo.BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: 0x2000000 }],
    ];
    for (const [bytes, v] of cases) {
      expect(encodeInfoReply(v)).toEqual(bytes);
      expect(decodeInfoReply(bytes)).toEqual(v);
    }
    const unk = decodeInfoReply(hex('0009 abcd'));
    expect(unk).toEqual({ info: 'unknown', type: 9, data: hex('abcd') });
    expect(code(() => decodeInfoReply(hex('0000 0000000100000000')))).toBe('ERR_NBD_MALFORMED');
    expect(code(() => decodeInfoReply(hex('0003 00000001 00001000 02000000 00')))).toBe('ERR_NBD_MALFORMED');
  });

  it('NBD_REP_SERVER (export list entry): name length, name, description', () => {
    const b = hex('00000003 | 6c756e | 64697363');
    expect(encodeServerReply({ name: 'lun', description: 'disc' })).toEqual(b);
    expect(decodeServerReply(b)).toEqual({ name: 'lun', description: 'disc' });
    expect(decodeServerReply(hex('00000000'))).toEqual({ name: '', description: '' });
  });

  it('meta context request and reply', () => {
    // export "e", 2 queries: "base:allocation", "x:"
    const b = hex('00000001 65 | 00000002 | 0000000f 626173653a616c6c6f636174696f6e | 00000002 783a');
    const v = { exportName: 'e', queries: ['base:allocation', 'x:'] };
    expect(encodeMetaContextRequest(v)).toEqual(b);
    expect(decodeMetaContextRequest(b)).toEqual(v);
    expect(code(() => decodeMetaContextRequest(hex('00000000 ffffffff')))).toBe('ERR_NBD_MALFORMED');
    const r = hex('00000001 | 626173653a616c6c6f636174696f6e');
    expect(encodeMetaContextReply(1, 'base:allocation')).toEqual(r);
    expect(decodeMetaContextReply(r)).toEqual({ contextId: 1, name: 'base:allocation' });
  });

  it('strings longer than 4096 bytes are refused both ways', () => {
    expect(code(() => encodeExportNameData('x'.repeat(4097)))).toBe('ERR_NBD_TOO_LARGE');
    const b = Buffer.alloc(4 + 4097 + 2);
    b.writeUInt32BE(4097, 0);
    expect(code(() => decodeInfoRequest(b))).toBe('ERR_NBD_MALFORMED');
  });
});

describe('transmission golden bytes', () => {
  it('request header: 28 bytes', () => {
    const b = hex('25609513 | 0001 | 0001 | 0102030405060708 | 0000000000001000 | 00000200');
    const v = { flags: NbdCmdFlag.FUA, type: NbdCmd.WRITE, handle: 0x0102030405060708n, offset: 0x1000n, length: 0x200 };
    expect(encodeRequest(v)).toEqual(b);
    expect(decodeRequest(b)).toEqual(v);
    expect(code(() => decodeRequest(hex('25609514 0000 0000 0000000000000000 0000000000000000 00000000')))).toBe('ERR_NBD_BAD_MAGIC');
  });

  it('extended request header: 32 bytes, 64-bit length', () => {
    const b = hex('21e41c71 | 0020 | 0007 | ffffffffffffffff | 8000000000000000 | 0000000100000000');
    const v = { flags: NbdCmdFlag.PAYLOAD_LEN, type: NbdCmd.BLOCK_STATUS, handle: 0xffffffffffffffffn, offset: 0x8000000000000000n, length: 0x100000000 };
    expect(encodeRequest(v, true)).toEqual(b);
    expect(decodeRequest(b, true)).toEqual(v);
    // The compact magic is wrong once extended headers are on, and vice versa.
    expect(code(() => decodeRequest(b, false))).toBe('ERR_NBD_BAD_MAGIC');
    expect(code(() => decodeRequest(hex('21e41c71 0000 0000 0000000000000000 0000000000000000 ffffffffffffffff'), true))).toBe('ERR_NBD_TOO_LARGE');
  });

  it('simple reply: 16 bytes', () => {
    const b = hex('67446698 | 00000005 | 00000000deadbeef');
    expect(encodeSimpleReply({ error: NbdErrno.EIO, handle: 0xdeadbeefn })).toEqual(b);
    expect(decodeSimpleReply(b)).toEqual({ error: 5, handle: 0xdeadbeefn });
    expect(code(() => decodeSimpleReply(hex('67446699 00000000 0000000000000000')))).toBe('ERR_NBD_BAD_MAGIC');
  });

  it('structured reply chunk header: 20 bytes', () => {
    const b = hex('668e33ef | 0001 | 0001 | 0000000000000007 | 00000208');
    const v = { flags: 1, type: NbdReplyType.OFFSET_DATA, handle: 7n, offset: 0n, length: 0x208 };
    expect(encodeReplyChunkHeader(v)).toEqual(b);
    expect(decodeReplyChunkHeader(b)).toEqual(v);
  });

  it('extended reply chunk header: 32 bytes', () => {
    const b = hex('6e8a278c | 0001 | 0006 | 0000000000000009 | 0000000000100000 | 0000000000000018');
    const v = { flags: 1, type: NbdReplyType.BLOCK_STATUS_EXT, handle: 9n, offset: 0x100000n, length: 0x18 };
    expect(encodeReplyChunkHeader(v, true)).toEqual(b);
    expect(decodeReplyChunkHeader(b)).toEqual(v);
    expect(code(() => decodeReplyChunkHeader(hex('67446698 00000000 0000000000000000')))).toBe('ERR_NBD_BAD_MAGIC');
  });

  it('OFFSET_DATA and OFFSET_HOLE payloads', () => {
    expect(encodeOffsetDataPrefix(0x200n)).toEqual(hex('0000000000000200'));
    expect(decodeOffsetData(hex('0000000000000200 aabbcc'))).toEqual({ offset: 0x200n, data: hex('aabbcc') });
    expect(code(() => decodeOffsetData(hex('0000000000000200')))).toBe('ERR_NBD_MALFORMED');
    const h = hex('0000000000001000 | 00010000');
    expect(encodeOffsetHole(0x1000n, 0x10000)).toEqual(h);
    expect(decodeOffsetHole(h)).toEqual({ offset: 0x1000n, holeSize: 0x10000 });
    expect(code(() => decodeOffsetHole(hex('0000000000001000 0001')))).toBe('ERR_NBD_MALFORMED');
  });

  it('BLOCK_STATUS and BLOCK_STATUS_EXT payloads', () => {
    const ext = [
      { length: 0x10000, flags: 0 },
      { length: 0x20000, flags: 3 },
    ];
    const b = hex('00000001 | 00010000 00000000 | 00020000 00000003');
    expect(encodeBlockStatus(1, ext)).toEqual(b);
    expect(decodeBlockStatus(b)).toEqual({ contextId: 1, extents: ext });
    expect(code(() => decodeBlockStatus(hex('00000001')))).toBe('ERR_NBD_MALFORMED');
    expect(code(() => decodeBlockStatus(hex('00000001 00010000 000000')))).toBe('ERR_NBD_MALFORMED');
    const e = hex('00000001 | 00000002 | 0000000000010000 0000000000000000 | 0000000000020000 0000000000000003');
    expect(encodeBlockStatusExt(1, ext)).toEqual(e);
    expect(decodeBlockStatusExt(e)).toEqual({ contextId: 1, extents: ext });
    expect(code(() => decodeBlockStatusExt(hex('00000001 00000003 0000000000010000 0000000000000000')))).toBe('ERR_NBD_MALFORMED');
  });

  it('ERROR and ERROR_OFFSET payloads', () => {
    const b = hex('00000016 | 0003 | 626164');
    expect(encodeErrorChunk({ error: NbdErrno.EINVAL, message: 'bad' })).toEqual(b);
    expect(decodeErrorChunk(NbdReplyType.ERROR, b)).toEqual({ error: 22, message: 'bad' });
    const o = hex('00000005 | 0000 | 0000000000000400');
    expect(encodeErrorChunk({ error: NbdErrno.EIO, message: '', offset: 0x400n })).toEqual(o);
    expect(decodeErrorChunk(NbdReplyType.ERROR_OFFSET, o)).toEqual({ error: 5, message: '', offset: 0x400n });
    expect(code(() => decodeErrorChunk(NbdReplyType.ERROR, hex('00000005 0004 6162')))).toBe('ERR_NBD_MALFORMED');
  });
});

describe('constants and debug names', () => {
  it('spot values from proto.md', () => {
    expect([NbdOpt.GO, NbdOpt.STRUCTURED_REPLY, NbdOpt.SET_META_CONTEXT, NbdOpt.EXTENDED_HEADERS]).toEqual([7, 8, 10, 11]);
    expect([NbdRep.ERR_TLS_REQD, NbdRep.ERR_TOO_BIG]).toEqual([0x80000005, 0x80000009]);
    expect([NbdCmd.CACHE, NbdCmd.WRITE_ZEROES, NbdCmd.BLOCK_STATUS, NbdCmd.RESIZE]).toEqual([5, 6, 7, 8]);
    expect([NbdErrno.EOVERFLOW, NbdErrno.ENOTSUP, NbdErrno.ESHUTDOWN]).toEqual([75, 95, 108]);
    expect(isRepError(NbdRep.ERR_UNKNOWN)).toBe(true);
    expect(isRepError(NbdRep.INFO)).toBe(false);
    expect(isReplyTypeError(NbdReplyType.ERROR_OFFSET)).toBe(true);
    expect(isReplyTypeError(NbdReplyType.OFFSET_HOLE)).toBe(false);
  });

  it('names come from the tables', () => {
    expect(optName(7)).toBe('NBD_OPT_GO');
    expect(optName(99)).toBe('NBD_OPT_unknown(0x63)');
    expect(repName(0x80000001)).toBe('NBD_REP_ERR_UNSUP');
    expect(cmdName(6)).toBe('NBD_CMD_WRITE_ZEROES');
    expect(replyTypeName(0x8002)).toBe('NBD_REPLY_TYPE_ERROR_OFFSET');
    expect(errnoName(28)).toBe('ENOSPC');
    expect(cmdFlagNames(NbdCmdFlag.FUA | NbdCmdFlag.NO_HOLE | 0x100)).toBe('FUA|NO_HOLE|0x100');
    expect(cmdFlagNames(0)).toBe('0');
    expect(transmissionFlagNames(0x3)).toBe('HAS_FLAGS|READ_ONLY');
  });
});
