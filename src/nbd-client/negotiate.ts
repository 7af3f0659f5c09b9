// The client side of fixed newstyle negotiation (proto.md "Newstyle
// negotiation", "Fixed newstyle negotiation", "Option types"):
//
//   greeting -> client flags -> [STRUCTURED_REPLY] -> [SET_META_CONTEXT]
//   -> GO (INFO replies, then ACK)            transmission begins
//   -> EXPORT_NAME, only when the server lacks fixed newstyle or GO
//
// plus the two query-only conversations, LIST and INFO, which end with ABORT.
// Every function takes a HandshakeReader over the socket and the socket to
// write to; timeouts are the caller's business (it destroys the socket).

import type { Socket } from 'node:net';
import {
  BASE_ALLOCATION,
  EXPORT_NAME_REPLY_LENGTH,
  EXPORT_NAME_REPLY_ZEROES,
  GREETING_LENGTH,
  NBD_MAX_OPTION_LENGTH,
  NbdClientFlag,
  NbdHandshakeFlag,
  NbdInfo,
  NbdOpt,
  NbdRep,
  OPTION_REPLY_HEADER_LENGTH,
  isRepError,
  optName,
  repName,
} from '../protocols/nbd/constants.js';
import {
  decodeExportNameReply,
  decodeGreeting,
  decodeInfoReply,
  decodeMetaContextReply,
  decodeOptionReplyHeader,
  decodeServerReply,
  encodeClientFlags,
  encodeExportNameData,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOptionRequest,
  type BlockSizeConstraints,
  type ExportListEntry,
} from '../protocols/nbd/handshake.js';
import { LunkitError } from '../protocols/errors.js';
import { NbdClientError, optionRefused } from './errors.js';
import type { HandshakeReader } from './handshake-reader.js';

/** proto.md "Block size constraints": without NBD_INFO_BLOCK_SIZE, 32 MiB is the safe maximum. */
export const DEFAULT_MAX_BLOCK = 32 * 1024 * 1024;

/** What the client knows about the export it is attached to (or asked about). */
export interface NbdExportInfo {
  /** The export name as the client asked for it ("" is the default export). */
  name: string;
  /** The server's description (NBD_INFO_DESCRIPTION), if it sent one. */
  description: string | undefined;
  /** Size in bytes. */
  size: number;
  /** NBD_FLAG_* transmission flags (NbdTransmissionFlag). */
  transmissionFlags: number;
  /** Block size constraints; defaults (1, 4096, 32 MiB) when the server sent none. */
  blockSize: BlockSizeConstraints;
  /** True when the server sent NBD_INFO_BLOCK_SIZE. */
  blockSizeAdvertised: boolean;
}

export interface NegotiateOptions {
  exportName: string;
  /** Ask for structured replies (default true). */
  structuredReplies?: boolean;
  /** Meta contexts to ask for with SET_META_CONTEXT (default ["base:allocation"]); needs structured replies. */
  metaContexts?: readonly string[];
}

export interface Negotiated {
  export: NbdExportInfo;
  handshakeFlags: number;
  /** Structured replies are in force. */
  structuredReplies: boolean;
  /** Meta context name -> id, for the contexts the server agreed to. */
  metaContexts: Map<string, number>;
  /** How the export was chosen: NBD_OPT_GO or the old NBD_OPT_EXPORT_NAME. */
  via: 'go' | 'export-name';
}

interface OptionReply {
  type: number;
  data: Buffer;
}

function protocolError(message: string, cause?: unknown): NbdClientError {
  return new NbdClientError('ERR_NBD_PROTOCOL', message, cause === undefined ? {} : { cause });
}

/** Decode with the shared codecs; their LunkitErrors become ERR_NBD_PROTOCOL. */
function decode<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof LunkitError && !(e instanceof NbdClientError)) throw protocolError(`server sent ${e.message}`, e);
    throw e;
  }
}

/** One option reply; checks it answers `option` and caps its length before reading the data. */
async function optionReply(r: HandshakeReader, option: number): Promise<OptionReply> {
  const hb = await r.read(OPTION_REPLY_HEADER_LENGTH);
  const h = decode(() => decodeOptionReplyHeader(hb));
  if (h.option !== option) {
    throw protocolError(`server answered ${optName(h.option)} while ${optName(option)} was asked`);
  }
  if (h.length > NBD_MAX_OPTION_LENGTH) {
    throw protocolError(`${repName(h.type)} reply of ${h.length} bytes exceeds ${NBD_MAX_OPTION_LENGTH}`);
  }
  return { type: h.type, data: await r.read(h.length) };
}

function errorText(reply: OptionReply): string {
  // Keep printable text only: the message ends up in logs.
  return [...reply.data.toString('utf8')].map((ch) => (ch.charCodeAt(0) < 0x20 ? ' ' : ch)).join('').trim();
}

function send(sock: Socket, option: number, data?: Buffer): void {
  sock.write(encodeOptionRequest(option, data));
}

/** Greeting and client flags; returns the server's handshake flags. */
export async function greet(r: HandshakeReader, sock: Socket): Promise<number> {
  const g = await r.read(GREETING_LENGTH);
  const { handshakeFlags } = decode(() => decodeGreeting(g));
  let flags = 0;
  if (handshakeFlags & NbdHandshakeFlag.FIXED_NEWSTYLE) flags |= NbdClientFlag.C_FIXED_NEWSTYLE;
  if (handshakeFlags & NbdHandshakeFlag.NO_ZEROES) flags |= NbdClientFlag.C_NO_ZEROES;
  sock.write(encodeClientFlags(flags));
  return handshakeFlags;
}

function safeSize(size: bigint): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError(`export size ${size} exceeds 2^53-1`);
  return Number(size);
}

function defaultBlockSize(): BlockSizeConstraints {
  return { minimum: 1, preferred: 4096, maximum: DEFAULT_MAX_BLOCK };
}

/** Checks proto.md "Block size constraints": powers of two, min <= pref <= max. */
function checkBlockSize(b: BlockSizeConstraints): BlockSizeConstraints {
  const pow2 = (v: number): boolean => v > 0 && (v & (v - 1)) === 0;
  if (!pow2(b.minimum) || b.minimum > 65536 || !pow2(b.preferred) || b.preferred < b.minimum || b.maximum < b.preferred) {
    throw protocolError(`invalid block size constraints ${b.minimum}/${b.preferred}/${b.maximum}`);
  }
  // A maximum that is not a multiple of the minimum is allowed only as 0xffffffff; use what fits.
  const maximum = Math.min(b.maximum, 0xffffffff) - (Math.min(b.maximum, 0xffffffff) % b.minimum);
  return { minimum: b.minimum, preferred: b.preferred, maximum };
}

/**
 * INFO or GO: collects NBD_REP_INFO replies until ACK. An error reply throws
 * ERR_NBD_OPTION_REFUSED (ERR_UNSUP included: GO's caller falls back).
 */
async function infoOrGo(r: HandshakeReader, sock: Socket, option: number, exportName: string): Promise<NbdExportInfo> {
  send(sock, option, encodeInfoRequest({ exportName, infos: [NbdInfo.BLOCK_SIZE, NbdInfo.DESCRIPTION] }));
  let base: { size: number; transmissionFlags: number } | undefined;
  let description: string | undefined;
  let blockSize: BlockSizeConstraints | undefined;
  for (;;) {
    const reply = await optionReply(r, option);
    if (isRepError(reply.type)) throw optionRefused(option, optName(option), reply.type, errorText(reply));
    if (reply.type === NbdRep.ACK) break;
    if (reply.type !== NbdRep.INFO) throw protocolError(`unexpected ${repName(reply.type)} reply to ${optName(option)}`);
    const info = decode(() => decodeInfoReply(reply.data));
    switch (info.info) {
      case NbdInfo.EXPORT:
        base = { size: safeSize(info.size), transmissionFlags: info.transmissionFlags };
        break;
      case NbdInfo.DESCRIPTION:
        description = info.description;
        break;
      case NbdInfo.BLOCK_SIZE:
        blockSize = checkBlockSize(info);
        break;
      default:
        // NBD_INFO_NAME and types we do not know: clients MUST ignore them.
        break;
    }
  }
  if (base === undefined) throw protocolError(`${optName(option)} ended without NBD_INFO_EXPORT`);
  return {
    name: exportName,
    description,
    size: base.size,
    transmissionFlags: base.transmissionFlags,
    blockSize: blockSize ?? defaultBlockSize(),
    blockSizeAdvertised: blockSize !== undefined,
  };
}

/** The pre-GO way in: EXPORT_NAME has no error reply; a refusal closes the connection. */
async function exportName(r: HandshakeReader, sock: Socket, name: string, handshakeFlags: number): Promise<NbdExportInfo> {
  send(sock, NbdOpt.EXPORT_NAME, encodeExportNameData(name));
  let reply: Buffer;
  try {
    reply = await r.read(EXPORT_NAME_REPLY_LENGTH);
  } catch (e) {
    if (e instanceof NbdClientError && e.code === 'ERR_NBD_DISCONNECTED') {
      throw new NbdClientError('ERR_NBD_OPTION_REFUSED', `server closed the connection on NBD_OPT_EXPORT_NAME "${name}"`, {
        option: NbdOpt.EXPORT_NAME,
        cause: e,
      });
    }
    throw e;
  }
  const { size, transmissionFlags } = decode(() => decodeExportNameReply(reply));
  if ((handshakeFlags & NbdHandshakeFlag.NO_ZEROES) === 0) await r.read(EXPORT_NAME_REPLY_ZEROES);
  return {
    name,
    description: undefined,
    size: safeSize(size),
    transmissionFlags,
    blockSize: defaultBlockSize(),
    blockSizeAdvertised: false,
  };
}

/** STRUCTURED_REPLY: true when acknowledged; an error reply means "not offered". */
async function structuredReply(r: HandshakeReader, sock: Socket): Promise<boolean> {
  send(sock, NbdOpt.STRUCTURED_REPLY);
  const reply = await optionReply(r, NbdOpt.STRUCTURED_REPLY);
  if (reply.type === NbdRep.ACK) return true;
  if (isRepError(reply.type)) return false;
  throw protocolError(`unexpected ${repName(reply.type)} reply to NBD_OPT_STRUCTURED_REPLY`);
}

/** SET_META_CONTEXT: the contexts the server selected (possibly none). */
async function setMetaContext(r: HandshakeReader, sock: Socket, name: string, queries: readonly string[]): Promise<Map<string, number>> {
  send(sock, NbdOpt.SET_META_CONTEXT, encodeMetaContextRequest({ exportName: name, queries: [...queries] }));
  const out = new Map<string, number>();
  for (;;) {
    const reply = await optionReply(r, NbdOpt.SET_META_CONTEXT);
    if (reply.type === NbdRep.ACK) return out;
    if (isRepError(reply.type)) {
      // Not fatal: we go on without block status. An unknown export is caught by GO itself.
      return new Map();
    }
    if (reply.type !== NbdRep.META_CONTEXT) throw protocolError(`unexpected ${repName(reply.type)} reply to NBD_OPT_SET_META_CONTEXT`);
    const m = decode(() => decodeMetaContextReply(reply.data));
    out.set(m.name, m.contextId);
  }
}

/** Full negotiation up to the transmission phase. */
export async function negotiate(r: HandshakeReader, sock: Socket, opts: NegotiateOptions): Promise<Negotiated> {
  const handshakeFlags = await greet(r, sock);
  if ((handshakeFlags & NbdHandshakeFlag.FIXED_NEWSTYLE) === 0) {
    // Plain newstyle: EXPORT_NAME is the only safe option (proto.md).
    const exp = await exportName(r, sock, opts.exportName, handshakeFlags);
    return { export: exp, handshakeFlags, structuredReplies: false, metaContexts: new Map(), via: 'export-name' };
  }
  const structured = opts.structuredReplies !== false && (await structuredReply(r, sock));
  const queries = opts.metaContexts ?? [BASE_ALLOCATION];
  const metaContexts = structured && queries.length > 0 ? await setMetaContext(r, sock, opts.exportName, queries) : new Map<string, number>();
  try {
    const exp = await infoOrGo(r, sock, NbdOpt.GO, opts.exportName);
    return { export: exp, handshakeFlags, structuredReplies: structured, metaContexts, via: 'go' };
  } catch (e) {
    if (!(e instanceof NbdClientError) || e.replyType !== NbdRep.ERR_UNSUP) throw e;
  }
  // A server without GO: options negotiated so far stay in force (proto.md).
  const exp = await exportName(r, sock, opts.exportName, handshakeFlags);
  return { export: exp, handshakeFlags, structuredReplies: structured, metaContexts, via: 'export-name' };
}

/** End option haggling politely: ABORT, and wait briefly for its ACK (servers may just close). */
export async function abortHandshake(r: HandshakeReader, sock: Socket): Promise<void> {
  send(sock, NbdOpt.ABORT);
  await optionReply(r, NbdOpt.ABORT).catch(() => undefined);
}

/** NBD_OPT_LIST: every export the server lists, with its description. */
export async function listExports(r: HandshakeReader, sock: Socket): Promise<ExportListEntry[]> {
  const handshakeFlags = await greet(r, sock);
  if ((handshakeFlags & NbdHandshakeFlag.FIXED_NEWSTYLE) === 0) {
    throw new NbdClientError('ERR_NBD_UNSUPPORTED', 'the server does not speak fixed newstyle, so it cannot list exports');
  }
  send(sock, NbdOpt.LIST);
  const out: ExportListEntry[] = [];
  for (;;) {
    const reply = await optionReply(r, NbdOpt.LIST);
    if (reply.type === NbdRep.ACK) break;
    if (isRepError(reply.type)) throw optionRefused(NbdOpt.LIST, 'NBD_OPT_LIST', reply.type, errorText(reply));
    if (reply.type !== NbdRep.SERVER) throw protocolError(`unexpected ${repName(reply.type)} reply to NBD_OPT_LIST`);
    out.push(decode(() => decodeServerReply(reply.data)));
  }
  await abortHandshake(r, sock);
  return out;
}

/** NBD_OPT_INFO: what GO would attach to, without attaching. */
export async function queryExport(r: HandshakeReader, sock: Socket, name: string): Promise<NbdExportInfo> {
  const handshakeFlags = await greet(r, sock);
  if ((handshakeFlags & NbdHandshakeFlag.FIXED_NEWSTYLE) === 0) {
    throw new NbdClientError('ERR_NBD_UNSUPPORTED', 'the server does not speak fixed newstyle, so it cannot answer NBD_OPT_INFO');
  }
  const info = await infoOrGo(r, sock, NbdOpt.INFO, name);
  await abortHandshake(r, sock);
  return info;
}
