// Throughput of the backstore `lunkit attach iscsi://` serves from (an
// initiator session, src/backstores/iscsi), without FUSE in the way: a fixed
// number of READ(16)/WRITE(16) in flight for a fixed time. Used by
// bench/initiator (src/tools/bench-initiator.ts), which may not import the
// initiator itself (.dependency-cruiser.cjs: only cli and backstores/iscsi do).

import { randomBytes } from 'node:crypto';
import { AttachError } from './errors.js';
import { IscsiBackstore } from '../backstores/iscsi/iscsi.js';

export interface ThroughputJob {
  name: string;
  /** Bytes per command. */
  ioSize: number;
  /** Commands in flight. */
  depth: number;
  op: 'read' | 'write';
  /** Random offsets (aligned to ioSize) instead of sequential ones. */
  random: boolean;
}

export interface ThroughputResult {
  job: string;
  seconds: number;
  ios: number;
  bytes: number;
  mbps: number;
  iops: number;
  /** Connections the session really has (the target may grant fewer than asked). */
  connections: number;
}

export interface ThroughputOptions {
  url: string;
  connections?: number | undefined;
  errorRecoveryLevel?: number | undefined;
  seconds: number;
  /** Bytes of the LUN to use from its start (default: all of it). */
  span?: number | undefined;
  jobs: ThroughputJob[];
}

/** Logs in once, runs every job for `seconds` each, logs out. */
export async function measureIscsiThroughput(o: ThroughputOptions): Promise<ThroughputResult[]> {
  const store = await IscsiBackstore.open({ url: o.url, connections: o.connections, errorRecoveryLevel: o.errorRecoveryLevel, session: { keepaliveIntervalMs: 0 } });
  try {
    const span = Math.min(o.span ?? store.size, store.size);
    const connections = store.sessionInfo().connections.length;
    const out: ThroughputResult[] = [];
    for (const job of o.jobs) {
      const slots = Math.floor(span / job.ioSize);
      if (slots < 1) throw new AttachError('ERR_ATTACH_SOURCE', `the LUN (${span} bytes) is smaller than one ${job.ioSize}-byte I/O`);
      const payload = randomBytes(job.ioSize);
      let next = 0;
      let ios = 0;
      const t0 = performance.now();
      const until = t0 + o.seconds * 1000;
      const worker = async (): Promise<void> => {
        const buf = job.op === 'read' ? Buffer.allocUnsafe(job.ioSize) : payload;
        while (performance.now() < until) {
          const slot = job.random ? Math.floor(Math.random() * slots) : next++ % slots;
          if (job.op === 'read') await store.read(buf, slot * job.ioSize);
          else await store.write(buf, slot * job.ioSize);
          ios++;
        }
      };
      await Promise.all(Array.from({ length: job.depth }, worker));
      const seconds = (performance.now() - t0) / 1000;
      const bytes = ios * job.ioSize;
      out.push({ job: job.name, seconds, ios, bytes, mbps: bytes / 1e6 / seconds, iops: ios / seconds, connections });
    }
    await store.flush();
    return out;
  } finally {
    await store.close();
  }
}
