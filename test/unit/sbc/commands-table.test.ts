import { describe, expect, it } from 'vitest';
import { sbcCommands, sbcBlockLimits } from '../../../src/core/sbc-commands.js';

describe('sbcCommands table', () => {
  it('every spec has a usage map of its CDB length starting with its opcode, and is unique', () => {
    const keys = new Set<string>();
    for (const s of sbcCommands) {
      expect(s.usage.length, s.name).toBe(s.cdbLength);
      expect(s.usage[0], s.name).toBe(s.opcode);
      if (s.serviceAction !== undefined) expect(s.usage[1] & 0x1f, s.name).toBe(0x1f);
      const key = `${s.opcode}/${s.serviceAction ?? '-'}`;
      expect(keys.has(key), s.name).toBe(false);
      keys.add(key);
    }
    expect(keys.size).toBe(sbcCommands.length);
  });

  it('transfer lengths follow the CDB (READ(6) 0 = 256 blocks, WRITE SAME one block or none with NDOB)', () => {
    const get = (op: number) => sbcCommands.find((s) => s.opcode === op)!;
    expect(get(0x08).transferLength(Buffer.from([0x08, 0, 0, 0, 0, 0]), 512)).toBe(256 * 512);
    expect(get(0x28).transferLength(Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0]), 512)).toBe(0x102 * 512);
    const ws16 = Buffer.alloc(16);
    ws16[0] = 0x93;
    ws16[13] = 9;
    expect(get(0x93).transferLength(ws16, 4096)).toBe(4096);
    ws16[1] = 0x01;
    expect(get(0x93).transferLength(ws16, 4096)).toBe(0);
    const caw = Buffer.alloc(16);
    caw[0] = 0x89;
    caw[13] = 3;
    expect(get(0x89).transferLength(caw, 512)).toBe(6 * 512);
    const verify = Buffer.from([0x2f, 0x00, 0, 0, 0, 0, 0, 0, 4, 0]);
    expect(get(0x2f).transferLength(verify, 512)).toBe(0);
    verify[1] = 0x02;
    expect(get(0x2f).transferLength(verify, 512)).toBe(4 * 512);
    verify[1] = 0x06;
    expect(get(0x2f).transferLength(verify, 512)).toBe(512);
  });

  it('DPO/FUA are advertised for the commands that honour them', () => {
    for (const op of [0x28, 0x88, 0x2a, 0x8a, 0x8b, 0x89]) {
      const s = sbcCommands.find((c) => c.opcode === op)!;
      expect(s.usage[1] & 0x18, s.name).toBe(0x18);
    }
  });

  it('block limits scale with the block size', () => {
    expect(sbcBlockLimits(512).maxTransferLength).toBe(65536);
    expect(sbcBlockLimits(4096).maxTransferLength).toBe(8192);
    expect(sbcBlockLimits(512).maxCompareAndWriteLength).toBe(255);
    expect(sbcBlockLimits(512).maxUnmapLbaCount).toBeLessThanOrEqual(1024 * 1024);
  });
});
