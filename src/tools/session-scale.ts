// Session scale: many iSCSI sessions of one connection each, logged in back
// to back, then one command on each, then logged out. The client is the same
// for every target (bench/sessions runs it against lunkit and tgtd; a test
// runs a small slice against the daemon), so the figures compare targets,
// not clients. It speaks the protocol with lunkit's own codecs and no
// initiator state machine: a login of two requests (security stage with
// AuthMethod=None, then the operational keys and transit to full feature
// phase), as libiscsi does.

import net from 'node:net';
import { readFile } from 'node:fs/promises';
import { PduFramer } from '../protocols/iscsi/framer.js';
import { decodePdu, encodeBhs, type EncodablePdu } from '../protocols/iscsi/pdu.js';
import { encodeFrame } from '../protocols/iscsi/writer.js';
import { encodeTextKeys } from '../protocols/iscsi/text.js';
import { Opcode, type LoginRequestPdu, type LogoutRequestPdu, type Pdu, type ScsiCommandPdu } from '../protocols/iscsi/pdu-types.js';
import { LunkitError } from '../protocols/errors.js';
import { cpuSeconds } from './bench-process.js';

/** One session's connection: PDUs in order, awaited one at a time. */
class ScaleConnection {
  private readonly queue: Pdu[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;
  cmdSN = 1;
  expStatSN = 0;
  tsih = 0;

  private constructor(private readonly socket: net.Socket) {
    const framer = new PduFramer({
      maxDataSegmentLength: 1 << 24,
      headerDigest: false,
      dataDigest: false,
      onPdu: (f) => {
        // The framer's views share the socket chunk: decode (copies the fields) at once.
        this.queue.push(decodePdu(f.bhs, f.ahs, Buffer.from(f.data)));
        this.wake();
      },
      onError: () => socket.destroy(),
    });
    socket.on('data', (c: Buffer) => framer.push(c));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(host: string, port: number): Promise<ScaleConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => {
        s.off('error', reject);
        s.setNoDelay(true);
        resolve(new ScaleConnection(s));
      });
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  send<P extends Pdu>(pdu: EncodablePdu<P>): void {
    const data = (pdu as { data?: Buffer }).data;
    for (const b of encodeFrame(encodeBhs(pdu), data, { headerDigest: false, dataDigest: false })) this.socket.write(b);
  }

  async next(timeoutMs: number): Promise<Pdu> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.queue.shift();
      if (p) {
        if ('statSN' in p && p.opcode !== Opcode.DATA_IN && p.opcode !== Opcode.R2T) this.expStatSN = (p.statSN + 1) >>> 0;
        return p;
      }
      if (this.closed) throw new LunkitError('ERR_TOOL_PEER', 'connection closed by the target');
      const left = deadline - Date.now();
      if (left <= 0) throw new LunkitError('ERR_TOOL_PEER', 'no answer from the target');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  get gone(): boolean {
    return this.closed;
  }
}

export interface ScaleTarget {
  host: string;
  port: number;
  iqn: string;
  /** LUN the command goes to (tgtd numbers its LUNs from 1, lunkit from 0). */
  lun: number;
}

/** What each login offers in the operational stage (what libiscsi offers). */
const OPERATIONAL_KEYS: Array<[string, string]> = [
  ['HeaderDigest', 'None'],
  ['DataDigest', 'None'],
  ['InitialR2T', 'Yes'],
  ['ImmediateData', 'Yes'],
  ['MaxBurstLength', '262144'],
  ['FirstBurstLength', '65536'],
  ['MaxRecvDataSegmentLength', '65536'],
  ['DefaultTime2Wait', '2'],
  ['DefaultTime2Retain', '0'],
  ['MaxOutstandingR2T', '1'],
  ['ErrorRecoveryLevel', '0'],
  ['MaxConnections', '1'],
  ['DataPDUInOrder', 'Yes'],
  ['DataSequenceInOrder', 'Yes'],
];

const TIMEOUT_MS = 10_000;

async function loginStep(c: ScaleConnection, isid: number, csg: number, nsg: number, keys: Array<[string, string]>): Promise<void> {
  c.send<LoginRequestPdu>({
    opcode: Opcode.LOGIN_REQUEST,
    immediate: true,
    transit: true,
    continue: false,
    csg,
    nsg,
    versionMax: 0,
    versionMin: 0,
    isid,
    tsih: c.tsih,
    cid: 0,
    itt: 1,
    cmdSN: c.cmdSN,
    expStatSN: c.expStatSN,
    data: encodeTextKeys(keys),
  });
  const r = await c.next(TIMEOUT_MS);
  if (r.opcode !== Opcode.LOGIN_RESPONSE) throw new LunkitError('ERR_TOOL_PEER', `expected a Login Response, got opcode 0x${r.opcode.toString(16)}`);
  if (r.statusClass !== 0) throw new LunkitError('ERR_TOOL_PEER', `login refused: status ${r.statusClass}/${r.statusDetail}`);
  if (!r.transit || r.nsg !== nsg) throw new LunkitError('ERR_TOOL_PEER', `the target did not move on to stage ${nsg}`);
  c.tsih = r.tsih;
  if (csg === 0) c.expStatSN = (r.statSN + 1) >>> 0;
}

/** One session of one connection, logged in to full feature phase. */
export async function loginSession(t: ScaleTarget, index: number): Promise<ScaleConnection> {
  const c = await ScaleConnection.connect(t.host, t.port);
  try {
    const isid = 0x23d000000000 + (index & 0xffffff);
    const names: Array<[string, string]> = [
      ['InitiatorName', `iqn.2026-12.io.lunkit.bench:client-${index}`],
      ['TargetName', t.iqn],
      ['SessionType', 'Normal'],
      ['AuthMethod', 'None'],
    ];
    await loginStep(c, isid, 0, 1, names);
    await loginStep(c, isid, 1, 3, OPERATIONAL_KEYS);
    return c;
  } catch (e) {
    c.close();
    throw e;
  }
}

/** INQUIRY (allowed whatever unit attention is pending); resolves with the SCSI status. */
export async function inquiry(c: ScaleConnection, lun: number): Promise<number> {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x12;
  cdb.writeUInt16BE(96, 3);
  const lunRaw = Buffer.alloc(8);
  lunRaw.writeUInt16BE(lun & 0x3fff, 0);
  c.send<ScsiCommandPdu>({
    opcode: Opcode.SCSI_COMMAND,
    immediate: false,
    final: true,
    read: true,
    write: false,
    attr: 1,
    lunRaw,
    itt: 2,
    expectedDataTransferLength: 96,
    cmdSN: c.cmdSN++,
    expStatSN: c.expStatSN,
    cdb,
  });
  for (;;) {
    const p = await c.next(TIMEOUT_MS);
    if (p.opcode === Opcode.DATA_IN && p.statusPresent) return p.status;
    if (p.opcode === Opcode.SCSI_RESPONSE) return p.status;
    if (p.opcode === Opcode.NOP_IN || p.opcode === Opcode.DATA_IN || p.opcode === Opcode.ASYNC_MESSAGE) continue;
    throw new LunkitError('ERR_TOOL_PEER', `unexpected opcode 0x${p.opcode.toString(16)} in answer to INQUIRY`);
  }
}

/** Logout (close the session); resolves once the target answered. */
export async function logout(c: ScaleConnection): Promise<void> {
  c.send<LogoutRequestPdu>({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, reasonCode: 0, itt: 3, cid: 0, cmdSN: c.cmdSN, expStatSN: c.expStatSN });
  for (;;) {
    const p = await c.next(TIMEOUT_MS);
    if (p.opcode === Opcode.LOGOUT_RESPONSE) break;
  }
  c.close();
}

/** Resident set of a process in bytes (VmRSS of /proc/PID/status). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new LunkitError('ERR_TOOL_PEER', `no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export interface ScaleRun {
  sessions: number;
  /** Seconds to log all sessions in, one after the other. */
  loginSeconds: number;
  /** INQUIRYs answered GOOD. */
  commandsGood: number;
  rssBefore: number;
  /** RSS with every session logged in and after one command on each. */
  rssAfter: number;
  /**
   * RSS once the server has been idle for up to `restSeconds` (the lowest
   * seen): a garbage-collected server shrinks its young generation, grown by
   * the burst of logins, only after some idle time (V8's memory reducer).
   */
  rssRest: number;
  /** Server CPU (user + system) spent while the sessions logged in. */
  loginCpuSeconds: number;
  logoutsOk: number;
}

/**
 * Log `count` sessions in back to back, send one INQUIRY on each (all at
 * once), measure the server's RSS (pid) before and after, log all out.
 */
export async function runScale(t: ScaleTarget, count: number, serverPid: number, o: { settleMs?: number; restSeconds?: number } = {}): Promise<ScaleRun> {
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, o.settleMs ?? 500));
  const conns: ScaleConnection[] = [];
  try {
    // One session first so lazy one-time costs (code, target lookup) are not counted per session.
    const warm = await loginSession(t, 0x7fffff);
    await inquiry(warm, t.lun);
    await logout(warm);
    await settle();
    const rssBefore = await rssOf(serverPid);
    const cpuBefore = await cpuSeconds(serverPid);
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) conns.push(await loginSession(t, i));
    const loginSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const loginCpuSeconds = (await cpuSeconds(serverPid)) - cpuBefore;
    const statuses = await Promise.all(conns.map((c) => inquiry(c, t.lun)));
    await settle();
    const rssAfter = await rssOf(serverPid);
    let rssRest = rssAfter;
    for (let waited = 0; waited < (o.restSeconds ?? 0); waited++) {
      await new Promise((r) => setTimeout(r, 1000));
      rssRest = Math.min(rssRest, await rssOf(serverPid));
    }
    const results = await Promise.allSettled(conns.map((c) => logout(c)));
    return {
      sessions: count,
      loginSeconds,
      commandsGood: statuses.filter((s) => s === 0).length,
      rssBefore,
      rssAfter,
      rssRest,
      loginCpuSeconds,
      logoutsOk: results.filter((r) => r.status === 'fulfilled').length,
    };
  } finally {
    for (const c of conns) if (!c.gone) c.close();
  }
}
