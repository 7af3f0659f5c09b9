// The NBD half of the live fuzzer (proto.md): lanes that each drive one
// connection at a time against a live server.
// - handshake lanes: after the greeting and the client flags, batches of
//   mutated option requests; every option the server read must get its
//   final reply (ACK or an error), then a probe (NBD_OPT_LIST) must get its
//   own. EXPORT_NAME, GO, STARTTLS and ABORT end a batch: then the final
//   reply, the export data, the TLS switch or the close is the answer. A GO
//   that succeeds moves the lane on to transmission cases on that connection.
// - transmission lanes: negotiate (no, structured or extended headers), GO,
//   then batches of mutated requests with fresh cookies, each batch followed
//   by a probe (a 512-byte READ) that must be answered.
// Mid-message (truncated, or a length made larger) the lane completes the
// message with zeros or half-closes and expects the server to close.

import net from 'node:net';
import { ByteQueue } from '../../src/protocols/byte-queue.js';
import { loadSeeds, type Seed } from './live-corpus.js';
import { FUZZ_EXPORT } from './live-daemon.js';
import { mutateNbdOption, mutateNbdRequest, NbdOptionStreamModel, NbdRequestStreamModel, Rng, type Mutated } from './live-mutate.js';
import { History, type FabricStats, type Finding } from './live-outcomes.js';

const OPTION_REPLY_MAGIC = 0x0003e889045565a9n;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
const EXTENDED_REPLY_MAGIC = 0x6e8a278c;
const IHAVEOPT = Buffer.from('IHAVEOPT');
const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, GO: 7, STRUCTURED_REPLY: 8, EXTENDED_HEADERS: 11 } as const;
const REP_ACK = 1;
/** Bit 62 marks a probe's cookie. */
const PROBE_COOKIE = 1n << 62n;
/** Option batches per connection before the lane starts a new one (at most 6 x (8 + 1) options: the server allows maxOptions, default 64). */
const OPTIONS_PER_CONNECTION = 6;
const CASES_PER_CONNECTION = 60;
/** Cases sent back to back before a probe (at most). */
const BATCH = 8;
const PAD_LIMIT = 1 << 20;

/** 'over': a handshake lane's GO or EXPORT_NAME succeeded; the lane only ends the connection. */
type Phase = 'greeting' | 'options' | 'transmission' | 'tls' | 'over';
type WaitResult = 'match' | 'closed' | 'timeout';

function option(code: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(code, 0);
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([IHAVEOPT, h, data]);
}

function goFuzz(): Buffer {
  const name = Buffer.from(FUZZ_EXPORT);
  const data = Buffer.alloc(4 + name.length + 2);
  data.writeUInt32BE(name.length, 0);
  name.copy(data, 4);
  return option(OPT.GO, data);
}

/** One connection, with a reply parser that follows the phase the server is in. */
class NbdFuzzConnection {
  closed = false;
  badReply: string | undefined;
  phase: Phase = 'greeting';
  extended = false;
  structured = false;
  noZeroes = true;
  /** Option numbers the server has been sent, in order; final replies received so far. */
  readonly optionsSent: number[] = [];
  finals = 0;
  lastFinal: { option: number; type: number } | undefined;
  exportDataSeen = false;
  /** A handshake lane: bytes it sent after a GO were options, so transmission replies cannot be followed. */
  haggleOnly = false;
  readonly history = new History();
  readonly optionModel = new NbdOptionStreamModel((o) => this.optionsSent.push(o));
  requestModel: NbdRequestStreamModel | undefined;
  /** Requests the server has been sent, by cookie (for the length of a simple READ reply). */
  private readonly requests = new Map<bigint, Array<{ type: number; length: number }>>();
  private readonly repliedCookies = new Set<bigint>();
  /** Data bytes of a simple READ reply still to come, and its cookie. */
  private pendingData = 0;
  private pendingCookie = 0n;
  private readonly rx = new ByteQueue();
  private waiter: { pred: () => boolean; done: (r: WaitResult) => void } | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly sock: net.Socket,
    private readonly stats: FabricStats,
  ) {
    sock.on('data', (c: Buffer) => {
      this.rx.push(c);
      try {
        this.parse();
      } catch (e) {
        this.bad((e as Error).message);
      }
      if (this.waiter?.pred()) this.finish('match');
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      this.finish('closed');
    });
  }

  static connect(port: number, stats: FabricStats): Promise<NbdFuzzConnection> {
    stats.connects++;
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.off('error', reject);
        resolve(new NbdFuzzConnection(s, stats));
      });
      s.once('error', reject);
    });
  }

  /** Bytes the server still waits for before the current message is complete. */
  get pending(): number {
    return this.phase === 'transmission' && this.requestModel ? this.requestModel.pending : this.optionModel.pending;
  }

  private bad(why: string): void {
    this.badReply ??= why;
    this.sock.destroy();
  }

  private enterTransmission(): void {
    if (this.haggleOnly) {
      this.phase = 'over';
      return;
    }
    this.phase = 'transmission';
    // Simple replies carry no length: a READ's is known only from its request, found by cookie, so
    // every request gets a cookie of its own (spliced corpus requests all carry 0x1000).
    const unique = this.structured
      ? undefined
      : (h: Buffer): void => {
          // Probes (bit 62) keep theirs: the lane waits for that cookie.
          if ((h.readBigUInt64BE(8) & PROBE_COOKIE) === 0n) h.writeBigUInt64BE((1n << 61n) | BigInt(++this.cookies), 8);
        };
    this.requestModel = new NbdRequestStreamModel(this.extended, (c, t, l) => this.noteRequest(c, t, l), unique);
  }
  private cookies = 0;

  private parse(): void {
    const q = this.rx;
    for (;;) {
      if (this.phase === 'greeting') {
        if (q.buffered < 18) return;
        const g = q.take(18);
        if (g.subarray(0, 16).toString('latin1') !== 'NBDMAGICIHAVEOPT') throw new Error(`bad greeting ${g.toString('hex')}`);
        this.phase = 'options';
        continue;
      }
      if (this.phase === 'tls' || this.phase === 'over') return void q.discard(q.buffered);
      if (this.phase === 'options') {
        if (q.buffered < 8) return;
        const magic = (BigInt(q.u32At(0)) << 32n) | BigInt(q.u32At(4));
        if (magic !== OPTION_REPLY_MAGIC) {
          // EXPORT_NAME's success answer has no header: size, flags (and 124 zero bytes).
          if (!this.optionsSent.includes(OPT.EXPORT_NAME)) throw new Error(`bad option reply magic 0x${magic.toString(16)}`);
          const n = this.noZeroes ? 10 : 134;
          if (q.buffered < n) return;
          q.take(n);
          this.stats.replies++;
          this.exportDataSeen = true;
          this.enterTransmission();
          continue;
        }
        if (q.buffered < 20) return;
        const len = q.u32At(16);
        if (q.buffered < 20 + len) return;
        const h = q.take(20);
        q.discard(len);
        const opt = h.readUInt32BE(8);
        const type = h.readUInt32BE(12);
        this.stats.replies++;
        if (type === REP_ACK || type & 0x8000_0000) {
          this.finals++;
          this.lastFinal = { option: opt, type };
          if (type & 0x8000_0000) this.stats.rejects++;
          if (type === REP_ACK && opt === OPT.STRUCTURED_REPLY) this.structured = true;
          if (type === REP_ACK && opt === OPT.EXTENDED_HEADERS) this.extended = this.structured = true;
          if (type === REP_ACK && opt === OPT.GO) this.enterTransmission();
          if (type === REP_ACK && opt === OPT.STARTTLS) this.phase = 'tls';
        }
        continue;
      }
      // Transmission: simple, structured or extended replies, told apart by magic.
      if (this.pendingData > 0) {
        // The rest of a simple READ reply's data.
        this.pendingData -= q.discard(this.pendingData);
        if (this.pendingData > 0) return;
        this.replied(this.pendingCookie, true);
        continue;
      }
      if (q.buffered < 4) return;
      const magic = q.u32At(0);
      if (magic === SIMPLE_REPLY_MAGIC) {
        if (q.buffered < 16) return;
        const h = q.take(16);
        const cookie = h.readBigUInt64BE(8);
        const req = this.requests.get(cookie)?.[0];
        if (!req) throw new Error(`simple reply for cookie ${cookie} that was never sent (or answered twice)`);
        const error = h.readUInt32BE(4);
        if (error !== 0) this.stats.rejects++;
        if (error === 0 && req.type === 0 && req.length > 0) {
          this.pendingData = req.length;
          this.pendingCookie = cookie;
          continue;
        }
        this.replied(cookie, true);
        continue;
      }
      if (magic === STRUCTURED_REPLY_MAGIC || magic === EXTENDED_REPLY_MAGIC) {
        const hlen = magic === STRUCTURED_REPLY_MAGIC ? 20 : 32;
        if (q.buffered < hlen) return;
        const len = magic === STRUCTURED_REPLY_MAGIC ? q.u32At(16) : q.u32At(28) + q.u32At(24) * 0x1_0000_0000;
        if (len > 64 << 20) throw new Error(`reply chunk of ${len} bytes`);
        if (q.buffered < hlen + len) return;
        const h = q.take(hlen);
        q.discard(len);
        const flags = h.readUInt16BE(4);
        const type = h.readUInt16BE(6);
        if (type & 0x8000) this.stats.rejects++;
        this.replied(h.readBigUInt64BE(8), (flags & 1) !== 0);
        continue;
      }
      throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    }
  }

  private noteRequest(cookie: bigint, type: number, length: number): void {
    const list = this.requests.get(cookie);
    if (list) list.push({ type, length });
    else this.requests.set(cookie, [{ type, length }]);
  }

  private replied(cookie: bigint, done: boolean): void {
    this.stats.replies++;
    this.repliedCookies.add(cookie);
    if (done) {
      const list = this.requests.get(cookie);
      list?.shift();
      if (list?.length === 0) this.requests.delete(cookie);
    }
  }

  /** Has any reply chunk for `cookie` arrived? */
  sawReply(cookie: bigint): boolean {
    return this.repliedCookies.has(cookie);
  }

  send(b: Buffer): void {
    this.history.add(b);
    if (this.phase === 'transmission' && this.requestModel) this.requestModel.push(b);
    else if (this.phase === 'options' || this.phase === 'greeting') this.optionModel.push(b);
    if (!this.closed) this.sock.write(b);
  }

  /** Bytes outside any message model (garbage where a TLS ClientHello belongs). */
  sendRaw(b: Buffer): void {
    this.history.add(b);
    if (!this.closed) this.sock.write(b);
  }

  /** Client flags go before any option and are not one. */
  sendFlags(b: Buffer): void {
    this.history.add(b);
    this.noZeroes = b.length >= 4 && (b.readUInt32BE(0) & 2) !== 0;
    if (!this.closed) this.sock.write(b);
  }

  wait(pred: () => boolean, ms: number): Promise<WaitResult> {
    if (pred()) return Promise.resolve('match');
    if (this.closed) return Promise.resolve('closed');
    return new Promise((done) => {
      this.waiter = { pred, done };
      this.timer = setTimeout(() => this.finish('timeout'), ms);
    });
  }

  private finish(r: WaitResult): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (this.timer) clearTimeout(this.timer);
    w?.done(r);
  }

  async endAndWait(ms: number): Promise<boolean> {
    this.sock.end();
    return (await this.wait(() => false, ms)) === 'closed';
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export type NbdPhase = 'handshake' | 'transmission';

export interface NbdFuzzOptions {
  port: number;
  seed: number;
  stats: FabricStats;
  take(): boolean;
  onFinding(f: Finding): void;
  replyTimeoutMs: number;
}

export class NbdFuzzer {
  private readonly options = loadSeeds('nbd-option-');
  private readonly compact = loadSeeds('nbd-request-');
  private readonly extendedSeeds = loadSeeds('nbd-xrequest-');
  private readonly flags = loadSeeds('nbd-client-flags')[0];
  private readonly all: Seed[] = [...this.options, ...this.compact, ...this.extendedSeeds];
  private cookie = 1n;

  constructor(private readonly o: NbdFuzzOptions) {}

  /** mode: how a transmission lane negotiates before GO. */
  async runLane(phase: NbdPhase, lane: number, mode: 'simple' | 'structured' | 'extended' = 'simple'): Promise<void> {
    const rng = new Rng(this.o.seed, 2000 + lane);
    let conn: NbdFuzzConnection | undefined;
    let onConn = 0;
    let laneCase = 0;
    while (this.o.take()) {
      laneCase++;
      if (!conn || conn.closed || onConn >= (conn.phase === 'options' ? OPTIONS_PER_CONNECTION : CASES_PER_CONNECTION)) {
        conn?.destroy();
        conn = await this.open(rng, phase, lane, mode, laneCase);
        onConn = 0;
        if (!conn) continue;
      }
      onConn++;
      const p = conn.phase === 'transmission' ? 'transmission' : 'handshake';
      this.o.stats.phases[p] = (this.o.stats.phases[p] ?? 0) + 1;
      const ended = conn.phase === 'transmission' ? await this.requestCase(conn, rng, lane, laneCase) : await this.optionCase(conn, rng, lane, laneCase);
      if (ended) {
        conn.destroy();
        conn = undefined;
      }
    }
    conn?.destroy();
  }

  private finding(phase: string, kind: Finding['kind'], lane: number, caseNo: number, seed: Seed, m: Mutated, history: Buffer, detail: string): void {
    this.o.onFinding({ fabric: 'nbd', phase, kind, lane, caseNo, seed: this.o.seed, seedName: seed.name, ops: m.ops, bytes: m.bytes, history, detail });
  }

  /** Connect, read the greeting, send client flags; for transmission lanes negotiate and GO. */
  private async open(rng: Rng, phase: NbdPhase, lane: number, mode: string, caseNo: number): Promise<NbdFuzzConnection | undefined> {
    const fail = (why: string, conn?: NbdFuzzConnection): undefined => {
      conn?.destroy();
      this.o.onFinding({ fabric: 'nbd', phase, kind: 'no-service', lane, caseNo, seed: this.o.seed, seedName: 'open', ops: [], bytes: Buffer.alloc(0), history: conn?.history.bytes() ?? Buffer.alloc(0), detail: why });
      return undefined;
    };
    let conn: NbdFuzzConnection;
    try {
      conn = await NbdFuzzConnection.connect(this.o.port, this.o.stats);
    } catch (e) {
      return fail(`connect failed: ${(e as Error).message}`);
    }
    const t = this.o.replyTimeoutMs;
    if ((await conn.wait(() => conn.phase === 'options', t)) !== 'match') return fail(`no greeting: ${conn.badReply ?? 'timeout or close'}`, conn);
    // Now and then mutated client flags (the server must refuse unknown bits by closing).
    const flags = Buffer.from(this.flags.bytes);
    if (phase === 'handshake' && rng.chance(0.05)) flags[rng.int(4)] ^= 1 << rng.int(8);
    conn.sendFlags(flags);
    conn.haggleOnly = phase === 'handshake';
    if (phase === 'handshake') return conn;
    const negotiate = mode === 'structured' ? [OPT.STRUCTURED_REPLY] : mode === 'extended' ? [OPT.EXTENDED_HEADERS] : [];
    for (const code of negotiate) {
      const before = conn.finals;
      conn.send(option(code));
      if ((await conn.wait(() => conn.finals > before, t)) !== 'match') return fail(`option ${code} unanswered`, conn);
    }
    const before = conn.finals;
    conn.send(goFuzz());
    if ((await conn.wait(() => conn.finals > before, t)) !== 'match' || conn.phase !== 'transmission') {
      return fail(`GO ${FUZZ_EXPORT} failed: ${JSON.stringify(conn.lastFinal)} ${conn.badReply ?? ''}`, conn);
    }
    this.o.stats.logins++;
    return conn;
  }

  /**
   * After a batch of `count` cases: mid-message, complete it with zeros or
   * half-close and expect the close; else wait for `answered` after `probe`.
   * True when the connection is gone.
   */
  private async settle(
    conn: NbdFuzzConnection,
    rng: Rng,
    phase: string,
    lane: number,
    caseNo: number,
    seed: Seed,
    m: Mutated,
    answered: () => boolean,
    probe: (() => void) | undefined,
    count: number,
  ): Promise<boolean> {
    const s = this.o.stats;
    s.cases += count;
    const t = this.o.replyTimeoutMs;
    if (conn.pending > 0 && conn.pending <= PAD_LIMIT && conn.phase !== 'tls' && rng.chance(0.75)) {
      s.padded += count;
      for (let i = 0; i < 4 && conn.pending > 0 && conn.pending <= PAD_LIMIT; i++) conn.send(Buffer.alloc(conn.pending));
    }
    if (conn.pending > 0 || conn.phase === 'tls') {
      // In TLS the server waits for a ClientHello; our FIN must end it too.
      const pending = conn.pending;
      if (await conn.endAndWait(t)) s.eofClosed += count;
      else {
        s.failed += count;
        this.finding(phase, 'eof-hang', lane, caseNo, seed, m, conn.history.bytes(), `the server kept the connection open ${t} ms after our FIN (pending ${pending}, phase ${conn.phase})`);
      }
      return true;
    }
    probe?.();
    const r = await conn.wait(answered, t);
    if (conn.badReply) {
      s.failed += count;
      this.finding(phase, 'bad-reply', lane, caseNo, seed, m, conn.history.bytes(), conn.badReply);
      return true;
    }
    if (r === 'match') s.answered += count;
    else if (r === 'closed') s.closed += count;
    else {
      s.failed += count;
      this.finding(phase, 'hang', lane, caseNo, seed, m, conn.history.bytes(), `no answer and no close within ${t} ms (phase ${conn.phase}, ${conn.finals} final replies for ${conn.optionsSent.length} options)`);
      return true;
    }
    return r === 'closed';
  }

  /** Sends up to BATCH cases (the first already taken from the budget); the first case's seed names the batch. */
  private batch(conn: NbdFuzzConnection, rng: Rng, phase: string, make: () => { seed: Seed; m: Mutated }, stop: () => boolean): { seed: Seed; m: Mutated; count: number } {
    const want = 1 + rng.int(BATCH);
    const sent: Mutated[] = [];
    let first: Seed | undefined;
    for (let i = 0; i < want && (i === 0 || this.o.take()); i++) {
      const { seed, m } = make();
      first ??= seed;
      m.ops.unshift(`[${seed.name}]`);
      conn.send(m.bytes);
      sent.push(m);
      if (conn.pending > 0 || conn.closed || stop()) break;
    }
    this.o.stats.phases[phase] = (this.o.stats.phases[phase] ?? 0) + sent.length - 1;
    return { seed: first!, m: { bytes: Buffer.concat(sent.map((m) => m.bytes)), ops: sent.flatMap((m, i) => [`#${i}`, ...m.ops]) }, count: sent.length };
  }

  private async optionCase(conn: NbdFuzzConnection, rng: Rng, lane: number, caseNo: number): Promise<boolean> {
    const before = conn.optionsSent.length;
    // EXPORT_NAME, GO, STARTTLS and ABORT may end haggling instead of getting a final reply: a batch ends there.
    const transition = (): boolean => conn.optionsSent.slice(before).some((o) => o === OPT.EXPORT_NAME || o === OPT.GO || o === OPT.STARTTLS || o === OPT.ABORT);
    const { seed, m, count } = this.batch(
      conn,
      rng,
      'handshake',
      () => {
        const seed = rng.pick(this.options);
        if (rng.chance(0.02)) return { seed, m: { bytes: rng.bytes(1 + rng.int(300)), ops: ['random bytes'] } };
        return { seed, m: rng.chance(0.85) ? mutateNbdOption(rng, seed.bytes, this.all) : { bytes: Buffer.from(seed.bytes), ops: ['none'] } };
      },
      transition,
    );
    if (conn.pending > 0) return this.settle(conn, rng, 'handshake', lane, caseNo, seed, m, () => true, undefined, count);
    // Every option the server has read gets a final reply.
    const expected = conn.optionsSent.length;
    if (transition()) {
      const ended = await this.settle(conn, rng, 'handshake', lane, caseNo, seed, m, () => conn.finals >= expected || conn.phase !== 'options' || conn.exportDataSeen, undefined, count);
      if (!ended && conn.phase === 'tls') {
        // STARTTLS was accepted: the server waits for a ClientHello. Garbage (or nothing), then our FIN, must end it.
        if (rng.chance(0.7)) conn.sendRaw(rng.bytes(1 + rng.int(600)));
        if (!(await conn.endAndWait(this.o.replyTimeoutMs))) {
          this.finding('handshake', 'eof-hang', lane, caseNo, seed, m, conn.history.bytes(), 'after STARTTLS, garbage and our FIN, the server kept the connection open');
        }
      }
      return ended || conn.phase !== 'options';
    }
    // A GO hidden in a splice may still move the server on: that answers the batch too.
    const ended = await this.settle(conn, rng, 'handshake', lane, caseNo, seed, m, () => conn.finals >= expected + 1 || conn.phase !== 'options', () => conn.send(option(OPT.LIST)), count);
    return ended || conn.phase !== 'options';
  }

  private async requestCase(conn: NbdFuzzConnection, rng: Rng, lane: number, caseNo: number): Promise<boolean> {
    const { seed, m, count } = this.batch(
      conn,
      rng,
      'transmission',
      () => {
        const seed = rng.pick(conn.extended ? this.extendedSeeds : this.compact);
        const bytes = Buffer.from(seed.bytes);
        bytes.writeBigUInt64BE(this.cookie++, 8);
        if (rng.chance(0.02)) return { seed, m: { bytes: rng.bytes(1 + rng.int(300)), ops: ['random bytes'] } };
        return { seed, m: rng.chance(0.85) ? mutateNbdRequest(rng, bytes, conn.extended, this.all) : { bytes, ops: ['none'] } };
      },
      () => false,
    );
    const probeCookie = PROBE_COOKIE | this.cookie++;
    const probe = (): void => {
      const h = Buffer.alloc(conn.extended ? 32 : 28);
      h.writeUInt32BE(conn.extended ? 0x21e41c71 : 0x25609513, 0);
      h.writeBigUInt64BE(probeCookie, 8);
      if (conn.extended) h.writeBigUInt64BE(512n, 24);
      else h.writeUInt32BE(512, 24);
      conn.send(h);
    };
    return this.settle(conn, rng, 'transmission', lane, caseNo, seed, m, () => conn.sawReply(probeCookie), probe, count);
  }
}
