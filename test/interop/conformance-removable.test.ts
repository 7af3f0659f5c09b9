// The removable-medium suites of iscsi-test-cu (PreventAllow, StartStopUnit,
// NoMedia) skip against a disk LUN; lunkit can serve a removable medium
// (backstore option "removable"), and these runs check it behaves.
import { describe, expect, it } from 'vitest';
import { formatCuSummary } from '../../src/tools/cu-report.js';
import { runConformance } from '../../src/tools/conformance.js';

describe('iscsi-test-cu removable-medium suites against a removable thin file LUN', () => {
  // A disk LUN is not removable, so ALL skips these; lunkit can serve a
  // removable medium (backstore option "removable"), and this checks it.
  it.each(['ALL.PreventAllow', 'ALL.StartStopUnit', 'ALL.NoMedia'])('%s: every test really passes', async (suite) => {
    const s = await runConformance({ test: suite, removable: true, timeoutMs: 120_000 });
    console.log(formatCuSummary(s));
    expect(s.tests).toBeGreaterThan(0);
    expect(s.results.filter((r) => r.outcome !== 'passed').map((r) => `${r.suite}.${r.test}: ${r.reasons.join(' | ')}`)).toEqual([]);
  });
});
