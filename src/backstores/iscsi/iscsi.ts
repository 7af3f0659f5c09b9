// The iscsi backstore: a LUN of a remote iSCSI target as a BackstoreOps, on
// lunkit's own initiator (src/initiator). The daemon serves it like any other
// backstore (behind the iSCSI target, the NBD server, FUSE), and
// `lunkit attach iscsi://...` serves it through the FUSE fabric.
// READ(16)/WRITE(16)/SYNCHRONIZE CACHE(16)/UNMAP go to the remote LUN; size
// and block size come from READ CAPACITY(16), write protection and FUA
// support from the MODE SENSE(6) header, thin provisioning from READ
// CAPACITY(16) LBPME plus VPD B2h LBPU (declared once, STYLE.md §3).
//
// Any number of commands may be in flight: the session keeps a CmdSN window
// and queues what does not fit; FUSE and NBD send requests concurrently.
//
// The remote's outcome becomes the backstore's failure through the core's
// one map (core/errno.ts): remote sense -> reasonForSense -> a
// BackstoreIoError carrying that reason, so the local LUN reports the same
// sense and NBD/FUSE the errno of that reason. One retry policy
// (withRetries), for outcomes that say "send it again" rather than "failed":
// the remote's UNIT ATTENTION (the remote's condition, not the local
// client's business), and BUSY / TASK SET FULL with back-off (SAM-5 §5.3.1;
// the backstore contract cannot hand a BUSY status up to the core).

import type { BackstoreCaps, BackstoreOps } from '../../core/types.js';
import { BackstoreIoError, errnoCodeOf, reasonForSense, type BackstoreOp } from '../../core/errno.js';
import type { SenseReason } from '../../core/sense-reasons.js';
import { LunkitError } from '../../protocols/errors.js';
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
  type ChapEnv,
  type IscsiSession,
  type OpenUrlOptions,
  type RecoveryEvent,
  type ScsiExecutor,
  type ScsiReply,
  type SenseData,
} from '../../initiator/index.js';
import { redactIscsiUrl } from './redact.js';
import type { InitiatorSessionInfo } from './session-info.js';

/** CHAP credentials (RFC 7143 §12.1.3). */
export interface IscsiChap {
  userid: string;
  password: string;
}

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
  /** One-way CHAP (what we prove to the target), unless the URL names a user. */
  chap?: IscsiChap;
  /** Mutual CHAP (what the target must prove to us); needs one-way CHAP. */
  mutualChap?: IscsiChap;
  /**
   * Never read LIBISCSI_CHAP_* from the process environment (the daemon: its
   * credentials come from the configuration only). Given chap or mutualChap,
   * the environment is not read either.
   */
  ignoreEnvironment?: boolean;
  /** Fail unless the remote LUN has this block size. */
  blockSize?: 512 | 4096;
  /** Extra session options (initiator name, digests, timeouts). */
  session?: Partial<OpenUrlOptions>;
}

const UA_RETRIES = 6;
const BUSY_RETRIES = 40;
/** Largest single READ/WRITE when the remote gives no limit (VPD B0h MAXIMUM TRANSFER LENGTH = 0). */
const DEFAULT_MAX_TRANSFER = 1 << 20;

/** A failure that names its reason, so the core reports exactly that sense (core/errno.ts). */
function ioError(reason: SenseReason, op: BackstoreOp, message: string, cause?: unknown): BackstoreIoError {
  return new BackstoreIoError(errnoCodeOf(reason, op), message, reason, cause === undefined ? undefined : { cause });
}

/**
 * The remote's non-GOOD outcome as the backstore's failure. CHECK CONDITION
 * with sense: the reason of our table for those codes (reasonForSense), so
 * DATA PROTECT 27/07 stays SPACE ALLOCATION FAILED, MEDIUM ERROR 11/00 an
 * UNRECOVERED READ ERROR, and so on. Without sense there is no remote reason
 * to repeat:
 *   RESERVATION CONFLICT  -> WRITE PROTECTED (DATA PROTECT: the remote refuses
 *                            this initiator; the local LUN has no reservation)
 *   anything else         -> LOGICAL UNIT COMMUNICATION FAILURE
 */
export function remoteOutcome(op: BackstoreOp, status: number, sense: SenseData | undefined): BackstoreIoError {
  if (status === ScsiStatus.RESERVATION_CONFLICT) return ioError('WRITE_PROTECTED', op, `remote ${op} failed: RESERVATION CONFLICT`);
  if (status === ScsiStatus.CHECK_CONDITION && sense) {
    return ioError(reasonForSense(sense.key, sense.asc, sense.ascq, op), op, `remote ${op} failed: ${formatSense(sense)}`);
  }
  return ioError('LOGICAL_UNIT_COMMUNICATION_FAILURE', op, `remote ${op} failed: status 0x${status.toString(16)}`);
}

/** A transport failure (connection lost beyond recovery, session closed, timeout). */
function transportFailure(op: BackstoreOp, err: unknown): BackstoreIoError {
  const msg = err instanceof Error ? err.message : String(err);
  return ioError('LOGICAL_UNIT_COMMUNICATION_FAILURE', op, `remote ${op} failed: ${msg}`, err);
}

const hostPort = (host: string, port: number | undefined): string => `${host.includes(':') ? `[${host}]` : host}:${port ?? '?'}`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The module's one retry policy. Runs one command and resends it while the
 * remote says "again": UNIT ATTENTION (reported once per nexus, SAM-5
 * §5.14), BUSY and TASK SET FULL (back off, SAM-5 §5.3.1). Resolves with the
 * last reply, GOOD or not; a transport failure rejects.
 */
async function retrying<T>(op: BackstoreOp, run: () => Promise<ScsiReply<T>>): Promise<ScsiReply<T>> {
  let ua = 0;
  let busy = 0;
  for (;;) {
    let r: ScsiReply<T>;
    try {
      r = await run();
    } catch (err) {
      // A request refused before it was sent (partial blocks, a value out of range) is no transport failure.
      if (err instanceof RangeError || isIscsiInitiatorError(err, 'ERR_ISCSI_INVALID_ARGUMENT')) throw err;
      throw transportFailure(op, err);
    }
    if (r.ok) return r;
    if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === 0x06 && ua++ < UA_RETRIES) continue;
    if ((r.status === ScsiStatus.BUSY || r.status === ScsiStatus.TASK_SET_FULL) && busy++ < BUSY_RETRIES) {
      await sleep(Math.min(200, 5 << Math.min(busy, 6)));
      continue;
    }
    return r;
  }
}

/** retrying(), then the GOOD reply's value or the remote's outcome as a failure. */
async function withRetries<T>(op: BackstoreOp, run: () => Promise<ScsiReply<T>>): Promise<T> {
  const r = await retrying(op, run);
  if (r.ok) return r.value;
  throw remoteOutcome(op, r.status, r.sense);
}

/** Header byte 2 of MODE SENSE(6) parameter data: WP (bit 7), DPOFUA (bit 4) (SBC-3 §6.4.2). */
async function modeSenseFlags(s: ScsiExecutor, lun: number): Promise<{ writeProtected: boolean; dpoFua: boolean }> {
  const cdb = Buffer.from([0x1a, 0x08, 0x3f, 0x00, 0xff, 0x00]);
  const r = await retrying('read', async (): Promise<ScsiReply<Buffer>> => {
    const res = await s.execute({ lun, cdb, dataIn: 255 });
    return res.status === ScsiStatus.GOOD ? { ok: true, status: 0, value: res.data, result: res } : { ok: false, status: res.status, sense: res.sense, result: res };
  });
  if (!r.ok || r.value.length < 4) return { writeProtected: false, dpoFua: false };
  return { writeProtected: (r.value[2] & 0x80) !== 0, dpoFua: (r.value[2] & 0x10) !== 0 };
}

/** The credentials as the initiator takes them: LIBISCSI_CHAP_* values (the URL's own still win). */
function chapEnv(opts: IscsiBackstoreOptions): ChapEnv | undefined {
  if (!opts.chap && !opts.mutualChap && !opts.ignoreEnvironment) return undefined;
  const env: ChapEnv = {};
  if (opts.chap) Object.assign(env, { LIBISCSI_CHAP_USERNAME: opts.chap.userid, LIBISCSI_CHAP_PASSWORD: opts.chap.password });
  if (opts.mutualChap) Object.assign(env, { LIBISCSI_CHAP_TARGET_USERNAME: opts.mutualChap.userid, LIBISCSI_CHAP_TARGET_PASSWORD: opts.mutualChap.password });
  return env;
}

export class IscsiBackstore implements BackstoreOps {
  readonly kind = 'iscsi';
  readonly caps: BackstoreCaps;
  /** Present when caps.canUnmap (writable, VPD B2h LBPU, a MAXIMUM UNMAP LBA COUNT). */
  declare readonly unmap?: (offset: number, length: number) => Promise<void>;
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
    // No writeZeroes or extents: WRITE SAME and GET LBA STATUS are not sent to the remote.
    if (caps.canUnmap) (this as { unmap?: BackstoreOps['unmap'] }).unmap = (offset, length) => this.deallocate(offset, length);
  }

  /** Log in, size the LUN and read its capabilities. */
  static async open(opts: IscsiBackstoreOptions): Promise<IscsiBackstore> {
    const sessionOpts: OpenUrlOptions = { ...opts.session };
    if (opts.connections !== undefined) sessionOpts.connections = opts.connections;
    if (opts.errorRecoveryLevel !== undefined) sessionOpts.errorRecoveryLevel = opts.errorRecoveryLevel;
    const env = chapEnv(opts);
    if (env) sessionOpts.env = env;
    if (opts.mutualChap) sessionOpts.targetChap = { user: opts.mutualChap.userid, password: opts.mutualChap.password };
    // The holder outlives connection losses: reinstate the session (the initiator's ERL 0 recovery).
    sessionOpts.reinstateAttempts ??= 5;
    // DefaultTime2Wait is negotiated as the larger offer (RFC 7143 §13.15): offering 0 leaves the
    // wait before a connection recovery or reinstatement to the target, instead of 2 s on every loss.
    sessionOpts.defaultTime2Wait ??= 0;
    let opened: Awaited<ReturnType<typeof openUrl>>;
    try {
      opened = await openUrl(opts.url, sessionOpts);
    } catch (err) {
      const code = isIscsiInitiatorError(err) ? err.code : 'ERR_ISCSI_CONNECT';
      throw new LunkitError(code, `cannot log in to ${redactIscsiUrl(opts.url)}: ${(err as Error).message}${isIscsiInitiatorError(err) ? ` (${err.code})` : ''}`, { cause: err });
    }
    const { session, lun, url } = opened;
    try {
      const cap = await withRetries('read', () => readCapacity16(session, lun));
      if (cap.blockSize !== 512 && cap.blockSize !== 4096) {
        throw new LunkitError('EINVAL', `the remote LUN has ${cap.blockSize}-byte blocks; only 512 and 4096 are supported`);
      }
      const size = Number(cap.blocks) * cap.blockSize;
      if (opts.blockSize !== undefined && cap.blockSize !== opts.blockSize) {
        throw new LunkitError('EINVAL', `the remote LUN has ${cap.blockSize}-byte blocks, not the ${opts.blockSize} configured`);
      }
      if (!Number.isSafeInteger(size) || size <= 0) throw new LunkitError('EINVAL', `the remote LUN's size (${cap.blocks} blocks) is out of range`);
      const flags = await modeSenseFlags(session, lun).catch(() => ({ writeProtected: false, dpoFua: false }));
      const pages = await retrying('read', () => supportedVpdPages(session, lun)).catch(() => undefined);
      const vpds = pages?.ok ? pages.value : [];
      let maxTransfer = DEFAULT_MAX_TRANSFER;
      let maxUnmapBlocks = 0;
      if (vpds.includes(0xb0)) {
        const bl = await retrying('read', () => blockLimits(session, lun)).catch(() => undefined);
        if (bl?.ok) {
          if (bl.value.maxTransferLength > 0) maxTransfer = Math.min(maxTransfer * 8, bl.value.maxTransferLength * cap.blockSize);
          maxUnmapBlocks = bl.value.maxUnmapLbaCount;
        }
      }
      // SBC-3 §6.6.4: LBPU in VPD B2h says UNMAP is supported; LBPME (READ CAPACITY 16) that the LU is thin.
      let lbpu = false;
      if (cap.thin && vpds.includes(0xb2)) {
        const lbp = await retrying('read', () => inquiryVpd(session, lun, 0xb2)).catch(() => undefined);
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
        // One session: SYNCHRONIZE CACHE acts on the remote LU's cache, so it
        // covers every write this backstore sent, over any of its connections
        // (MC/S) and across reinstatements, whichever local nexus asked.
        canMultiConn: true,
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
      if (data.length < len) throw ioError('MEDIUM_ERROR_READ', 'read', `remote read returned ${data.length} of ${len} bytes`);
      // The initiator reads into `into`; copy only if it handed back another buffer.
      if (data.buffer !== into.buffer || data.byteOffset !== into.byteOffset) data.copy(into, 0, 0, len);
    });
  }

  write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    if (!this.caps.canWrite) return Promise.reject(ioError('WRITE_PROTECTED', 'write', 'the remote LUN is attached read-only'));
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
      if (err instanceof BackstoreIoError && err.senseReason === 'INVALID_OPCODE') {
        this.flushSupported = false;
        return;
      }
      throw err;
    }
  }

  /** Behind `unmap`. */
  private async deallocate(offset: number, length: number): Promise<void> {
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
