// Reads the output of libiscsi's iscsi-test-cu and counts what really passed.
// CUnit counts a test that printed "[SKIPPED]" as passed; we do not: a skip
// says the target lacks something, and the conformance floor is about real
// passes. Output shape (verbose mode, the default):
//
//   Suite: GetLBAStatus
//     Test: Simple ...passed
//     Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but ...
//   FAILED
//       1. test_get_lba_status_beyond_eol.c:38  - CU_ASSERT_EQUAL(_r,0)
//     Test: UnmapSingle ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
//   passed

export type CuOutcome = 'passed' | 'skipped' | 'failed';

export interface CuTestResult {
  suite: string;
  test: string;
  outcome: CuOutcome;
  /** The [SKIPPED]/[FAILED] messages and CUnit assertion lines, for the report. */
  reasons: string[];
}

export interface CuSummary {
  tests: number;
  passed: number;
  skipped: number;
  failed: number;
  results: CuTestResult[];
}

const TEST_START = /^\s*Test: (\S+) \.\.\.(.*)$/;
const SUITE = /^Suite: (\S+)/;

export function parseCuOutput(text: string): CuSummary {
  const results: CuTestResult[] = [];
  let suite = '';
  let cur: { test: string; lines: string[] } | undefined;

  const finish = (verdict: 'passed' | 'failed'): void => {
    if (!cur) return;
    const skipLines = cur.lines.filter((l) => l.includes('[SKIPPED]'));
    const failLines = cur.lines.filter((l) => l.includes('[FAILED]') || /^\s+\d+\. \S+:\d+/.test(l));
    const outcome: CuOutcome = verdict === 'failed' ? 'failed' : skipLines.length ? 'skipped' : 'passed';
    const reasons = (outcome === 'failed' ? failLines : outcome === 'skipped' ? skipLines : []).map((l) => l.trim());
    results.push({ suite, test: cur.test, outcome, reasons: [...new Set(reasons)] });
    cur = undefined;
  };

  for (const line of text.split('\n')) {
    const s = SUITE.exec(line);
    if (s) {
      finish('passed');
      suite = s[1];
      continue;
    }
    const t = TEST_START.exec(line);
    if (t) {
      finish('passed');
      cur = { test: t[1], lines: [] };
      const rest = t[2];
      if (/passed\s*$/.test(rest) && !rest.includes('[')) {
        finish('passed');
      } else if (/^\s*FAILED\s*$/.test(rest)) {
        finish('failed');
      } else {
        cur.lines.push(rest);
      }
      continue;
    }
    if (!cur) {
      // Assertion detail lines after a FAILED verdict belong to the last test.
      const last = results[results.length - 1];
      if (last?.outcome === 'failed' && /^\s+\d+\. \S+:\d+/.test(line)) last.reasons.push(line.trim());
      if (/^Run Summary:/.test(line)) break;
      continue;
    }
    if (/^passed\s*$/.test(line)) finish('passed');
    else if (/^FAILED\s*$/.test(line)) finish('failed');
    else if (/^Run Summary:/.test(line)) {
      finish('failed'); // a test cut off by a crash of the tool is not a pass
      break;
    } else cur.lines.push(line);
  }
  if (cur) results.push({ suite, test: cur.test, outcome: 'failed', reasons: ['iscsi-test-cu stopped during this test', ...cur.lines.slice(-3).map((l) => l.trim())] });

  const count = (o: CuOutcome): number => results.filter((r) => r.outcome === o).length;
  return { tests: results.length, passed: count('passed'), skipped: count('skipped'), failed: count('failed'), results };
}

export function formatCuSummary(s: CuSummary): string {
  const lines = [`tests ${s.tests}: passed ${s.passed}, skipped ${s.skipped}, failed ${s.failed}`];
  for (const o of ['failed', 'skipped'] as const) {
    const list = s.results.filter((r) => r.outcome === o);
    if (!list.length) continue;
    lines.push(`${o}:`);
    for (const r of list) lines.push(`  ${r.suite}.${r.test}: ${r.reasons[0] ?? ''}`);
  }
  return lines.join('\n');
}
