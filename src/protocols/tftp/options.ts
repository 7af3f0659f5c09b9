// TFTP option negotiation (RFC 2347) for blksize (RFC 2348), timeout and
// tsize (RFC 2349) and windowsize (RFC 7440), as one pure function.
//
// Rules shared by all options: names are case-insensitive; an option the
// server does not know, or whose value is not a valid number, is left out of
// the OACK (RFC 2347: "the server should simply omit" options it does not
// support) and the transfer runs with the RFC 1350 default; the first of two
// options with the same name wins.

import {
  TFTP_DEFAULT_BLKSIZE,
  TFTP_ETHERNET_BLKSIZE,
  TFTP_MAX_BLKSIZE,
  TFTP_MAX_TIMEOUT,
  TFTP_MAX_WINDOWSIZE,
  TFTP_MIN_BLKSIZE,
  TFTP_MIN_TIMEOUT,
  TFTP_MIN_WINDOWSIZE,
  TftpOpcode,
} from './constants.js';

export interface TftpOption {
  /** Lower-cased: RFC 2347 option names are case-insensitive. */
  name: string;
  value: string;
}

export interface TftpLimits {
  /** Largest blksize granted; the path MTU's share (1468 on Ethernet). */
  maxBlksize?: number;
  /** Largest windowsize granted (RFC 7440 lets the server lower it). */
  maxWindowsize?: number;
  /**
   * Cap on windowsize × blksize: the bytes a sender keeps unacknowledged for
   * one transfer. Windowsize is lowered (never below 1) to stay within it.
   */
  maxWindowBytes?: number;
}

export const TFTP_DEFAULT_MAX_WINDOWSIZE = 64;
export const TFTP_DEFAULT_MAX_WINDOW_BYTES = 1024 * 1024;

export interface NegotiationInput {
  opcode: typeof TftpOpcode.RRQ | typeof TftpOpcode.WRQ;
  options: readonly TftpOption[];
  /**
   * RRQ: the size answered for tsize (RFC 2349 §"Transfer Size Option");
   * undefined when the server cannot know it (netascii), so tsize is omitted.
   */
  fileSize?: number;
}

export interface NegotiatedOptions {
  blksize: number;
  /** Seconds; undefined when the client did not ask (the server picks). */
  timeout?: number;
  windowsize: number;
  tsize?: number;
  /** What goes into the OACK, in request order; empty means send no OACK. */
  accepted: TftpOption[];
}

/**
 * Strict unsigned decimal: digits only, at most 15 of them (so the value is
 * an exact JavaScript number). Null for anything else.
 */
export function parseOptionNumber(value: string): number | null {
  if (!/^[0-9]{1,15}$/.test(value)) return null;
  return Number(value);
}

export function negotiateOptions(input: NegotiationInput, limits: TftpLimits = {}): NegotiatedOptions {
  const maxBlksize = clamp(limits.maxBlksize ?? TFTP_ETHERNET_BLKSIZE, TFTP_MIN_BLKSIZE, TFTP_MAX_BLKSIZE);
  const maxWindowsize = clamp(limits.maxWindowsize ?? TFTP_DEFAULT_MAX_WINDOWSIZE, TFTP_MIN_WINDOWSIZE, TFTP_MAX_WINDOWSIZE);
  const maxWindowBytes = limits.maxWindowBytes ?? TFTP_DEFAULT_MAX_WINDOW_BYTES;

  const out: NegotiatedOptions = { blksize: TFTP_DEFAULT_BLKSIZE, windowsize: 1, accepted: [] };
  const seen = new Set<string>();
  // windowsize depends on the final blksize, so it is settled after the loop
  // but keeps its place in the OACK.
  let windowIndex = -1;
  let windowAsked = 0;

  for (const { name, value } of input.options) {
    if (seen.has(name)) continue;
    seen.add(name);
    const n = parseOptionNumber(value);
    if (n === null) continue;
    switch (name) {
      case 'blksize': {
        // RFC 2348: below 8 is invalid. Above the limit the server answers
        // with a smaller value, which the client must accept.
        if (n < TFTP_MIN_BLKSIZE) break;
        out.blksize = Math.min(n, maxBlksize);
        out.accepted.push({ name, value: String(out.blksize) });
        break;
      }
      case 'timeout': {
        // RFC 2349: the server may not change the timeout, only accept or omit it.
        if (n < TFTP_MIN_TIMEOUT || n > TFTP_MAX_TIMEOUT) break;
        out.timeout = n;
        out.accepted.push({ name, value: String(n) });
        break;
      }
      case 'tsize': {
        if (input.opcode === TftpOpcode.RRQ) {
          if (input.fileSize === undefined) break;
          out.tsize = input.fileSize;
        } else {
          out.tsize = n;
        }
        out.accepted.push({ name, value: String(out.tsize) });
        break;
      }
      case 'windowsize': {
        if (n < TFTP_MIN_WINDOWSIZE) break;
        windowAsked = n;
        windowIndex = out.accepted.length;
        out.accepted.push({ name, value: '' });
        break;
      }
      default:
        break;
    }
  }

  if (windowIndex >= 0) {
    const byBytes = Math.max(1, Math.floor(maxWindowBytes / out.blksize));
    out.windowsize = Math.max(1, Math.min(windowAsked, maxWindowsize, byBytes, TFTP_MAX_WINDOWSIZE));
    out.accepted[windowIndex].value = String(out.windowsize);
  }
  return out;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}
