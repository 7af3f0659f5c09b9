import { describe, expect, it } from 'vitest';
import { formatCuSummary, parseCuOutput } from '../../../src/tools/cu-report.js';

// Trimmed from a real `iscsi-test-cu -d ... -t ALL` run against tgtd 1.0.85.
const SAMPLE = `
     CUnit - A unit testing framework for C - Version 2.1-3
     http://cunit.sourceforge.net/

Suite: CompareAndWrite
  Test: Simple ...passed
  Test: Miscompare ...passed
Suite: GetLBAStatus
  Test: Simple ...passed
  Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but should have failed with ILLEGAL_REQUEST(0x05)/LBA_OUT_OF_RANGE(0x2100)
FAILED
    1. test_get_lba_status_beyond_eol.c:38  - CU_ASSERT_EQUAL(_r,0)
  Test: UnmapSingle ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
passed
Suite: Reserve6
  Test: 2Initiators ...
    Test we can still send MODE SENSE from the first initiator
    [FAILED] MODESENSE6 successful but should have failed with NO SENSE(0x00)/NO ASCQ(0x0000)
    RELEASE6 from the second initiator
FAILED
    1. test_reserve6_2initiators.c:92  - CU_ASSERT_EQUAL(ret,0)
  Test: Logout ...
    [SKIPPED] partly
    more text
passed
  Test: Simple ...passed

Run Summary:    Type  Total    Ran Passed Failed Inactive
              suites     51     51    n/a      0        0
               tests    230    230    222      8        0
`;

describe('parseCuOutput', () => {
  it('counts a [SKIPPED] test as skipped, not passed', () => {
    const s = parseCuOutput(SAMPLE);
    expect({ tests: s.tests, passed: s.passed, skipped: s.skipped, failed: s.failed }).toEqual({ tests: 8, passed: 4, skipped: 2, failed: 2 });
    expect(s.results.find((r) => r.test === 'UnmapSingle')).toMatchObject({ suite: 'GetLBAStatus', outcome: 'skipped' });
    expect(s.results.find((r) => r.test === 'Simple' && r.suite === 'Reserve6')?.outcome).toBe('passed');
  });

  it('keeps failure reasons, including the CUnit assertion line', () => {
    const s = parseCuOutput(SAMPLE);
    const f = s.results.find((r) => r.test === 'BeyondEol')!;
    expect(f.reasons[0]).toMatch(/^\[FAILED\] GET_LBA_STATUS successful/);
    expect(f.reasons).toContain('1. test_get_lba_status_beyond_eol.c:38  - CU_ASSERT_EQUAL(_r,0)');
  });

  it('treats a test cut off by a crash as failed', () => {
    const s = parseCuOutput('Suite: X\n  Test: A ...passed\n  Test: B ...\n    doing things\n');
    expect(s.failed).toBe(1);
    expect(s.results[1].reasons[0]).toMatch(/stopped/);
  });

  it('prints the summary line the issue asks for, then failures and skips', () => {
    const out = formatCuSummary(parseCuOutput(SAMPLE));
    expect(out.split('\n')[0]).toBe('tests 8: passed 4, skipped 2, failed 2');
    expect(out).toMatch(/failed:\n {2}GetLBAStatus\.BeyondEol: \[FAILED\]/);
    expect(out).toMatch(/skipped:\n {2}GetLBAStatus\.UnmapSingle: \[SKIPPED\] Logical unit is fully provisioned/);
  });
});
