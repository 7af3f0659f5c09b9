// The NBD part of the stats snapshot (NbdServer.stats()) as `lunkit stats`
// prints it and as Prometheus gauges and counters.
import { describe, expect, it } from 'vitest';
import { formatStatsTable } from '../../../src/cli/commands/stats.js';
import { renderPrometheus } from '../../../src/daemon/metrics.js';
import type { NbdServerStats } from '../../../src/fabrics/nbd/index.js';
import { snapshotAt } from '../dashboard/fixture.js';
import { parsePrometheus, sampleValue } from '../stats/prom-parser.js';

const nbd: NbdServerStats = {
  connections: 5,
  handshaking: 2,
  inFlight: 7,
  inFlightBytes: 96 * 1024 * 1024,
  queuedBytes: 3 * 1024 * 1024,
  paused: 1,
  handshakeTimeouts: 200,
  idleTimeouts: 3,
  tooManyOptions: 4,
  readPausesBackpressure: 11,
  readPausesBudget: 12,
  refusedTotal: 0,
  refusedPerAddress: 0,
};

describe('NBD stats', () => {
  it('Prometheus: connections, held and queued bytes, pauses by reason, closes by limit', () => {
    const fams = parsePrometheus(renderPrometheus({ ...snapshotAt(10, 1000), nbd }));
    expect(sampleValue(fams, 'lunkit_nbd_connections')).toBe(5);
    expect(sampleValue(fams, 'lunkit_nbd_handshaking_connections')).toBe(2);
    expect(sampleValue(fams, 'lunkit_nbd_requests_in_flight')).toBe(7);
    expect(sampleValue(fams, 'lunkit_nbd_in_flight_bytes')).toBe(96 * 1024 * 1024);
    expect(sampleValue(fams, 'lunkit_nbd_queued_bytes')).toBe(3 * 1024 * 1024);
    expect(sampleValue(fams, 'lunkit_nbd_paused_connections')).toBe(1);
    expect(fams.get('lunkit_nbd_read_pauses_total')?.type).toBe('counter');
    expect(sampleValue(fams, 'lunkit_nbd_read_pauses_total', { reason: 'backpressure' })).toBe(11);
    expect(sampleValue(fams, 'lunkit_nbd_read_pauses_total', { reason: 'budget' })).toBe(12);
    expect(sampleValue(fams, 'lunkit_nbd_limit_closes_total', { limit: 'handshakeTimeout' })).toBe(200);
    expect(sampleValue(fams, 'lunkit_nbd_limit_closes_total', { limit: 'idleTimeout' })).toBe(3);
    expect(sampleValue(fams, 'lunkit_nbd_limit_closes_total', { limit: 'maxOptions' })).toBe(4);
  });

  it('no NBD server (null) or an older daemon (absent): no NBD metrics, no NBD line', () => {
    for (const snap of [{ ...snapshotAt(10, 1000), nbd: null }, snapshotAt(10, 1000)]) {
      expect(renderPrometheus(snap)).not.toMatch(/lunkit_nbd_/);
      expect(formatStatsTable(snap)).not.toMatch(/^NBD:/m);
    }
  });

  it('lunkit stats prints one NBD line with what is held and the closes on limits', () => {
    const line = formatStatsTable({ ...snapshotAt(10, 1000), nbd })
      .split('\n')
      .find((l) => l.startsWith('NBD:'));
    expect(line).toBeDefined();
    expect(line).toMatch(/5 connections \(2 haggling\), 7 requests in flight/);
    expect(line).toMatch(/paused 11x for backpressure, 12x for budget/);
    expect(line).toMatch(/handshake timeout 200, idle timeout 3, too many options 4/);
  });
});
