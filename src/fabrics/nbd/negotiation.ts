// Option haggling of the fixed newstyle handshake (proto.md "Option
// haggling"): LIST, INFO, GO, EXPORT_NAME, ABORT, STRUCTURED_REPLY,
// EXTENDED_HEADERS, STARTTLS and LIST/SET_META_CONTEXT (base:allocation
// only). Every other option gets NBD_REP_ERR_UNSUP and haggling goes on. Ends
// in one of three ways: transmission on an export, a clean close (ABORT, an
// unknown EXPORT_NAME) or a broken stream.
//
// TLS modes (proto.md "TLS support"): 'off' is NOTLS (STARTTLS gets
// ERR_POLICY); 'on' is SELECTIVETLS with no TLS-only export (the client may
// upgrade, nothing forces it); 'require' is FORCEDTLS, as nbdkit --tls=require:
// before the upgrade every option but STARTTLS and ABORT gets ERR_TLS_REQD, and
// EXPORT_NAME, which cannot fail, closes the connection.
//
// Option budget (limits.maxOptions, as nbdkit's MAX_NR_OPTIONS): a client may
// send that many options, plus two per export after its first LIST (so
// `nbdinfo --list` can ask INFO and meta contexts of each one). The option
// over the budget is answered NBD_REP_ERR_POLICY with a message saying why,
// then the server hard-disconnects: proto.md "Termination of the session
// during option haggling" lets a server that sees a denial of service do so
// (otherwise it would have to keep erroring options forever).

import {
  NbdClientFlag,
  NbdInfo,
  NbdOpt,
  NbdRep,
  decodeExportNameData,
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeErrorMessage,
  encodeExportNameReply,
  encodeInfoReply,
  encodeMetaContextReply,
  encodeOptionReply,
  encodeServerReply,
  isLunkitError,
  optName,
  BASE_ALLOCATION,
  type OptionFrame,
} from '../../protocols/nbd/index.js';
import { BASE_ALLOCATION_ID, queryMatchesBaseAllocation } from './block-status.js';
import { deriveTransmissionFlags } from './transmission-flags.js';
import type { ExportNexus } from './export-nexus.js';

/** Largest READ/WRITE we accept: the core's MAXIMUM TRANSFER LENGTH and the framer's payload cap. */
export const NBD_MAX_BLOCK = 32 * 1024 * 1024;

export interface ResolvedExport {
  name: string;
  readOnly: boolean;
  description: string;
}

/** What the negotiation needs from its connection. */
export interface NegotiationHost {
  send(buf: Buffer): void;
  exports(): ResolvedExport[];
  /** Opens a nexus on the export (its geometry probed). */
  openSession(exp: ResolvedExport): Promise<ExportNexus>;
  /**
   * Haggling is over: serve this export. blockStatusContext is the id of
   * base:allocation when the client selected it for this export.
   */
  enterTransmission(session: ExportNexus, exp: ResolvedExport, mode: TransmissionMode, blockStatusContext?: number): void;
  /**
   * NBD_REP_ACK for STARTTLS has been queued: switch the connection to TLS.
   * Resolves when later options will arrive decrypted; rejects (and the
   * connection closes) if the handshake fails.
   */
  startTls(): Promise<void>;
  /** Close the connection without another word. */
  end(): void;
  /** The client went over the option budget (counted by the server). */
  tooManyOptions?(): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

/** How replies are framed in the transmission phase. */
export interface TransmissionMode {
  /** NBD_OPT_STRUCTURED_REPLY (or extended headers) was agreed. */
  structured: boolean;
  /** NBD_OPT_EXTENDED_HEADERS was agreed: 32-byte requests and replies. */
  extended: boolean;
}

export type NbdTlsMode = 'off' | 'on' | 'require';

/** The export a name selects: "" is the default export when exactly one exists. */
export function findExport(all: ResolvedExport[], name: string): ResolvedExport | undefined {
  const exact = all.find((e) => e.name === name);
  if (exact || name !== '') return exact;
  return all.length === 1 ? all[0] : undefined;
}

export class Negotiation {
  private noZeroes = false;
  private fixedNewstyle = false;
  private structured = false;
  private extended = false;
  private tlsActive = false;
  private done = false;
  private optionsSeen = 0;
  /** Extra options allowed after the first NBD_OPT_LIST (two per export). */
  private listAllowance: number | undefined;
  /** The export whose SET_META_CONTEXT selected base:allocation (proto.md: tied to that name). */
  private allocationFor: string | undefined;

  constructor(
    private readonly host: NegotiationHost,
    private readonly tlsMode: NbdTlsMode = 'off',
    /** Read at each option, so a live limit change applies at once. */
    private readonly maxOptions: () => number = () => Infinity,
  ) {}

  /** Haggling is over (transmission, ABORT, a refused EXPORT_NAME, the option budget, a failed TLS). */
  get finished(): boolean {
    return this.done;
  }

  onClientFlags(flags: number): void {
    this.noZeroes = (flags & NbdClientFlag.C_NO_ZEROES) !== 0;
    this.fixedNewstyle = (flags & NbdClientFlag.C_FIXED_NEWSTYLE) !== 0;
  }

  /** TLS is possible on this connection (configured, the client spoke fixed newstyle, not yet upgraded). */
  get tlsOffered(): boolean {
    // proto.md: NOTLS unless both sides agreed on fixed newstyle.
    return this.tlsMode !== 'off' && this.fixedNewstyle && !this.tlsActive;
  }

  /**
   * Whether this option frame will upgrade the connection to TLS if it is
   * reached: the connection must stop framing the bytes after it at once.
   */
  willStartTls(frame: OptionFrame): boolean {
    return frame.option === NbdOpt.STARTTLS && frame.data.length === 0 && this.tlsOffered && !this.done;
  }

  /** Options are handled one at a time; the caller waits for the promise before the next. */
  async onOption(frame: OptionFrame): Promise<void> {
    if (this.done) return;
    const { option, data } = frame;
    this.host.debug('nbd option', { option: optName(option), length: data.length });
    if (++this.optionsSeen > this.maxOptions() + (this.listAllowance ?? 0)) {
      this.done = true;
      this.host.tooManyOptions?.();
      // EXPORT_NAME cannot carry an error: the close says it all.
      if (option !== NbdOpt.EXPORT_NAME) {
        this.error(option, NbdRep.ERR_POLICY, `too many options (at most ${this.maxOptions()} before choosing an export): disconnecting`);
      }
      return this.host.end();
    }
    // FORCEDTLS: nothing but STARTTLS and ABORT before the upgrade.
    if (this.tlsMode === 'require' && !this.tlsActive && option !== NbdOpt.STARTTLS && option !== NbdOpt.ABORT) {
      if (option === NbdOpt.EXPORT_NAME) {
        this.done = true;
        return this.host.end();
      }
      return this.error(option, NbdRep.ERR_TLS_REQD, 'TLS is required: send NBD_OPT_STARTTLS first');
    }
    try {
      switch (option) {
        case NbdOpt.STARTTLS:
          return await this.startTls(data);
        case NbdOpt.EXTENDED_HEADERS:
          if (data.length !== 0) return this.error(option, NbdRep.ERR_INVALID, 'NBD_OPT_EXTENDED_HEADERS takes no data');
          this.extended = true;
          return this.reply(option, NbdRep.ACK);
        case NbdOpt.ABORT:
          this.done = true;
          this.reply(option, NbdRep.ACK);
          this.host.end();
          return;
        case NbdOpt.LIST: {
          if (data.length !== 0) return this.error(option, NbdRep.ERR_INVALID, 'NBD_OPT_LIST takes no data');
          const all = this.host.exports();
          this.listAllowance ??= 2 * all.length;
          for (const e of all) {
            this.reply(option, NbdRep.SERVER, encodeServerReply({ name: e.name, description: e.description }));
          }
          return this.reply(option, NbdRep.ACK);
        }
        case NbdOpt.STRUCTURED_REPLY:
          if (data.length !== 0) return this.error(option, NbdRep.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          // Extended headers cannot be downgraded (proto.md NBD_REP_ERR_EXT_HEADER_REQD).
          if (this.extended) return this.error(option, NbdRep.ERR_EXT_HEADER_REQD, 'extended headers are already in force');
          this.structured = true;
          return this.reply(option, NbdRep.ACK);
        case NbdOpt.LIST_META_CONTEXT:
        case NbdOpt.SET_META_CONTEXT:
          return this.metaContext(option, data);
        case NbdOpt.EXPORT_NAME:
          return await this.exportName(data);
        case NbdOpt.INFO:
        case NbdOpt.GO:
          return await this.infoOrGo(option, data);
        default:
          return this.error(option, NbdRep.ERR_UNSUP, `${optName(option)} is not supported`);
      }
    } catch (e) {
      // EXPORT_NAME has no error reply (and haggling is over once it is sent):
      // a name it cannot decode (over 4096 bytes) ends the connection.
      if (option === NbdOpt.EXPORT_NAME) {
        this.done = true;
        this.host.debug('nbd EXPORT_NAME refused', { err: e instanceof Error ? e.message : String(e) });
        return this.host.end();
      }
      if (isLunkitError(e)) return this.error(option, NbdRep.ERR_INVALID, e.message);
      return this.error(option, NbdRep.ERR_PLATFORM, e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * proto.md NBD_OPT_STARTTLS: no data; ERR_INVALID once TLS is up; without
   * TLS configured (or without fixed newstyle) ERR_POLICY. After the ACK no
   * earlier negotiation state survives (structured replies, extended headers,
   * meta contexts), and the rest of haggling runs over TLS.
   */
  private async startTls(data: Buffer): Promise<void> {
    const option = NbdOpt.STARTTLS;
    if (this.tlsActive) return this.error(option, NbdRep.ERR_INVALID, 'TLS is already active');
    if (this.tlsMode === 'off' || !this.fixedNewstyle) return this.error(option, NbdRep.ERR_POLICY, 'TLS is not offered by this server');
    if (data.length !== 0) return this.error(option, NbdRep.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
    this.reply(option, NbdRep.ACK);
    this.tlsActive = true;
    this.structured = false;
    this.extended = false;
    this.allocationFor = undefined;
    try {
      await this.host.startTls();
    } catch (e) {
      // Too late to go on without TLS once ACKed (proto.md "FORCEDTLS mode").
      this.done = true;
      this.host.debug('nbd TLS handshake failed', { err: e instanceof Error ? e.message : String(e) });
      this.host.end();
    }
  }

  /** Legacy export selection: no way to report an error but closing (proto.md NBD_OPT_EXPORT_NAME). */
  private async exportName(data: Buffer): Promise<void> {
    this.done = true;
    // proto.md NBD_OPT_EXTENDED_HEADERS: a client that agreed on them MUST NOT use EXPORT_NAME.
    if (this.extended) return this.host.end();
    const exp = findExport(this.host.exports(), decodeExportNameData(data));
    if (!exp) return this.host.end();
    let session: ExportNexus;
    try {
      session = await this.host.openSession(exp);
    } catch {
      return this.host.end();
    }
    const flags = deriveTransmissionFlags(session.geometry, exp.readOnly, { structuredReplies: this.structured });
    this.host.send(encodeExportNameReply(BigInt(session.geometry.size), flags, this.noZeroes));
    // Structured replies and meta contexts agreed earlier apply to EXPORT_NAME too.
    const context = this.structured && this.allocationFor === exp.name ? BASE_ALLOCATION_ID : undefined;
    this.host.enterTransmission(session, exp, { structured: this.structured, extended: false }, context);
  }

  /**
   * proto.md NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: only after
   * structured replies; an unknown export is ERR_UNKNOWN; LIST with no query
   * lists everything we have; SET replaces the previous selection (no query
   * selects nothing). Unknown namespaces are simply not answered.
   */
  private metaContext(option: number, data: Buffer): void {
    const set = option === NbdOpt.SET_META_CONTEXT;
    if (!this.structured && !this.extended) {
      return this.error(option, NbdRep.ERR_INVALID, `${optName(option)} needs structured replies first`);
    }
    const req = decodeMetaContextRequest(data);
    const exp = findExport(this.host.exports(), req.exportName);
    if (!exp) return this.error(option, NbdRep.ERR_UNKNOWN, `no export named "${req.exportName}"`);
    const wanted = (!set && req.queries.length === 0) || req.queries.some((q) => queryMatchesBaseAllocation(q, !set));
    if (set) this.allocationFor = wanted ? exp.name : undefined;
    if (wanted) this.reply(option, NbdRep.META_CONTEXT, encodeMetaContextReply(BASE_ALLOCATION_ID, BASE_ALLOCATION));
    this.reply(option, NbdRep.ACK);
  }

  private async infoOrGo(option: number, data: Buffer): Promise<void> {
    const req = decodeInfoRequest(data);
    const exp = findExport(this.host.exports(), req.exportName);
    if (!exp) return this.error(option, NbdRep.ERR_UNKNOWN, `no export named "${req.exportName}"`);
    const session = await this.host.openSession(exp);
    const geo = session.geometry;
    const structured = this.structured || this.extended;
    const transmissionFlags = deriveTransmissionFlags(geo, exp.readOnly, { structuredReplies: structured });
    this.info(option, { info: NbdInfo.EXPORT, size: BigInt(geo.size), transmissionFlags });
    if (req.infos.includes(NbdInfo.NAME)) this.info(option, { info: NbdInfo.NAME, name: exp.name });
    if (req.infos.includes(NbdInfo.DESCRIPTION) && exp.description) {
      this.info(option, { info: NbdInfo.DESCRIPTION, description: exp.description });
    }
    // Always sent: unaligned requests are refused with EINVAL, so the client must know.
    this.info(option, {
      info: NbdInfo.BLOCK_SIZE,
      minimum: geo.blockSize,
      preferred: Math.max(4096, geo.blockSize),
      maximum: NBD_MAX_BLOCK,
    });
    this.reply(option, NbdRep.ACK);
    if (option === NbdOpt.INFO) {
      session.close();
      return;
    }
    this.done = true;
    // A selection made for another export does not carry over (proto.md NBD_OPT_SET_META_CONTEXT).
    const context = structured && this.allocationFor === exp.name ? BASE_ALLOCATION_ID : undefined;
    this.host.enterTransmission(session, exp, { structured, extended: this.extended }, context);
  }

  private info(option: number, payload: Parameters<typeof encodeInfoReply>[0]): void {
    this.reply(option, NbdRep.INFO, encodeInfoReply(payload));
  }

  private reply(option: number, type: number, data?: Buffer): void {
    this.host.send(encodeOptionReply(option, type, data));
  }

  private error(option: number, type: number, message: string): void {
    this.reply(option, type, encodeErrorMessage(message));
  }
}
