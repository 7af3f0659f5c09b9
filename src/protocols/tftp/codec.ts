// TFTP packet codecs (RFC 1350 §5 packet layouts, RFC 2347 options and OACK).
// Pure functions over Buffers. Decoding never throws on wire input: a datagram
// is either a packet or a reason, and the caller decides which ERROR to send.
// DATA payloads stay subarray views of the datagram.

import {
  TFTP_MAX_OPTIONS,
  TFTP_MAX_PACKET,
  TftpOpcode,
  type TftpMode,
} from './constants.js';
import { parseOptionNumber, type TftpOption } from './options.js';

export type { TftpOption };

export interface TftpRequest {
  opcode: typeof TftpOpcode.RRQ | typeof TftpOpcode.WRQ;
  filename: string;
  /** Lower-cased (RFC 1350: "any combination of upper and lower case"). */
  mode: TftpMode;
  options: TftpOption[];
}
export interface TftpData {
  opcode: typeof TftpOpcode.DATA;
  block: number;
  data: Buffer;
}
export interface TftpAck {
  opcode: typeof TftpOpcode.ACK;
  block: number;
}
export interface TftpError {
  opcode: typeof TftpOpcode.ERROR;
  code: number;
  message: string;
}
export interface TftpOack {
  opcode: typeof TftpOpcode.OACK;
  options: TftpOption[];
}
export type TftpPacket = TftpRequest | TftpData | TftpAck | TftpError | TftpOack;

export type DecodeResult = { ok: true; packet: TftpPacket } | { ok: false; reason: string };

const fail = (reason: string): DecodeResult => ({ ok: false, reason });

/** Reads NUL-terminated strings; null when the terminator is missing. */
function readStrings(buf: Buffer, start: number): string[] | null {
  const out: string[] = [];
  let pos = start;
  while (pos < buf.length) {
    const nul = buf.indexOf(0, pos);
    if (nul < 0) return null;
    out.push(buf.toString('utf8', pos, nul));
    pos = nul + 1;
  }
  return out;
}

/** Name/value pairs after the mode of a request or in an OACK (RFC 2347). */
function readOptions(strings: string[]): TftpOption[] | string {
  if (strings.length % 2 !== 0) return `option ${JSON.stringify(strings[strings.length - 1])} has no value`;
  if (strings.length / 2 > TFTP_MAX_OPTIONS) return `more than ${TFTP_MAX_OPTIONS} options`;
  const options: TftpOption[] = [];
  for (let i = 0; i < strings.length; i += 2) {
    if (strings[i] === '') return 'empty option name';
    options.push({ name: strings[i].toLowerCase(), value: strings[i + 1] });
  }
  return options;
}

export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length < 2) return fail('packet shorter than an opcode');
  if (buf.length > TFTP_MAX_PACKET) return fail('packet longer than a UDP datagram');
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case TftpOpcode.RRQ:
    case TftpOpcode.WRQ: {
      const strings = readStrings(buf, 2);
      if (strings === null) return fail('request string not NUL-terminated');
      if (strings.length < 2) return fail('request lacks filename or mode');
      const [filename, rawMode, ...rest] = strings;
      if (filename === '') return fail('empty filename');
      const mode = rawMode.toLowerCase();
      if (mode !== 'netascii' && mode !== 'octet') return fail(`unsupported mode ${JSON.stringify(rawMode)}`);
      const options = readOptions(rest);
      if (typeof options === 'string') return fail(options);
      return { ok: true, packet: { opcode, filename, mode, options } };
    }
    case TftpOpcode.DATA:
      if (buf.length < 4) return fail('DATA shorter than its header');
      return { ok: true, packet: { opcode, block: buf.readUInt16BE(2), data: buf.subarray(4) } };
    case TftpOpcode.ACK:
      // Bytes after the block number are ignored: nothing in RFC 1350 gives
      // them a meaning, and dropping such an ACK would stall a transfer.
      if (buf.length < 4) return fail('ACK shorter than 4 bytes');
      return { ok: true, packet: { opcode, block: buf.readUInt16BE(2) } };
    case TftpOpcode.ERROR: {
      if (buf.length < 5) return fail('ERROR shorter than its header');
      const nul = buf.indexOf(0, 4);
      if (nul < 0) return fail('ERROR message not NUL-terminated');
      if (nul !== buf.length - 1) return fail('bytes after the ERROR message');
      return { ok: true, packet: { opcode, code: buf.readUInt16BE(2), message: buf.toString('utf8', 4, nul) } };
    }
    case TftpOpcode.OACK: {
      const strings = readStrings(buf, 2);
      if (strings === null) return fail('OACK string not NUL-terminated');
      const options = readOptions(strings);
      if (typeof options === 'string') return fail(options);
      // An OACK carries the server's final values; a known numeric option
      // that is not a number is a broken server, not something to guess at.
      for (const o of options) {
        if (NUMERIC_OPTIONS.has(o.name) && parseOptionNumber(o.value) === null) {
          return fail(`OACK ${o.name} value ${JSON.stringify(o.value)} is not a number`);
        }
      }
      return { ok: true, packet: { opcode, options } };
    }
    default:
      return fail(`unknown opcode ${opcode}`);
  }
}

const NUMERIC_OPTIONS = new Set(['blksize', 'timeout', 'tsize', 'windowsize']);

// --- Encoders -----------------------------------------------------------------

function stringsLength(strings: readonly string[]): number {
  let n = 0;
  for (const s of strings) n += Buffer.byteLength(s, 'utf8') + 1;
  return n;
}

function writeStrings(buf: Buffer, pos: number, strings: readonly string[]): number {
  for (const s of strings) {
    pos += buf.write(s, pos, 'utf8');
    buf[pos++] = 0;
  }
  return pos;
}

function withStrings(opcode: number, strings: readonly string[]): Buffer {
  for (const s of strings) {
    if (s.includes('\0')) throw new RangeError('TFTP strings cannot contain NUL');
  }
  const buf = Buffer.allocUnsafe(2 + stringsLength(strings));
  buf.writeUInt16BE(opcode, 0);
  writeStrings(buf, 2, strings);
  return buf;
}

const flatten = (options: readonly TftpOption[]): string[] => options.flatMap((o) => [o.name, o.value]);

export function encodeRequest(req: Omit<TftpRequest, 'options'> & { options?: readonly TftpOption[] }): Buffer {
  return withStrings(req.opcode, [req.filename, req.mode, ...flatten(req.options ?? [])]);
}

export function encodeOack(options: readonly TftpOption[]): Buffer {
  return withStrings(TftpOpcode.OACK, flatten(options));
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(TftpOpcode.ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

/**
 * The 4-byte DATA header alone: senders pass [header, payload] to
 * socket.send() so the payload is never copied into a packet buffer.
 */
export function encodeDataHeader(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(TftpOpcode.DATA, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeData(block: number, data: Buffer): Buffer {
  return Buffer.concat([encodeDataHeader(block), data]);
}

/** Messages are cut to 255 bytes: they are for humans and must stay small. */
export function encodeError(code: number, message: string): Buffer {
  const text = Buffer.from(message.replace(/\0/g, ' '), 'utf8').subarray(0, 255);
  const buf = Buffer.allocUnsafe(5 + text.length);
  buf.writeUInt16BE(TftpOpcode.ERROR, 0);
  buf.writeUInt16BE(code & 0xffff, 2);
  text.copy(buf, 4);
  buf[4 + text.length] = 0;
  return buf;
}

export function encodePacket(packet: TftpPacket): Buffer {
  switch (packet.opcode) {
    case TftpOpcode.RRQ:
    case TftpOpcode.WRQ:
      return encodeRequest(packet);
    case TftpOpcode.DATA:
      return encodeData(packet.block, packet.data);
    case TftpOpcode.ACK:
      return encodeAck(packet.block);
    case TftpOpcode.ERROR:
      return encodeError(packet.code, packet.message);
    case TftpOpcode.OACK:
      return encodeOack(packet.options);
  }
}
