// dependency-cruiser enforces the layers in ./scripts/test.sh. A TypeScript it
// cannot read makes it check 0 modules and still report success
// (ECOSYSTEM.md), so this test makes sure it really saw the tree.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('layer rules', () => {
  it('dependency-cruiser sees every source module and finds no violation', async () => {
    const { stdout } = await run('npx', ['depcruise', 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], {
      timeout: 60_000,
      maxBuffer: 64 << 20,
    });
    const res = JSON.parse(stdout) as { summary: { totalCruised: number; violations: unknown[] } };
    expect(res.summary.totalCruised).toBeGreaterThan(30);
    expect(res.summary.violations).toEqual([]);
  });
});
