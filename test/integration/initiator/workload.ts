// A write/verify workload for the recovery tests: random data, sha256 of
// every block remembered, each write read back and compared; a final pass
// re-reads every block written. UNIT ATTENTION (a new I_T nexus after a
// reinstatement) is retried, as a SCSI midlayer does.
import { createHash, randomBytes } from 'node:crypto';
import { read16, write16, type IscsiSession, type ScsiReply } from './api.js';

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

export interface WorkloadOptions {
  /** LUN size in bytes and I/O size. */
  size: number;
  io: number;
  blockSize?: number;
  depth: number;
  /** Run this long (ms), or `count` rounds per worker. */
  ms?: number;
  count?: number;
}

export interface WorkloadResult {
  /** Write+verify rounds completed. */
  rounds: number;
  /** Problems seen (non-GOOD status, mismatches, rejections); empty when all is well. */
  errors: string[];
  /** sha256 of every block written, by block index. */
  truth: Map<number, string>;
}

async function retryUa<T>(op: () => Promise<ScsiReply<T>>): Promise<ScsiReply<T>> {
  let r = await op();
  for (let k = 0; k < 3 && !r.ok && r.sense?.key === 6; k++) r = await op();
  return r;
}

export async function writeVerify(s: IscsiSession, o: WorkloadOptions): Promise<WorkloadResult> {
  const bs = o.blockSize ?? 512;
  const blocks = o.size / o.io;
  const perWorker = Math.floor(blocks / o.depth);
  const truth = new Map<number, string>();
  const errors: string[] = [];
  let rounds = 0;
  const end = Date.now() + (o.ms ?? 1e9);
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; Date.now() < end && (o.count === undefined || i < o.count); i++) {
      // Each worker owns its own blocks: no two writes race on one block.
      const blk = w + o.depth * ((i * 7) % perWorker);
      const data = randomBytes(o.io);
      try {
        const wr = await retryUa(() => write16(s, 0, (blk * o.io) / bs, data, { blockSize: bs }));
        if (!wr.ok) {
          errors.push(`write ${blk}: ${JSON.stringify(wr, big)}`);
          continue;
        }
        truth.set(blk, sha(data));
        const rd = await retryUa(() => read16(s, 0, (blk * o.io) / bs, o.io / bs, { blockSize: bs }));
        if (!rd.ok) errors.push(`read ${blk}: ${JSON.stringify(rd, big)}`);
        else if (sha(rd.value) !== truth.get(blk)) errors.push(`block ${blk}: data differs after write`);
        rounds++;
      } catch (err) {
        errors.push(`block ${blk}: ${(err as Error).message}`);
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: o.depth }, (_, w) => worker(w)));
  return { rounds, errors, truth };
}

/** Read back every block in `truth` and list the ones whose sha256 differs. */
export async function verifyAll(s: IscsiSession, truth: Map<number, string>, io: number, blockSize = 512): Promise<string[]> {
  const bad: string[] = [];
  for (const [blk, want] of truth) {
    const rd = await retryUa(() => read16(s, 0, (blk * io) / blockSize, io / blockSize, { blockSize }));
    if (!rd.ok || sha(rd.value) !== want) bad.push(`block ${blk}`);
  }
  return bad;
}

/** Runs `fn(0)`, `fn(1)` ... `fn(count - 1)` with at most `depth` calls in flight. */
export async function inFlightPool(count: number, depth: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: depth }, worker));
}
