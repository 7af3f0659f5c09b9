// Option haggling of the fixed newstyle handshake (proto.md "Option
// haggling"): LIST, INFO, GO, EXPORT_NAME, ABORT and STRUCTURED_REPLY. Every
// other option gets NBD_REP_ERR_UNSUP and haggling goes on. Ends in one of
// three ways: transmission on an export, a clean close (ABORT, an unknown
// EXPORT_NAME) or a broken stream.

import {
  NbdClientFlag,
  NbdInfo,
  NbdOpt,
  NbdRep,
  decodeExportNameData,
  decodeInfoRequest,
  encodeErrorMessage,
  encodeExportNameReply,
  encodeInfoReply,
  encodeOptionReply,
  encodeServerReply,
  isLunkitError,
  optName,
  type OptionFrame,
} from '../../protocols/nbd/index.js';
import { deriveTransmissionFlags } from './commands.js';
import type { LunSession } from './lun-session.js';

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
  openSession(exp: ResolvedExport): Promise<LunSession>;
  /** Haggling is over: serve this export. */
  enterTransmission(session: LunSession, exp: ResolvedExport, structuredReplies: boolean): void;
  /** Close the connection without another word. */
  end(): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

/** The export a name selects: "" is the default export when exactly one exists. */
export function findExport(all: ResolvedExport[], name: string): ResolvedExport | undefined {
  const exact = all.find((e) => e.name === name);
  if (exact || name !== '') return exact;
  return all.length === 1 ? all[0] : undefined;
}

export class Negotiation {
  private noZeroes = false;
  private structured = false;
  private done = false;

  constructor(private readonly host: NegotiationHost) {}

  onClientFlags(flags: number): void {
    this.noZeroes = (flags & NbdClientFlag.C_NO_ZEROES) !== 0;
  }

  /** Options are handled one at a time; the caller waits for the promise before the next. */
  async onOption(frame: OptionFrame): Promise<void> {
    if (this.done) return;
    const { option, data } = frame;
    this.host.debug('nbd option', { option: optName(option), length: data.length });
    try {
      switch (option) {
        case NbdOpt.ABORT:
          this.done = true;
          this.reply(option, NbdRep.ACK);
          this.host.end();
          return;
        case NbdOpt.LIST:
          if (data.length !== 0) return this.error(option, NbdRep.ERR_INVALID, 'NBD_OPT_LIST takes no data');
          for (const e of this.host.exports()) {
            this.reply(option, NbdRep.SERVER, encodeServerReply({ name: e.name, description: e.description }));
          }
          return this.reply(option, NbdRep.ACK);
        case NbdOpt.STRUCTURED_REPLY:
          if (data.length !== 0) return this.error(option, NbdRep.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          this.structured = true;
          return this.reply(option, NbdRep.ACK);
        case NbdOpt.EXPORT_NAME:
          return await this.exportName(data);
        case NbdOpt.INFO:
        case NbdOpt.GO:
          return await this.infoOrGo(option, data);
        default:
          return this.error(option, NbdRep.ERR_UNSUP, `${optName(option)} is not supported`);
      }
    } catch (e) {
      if (isLunkitError(e)) return this.error(option, NbdRep.ERR_INVALID, e.message);
      return this.error(option, NbdRep.ERR_PLATFORM, e instanceof Error ? e.message : String(e));
    }
  }

  /** Legacy export selection: no way to report an error but closing (proto.md NBD_OPT_EXPORT_NAME). */
  private async exportName(data: Buffer): Promise<void> {
    this.done = true;
    const exp = findExport(this.host.exports(), decodeExportNameData(data));
    if (!exp) return this.host.end();
    let session: LunSession;
    try {
      session = await this.host.openSession(exp);
    } catch {
      return this.host.end();
    }
    const flags = deriveTransmissionFlags(session.geometry, exp.readOnly);
    this.host.send(encodeExportNameReply(session.geometry.size, flags, this.noZeroes));
    this.host.enterTransmission(session, exp, false);
  }

  private async infoOrGo(option: number, data: Buffer): Promise<void> {
    const req = decodeInfoRequest(data);
    const exp = findExport(this.host.exports(), req.exportName);
    if (!exp) return this.error(option, NbdRep.ERR_UNKNOWN, `no export named "${req.exportName}"`);
    const session = await this.host.openSession(exp);
    const geo = session.geometry;
    this.info(option, { info: NbdInfo.EXPORT, size: geo.size, transmissionFlags: deriveTransmissionFlags(geo, exp.readOnly) });
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
    this.host.enterTransmission(session, exp, this.structured);
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
