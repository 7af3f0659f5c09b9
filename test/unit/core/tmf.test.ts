import { describe, expect, it } from 'vitest';
import { MutableLunMap } from '../../../src/fabrics/loopback/index.js';
import { MemoryBackstore, TUR, harness, read10, senseOf, write10 } from './helpers.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('task attributes', () => {
  it('ORDERED waits for earlier tasks and later SIMPLE tasks wait for it; HEAD OF QUEUE does not wait', async () => {
    const h = harness();
    const n = await h.connect();
    const order: string[] = [];
    const release = h.store.hold();
    const s1 = n.send(0, read10(0, 1), { expectedLength: 512 });
    await tick();
    const o = n.send(0, TUR, { attr: 'ordered', expectedLength: 0 });
    const s2 = n.send(0, TUR, { expectedLength: 0 });
    const hq = n.send(0, TUR, { attr: 'head-of-queue', expectedLength: 0 });
    s1.response.then(() => order.push('s1'));
    o.response.then(() => order.push('ordered'));
    s2.response.then(() => order.push('s2'));
    hq.response.then(() => order.push('hoq'));
    await tick();
    await tick();
    expect(order).toEqual(['hoq']);
    release();
    await Promise.all([s1.response, o.response, s2.response]);
    expect(order).toEqual(['hoq', 's1', 'ordered', 's2']);
  });
});

describe('task management', () => {
  it('ABORT TASK of a running task: no response for it, FUNCTION COMPLETE after it ended', async () => {
    const h = harness();
    const n = await h.connect();
    const release = h.store.hold();
    const w = n.send(0, write10(0, 8), { dataOut: Buffer.alloc(4096) });
    await tick();
    let tmfDone = false;
    const tmf = n.tmf('abort-task', 0, w.tag).then((r) => {
      tmfDone = true;
      return r;
    });
    await tick();
    expect(tmfDone).toBe(false); // waits for the task to terminate
    release();
    expect(await tmf).toBe('function-complete');
    expect((await w.response).aborted).toBe(true);
  });

  it('ABORT TASK of a finished task says TASK DOES NOT EXIST; QUERY TASK', async () => {
    const h = harness();
    const n = await h.connect();
    const r = n.send(0, TUR);
    await r.response;
    expect(await n.tmf('abort-task', 0, r.tag)).toBe('task-does-not-exist');
    const release = h.store.hold();
    const q = n.send(0, read10(0, 1), { expectedLength: 512 });
    await tick();
    expect(await n.tmf('query-task', 0, q.tag)).toBe('function-succeeded');
    expect(await n.tmf('query-task-set', 0)).toBe('function-succeeded');
    release();
    await q.response;
    expect(await n.tmf('query-task', 0, q.tag)).toBe('function-complete');
    expect(await n.tmf('query-task', 7, q.tag)).toBe('incorrect-lun');
  });

  it('a task waiting behind an ORDERED task is aborted at once', async () => {
    const h = harness();
    const n = await h.connect();
    const release = h.store.hold();
    const first = n.send(0, read10(0, 1), { expectedLength: 512, attr: 'ordered' });
    await tick();
    const waiting = n.send(0, TUR, { expectedLength: 0 });
    await tick();
    expect(await n.tmf('abort-task', 0, waiting.tag)).toBe('function-complete');
    expect((await waiting.response).aborted).toBe(true);
    release();
    expect((await first.response).status).toBe(0);
  });

  it('LUN RESET aborts every task, releases RESERVE(6) and raises BUS DEVICE RESET on every nexus', async () => {
    const h = harness();
    const a = await h.connect();
    const b = await h.connect();
    expect((await a.command(0, [0x16, 0, 0, 0, 0, 0])).status).toBe(0);
    const release = h.store.hold();
    const inflight = a.send(0, read10(0, 1), { expectedLength: 512 });
    await tick();
    const reset = a.tmf('lun-reset', 0);
    await tick();
    release();
    expect(await reset).toBe('function-complete');
    expect((await inflight.response).aborted).toBe(true);
    for (const n of [a, b]) {
      const r = await n.command(0, TUR);
      expect(senseOf(r.sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0x03 });
      expect((await n.command(0, TUR)).status).toBe(0);
    }
    // The reservation is gone.
    expect((await b.command(0, read10(0, 1), { expectedLength: 512 })).status).toBe(0);
  });

  it('ABORT TASK SET only touches the issuing nexus; CLEAR TASK SET clears all with UA for the others', async () => {
    const h = harness();
    const a = await h.connect();
    const b = await h.connect();
    let release = h.store.hold();
    const ta = a.send(0, read10(0, 1), { expectedLength: 512 });
    const tb = b.send(0, read10(0, 1), { expectedLength: 512 });
    await tick();
    const ats = a.tmf('abort-task-set', 0);
    await tick();
    release();
    expect(await ats).toBe('function-complete');
    expect((await ta.response).aborted).toBe(true);
    expect((await tb.response).status).toBe(0);

    release = h.store.hold();
    const tb2 = b.send(0, read10(0, 1), { expectedLength: 512 });
    await tick();
    const cts = a.tmf('clear-task-set', 0);
    await tick();
    release();
    expect(await cts).toBe('function-complete');
    expect((await tb2.response).aborted).toBe(true);
    expect(senseOf((await b.command(0, TUR)).sense)).toMatchObject({ key: 6, asc: 0x2f, ascq: 0 });
  });

  it('I_T NEXUS RESET and target resets', async () => {
    const h = harness();
    const a = await h.connect();
    const b = await h.connect();
    expect((await a.command(0, [0x16, 0, 0, 0, 0, 0])).status).toBe(0);
    expect(await a.tmf('it-nexus-reset', 0)).toBe('function-complete');
    expect(senseOf((await a.command(0, TUR)).sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0x07 });
    expect((await b.command(0, read10(0, 1), { expectedLength: 512 })).status).toBe(0);
    expect(await b.tmf('target-warm-reset', 0)).toBe('function-complete');
    for (const n of [a, b]) expect(senseOf((await n.command(0, TUR)).sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0 });
    expect(await a.tmf('target-cold-reset', 0)).toBe('function-complete');
    expect(await a.tmf('clear-aca', 0)).toBe('function-rejected');
  });

  it('QUERY ASYNCHRONOUS EVENT reports a pending unit attention', async () => {
    const h = harness();
    const n = await h.connect();
    expect(await n.tmf('query-async-event', 0)).toBe('function-complete');
    h.core.capacityChanged(h.dev);
    expect(await n.tmf('query-async-event', 0)).toBe('function-succeeded');
  });
});

describe('target resets stay inside their target', () => {
  // One daemon hosts many targets (and NBD/FUSE): a target reset sent through
  // one must not reach the LUs or sessions of another (the live fuzzer's
  // finding: a cold reset from any initiator ended every nexus of the daemon).
  it('WARM RESET: UA on the LUs of the issuer target only; COLD RESET: ends only that target\'s other nexuses', async () => {
    const h = harness();
    const otherDev = h.core.createDevice(new MemoryBackstore('mem1', 1024 * 1024, 512), { name: 'mem1' });
    const otherLuns = new MutableLunMap().set(0, otherDev);
    const a = h.fabric.connect({ luns: h.luns, isid: '1', targetName: 'iqn.t1' });
    const a2 = h.fabric.connect({ luns: h.luns, isid: '2', targetName: 'iqn.t1' });
    const b = h.fabric.connect({ luns: otherLuns, isid: '3', targetName: 'iqn.t2' });
    for (const n of [a, a2, b]) for (let i = 0; i < 10 && (await n.command(0, TUR)).status !== 0; i++);
    expect(await a.tmf('target-warm-reset', 0)).toBe('function-complete');
    expect(senseOf((await a2.command(0, TUR)).sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0 });
    expect((await b.command(0, TUR)).status).toBe(0);
    expect(await a.tmf('target-cold-reset', 0)).toBe('function-complete');
    expect(a2.closedByCore).toBe('target cold reset');
    expect(b.closedByCore).toBeUndefined();
    expect((await b.command(0, TUR)).status).toBe(0);
  });
});
