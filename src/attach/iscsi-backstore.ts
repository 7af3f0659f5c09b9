// A LUN of a remote iSCSI target as a BackstoreOps, on lunkit's own
// initiator (src/initiator): what `lunkit attach iscsi://...` serves through
// the FUSE fabric. READ(16)/WRITE(16)/SYNCHRONIZE CACHE(16)/UNMAP go to the
// remote LUN; size and block size come from READ CAPACITY(16), write
// protection and FUA support from the MODE SENSE(6) header, thin provisioning
// from READ CAPACITY(16) LBPME plus VPD B2h LBPU (declared once, STYLE.md §3).
//
// Any number of commands may be in flight: the session keeps a CmdSN window
// and queues what does not fit; FUSE sends requests concurrently.
//
// The remote's outcome becomes the backstore's failure: the core maps Node
// error codes to sense (core/errno.ts), so a remote sense is
// turned into the code that maps back to the nearest local reason (table in
// remoteFailure below). Transient conditions are retried here: UNIT
// ATTENTION (the remote's, not the local client's business), BUSY and TASK
// SET FULL (SAM-5 §5.3.1).

import type { BackstoreCaps, BackstoreOps } from '../core/types.js';
import {
  ScsiStatus,
  blockLimits,
  isIscsiInitiatorError,
  openUrl,
  read16,
  readCapacity16,
  supportedVpdPages,
  synchronizeCache16,
  inquiryVpd,
  unmap,
  write16,
  formatSense,
  type IscsiSession,
  type OpenUrlOptions,
  type RecoveryEvent,
  type ScsiExecutor,
  type ScsiReply,
  type ScsiResult,
  type SenseData,
} from '../initiator/index.js';
import { AttachError } from './errors.js';
import { redactIscsiUrl } from './redact.js';
import type { InitiatorSessionInfo } from './state.js';

export interface IscsiBackstoreOptions {
  /** iscsi://[user[%password]@]host[:port]/target-iqn/lun */
  url: string;
  name?: string;
  /** Serve read-only even when the remote LUN is writable. */
  readOnly?: boolean;
  /** MC/S: connections per session (the initiator's `connections`). */
  connections?: number;
  /** ErrorRecoveryLevel to ask for (0, 1 or 2). */
  errorRecoveryLevel?: number;
  /** Extra session options (initiator name, digests, timeouts). */
  session?: Partial<OpenUrlOptions>;
}

const UA_RETRIES = 6;
const BUSY_RETRIES = 40;
/** Largest single READ/WRITE when the remote gives no limit (VPD B0h MAXIMUM TRANSFER LENGTH = 0). */
const DEFAULT_MAX_TRANSFER = 1 << 20;

type Op = 'read' | 'write' | 'flush' | 'unmap' | 'open';

/** A Node-style error the core maps to sense; the remote sense rides along for logs. */
export interface RemoteFailure extends Error {
  code: string;
  remoteStatus?: number;
  remoteSense?: { key: number; asc: number; ascq: number };
}

function failure(code: string, message: string, extra: { status?: number; sense?: SenseData | undefined; cause?: unknown } = {}): RemoteFailure {
  const e = new Error(message, { cause: extra.cause }) as RemoteFailure;
  e.code = code;
  if (extra.status !== undefined) e.remoteStatus = extra.status;
  if (extra.sense) e.remoteSense = { key: extra.sense.key, asc: extra.sense.asc, ascq: extra.sense.ascq };
  return e;
}

/**
 * The remote's non-GOOD outcome as the error whose code the core maps back
 * to the closest reason (core/errno.ts errnoToSense):
 *   RESERVATION CONFLICT          -> EACCES (local DATA PROTECT; the core has no
 *                                    error code for a conflict, see docs/fuse.md)
 *   DATA PROTECT 27/07            -> ENOSPC (SPACE ALLOCATION FAILED)
 *   other DATA PROTECT            -> EROFS  (WRITE PROTECTED)
 *   MEDIUM ERROR, NOT READY,
 *   ABORTED COMMAND, transport    -> EIO    (MEDIUM ERROR on the local LUN)
 *   ILLEGAL REQUEST, HARDWARE
 *   ERROR, anything else          -> EREMOTEIO (INTERNAL TARGET FAILURE)
 */
export function remoteFailure(op: Op, status: number, sense: SenseData | undefined): RemoteFailure {
  const what = `remote ${op} failed: ${status === ScsiStatus.CHECK_CONDITION && sense ? formatSense(sense) : `status 0x${status.toString(16)}`}`;
  if (status === ScsiStatus.RESERVATION_CONFLICT) return failure('EACCES', `remote ${op} failed: RESERVATION CONFLICT`, { status });
  if (status !== ScsiStatus.CHECK_CONDITION || sense === undefined) return failure('EIO', what, { status, sense });
  switch (sense.key) {
    case 0x07:
      return failure(sense.asc === 0x27 && sense.ascq === 0x07 ? 'ENOSPC' : 'EROFS', what, { status, sense });
    case 0x02:
    case 0x03:
    case 0x0b:
      return failure('EIO', what, { status, sense });
    default:
      return failure('EREMOTEIO', what, { status, sense });
  }
}

/** A transport failure (connection lost, session closed, timeout) as EIO. */
function transportFailure(op: Op, err: unknown): RemoteFailure {
  const msg = err instanceof Error ? err.message : String(err);
  return failure('EIO', `remote ${op} failed: ${msg}`, { cause: err });
}

const hostPort = (host: string, port: number | undefined): string => `${host.includes(':') ? `[${host}]` : host}:${port ?? '?'}`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one command with the retries SAM-5 allows the application client:
 * UNIT ATTENTION (the condition is reported once per nexus), BUSY and TASK
 * SET FULL (back off and resend). Resolves with the GOOD reply's value.
 */
async function withRetries<T>(op: Op, run: () => Promise<ScsiReply<T>>): Promise<T> {
  let ua = 0;
  let busy = 0;
  for (;;) {
    let r: ScsiReply<T>;
    try {
      r = await run();
    } catch (err) {
      if (err instanceof RangeError) throw err;
      throw transportFailure(op, err);
    }
    if (r.ok) return r.value;
    if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === 0x06 && ua++ < UA_RETRIES) continue;
    if ((r.status === ScsiStatus.BUSY || r.status === ScsiStatus.TASK_SET_FULL) && busy++ < BUSY_RETRIES) {
      await sleep(Math.min(200, 5 << Math.min(busy, 6)));
      continue;
    }
    throw remoteFailure(op, r.status, r.sense);
  }
}

/** Header byte 2 of MODE SENSE(6) parameter data: WP (bit 7), DPOFUA (bit 4) (SBC-3 §6.4.2). */
async function modeSenseFlags(s: ScsiExecutor, lun: number): Promise<{ writeProtected: boolean; dpoFua: boolean }> {
  const cdb = Buffer.from([0x1a, 0x08, 0x3f, 0x00, 0xff, 0x00]);
  const r: ScsiResult = await s.execute({ lun, cdb, dataIn: 255 });
  if (r.status !== ScsiStatus.GOOD || r.data.length < 4) return { writeProtected: false, dpoFua: false };
  return { writeProtected: (r.data[2] & 0x80) !== 0, dpoFua: (r.data[2] & 0x10) !== 0 };
}

export class IscsiBackstore implements BackstoreOps {
  readonly kind = 'iscsi';
  readonly caps: BackstoreCaps;
  private flushSupported = true;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    readonly size: number,
    readonly blockSize: 512 | 4096,
    readonly session: IscsiSession,
    readonly lun: number,
    readonly target: string,
    readonly portal: string,
    caps: BackstoreCaps,
    /** Largest transfer in bytes per READ/WRITE. */
    private readonly maxTransfer: number,
    /** Largest UNMAP range in blocks (VPD B0h MAXIMUM UNMAP LBA COUNT). */
    private readonly maxUnmapBlocks: number,
  ) {
    this.caps = Object.freeze(caps);
  }

  /** Log in, size the LUN and read its capabilities. */
  static async open(opts: IscsiBackstoreOptions): Promise<IscsiBackstore> {
    const sessionOpts: OpenUrlOptions = { ...opts.session };
    if (opts.connections !== undefined) sessionOpts.connections = opts.connections;
    if (opts.errorRecoveryLevel !== undefined) sessionOpts.errorRecoveryLevel = opts.errorRecoveryLevel;
    // The holder outlives connection losses: reinstate the session (the initiator's ERL 0 recovery).
    sessionOpts.reinstateAttempts ??= 5;
    // DefaultTime2Wait is negotiated as the larger offer (RFC 7143 §13.15): offering 0 leaves the
    // wait before a connection recovery or reinstatement to the target, instead of 2 s on every loss.
    sessionOpts.defaultTime2Wait ??= 0;
    let opened: Awaited<ReturnType<typeof openUrl>>;
    try {
      opened = await openUrl(opts.url, sessionOpts);
    } catch (err) {
      const code = isIscsiInitiatorError(err) ? ` (${err.code})` : '';
      throw new AttachError('ERR_ATTACH_START', `cannot log in to ${redactIscsiUrl(opts.url)}: ${(err as Error).message}${code}`, { cause: err });
    }
    const { session, lun, url } = opened;
    try {
      const cap = await withRetries('open', () => readCapacity16(session, lun));
      if (cap.blockSize !== 512 && cap.blockSize !== 4096) {
        throw new AttachError('ERR_ATTACH_SOURCE', `the remote LUN has ${cap.blockSize}-byte blocks; only 512 and 4096 are supported`);
      }
      const size = Number(cap.blocks) * cap.blockSize;
      if (!Number.isSafeInteger(size) || size <= 0) throw new AttachError('ERR_ATTACH_SOURCE', `the remote LUN's size (${cap.blocks} blocks) is out of range`);
      const flags = await modeSenseFlags(session, lun).catch(() => ({ writeProtected: false, dpoFua: false }));
      const pages = await supportedVpdPages(session, lun).catch(() => undefined);
      const vpds = pages?.ok ? pages.value : [];
      let maxTransfer = DEFAULT_MAX_TRANSFER;
      let maxUnmapBlocks = 0;
      if (vpds.includes(0xb0)) {
        const bl = await blockLimits(session, lun).catch(() => undefined);
        if (bl?.ok) {
          if (bl.value.maxTransferLength > 0) maxTransfer = Math.min(maxTransfer * 8, bl.value.maxTransferLength * cap.blockSize);
          maxUnmapBlocks = bl.value.maxUnmapLbaCount;
        }
      }
      // SBC-3 §6.6.4: LBPU in VPD B2h says UNMAP is supported; LBPME (READ CAPACITY 16) that the LU is thin.
      let lbpu = false;
      if (cap.thin && vpds.includes(0xb2)) {
        const lbp = await inquiryVpd(session, lun, 0xb2).catch(() => undefined);
        lbpu = lbp?.ok === true && lbp.value.length > 5 && (lbp.value[5] & 0x80) !== 0;
      }
      const canWrite = !flags.writeProtected && !(opts.readOnly ?? false);
      const canUnmap = canWrite && lbpu && maxUnmapBlocks > 0;
      const caps: BackstoreCaps = {
        canWrite,
        canFlush: true,
        canFua: canWrite && flags.dpoFua,
        canUnmap,
        canWriteZeroes: false,
        canExtents: false,
        unmapReadsZero: canUnmap && cap.unmapReadsZero,
        thin: canUnmap,
        rotationRate: 0,
      };
      const name = opts.name ?? `${url.target ?? 'iscsi'}/${lun}`;
      const portal = url.host.includes(':') ? `[${url.host}]:${url.port}` : `${url.host}:${url.port}`;
      return new IscsiBackstore(name, size, cap.blockSize, session, lun, url.target ?? '', portal, caps, maxTransfer, maxUnmapBlocks);
    } catch (err) {
      await session.logout(2000).catch(() => session.destroy());
      throw err;
    }
  }

  /** Splits [offset, offset+length) into pieces of at most maxTransfer bytes and runs them together. */
  private async chunked(offset: number, length: number, fn: (off: number, len: number, at: number) => Promise<void>): Promise<void> {
    if (length <= this.maxTransfer) return fn(offset, length, 0);
    const parts: Array<Promise<void>> = [];
    for (let at = 0; at < length; at += this.maxTransfer) parts.push(fn(offset + at, Math.min(this.maxTransfer, length - at), at));
    await Promise.all(parts);
  }

  read(buf: Buffer, offset: number): Promise<void> {
    const bs = this.blockSize;
    return this.chunked(offset, buf.length, async (off, len, at) => {
      const into = buf.subarray(at, at + len);
      const data = await withRetries('read', () => read16(this.session, this.lun, off / bs, len / bs, { blockSize: bs, into }));
      if (data.length < len) throw failure('EIO', `remote read returned ${data.length} of ${len} bytes`);
      // The initiator reads into `into`; copy only if it handed back another buffer.
      if (data.buffer !== into.buffer || data.byteOffset !== into.byteOffset) data.copy(into, 0, 0, len);
    });
  }

  write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    if (!this.caps.canWrite) return Promise.reject(failure('EROFS', 'the remote LUN is attached read-only'));
    const bs = this.blockSize;
    const fua = (opts?.fua ?? false) && this.caps.canFua;
    return this.chunked(offset, buf.length, (off, len, at) =>
      withRetries('write', () => write16(this.session, this.lun, off / bs, buf.subarray(at, at + len), { blockSize: bs, fua })),
    );
  }

  async flush(): Promise<void> {
    if (!this.flushSupported) return;
    try {
      await withRetries('flush', () => synchronizeCache16(this.session, this.lun));
    } catch (err) {
      // A remote without SYNCHRONIZE CACHE(16) (ILLEGAL REQUEST 20/00) writes through: nothing to flush.
      const s = (err as RemoteFailure).remoteSense;
      if (s?.key === 0x05 && s.asc === 0x20) {
        this.flushSupported = false;
        return;
      }
      throw err;
    }
  }

  async unmap(offset: number, length: number): Promise<void> {
    if (!this.caps.canUnmap) throw failure('EOPNOTSUPP', 'the remote LUN cannot unmap');
    const bs = this.blockSize;
    const step = Math.min(this.maxUnmapBlocks, 0xffffffff);
    const ranges: Array<{ lba: number; blocks: number }> = [];
    for (let lba = offset / bs, left = length / bs; left > 0; ) {
      const n = Math.min(step, left);
      ranges.push({ lba, blocks: n });
      lba += n;
      left -= n;
    }
    // One descriptor per UNMAP keeps within MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (at least 1 when LBPU).
    await Promise.all(ranges.map((r) => withRetries('unmap', () => unmap(this.session, this.lun, [r]))));
  }

  /** What `lunkit sessions --initiator` shows: the session's own info() (TSIH, ISID, ERL, recovery counters, live connections). */
  sessionInfo(): InitiatorSessionInfo {
    const i = this.session.info();
    return {
      target: this.target,
      portal: this.portal,
      lun: this.lun,
      isid: i.isid,
      tsih: i.tsih,
      erl: i.errorRecoveryLevel,
      state: i.state,
      reinstatements: i.reinstatements,
      connectionRecoveries: i.connectionRecoveries,
      // A closed connection is history (replaced or logged out); a failed one is shown until recovered.
      connections: i.connections.flatMap((c) =>
        c.state === 'closed'
          ? []
          : [
              {
                cid: c.cid,
                state: c.state,
                local: c.localAddress === undefined ? undefined : hostPort(c.localAddress, c.localPort),
                remote: hostPort(c.remoteAddress, c.remotePort),
              },
            ],
      ),
      headerDigest: this.session.params.headerDigest,
      dataDigest: this.session.params.dataDigest,
      inFlight: i.inFlight,
    };
  }

  /**
   * Calls `listener` when the session may have changed what sessionInfo()
   * shows: on every 'recovery' event (a connection failed or was recovered,
   * the session was reinstated) and when the session ends. Returns the
   * unsubscribe function.
   */
  onSessionChange(listener: (event: RecoveryEvent | { kind: 'closed' }) => void): () => void {
    const onRecovery = (e: RecoveryEvent): void => listener(e);
    const onClose = (): void => listener({ kind: 'closed' });
    this.session.on('recovery', onRecovery);
    this.session.on('close', onClose);
    return () => {
      this.session.off('recovery', onRecovery);
      this.session.off('close', onClose);
    };
  }

  /** Logout (RFC 7143 §11.14: close the session), or drop it if the target does not answer. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.session.logout(5000).catch(() => this.session.destroy()));
  }
}
