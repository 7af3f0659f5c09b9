// BOOTP/DHCP message codec (RFC 2131 §2 figure 1, RFC 951 for BOOTP).
// decodeDhcpPacket never throws on wire input: it returns a discriminated
// result whose error names what was wrong. encodeDhcpPacket is for our own
// replies and throws on caller mistakes (bad addresses, oversized fields).

import {
  DhcpOption,
  type DhcpOptions,
  bufferToIpv4,
  encodeOptions,
  formatMac,
  ipv4ToBuffer,
  joinOptionParts,
  walkOptions,
} from './options.js';

/** Fixed-field offsets (RFC 2131 figure 1). */
export const BootpOffset = {
  OP: 0,
  HTYPE: 1,
  HLEN: 2,
  HOPS: 3,
  XID: 4,
  SECS: 8,
  FLAGS: 10,
  CIADDR: 12,
  YIADDR: 16,
  SIADDR: 20,
  GIADDR: 24,
  CHADDR: 28,
  SNAME: 44,
  FILE: 108,
  COOKIE: 236,
  OPTIONS: 240,
} as const;

export const SNAME_LEN = 64;
export const FILE_LEN = 128;
export const CHADDR_LEN = 16;
/** 99.130.83.99 (RFC 2131 §3). */
export const DHCP_MAGIC_COOKIE = 0x63825363;
/** op values. */
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** htype 1 = Ethernet (ARP hardware types). */
export const HTYPE_ETHERNET = 1;
/** The broadcast bit of `flags` (RFC 2131 §2 figure 2). */
export const FLAG_BROADCAST = 0x8000;
/**
 * Replies are padded to the 300-byte BOOTP message size (RFC 951 / RFC 1542
 * §2.1): some PXE ROMs drop shorter packets. dnsmasq pads the same way.
 */
export const BOOTP_MIN_LEN = 300;
/** The smallest packet that can carry the cookie: fixed part + 4. */
export const DHCP_MIN_LEN = BootpOffset.OPTIONS;

/** Option 52 values (RFC 2132 §9.3). */
export const Overload = { FILE: 1, SNAME: 2, BOTH: 3 } as const;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of chaddr; the hardware address is the first `hlen`. */
  chaddr: Buffer;
  /** Server host name, up to its first NUL; '' when the field holds options (overload). */
  sname: string;
  /** Boot file name, up to its first NUL; '' when the field holds options (overload). */
  file: string;
  /** Option 52 as found (0 when absent). */
  overload: number;
  options: DhcpOptions;
}

export type DhcpDecodeError =
  | 'truncated' // shorter than the fixed part + cookie
  | 'bad-cookie' // a BOOTP (RFC 951) packet or garbage: no DHCP options
  | 'bad-hlen' // hlen larger than chaddr
  | 'option-overrun' // an option's length runs past its area
  | 'missing-end' // the options field is not terminated by END (RFC 2131 §4.1)
  | 'bad-overload'; // option 52 with a value other than 1..3

export type DhcpDecodeResult =
  | { ok: true; packet: DhcpPacket }
  | { ok: false; error: DhcpDecodeError; detail: string };

function fail(error: DhcpDecodeError, detail: string): DhcpDecodeResult {
  return { ok: false, error, detail };
}

/** Reads a NUL-terminated string from a fixed field (latin1; the field is opaque bytes). */
function cString(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul < 0 ? field.length : nul);
}

/**
 * Decodes a BOOTP/DHCP message. Options are gathered from the options field
 * and, when option 52 says so, from `file` then `sname` (RFC 3396 §7 order);
 * split instances of one code are joined.
 */
export function decodeDhcpPacket(buf: Buffer): DhcpDecodeResult {
  if (buf.length < DHCP_MIN_LEN) return fail('truncated', `${buf.length} bytes, need at least ${DHCP_MIN_LEN}`);
  if (buf.readUInt32BE(BootpOffset.COOKIE) !== DHCP_MAGIC_COOKIE) {
    return fail('bad-cookie', `cookie 0x${buf.readUInt32BE(BootpOffset.COOKIE).toString(16)}`);
  }
  const hlen = buf[BootpOffset.HLEN];
  if (hlen > CHADDR_LEN) return fail('bad-hlen', `hlen ${hlen}`);

  const parts = new Map<number, Buffer[]>();
  const main = walkOptions(buf.subarray(BootpOffset.OPTIONS), parts);
  if (!main.ok) return fail('option-overrun', `option at offset ${BootpOffset.OPTIONS + main.at}`);
  // A packet cut anywhere inside its options must not pass as a shorter valid
  // one, so the END that RFC 2131 §4.1 requires is required here.
  if (!main.ended) return fail('missing-end', 'options field has no END option');

  let overload = 0;
  const ov = parts.get(DhcpOption.OVERLOAD);
  if (ov) {
    if (ov.length !== 1 || ov[0].length !== 1 || ov[0][0] < 1 || ov[0][0] > 3) {
      return fail('bad-overload', 'option 52 must be one byte of 1, 2 or 3');
    }
    overload = ov[0][0];
    // RFC 2131 §4.1: file first, then sname. END is optional in these fixed
    // areas (their size is known), so only an overrun is an error.
    const areas: Array<[number, number, number]> = [];
    if (overload & Overload.FILE) areas.push([Overload.FILE, BootpOffset.FILE, FILE_LEN]);
    if (overload & Overload.SNAME) areas.push([Overload.SNAME, BootpOffset.SNAME, SNAME_LEN]);
    for (const [, start, len] of areas) {
      const r = walkOptions(buf.subarray(start, start + len), parts);
      if (!r.ok) return fail('option-overrun', `overloaded option at offset ${start + r.at}`);
    }
    // Option 52 inside an overloaded area has no meaning; keep the first.
    parts.set(DhcpOption.OVERLOAD, [ov[0]]);
  }

  return {
    ok: true,
    packet: {
      op: buf[BootpOffset.OP],
      htype: buf[BootpOffset.HTYPE],
      hlen,
      hops: buf[BootpOffset.HOPS],
      xid: buf.readUInt32BE(BootpOffset.XID),
      secs: buf.readUInt16BE(BootpOffset.SECS),
      flags: buf.readUInt16BE(BootpOffset.FLAGS),
      ciaddr: bufferToIpv4(buf, BootpOffset.CIADDR),
      yiaddr: bufferToIpv4(buf, BootpOffset.YIADDR),
      siaddr: bufferToIpv4(buf, BootpOffset.SIADDR),
      giaddr: bufferToIpv4(buf, BootpOffset.GIADDR),
      chaddr: buf.subarray(BootpOffset.CHADDR, BootpOffset.CHADDR + CHADDR_LEN),
      sname: overload & Overload.SNAME ? '' : cString(buf, BootpOffset.SNAME, SNAME_LEN),
      file: overload & Overload.FILE ? '' : cString(buf, BootpOffset.FILE, FILE_LEN),
      overload,
      options: joinOptionParts(parts),
    },
  };
}

/** The client's hardware address as aa:bb:cc:dd:ee:ff (first hlen bytes of chaddr). */
export function clientMac(p: Pick<DhcpPacket, 'chaddr' | 'hlen'>): string {
  return formatMac(p.chaddr.subarray(0, Math.min(p.hlen, CHADDR_LEN)));
}

export interface DhcpPacketInit {
  op: number;
  htype?: number;
  hlen?: number;
  hops?: number;
  xid: number;
  secs?: number;
  flags?: number;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  /** Up to 16 bytes; shorter is zero-padded. */
  chaddr: Buffer;
  sname?: string;
  file?: string;
  /** Encoded in this order; long values are split (RFC 3396). */
  options: Iterable<readonly [number, Buffer]>;
}

function putString(buf: Buffer, start: number, len: number, value: string | undefined, what: string): void {
  if (value === undefined || value === '') return;
  const b = Buffer.from(value, 'latin1');
  // Leave room for the terminating NUL: clients read these as C strings.
  if (b.length >= len) throw new RangeError(`${what} longer than ${len - 1} bytes`);
  b.copy(buf, start);
}

/**
 * Encodes a message: fixed part, cookie, options, END, zero padding up to 300
 * bytes. We never overload sname/file on encode: a proxy reply is small, and
 * PXE ROMs read `file` as the boot file name.
 */
export function encodeDhcpPacket(p: DhcpPacketInit): Buffer {
  if (p.chaddr.length > CHADDR_LEN) throw new RangeError('chaddr longer than 16 bytes');
  const opts = encodeOptions(p.options);
  const len = Math.max(BOOTP_MIN_LEN, BootpOffset.OPTIONS + opts.length);
  const buf = Buffer.alloc(len);
  buf[BootpOffset.OP] = p.op;
  buf[BootpOffset.HTYPE] = p.htype ?? HTYPE_ETHERNET;
  buf[BootpOffset.HLEN] = p.hlen ?? 6;
  buf[BootpOffset.HOPS] = p.hops ?? 0;
  buf.writeUInt32BE(p.xid >>> 0, BootpOffset.XID);
  buf.writeUInt16BE(p.secs ?? 0, BootpOffset.SECS);
  buf.writeUInt16BE(p.flags ?? 0, BootpOffset.FLAGS);
  ipv4ToBuffer(p.ciaddr ?? '0.0.0.0').copy(buf, BootpOffset.CIADDR);
  ipv4ToBuffer(p.yiaddr ?? '0.0.0.0').copy(buf, BootpOffset.YIADDR);
  ipv4ToBuffer(p.siaddr ?? '0.0.0.0').copy(buf, BootpOffset.SIADDR);
  ipv4ToBuffer(p.giaddr ?? '0.0.0.0').copy(buf, BootpOffset.GIADDR);
  p.chaddr.copy(buf, BootpOffset.CHADDR);
  putString(buf, BootpOffset.SNAME, SNAME_LEN, p.sname, 'sname');
  putString(buf, BootpOffset.FILE, FILE_LEN, p.file, 'file');
  buf.writeUInt32BE(DHCP_MAGIC_COOKIE, BootpOffset.COOKIE);
  opts.copy(buf, BootpOffset.OPTIONS);
  return buf;
}
