import { describe, expect, it } from 'vitest';
import { CmdSnWindow } from '../../../src/fabrics/iscsi/cmdsn.js';

describe('CmdSnWindow (RFC 7143 §3.2.2.1)', () => {
  it('starts with [initial, initial + depth - 1]', () => {
    const w = new CmdSnWindow<string>(10, 4);
    expect(w.expCmdSN).toBe(10);
    expect(w.maxCmdSN).toBe(13);
    expect(w.windowSize()).toBe(4);
  });

  it('delivers in order and advances ExpCmdSN', () => {
    const w = new CmdSnWindow<string>(1, 8);
    expect(w.offer(1, 'a')).toEqual({ verdict: 'deliver', ready: ['a'] });
    expect(w.expCmdSN).toBe(2);
  });

  it('holds a command ahead of ExpCmdSN until the gap closes', () => {
    const w = new CmdSnWindow<string>(1, 8);
    expect(w.offer(3, 'c')).toEqual({ verdict: 'queued', ready: [] });
    expect(w.offer(2, 'b')).toEqual({ verdict: 'queued', ready: [] });
    expect(w.queued).toBe(2);
    expect(w.offer(1, 'a')).toEqual({ verdict: 'deliver', ready: ['a', 'b', 'c'] });
    expect(w.expCmdSN).toBe(4);
    expect(w.queued).toBe(0);
  });

  it('drops CmdSN below ExpCmdSN (too low) and above MaxCmdSN (too high)', () => {
    const w = new CmdSnWindow<string>(100, 4);
    expect(w.offer(99, 'low').verdict).toBe('drop');
    expect(w.offer(104, 'high').verdict).toBe('drop');
    expect(w.offer(103, 'edge').verdict).toBe('queued');
    expect(w.expCmdSN).toBe(100);
  });

  it('drops a duplicate of a queued CmdSN', () => {
    const w = new CmdSnWindow<string>(1, 8);
    w.offer(3, 'x');
    expect(w.offer(3, 'y').verdict).toBe('drop');
  });

  it('wraps around 2^32 with serial arithmetic', () => {
    const w = new CmdSnWindow<string>(0xfffffffe, 4);
    expect(w.maxCmdSN).toBe(1);
    expect(w.offer(0xfffffffe, 'a').ready).toEqual(['a']);
    expect(w.offer(0xffffffff, 'b').ready).toEqual(['b']);
    expect(w.offer(0, 'c').ready).toEqual(['c']);
    expect(w.expCmdSN).toBe(1);
    expect(w.offer(0xfffffff0, 'old').verdict).toBe('drop');
  });

  it('shrinks the free window while commands are in flight and never moves MaxCmdSN back', () => {
    const w = new CmdSnWindow<string>(1, 2);
    expect(w.maxCmdSN).toBe(2);
    w.offer(1, 'a');
    w.started();
    w.offer(2, 'b');
    w.started();
    // Both slots taken: ExpCmdSN 3, MaxCmdSN stays 2 (window closed).
    expect(w.refresh()).toBe(2);
    expect(w.offer(3, 'c').verdict).toBe('drop');
    w.finished();
    expect(w.maxCmdSN).toBe(3);
    w.finished();
    expect(w.maxCmdSN).toBe(4);
    expect(w.inFlight).toBe(0);
  });

  it('RefCmdSN rule for ABORT TASK on a task never received (§11.5.1 b/c)', () => {
    const w = new CmdSnWindow<string>(5, 8);
    expect(w.refCmdSnPending(6, 7)).toBe(true);
    expect(w.refCmdSnPending(7, 7)).toBe(false);
    expect(w.refCmdSnPending(4, 7)).toBe(false);
  });
});
