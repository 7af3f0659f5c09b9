// The iSCSI half of the live fuzzer: lanes that each drive one connection at
// a time against a live target and send it mutated PDUs (live-mutate.ts) made
// from the corpus:
// - login lanes: a fresh connection per case, the case is its first PDU
//   (RFC 7143 §11.12: every Login Request gets a Login Response, or the
//   target closes);
// - discovery lanes: log in as a discovery session, then batches of cases
//   from the discovery seeds, each batch followed by a probe (an immediate
//   Text SendTargets) that must be answered;
// - full feature lanes (some with header and data digests): log in to the
//   fuzz target, then batches of cases from the full-feature seeds with tags
//   and sequence numbers fixed up to the session's (so most reach the
//   command code rather than the window check), each batch followed by an
//   immediate NOP-Out ping that must be answered (RFC 7143 §11.18).
// A lane keeps a connection for up to CASES_PER_CONNECTION batches, then
// starts a new one; when the target closes it, the lane logs in again.

import net from 'node:net';
import { PduFramer } from '../../src/protocols/iscsi/framer.js';
import { decodePdu } from '../../src/protocols/iscsi/pdu.js';
import { Opcode, type Pdu } from '../../src/protocols/iscsi/pdu-types.js';
import { parseTextKeys } from '../../src/protocols/iscsi/text.js';
import { loadSeeds, type Seed } from './live-corpus.js';
import { FUZZ_IQN } from './live-daemon.js';
import { frameIscsi, IscsiStreamModel, mutateIscsi, Rng, splitIscsi, type IscsiFraming, type IscsiParts, type Mutated } from './live-mutate.js';
import { History, type FabricStats, type Finding } from './live-outcomes.js';

const CASES_PER_CONNECTION = 60;
/** Cases sent back to back before a probe (at most). */
const BATCH = 8;
/** Mid-PDU, the lane completes the PDU with zeros if it needs at most this much (else, or now and then, it half-closes). */
const PAD_LIMIT = 1 << 20;
const ALL_ONES = 0xffff_ffff;

type WaitResult = 'match' | 'closed' | 'timeout';

/** One TCP connection to the target, with a framer for what comes back. */
class FuzzConnection {
  closed = false;
  badReply: string | undefined;
  cmdSN = 1;
  expStatSN = 0;
  lastR2T: { itt: number; ttt: number; offset: number; length: number } | undefined;
  readonly history = new History();
  model: IscsiStreamModel = new IscsiStreamModel({ headerDigest: false, dataDigest: false });
  framing: IscsiFraming = { headerDigest: false, dataDigest: false };
  /** PDUs received on this connection, and the last one (for a finding's detail). */
  received = 0;
  last = '';
  private readonly framer: PduFramer;
  private waiter: { pred: (p: Pdu) => boolean; done: (r: WaitResult) => void } | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly sock: net.Socket,
    private readonly stats: FabricStats,
  ) {
    this.framer = new PduFramer({
      maxDataSegmentLength: 1 << 24,
      headerDigest: false,
      dataDigest: false,
      onPdu: (f) => {
        if (!f.dataDigestOk) return this.bad('a data digest from the target did not match');
        let p: Pdu;
        try {
          p = decodePdu(f.bhs, f.ahs, f.data);
        } catch (e) {
          return this.bad(`undecodable PDU from the target: ${(e as Error).message}; BHS ${f.bhs.toString('hex')}`);
        }
        this.onPdu(p);
      },
      onError: (e) => this.bad(`framing error on the target's stream: ${e.message}`),
    });
    sock.on('data', (c: Buffer) => this.framer.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      this.finish('closed');
    });
  }

  static connect(port: number, stats: FabricStats): Promise<FuzzConnection> {
    stats.connects++;
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.off('error', reject);
        resolve(new FuzzConnection(s, stats));
      });
      s.once('error', reject);
    });
  }

  private bad(why: string): void {
    this.badReply ??= why;
    this.sock.destroy();
  }

  private onPdu(p: Pdu): void {
    this.stats.replies++;
    this.received++;
    this.last = `opcode 0x${p.opcode.toString(16)} ITT 0x${p.itt.toString(16)}${p.opcode === Opcode.REJECT ? ` reason 0x${p.reason.toString(16)} rejecting ITT 0x${p.data.length >= 20 ? p.data.readUInt32BE(16).toString(16) : '?'}` : ''}`;
    if (p.opcode === Opcode.REJECT) this.stats.rejects++;
    if ('statSN' in p && ((p.opcode !== Opcode.R2T && p.opcode !== Opcode.DATA_IN) || (p.opcode === Opcode.DATA_IN && p.statusPresent))) {
      this.expStatSN = (p.statSN + 1) >>> 0;
    }
    if (p.opcode === Opcode.R2T) {
      this.lastR2T = { itt: p.itt, ttt: p.targetTransferTag, offset: p.bufferOffset, length: p.desiredDataTransferLength };
    }
    if (p.opcode === Opcode.NOP_IN && p.itt === ALL_ONES && p.targetTransferTag !== ALL_ONES && this.model.pending === 0) {
      // The target's own ping (RFC 7143 §11.19): answer it, or it drops the connection.
      this.send(frameIscsi(nopOut(ALL_ONES, p.targetTransferTag, this.cmdSN, this.expStatSN), this.framing));
    }
    if (this.waiter?.pred(p)) this.finish('match');
  }

  private finish(r: WaitResult): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (this.timer) clearTimeout(this.timer);
    w?.done(r);
  }

  send(b: Buffer): void {
    if (b.length === 0) return;
    this.history.add(b);
    this.model.push(b);
    if (!this.closed) this.sock.write(b);
  }

  /** Waits for a PDU matching `pred`, the connection's close, or the timeout. */
  wait(pred: (p: Pdu) => boolean, ms: number): Promise<WaitResult> {
    if (this.closed) return Promise.resolve('closed');
    return new Promise((done) => {
      this.waiter = { pred, done };
      this.timer = setTimeout(() => this.finish('timeout'), ms);
    });
  }

  /** Half-closes and waits for the target to close (false: it did not in time). */
  async endAndWait(ms: number): Promise<boolean> {
    this.sock.end();
    return (await this.wait(() => false, ms)) === 'closed';
  }

  useDigests(f: IscsiFraming): void {
    this.framing = f;
    this.model = new IscsiStreamModel(f);
    this.framer.setDigests(f.headerDigest, f.dataDigest);
  }

  get localPort(): number | undefined {
    return this.sock.localPort;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

function nopOut(itt: number, ttt: number, cmdSN: number, expStatSN: number): IscsiParts {
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x40; // immediate NOP-Out
  bhs[1] = 0x80;
  bhs.writeUInt32BE(itt, 16);
  bhs.writeUInt32BE(ttt, 20);
  bhs.writeUInt32BE(cmdSN, 24);
  bhs.writeUInt32BE(expStatSN, 28);
  return { bhs, ahs: Buffer.alloc(0), data: Buffer.alloc(0) };
}

function textKeys(pairs: string[]): Buffer {
  return Buffer.from(pairs.map((p) => `${p}\0`).join(''));
}

function sendTargets(itt: number, cmdSN: number, expStatSN: number): IscsiParts {
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x44; // immediate Text Request
  bhs[1] = 0x80;
  bhs.writeUInt32BE(itt, 16);
  bhs.writeUInt32BE(ALL_ONES, 20);
  bhs.writeUInt32BE(cmdSN, 24);
  bhs.writeUInt32BE(expStatSN, 28);
  const data = textKeys(['SendTargets=All']);
  bhs.writeUIntBE(data.length, 5, 3);
  return { bhs, ahs: Buffer.alloc(0), data };
}

/** Does this PDU answer the one we sent with `itt` (its reply, or a Reject quoting its header)? */
function answers(p: Pdu, itt: number): boolean {
  if (p.itt === itt && p.opcode !== Opcode.R2T) return true;
  return p.opcode === Opcode.REJECT && p.data.length >= 20 && p.data.readUInt32BE(16) === itt;
}

export type IscsiPhase = 'login' | 'discovery' | 'ffp';

export interface IscsiFuzzOptions {
  port: number;
  seed: number;
  stats: FabricStats;
  /** Takes one case from the budget; false when the run is over. */
  take(): boolean;
  onFinding(f: Finding): void;
  /** How long a case may go unanswered before it is a hang. */
  replyTimeoutMs: number;
}

export class IscsiFuzzer {
  private readonly seeds: Record<IscsiPhase, Seed[]> = {
    login: loadSeeds('iscsi-login-'),
    discovery: loadSeeds('iscsi-discovery-'),
    ffp: loadSeeds('iscsi-ffp-'),
  };
  private readonly all: Seed[] = [...this.seeds.login, ...this.seeds.discovery, ...this.seeds.ffp];
  private tag = 1;

  constructor(private readonly o: IscsiFuzzOptions) {}

  private nextTag(): number {
    this.tag = (this.tag + 1) & 0x3fff_ffff;
    return this.tag;
  }

  /** Runs one lane until the budget is spent. */
  async runLane(phase: IscsiPhase, lane: number, digests = false): Promise<void> {
    const rng = new Rng(this.o.seed, 1000 + lane);
    let conn: FuzzConnection | undefined;
    let onConn = 0;
    let laneCase = 0;
    while (this.o.take()) {
      laneCase++;
      this.o.stats.phases[phase] = (this.o.stats.phases[phase] ?? 0) + 1;
      if (phase === 'login') {
        await this.loginCase(rng, lane, laneCase);
        continue;
      }
      if (!conn || conn.closed || onConn >= CASES_PER_CONNECTION) {
        conn?.destroy();
        conn = await this.logIn(phase, lane, digests, laneCase);
        onConn = 0;
        if (!conn) continue;
      }
      onConn++;
      const ended = await this.sessionCase(conn, phase, rng, lane, laneCase);
      if (ended) conn = undefined;
    }
    conn?.destroy();
  }

  private finding(phase: IscsiPhase, kind: Finding['kind'], lane: number, caseNo: number, seed: Seed, m: Mutated, history: Buffer, detail: string, localPort?: number): void {
    this.o.onFinding({ fabric: 'iscsi', phase, kind, lane, caseNo, seed: this.o.seed, seedName: seed.name, ops: m.ops, bytes: m.bytes, history, detail, localPort });
  }

  /** A fresh connection whose first PDU is a (mostly mutated) Login Request. */
  private async loginCase(rng: Rng, lane: number, caseNo: number): Promise<void> {
    const seed = rng.pick(this.seeds.login);
    const parts = splitIscsi(seed.bytes);
    parts.bhs.writeUIntBE(0x23d0_0000_0000 + lane * 0x1_0000 + (caseNo & 0xffff), 8, 6); // ISID per case
    parts.bhs.writeUInt32BE(this.nextTag(), 16);
    const none: IscsiFraming = { headerDigest: false, dataDigest: false };
    const m: Mutated = rng.chance(0.05)
      ? { bytes: rng.bytes(1 + rng.int(600)), ops: ['random bytes'] }
      : rng.chance(0.9)
        ? mutateIscsi(rng, parts, none, this.all)
        : { bytes: frameIscsi(parts, none), ops: ['none'] };
    let conn: FuzzConnection;
    try {
      conn = await FuzzConnection.connect(this.o.port, this.o.stats);
    } catch (e) {
      this.finding('login', 'no-service', lane, caseNo, seed, m, Buffer.alloc(0), `connect failed: ${(e as Error).message}`);
      return;
    }
    try {
      conn.send(m.bytes);
      await this.settle(conn, rng, 'login', lane, caseNo, seed, m, () => true);
    } finally {
      conn.destroy();
    }
  }

  /**
   * After a case (or a batch of `count`): mid-PDU, complete the PDU with
   * zeros or half-close and expect the close; at a boundary, expect
   * `answered` (after `sendProbe`) or the close. True when the connection is
   * gone.
   */
  private async settle(
    conn: FuzzConnection,
    rng: Rng,
    phase: IscsiPhase,
    lane: number,
    caseNo: number,
    seed: Seed,
    m: Mutated,
    answered: (p: Pdu) => boolean,
    sendProbe?: () => void,
    count = 1,
  ): Promise<boolean> {
    const s = this.o.stats;
    s.cases += count;
    const t = this.o.replyTimeoutMs;
    if (conn.model.pending > 0 && conn.model.pending <= PAD_LIMIT && rng.chance(0.75)) {
      s.padded += count;
      for (let i = 0; i < 4 && conn.model.pending > 0 && conn.model.pending <= PAD_LIMIT; i++) conn.send(Buffer.alloc(conn.model.pending));
    }
    if (conn.model.pending > 0) {
      const pending = conn.model.pending;
      if (await conn.endAndWait(t)) s.eofClosed += count;
      else {
        s.failed += count;
        this.finding(phase, 'eof-hang', lane, caseNo, seed, m, conn.history.bytes(), `the target kept the connection open ${t} ms after our FIN (it waits for ${pending} more bytes)`);
        conn.destroy();
      }
      return true;
    }
    sendProbe?.();
    const r = await conn.wait(answered, t);
    if (conn.badReply) {
      s.failed += count;
      this.finding(phase, 'bad-reply', lane, caseNo, seed, m, conn.history.bytes(), conn.badReply);
      conn.destroy();
      return true;
    }
    if (r === 'match') s.answered += count;
    else if (r === 'closed') s.closed += count;
    else {
      s.failed += count;
      // Does more input release the answer (stuck in the target's output), or is it lost?
      const before = conn.received;
      let kicked = 'no second probe (mid-PDU)';
      if (sendProbe && conn.model.pending === 0) {
        const late = conn.wait(answered, 3000);
        sendProbe();
        kicked = (await late) === 'match' ? `a second probe got the first one answered too (${conn.received - before} PDUs came)` : `a second probe brought ${conn.received - before} PDUs and no answer (last: ${conn.last})`;
      }
      this.finding(phase, 'hang', lane, caseNo, seed, m, conn.history.bytes(), `no answer${sendProbe ? ' to the probe' : ''} and no close within ${t} ms; ${kicked}`, conn.localPort);
      // Left open a little longer, so that `lunkit stats` still shows the daemon's side of it.
      setTimeout(() => conn.destroy(), 5000).unref();
      return true;
    }
    return r === 'closed';
  }

  /** Logs a lane into a discovery session or the fuzz target (undefined: it could not, recorded). */
  private async logIn(phase: IscsiPhase, lane: number, digests: boolean, caseNo: number): Promise<FuzzConnection | undefined> {
    const keys = [`InitiatorName=iqn.2026-12.io.lunkit:fuzz-${phase}-${lane}`];
    if (phase === 'discovery') keys.push('SessionType=Discovery');
    else keys.push(`TargetName=${FUZZ_IQN}`, 'SessionType=Normal', `HeaderDigest=${digests ? 'CRC32C' : 'None'}`, `DataDigest=${digests ? 'CRC32C' : 'None'}`);
    keys.push('MaxRecvDataSegmentLength=262144', 'ImmediateData=Yes', 'InitialR2T=No', 'MaxBurstLength=262144', 'FirstBurstLength=65536', 'ErrorRecoveryLevel=0');
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x43;
    bhs[1] = 0x87; // T, CSG 1, NSG 3
    bhs.writeUIntBE(0x23d1_0000_0000 + lane, 8, 6);
    bhs.writeUInt32BE(this.nextTag(), 16);
    bhs.writeUInt32BE(1, 24);
    const data = textKeys(keys);
    bhs.writeUIntBE(data.length, 5, 3);
    const login = frameIscsi({ bhs, ahs: Buffer.alloc(0), data }, { headerDigest: false, dataDigest: false });
    const fail = (why: string): undefined => {
      this.o.onFinding({ fabric: 'iscsi', phase, kind: 'no-service', lane, caseNo, seed: this.o.seed, seedName: 'login', ops: [], bytes: login, history: Buffer.alloc(0), detail: why });
      return undefined;
    };
    let conn: FuzzConnection;
    try {
      conn = await FuzzConnection.connect(this.o.port, this.o.stats);
    } catch (e) {
      return fail(`connect failed: ${(e as Error).message}`);
    }
    let response: Pdu | undefined;
    conn.send(login);
    const r = await conn.wait((p) => {
      response = p;
      return true;
    }, this.o.replyTimeoutMs);
    if (r !== 'match' || !response || response.opcode !== Opcode.LOGIN_RESPONSE || response.statusClass !== 0 || response.nsg !== 3) {
      conn.destroy();
      const got = response?.opcode === Opcode.LOGIN_RESPONSE ? `status ${response.statusClass}/${response.statusDetail}` : r;
      return fail(`the ${phase} lane's own login failed: ${got}`);
    }
    this.o.stats.logins++;
    const agreed = new Map(parseTextKeys(response.data));
    conn.useDigests({ headerDigest: agreed.get('HeaderDigest') === 'CRC32C', dataDigest: agreed.get('DataDigest') === 'CRC32C' });
    conn.cmdSN = response.expCmdSN;
    conn.expStatSN = (response.statSN + 1) >>> 0;
    return conn;
  }

  /** Full-feature and discovery seeds carry the session's tags and sequence numbers before mutation. */
  private fixUp(rng: Rng, conn: FuzzConnection, seed: Seed): IscsiParts {
    const p = splitIscsi(seed.bytes);
    const op = p.bhs[0] & 0x3f;
    const useR2T = rng.chance(0.6);
    const itt = this.nextTag();
    if (op === Opcode.DATA_OUT) {
      const r2t = conn.lastR2T;
      if (r2t && useR2T) {
        p.bhs.writeUInt32BE(r2t.itt, 16);
        p.bhs.writeUInt32BE(r2t.ttt, 20);
        p.bhs.writeUInt32BE(r2t.offset, 40);
        p.data = Buffer.alloc(Math.min(r2t.length, 65536), 0x3c);
      } else {
        p.bhs.writeUInt32BE((itt - 1) & 0x3fff_ffff, 16); // the previous command's ITT
      }
    } else if (op !== Opcode.SNACK_REQUEST) {
      p.bhs.writeUInt32BE(itt, 16);
    }
    if (op === Opcode.TASK_MGMT_REQUEST && p.bhs.readUInt32BE(20) !== ALL_ONES) p.bhs.writeUInt32BE((itt - 1 - rng.int(3)) & 0x3fff_ffff, 20);
    if (op !== Opcode.DATA_OUT && op !== Opcode.SNACK_REQUEST) {
      p.bhs.writeUInt32BE(conn.cmdSN, 24);
      if ((p.bhs[0] & 0x40) === 0) conn.cmdSN = (conn.cmdSN + 1) >>> 0;
    }
    p.bhs.writeUInt32BE(conn.expStatSN, 28);
    return p;
  }

  /**
   * A batch of 1-BATCH cases in a logged-in session (the first already taken
   * from the budget), then one probe; every case of the batch shares the
   * outcome. A case that leaves the target mid-PDU ends the batch. True when
   * the connection is gone.
   */
  private async sessionCase(conn: FuzzConnection, phase: IscsiPhase, rng: Rng, lane: number, caseNo: number): Promise<boolean> {
    const seeds = this.seeds[phase === 'discovery' ? 'discovery' : 'ffp'];
    const want = 1 + rng.int(BATCH);
    const sent: Mutated[] = [];
    let first: Seed | undefined;
    for (let i = 0; i < want && (i === 0 || this.o.take()); i++) {
      const seed = rng.pick(seeds);
      first ??= seed;
      const parts = this.fixUp(rng, conn, seed);
      const m: Mutated = rng.chance(0.02)
        ? { bytes: rng.bytes(1 + rng.int(600)), ops: ['random bytes'] }
        : rng.chance(0.85)
          ? mutateIscsi(rng, parts, conn.framing, this.all)
          : { bytes: frameIscsi(parts, conn.framing), ops: ['none'] };
      m.ops.unshift(`[${seed.name}]`);
      conn.send(m.bytes);
      sent.push(m);
      if (conn.model.pending > 0 || conn.closed) break;
    }
    this.o.stats.phases[phase] = (this.o.stats.phases[phase] ?? 0) + sent.length - 1;
    const batch: Mutated = { bytes: Buffer.concat(sent.map((m) => m.bytes)), ops: sent.flatMap((m, i) => [`#${i}`, ...m.ops]) };
    const probeItt = this.nextTag() | 0x4000_0000;
    const probe = (): void => {
      const parts = phase === 'discovery' ? sendTargets(probeItt, conn.cmdSN, conn.expStatSN) : nopOut(probeItt, ALL_ONES, conn.cmdSN, conn.expStatSN);
      conn.send(frameIscsi(parts, conn.framing));
    };
    const answered = (p: Pdu): boolean => {
      if (!answers(p, probeItt)) return false;
      // Back in step with the target's window (the cases may have used up or skipped CmdSNs).
      if ('expCmdSN' in p) conn.cmdSN = p.expCmdSN;
      return true;
    };
    batch.ops.push(`probe ITT 0x${probeItt.toString(16)}`);
    return this.settle(conn, rng, phase, lane, caseNo, first!, batch, answered, probe, sent.length);
  }
}
