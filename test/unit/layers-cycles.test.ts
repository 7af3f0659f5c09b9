// No import cycles in src/, type-only imports included (issue 13): a module
// that names its owner's type, even only for the compiler, ties the two
// together. Handlers name narrow host interfaces instead (e.g.
// src/fabrics/iscsi/hosts.ts). This keeps the rule strict and names any
// cycle it finds.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

interface Rule {
  name: string;
  to: Record<string, unknown>;
}

describe('import cycles', () => {
  it('the no-circular rule counts type-only imports (no viaOnly exemption)', () => {
    const config = require('../../.dependency-cruiser.cjs') as { forbidden: Rule[] };
    const rule = config.forbidden.find((r) => r.name === 'no-circular');
    expect(rule?.to).toEqual({ circular: true });
  });

  it('dependency-cruiser finds no cycle in src/', async () => {
    const { stdout } = await run('npx', ['depcruise', 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], {
      timeout: 60_000,
      maxBuffer: 64 << 20,
    });
    const res = JSON.parse(stdout) as {
      summary: { totalCruised: number; violations: Array<{ from: string; rule: { name: string }; cycle?: unknown[] }> };
    };
    expect(res.summary.totalCruised).toBeGreaterThan(30);
    const cycles = res.summary.violations.filter((v) => v.rule.name === 'no-circular').map((v) => ({ from: v.from, cycle: v.cycle }));
    expect(cycles).toEqual([]);
  });
});
