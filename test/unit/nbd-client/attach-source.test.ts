// nbd:// sources for attach/mount take --connections (multi-conn), not --erl;
// iscsi:// keeps both; other sources take neither.
import { describe, expect, it } from 'vitest';
import { NBD_ATTACH_CONNECTIONS, parseSource, withIscsiOptions, withSourceOptions } from '../../../src/attach/source.js';
import { planAttach } from '../../../src/attach/plan.js';

describe('nbd:// attach sources and --connections', () => {
  it('takes 1..64 connections and records them in the plan', () => {
    const s = parseSource('nbd://127.0.0.1/disk');
    expect(withSourceOptions(s, {})).toBe(s);
    const four = withSourceOptions(s, { connections: 8 });
    expect(four).toEqual({ kind: 'nbd', url: 'nbd://127.0.0.1/disk', connections: 8 });
    // The plan goes to the holder as JSON: the count survives.
    expect(JSON.parse(JSON.stringify(planAttach(four, {}))).source).toEqual(four);
    expect(() => withSourceOptions(s, { connections: 0 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(() => withSourceOptions(s, { connections: 65 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(() => withSourceOptions(s, { connections: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(() => withSourceOptions(s, { erl: 1 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(NBD_ATTACH_CONNECTIONS).toBe(4);
  });

  it('nbd+unix:// too; files refuse --connections; the old name still works', () => {
    expect(withSourceOptions(parseSource('nbd+unix:///d?socket=/tmp/s'), { connections: 2 })).toMatchObject({ kind: 'nbd', connections: 2 });
    expect(() => withSourceOptions(parseSource('/tmp/disk.img'), { connections: 2 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(withIscsiOptions).toBe(withSourceOptions);
    expect(withSourceOptions(parseSource('iscsi://h/iqn.x:y/1'), { connections: 2, erl: 1 })).toMatchObject({ connections: 2, errorRecoveryLevel: 1 });
  });
});
