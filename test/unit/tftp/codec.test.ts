// TFTP codecs against hand-written bytes (RFC 1350 §5 layouts, RFC 2347
// OACK), truncation and garbage handling, and option negotiation.
import { describe, expect, it } from 'vitest';
import {
  TftpOpcode,
  decodePacket,
  encodeAck,
  encodeData,
  encodeDataHeader,
  encodeError,
  encodeOack,
  encodePacket,
  encodeRequest,
  negotiateOptions,
  parseOptionNumber,
  type TftpPacket,
} from '../../../src/protocols/tftp/index.js';

/** Hex with spaces/newlines allowed, plus "quoted" ASCII runs for readability. */
function bytes(spec: string): Buffer {
  const parts: Buffer[] = [];
  for (const m of spec.matchAll(/"([^"]*)"|([0-9a-fA-F]{2})/g)) {
    parts.push(m[1] !== undefined ? Buffer.from(m[1], 'latin1') : Buffer.from([parseInt(m[2], 16)]));
  }
  return Buffer.concat(parts);
}

const golden: [string, Buffer, TftpPacket][] = [
  ['RRQ', bytes('00 01 "pxelinux.0" 00 "octet" 00'), { opcode: 1, filename: 'pxelinux.0', mode: 'octet', options: [] }],
  [
    'RRQ with options',
    bytes('00 01 "undionly.kpxe" 00 "octet" 00 "blksize" 00 "1428" 00 "tsize" 00 "0" 00 "windowsize" 00 "8" 00'),
    {
      opcode: 1,
      filename: 'undionly.kpxe',
      mode: 'octet',
      options: [
        { name: 'blksize', value: '1428' },
        { name: 'tsize', value: '0' },
        { name: 'windowsize', value: '8' },
      ],
    },
  ],
  ['WRQ', bytes('00 02 "a/b" 00 "netascii" 00'), { opcode: 2, filename: 'a/b', mode: 'netascii', options: [] }],
  ['DATA', bytes('00 03 01 02 de ad be ef'), { opcode: 3, block: 0x0102, data: bytes('de ad be ef') }],
  ['empty DATA', bytes('00 03 ff ff'), { opcode: 3, block: 0xffff, data: Buffer.alloc(0) }],
  ['ACK', bytes('00 04 00 00'), { opcode: 4, block: 0 }],
  ['ACK 65535', bytes('00 04 ff ff'), { opcode: 4, block: 65535 }],
  ['ERROR', bytes('00 05 00 01 "File not found" 00'), { opcode: 5, code: 1, message: 'File not found' }],
  ['ERROR empty message', bytes('00 05 00 08 00'), { opcode: 5, code: 8, message: '' }],
  ['OACK', bytes('00 06 "blksize" 00 "1468" 00 "tsize" 00 "74213" 00'), {
    opcode: 6,
    options: [
      { name: 'blksize', value: '1468' },
      { name: 'tsize', value: '74213' },
    ],
  }],
];

describe('tftp codec: golden bytes', () => {
  it.each(golden)('%s decodes', (_name, wire, packet) => {
    expect(decodePacket(wire)).toEqual({ ok: true, packet });
  });
  it.each(golden)('%s encodes', (_name, wire, packet) => {
    expect(encodePacket(packet).toString('hex')).toBe(wire.toString('hex'));
  });

  it('has single-purpose encoders producing the same bytes', () => {
    expect(encodeAck(0x10001).toString('hex')).toBe('00040001'); // numbers wrap at 16 bits
    expect(encodeDataHeader(65536).toString('hex')).toBe('03'.padStart(4, '0') + '0000');
    expect(encodeData(7, Buffer.from('hi')).toString('hex')).toBe(bytes('00 03 00 07 "hi"').toString('hex'));
    expect(encodeError(2, 'Access violation')).toEqual(bytes('00 05 00 02 "Access violation" 00'));
    expect(encodeOack([{ name: 'timeout', value: '3' }])).toEqual(bytes('00 06 "timeout" 00 "3" 00'));
    expect(encodeRequest({ opcode: TftpOpcode.RRQ, filename: 'f', mode: 'octet' })).toEqual(bytes('00 01 "f" 00 "octet" 00'));
  });

  it('caps ERROR messages and strips NULs from them', () => {
    const e = encodeError(0, 'x'.repeat(1000));
    expect(e.length).toBe(4 + 255 + 1);
    expect(encodeError(0, 'a\0b')).toEqual(bytes('00 05 00 00 "a b" 00'));
  });

  it('refuses to encode strings with NUL', () => {
    expect(() => encodeRequest({ opcode: 1, filename: 'a\0b', mode: 'octet' })).toThrow(RangeError);
  });
});

describe('tftp codec: case-insensitivity', () => {
  it('lower-cases mode and option names but keeps the filename and values', () => {
    const r = decodePacket(bytes('00 01 "Boot/IPXE.efi" 00 "OcTeT" 00 "BLKSIZE" 00 "512" 00 "TSize" 00 "0" 00'));
    expect(r).toEqual({
      ok: true,
      packet: {
        opcode: 1,
        filename: 'Boot/IPXE.efi',
        mode: 'octet',
        options: [
          { name: 'blksize', value: '512' },
          { name: 'tsize', value: '0' },
        ],
      },
    });
  });
  it('accepts NETASCII', () => {
    const r = decodePacket(bytes('00 01 "f" 00 "NETASCII" 00'));
    expect(r.ok && r.packet.opcode === 1 && r.packet.mode).toBe('netascii');
  });
});

describe('tftp codec: bad input never throws', () => {
  const bad: [string, Buffer, RegExp][] = [
    ['empty', bytes(''), /opcode/],
    ['one byte', bytes('00'), /opcode/],
    ['unknown opcode', bytes('00 07 00 00'), /unknown opcode 7/],
    ['opcode 0', bytes('00 00'), /unknown opcode 0/],
    ['RRQ without NULs', bytes('00 01 "file"'), /NUL/],
    ['RRQ without mode', bytes('00 01 "file" 00'), /mode/],
    ['RRQ mode unterminated', bytes('00 01 "file" 00 "octet"'), /NUL/],
    ['RRQ empty filename', bytes('00 01 00 "octet" 00'), /empty filename/],
    ['RRQ mail mode', bytes('00 01 "f" 00 "mail" 00'), /mode/],
    ['RRQ option without value', bytes('00 01 "f" 00 "octet" 00 "blksize" 00'), /no value/],
    ['RRQ empty option name', bytes('00 01 "f" 00 "octet" 00 00 "1" 00'), /empty option/],
    ['DATA short', bytes('00 03 00'), /DATA/],
    ['ACK short', bytes('00 04 00'), /ACK/],
    ['ERROR short', bytes('00 05 00 01'), /ERROR/],
    ['ERROR unterminated', bytes('00 05 00 01 "oops"'), /NUL/],
    ['ERROR trailing bytes', bytes('00 05 00 01 "oops" 00 "x"'), /after/],
    ['OACK bad number', bytes('00 06 "blksize" 00 "12a" 00'), /not a number/],
    ['OACK unterminated', bytes('00 06 "blksize" 00 "1468"'), /NUL/],
    ['too long', Buffer.alloc(65536, 1), /longer/],
  ];
  it.each(bad)('%s', (_name, wire, reason) => {
    const r = decodePacket(wire);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('rejects too many options', () => {
    const opts = Array.from({ length: 33 }, (_, i) => `"o${i}" 00 "1" 00`).join(' ');
    const r = decodePacket(bytes(`00 01 "f" 00 "octet" 00 ${opts}`));
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 32/) });
  });

  it('every truncation of an RRQ without options is an error', () => {
    const wire = bytes('00 01 "undionly.kpxe" 00 "octet" 00');
    for (let n = 0; n < wire.length; n++) {
      expect(decodePacket(wire.subarray(0, n)).ok, `length ${n}`).toBe(false);
    }
  });

  it('every truncation of an RRQ with options is an error or a shorter valid prefix', () => {
    const wire = bytes('00 01 "undionly.kpxe" 00 "octet" 00 "blksize" 00 "1428" 00 "tsize" 00 "0" 00');
    const full = decodePacket(wire);
    if (!full.ok || full.packet.opcode !== 1) throw new Error('golden RRQ did not decode');
    for (let n = 0; n < wire.length; n++) {
      const r = decodePacket(wire.subarray(0, n));
      if (r.ok) {
        if (r.packet.opcode !== 1) throw new Error('changed opcode');
        expect(wire[n - 1]).toBe(0);
        expect(full.packet.options.slice(0, r.packet.options.length)).toEqual(r.packet.options);
        expect(r.packet.options.length).toBeLessThan(full.packet.options.length);
      }
    }
  });

  it('never throws on random bytes', () => {
    let seed = 12345;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 5000; i++) {
      const len = rnd() % 40;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = j === 0 ? 0 : j === 1 ? rnd() % 8 : rnd() % 4 === 0 ? 0 : rnd();
      expect(() => decodePacket(buf)).not.toThrow();
    }
  });

  it('leaves DATA payloads as views of the datagram', () => {
    const wire = bytes('00 03 00 01 01 02 03');
    const r = decodePacket(wire);
    if (!r.ok || r.packet.opcode !== 3) throw new Error('not DATA');
    expect(r.packet.data.buffer).toBe(wire.buffer);
  });
});

describe('tftp option negotiation', () => {
  const opt = (name: string, value: string) => ({ name, value });
  const rrq = (options: { name: string; value: string }[], fileSize?: number) => ({ opcode: 1 as const, options, fileSize });

  it('grants nothing and sends no OACK when nothing is asked', () => {
    expect(negotiateOptions(rrq([]))).toEqual({ blksize: 512, windowsize: 1, accepted: [] });
  });

  it('clamps blksize to the server max (default 1468) and the RFC max', () => {
    expect(negotiateOptions(rrq([opt('blksize', '1428')])).blksize).toBe(1428);
    expect(negotiateOptions(rrq([opt('blksize', '9000')])).accepted).toEqual([opt('blksize', '1468')]);
    expect(negotiateOptions(rrq([opt('blksize', '100000')]), { maxBlksize: 70000 }).blksize).toBe(65464);
    expect(negotiateOptions(rrq([opt('blksize', '8')])).blksize).toBe(8);
  });

  it('omits invalid values: blksize < 8, timeout outside 1..255, windowsize 0, non-numbers', () => {
    const r = negotiateOptions(
      rrq([opt('blksize', '7'), opt('timeout', '0'), opt('windowsize', '0'), opt('tsize', '-1')], 10),
    );
    expect(r).toEqual({ blksize: 512, windowsize: 1, accepted: [] });
    expect(negotiateOptions(rrq([opt('timeout', '256')])).accepted).toEqual([]);
    expect(negotiateOptions(rrq([opt('blksize', '1e3')])).accepted).toEqual([]);
    expect(negotiateOptions(rrq([opt('blksize', ' 512')])).accepted).toEqual([]);
  });

  it('echoes a valid timeout unchanged', () => {
    expect(negotiateOptions(rrq([opt('timeout', '1')]))).toMatchObject({ timeout: 1, accepted: [opt('timeout', '1')] });
    expect(negotiateOptions(rrq([opt('timeout', '255')])).timeout).toBe(255);
  });

  it('answers tsize with the file size on RRQ, omits it when the size is unknown, echoes it on WRQ', () => {
    expect(negotiateOptions(rrq([opt('tsize', '0')], 74213)).accepted).toEqual([opt('tsize', '74213')]);
    expect(negotiateOptions(rrq([opt('tsize', '0')])).accepted).toEqual([]);
    expect(negotiateOptions({ opcode: 2, options: [opt('tsize', '4096')] }).tsize).toBe(4096);
  });

  it('clamps windowsize to the server max (default 64) and to the window byte cap', () => {
    expect(negotiateOptions(rrq([opt('windowsize', '8')])).windowsize).toBe(8);
    expect(negotiateOptions(rrq([opt('windowsize', '65535')])).windowsize).toBe(64);
    expect(negotiateOptions(rrq([opt('windowsize', '100')]), { maxWindowsize: 16 }).windowsize).toBe(16);
    const big = negotiateOptions(rrq([opt('windowsize', '64'), opt('blksize', '65464')]), { maxBlksize: 65464 });
    expect(big.windowsize).toBe(16); // 1 MiB / 65464
    expect(big.accepted).toEqual([opt('windowsize', '16'), opt('blksize', '65464')]);
    expect(negotiateOptions(rrq([opt('windowsize', '70000')]), { maxWindowsize: 100000 }).windowsize).toBe(2048); // 1 MiB / 512
  });

  it('ignores unknown options and later duplicates, keeping request order', () => {
    const r = negotiateOptions(
      rrq([opt('multicast', ''), opt('tsize', '0'), opt('blksize', '1024'), opt('blksize', '512'), opt('rollover', '0')], 5),
    );
    expect(r.accepted).toEqual([opt('tsize', '5'), opt('blksize', '1024')]);
    expect(r.blksize).toBe(1024);
  });

  it('parses option numbers strictly', () => {
    expect(parseOptionNumber('0')).toBe(0);
    expect(parseOptionNumber('0012')).toBe(12);
    expect(parseOptionNumber('')).toBeNull();
    expect(parseOptionNumber('+1')).toBeNull();
    expect(parseOptionNumber('1'.repeat(16))).toBeNull();
  });
});
