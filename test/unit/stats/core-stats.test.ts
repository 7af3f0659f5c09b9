// Core statistics: the log-linear histogram (bucket bounds computed by hand),
// per-LU and per-nexus counters through the loopback fabric, check
// conditions by sense key, TMF counts, and lunkit:core:* events.

import diagnostics_channel from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';

import {
  CoreChannel,
  LATENCY_BUCKETS,
  LatencyHistogram,
  bucketLowerUs,
  bucketUpperUs,
  diffBuckets,
  latencyBucket,
  quantileUs,
  senseKeyOf,
  type StatsEvent,
} from '../../../src/core/stats.js';
import { harness, read10, write10 } from '../core/helpers.js';

describe('latency histogram', () => {
  it('puts values in hand-computed buckets', () => {
    // 0..15 us: one bucket each.
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(15.9)).toBe(15);
    // 16..31: exponent 4, sub-bucket = v - 16 -> 16..31.
    expect(latencyBucket(16)).toBe(16);
    expect(latencyBucket(31)).toBe(31);
    // 100 = 0b1100100: exponent 6, top 4 bits after the leading one = 1001 -> 3*16 + 9 = 57, range [100, 104).
    expect(latencyBucket(100)).toBe(57);
    expect(latencyBucket(103)).toBe(57);
    expect(latencyBucket(104)).toBe(58);
    expect(bucketLowerUs(57)).toBe(100);
    expect(bucketUpperUs(57)).toBe(104);
    // 1 s = 1e6 us: exponent 19, (1e6 >> 15) & 15 = 30 & 15 = 14 -> 16*16 + 14 = 270.
    expect(latencyBucket(1e6)).toBe(270);
    expect(latencyBucket(-5)).toBe(0);
    expect(latencyBucket(1e12)).toBe(LATENCY_BUCKETS - 1);
  });

  it('every bucket is at most 1/16 of its value wide and they tile the range', () => {
    for (let i = 1; i < LATENCY_BUCKETS; i++) {
      expect(bucketLowerUs(i)).toBe(bucketUpperUs(i - 1));
      expect(latencyBucket(bucketLowerUs(i))).toBe(i);
      expect(latencyBucket(bucketUpperUs(i) - 1)).toBe(i);
      if (i >= 16) expect((bucketUpperUs(i) - bucketLowerUs(i)) / bucketLowerUs(i)).toBeLessThanOrEqual(1 / 16);
    }
  });

  it('gives mean, p99 and max, and diffs between snapshots', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 99; i++) h.record(10);
    h.record(5000);
    const a = h.snapshot();
    expect(a.count).toBe(100);
    expect(a.meanUs).toBe(Math.round((99 * 10 + 5000) / 100));
    expect(a.p99Us).toBe(11); // the 99th value is 10: its bucket [10, 11)
    expect(quantileUs(a.buckets, 1)).toBe(bucketUpperUs(latencyBucket(5000)));
    expect(a.maxUs).toBe(5000);
    h.record(5000);
    const d = diffBuckets(h.snapshot().buckets, a.buckets);
    expect(d).toEqual([[latencyBucket(5000), 1]]);
    expect(quantileUs([], 0.99)).toBe(0);
  });

  it('reads the sense key from fixed and descriptor sense', () => {
    expect(senseKeyOf(Buffer.from([0x70, 0, 0x05, 0, 0, 0, 0, 10]))).toBe(5);
    expect(senseKeyOf(Buffer.from([0x72, 0x06, 0x29, 0x00]))).toBe(6);
    expect(senseKeyOf(Buffer.alloc(1))).toBe(0);
  });
});

describe('core counters', () => {
  it('counts commands, bytes, errors and in-flight per LU and per nexus', async () => {
    const h = harness({ size: 1 << 20 });
    const n = await h.connect(); // consumes the POWER ON unit attention with TEST UNIT READY
    const before = h.core.statsSnapshot();
    const lun0 = before.luns[0];
    expect(lun0).toMatchObject({ name: 'mem0', backstore: 'memory', sizeBytes: 1 << 20, blockSize: 512 });
    expect(lun0.checkConditions).toEqual({ UNIT_ATTENTION: 1 });

    expect((await n.command(0, read10(0, 8), { expectedLength: 4096 })).status).toBe(0);
    expect((await n.command(0, write10(8, 2), { dataOut: Buffer.alloc(1024, 7) })).status).toBe(0);
    // Beyond the end: ILLEGAL REQUEST.
    expect((await n.command(0, read10(1 << 20, 1), { expectedLength: 512 })).status).toBe(2);
    // An unmapped LUN counts on the nexus only.
    await n.command(5, read10(0, 1), { expectedLength: 512 });

    // Hold I/O to see a command in flight.
    const release = h.store.hold();
    const pending = n.command(0, read10(0, 1), { expectedLength: 512 });
    await new Promise((r) => setTimeout(r, 10));
    const mid = h.core.statsSnapshot();
    expect(mid.luns[0].inFlight).toBe(1);
    expect(mid.nexuses[0].inFlight).toBe(1);
    release();
    await pending;

    const s = h.core.statsSnapshot();
    const l = s.luns[0];
    const x = s.nexuses[0];
    expect(l.commands - lun0.commands).toBe(4);
    expect(l.readBytes - lun0.readBytes).toBe(4096 + 512);
    expect(l.writtenBytes).toBe(1024);
    expect(l.writes).toBe(1);
    expect(l.inFlight).toBe(0);
    expect(l.checkConditions).toEqual({ UNIT_ATTENTION: 1, ILLEGAL_REQUEST: 1 });
    expect(l.latency.count).toBe(l.commands);
    expect(x.commands).toBe(l.commands + 1);
    expect(x.checkConditions.ILLEGAL_REQUEST).toBe(2);
    expect(x).toMatchObject({ fabric: 'loopback', luns: [0] });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('counts task management per function and publishes events only to subscribers', async () => {
    const h = harness();
    const events: StatsEvent[] = [];
    const onEvent = (m: unknown): void => {
      events.push(m as StatsEvent);
    };
    for (const c of Object.values(CoreChannel)) diagnostics_channel.subscribe(c, onEvent);
    try {
      const n = await h.connect();
      expect(await n.tmf('lun-reset', 0)).toBe('function-complete');
      expect(await n.tmf('abort-task-set', 0)).toBe('function-complete');
      const s = h.core.statsSnapshot();
      expect(s.luns[0].taskManagement).toEqual({ 'lun-reset': 1, 'abort-task-set': 1 });
      expect(s.nexuses[0].taskManagement).toEqual({ 'lun-reset': 1, 'abort-task-set': 1 });
      n.close();
      h.core.capacityChanged(h.dev);
      await h.core.removeDevice(h.dev);
      const mine = events.filter((e) => e.fields.nexus === n.handle.id || e.fields.device === 'mem0');
      expect(mine.map((e) => e.channel)).toEqual([
        CoreChannel.NEXUS_OPEN,
        CoreChannel.TMF,
        CoreChannel.TMF,
        CoreChannel.NEXUS_CLOSE,
        CoreChannel.LUN_CHANGE,
        CoreChannel.LUN_CHANGE,
      ]);
      expect(mine[1]).toMatchObject({ severity: 'warn', fields: { fn: 'lun-reset', lun: 0, response: 'function-complete' } });
      expect(mine[5].fields).toMatchObject({ change: 'removed' });
      expect(typeof mine[0].text).toBe('string');
    } finally {
      for (const c of Object.values(CoreChannel)) diagnostics_channel.unsubscribe(c, onEvent);
    }
  });
});
