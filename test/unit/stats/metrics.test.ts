// Prometheus rendering of a hand-built snapshot, checked line by line by a
// parser written for the test.

import { describe, expect, it } from 'vitest';

import { escapeLabelValue, parseMetricsAddress, renderPrometheus } from '../../../src/daemon/metrics.js';
import { IQN, INITIATOR, snapshotAt } from '../dashboard/fixture.js';
import { parsePrometheus, sampleValue } from './prom-parser.js';

describe('renderPrometheus', () => {
  it('renders a snapshot the parser accepts, with the usual names', () => {
    const snap = snapshotAt(10, 1000);
    snap.core.luns[0].checkConditions = { ILLEGAL_REQUEST: 3 };
    snap.core.luns[0].taskManagement = { 'lun-reset': 2 };
    snap.iscsi!.totals.rejects = { PROTOCOL_ERROR: 4 };
    const text = renderPrometheus(snap);
    const fams = parsePrometheus(text);
    const lun0 = { target: IQN, lun: '0', backstore: 'disk0' };
    expect(fams.get('lunkit_lun_read_bytes_total')?.type).toBe('counter');
    expect(fams.get('lunkit_lun_read_bytes_total')?.help).not.toBe('');
    expect(sampleValue(fams, 'lunkit_lun_read_bytes_total', lun0)).toBe(1000 * 4096);
    expect(sampleValue(fams, 'lunkit_lun_commands_total', lun0)).toBe(1000);
    expect(sampleValue(fams, 'lunkit_lun_check_conditions_total', { ...lun0, sense_key: 'ILLEGAL_REQUEST' })).toBe(3);
    expect(sampleValue(fams, 'lunkit_lun_task_management_total', { ...lun0, function: 'lun-reset' })).toBe(2);
    expect(sampleValue(fams, 'lunkit_lun_size_bytes', { ...lun0, type: 'file' })).toBe(1 << 30);
    // 1000 reads of [100, 104) us: all under 250 us, none under 100 us.
    expect(fams.get('lunkit_lun_latency_seconds')?.type).toBe('histogram');
    expect(sampleValue(fams, 'lunkit_lun_latency_seconds_bucket', { ...lun0, le: '0.0001' })).toBe(0);
    expect(sampleValue(fams, 'lunkit_lun_latency_seconds_bucket', { ...lun0, le: '0.00025' })).toBe(1000);
    expect(sampleValue(fams, 'lunkit_lun_latency_seconds_count', lun0)).toBe(1000);
    expect(sampleValue(fams, 'lunkit_lun_latency_seconds_sum', lun0)).toBeCloseTo(0.1);
    expect(sampleValue(fams, 'lunkit_sessions', { fabric: 'iscsi', target: IQN })).toBe(1);
    expect(sampleValue(fams, 'lunkit_session_read_bytes_total', { initiator: INITIATOR })).toBe(1000 * 4096);
    expect(sampleValue(fams, 'lunkit_iscsi_rejects_total', { reason: 'PROTOCOL_ERROR' })).toBe(4);
    expect(sampleValue(fams, 'lunkit_iscsi_logins_total', { result: 'ok' })).toBe(1);
    expect(sampleValue(fams, 'lunkit_iscsi_sent_bytes_total')).toBe(1000 * 4144);
    expect(sampleValue(fams, 'lunkit_iscsi_digest_errors_total', { kind: 'header' })).toBe(0);
  });

  it('escapes label values so odd names survive the round trip', () => {
    const snap = snapshotAt(0, 0);
    const odd = 'we"ird\\name\nx';
    snap.core.nexuses[0].initiatorName = odd;
    const fams = parsePrometheus(renderPrometheus(snap));
    expect(sampleValue(fams, 'lunkit_session_commands_total', { initiator: odd })).toBe(0);
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  it('renders an empty daemon without an iSCSI fabric', () => {
    const fams = parsePrometheus(
      renderPrometheus({ version: 1, time: 0, core: { luns: [], nexuses: [] }, iscsi: null, events: [] }),
    );
    expect(fams.get('lunkit_lun_commands_total')?.samples).toEqual([]);
    expect(fams.has('lunkit_iscsi_logins_total')).toBe(false);
  });

  it('the test parser refuses broken expositions', () => {
    expect(() => parsePrometheus('a 1')).toThrow();
    expect(() => parsePrometheus('# TYPE a counter\na{x="1} 1\n')).toThrow();
    expect(() => parsePrometheus('# TYPE a counter\na{x="\\q"} 1\n')).toThrow();
    expect(() => parsePrometheus('# TYPE a counter\na one\n')).toThrow();
    expect(() => parsePrometheus('# TYPE a histogram\na_bucket{le="1"} 2\na_bucket{le="+Inf"} 1\na_sum 1\na_count 1\n')).toThrow();
    expect(() => parsePrometheus('# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n')).toThrow();
  });

  it('parses --metrics addresses', () => {
    expect(parseMetricsAddress('127.0.0.1:9470')).toEqual({ host: '127.0.0.1', port: 9470 });
    expect(parseMetricsAddress('[::1]:9470')).toEqual({ host: '::1', port: 9470 });
    expect(parseMetricsAddress(':9470')).toEqual({ host: '127.0.0.1', port: 9470 });
    expect(() => parseMetricsAddress('9470')).toThrow(/host:port/);
    expect(() => parseMetricsAddress('h:70000')).toThrow();
  });
});
