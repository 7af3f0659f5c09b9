// Hand-built statistics snapshots for the dashboard and `lunkit stats` tests.

import type { CommandCounters } from '../../../src/core/stats.js';
import type { LoggedEvent, StatsSnapshot } from '../../../src/daemon/metrics.js';

export function counters(over: Partial<CommandCounters> = {}): CommandCounters {
  return {
    commands: 0,
    reads: 0,
    writes: 0,
    readBytes: 0,
    writtenBytes: 0,
    inFlight: 0,
    aborted: 0,
    errors: 0,
    checkConditions: {},
    taskManagement: {},
    latency: { count: 0, sumUs: 0, meanUs: 0, p99Us: 0, maxUs: 0, buckets: [] },
    ...over,
  };
}

export const IQN = 'iqn.2026-11.io.lunkit:demo';
export const INITIATOR = 'iqn.1994-05.com.redhat:client7';

/** One target with two LUNs, one iSCSI session; `t` seconds after 0, with `reads` 4 KiB reads done on disk0. */
export function snapshotAt(t: number, reads: number, events: LoggedEvent[] = []): StatsSnapshot {
  const time = 1_700_000_000_000 + t * 1000;
  // Latency: every read took 100..103 us (bucket 57: [100, 104) us).
  const lat = { count: reads, sumUs: reads * 100, meanUs: reads ? 100 : 0, p99Us: reads ? 104 : 0, maxUs: reads ? 100 : 0, buckets: reads ? ([[57, reads]] as Array<[number, number]>) : [] };
  return {
    version: 1,
    time,
    core: {
      luns: [
        {
          id: 1,
          name: 'disk0',
          backstore: 'file',
          sizeBytes: 1 << 30,
          blockSize: 512,
          readOnly: false,
          createdAt: 1_700_000_000_000,
          ...counters({ commands: reads, reads, readBytes: reads * 4096, latency: lat }),
        },
        { id: 2, name: 'ram1', backstore: 'ramdisk', sizeBytes: 64 << 20, blockSize: 512, readOnly: false, createdAt: 1_700_000_000_000, ...counters() },
      ],
      nexuses: [
        {
          id: 5,
          fabric: 'iscsi',
          initiatorName: INITIATOR,
          initiatorPortId: `${INITIATOR},i,0x23d000000001`,
          targetName: IQN,
          targetPortId: `${IQN},t,0x0001`,
          openedAt: 1_700_000_000_000,
          luns: [0, 1],
          ...counters({ commands: reads, reads, readBytes: reads * 4096, latency: lat }),
        },
      ],
    },
    iscsi: {
      targets: [
        {
          iqn: IQN,
          alias: null,
          tpgs: [
            {
              tag: 1,
              enabled: true,
              portals: [{ host: '127.0.0.1', port: 3260 }],
              luns: [
                { lun: 0, device: 'disk0' },
                { lun: 1, device: 'ram1' },
              ],
              acls: [],
              generateNodeAcls: true,
              authentication: false,
            },
          ],
        },
      ],
      sessions: [
        {
          tsih: 1,
          isid: '23d000000001',
          initiatorName: INITIATOR,
          targetName: IQN,
          tpgt: 1,
          type: 'normal',
          nexusId: 5,
          loginTime: 1_700_000_000_000,
          errorRecoveryLevel: 0,
          headerDigest: true,
          dataDigest: false,
          maxConnections: 1,
          cmdsInFlight: 0,
          connections: [{ id: 1, cid: 0, remote: '127.0.0.1:40000', local: '127.0.0.1:3260', stage: 'full-feature', headerDigest: true, dataDigest: false, bytesIn: 1000, bytesOut: reads * 4144, pdusIn: reads + 2, pdusOut: reads + 2, retainedBytes: 0, readPaused: false, readPausesBackpressure: 0, readPausesBudget: 0 }],
          bytesIn: 1000,
          bytesOut: reads * 4144,
          pdusIn: reads + 2,
          pdusOut: reads + 2,
          rejects: {},
          headerDigestErrors: 0,
          dataDigestErrors: 0,
          ...NOTHING_HELD,
        },
      ],
      totals: {
        loginsOk: 1,
        loginsFailed: 0,
        logouts: 0,
        sessions: 1,
        connections: 1,
        bytesIn: 1000,
        bytesOut: reads * 4144,
        pdusIn: reads + 2,
        pdusOut: reads + 2,
        rejects: {},
        headerDigestErrors: 0,
        dataDigestErrors: 0,
        ...NOTHING_HELD,
        retentionDrops: 0,
      },
    },
    events,
  };
}

export function event(seq: number, text: string, severity: 'info' | 'warn' | 'error' = 'info'): LoggedEvent {
  return { seq, time: 1_700_000_000_000 + seq * 1000, channel: 'lunkit:iscsi:login', severity, text, fields: {} };
}

/** iSCSI budget usage of an idle target (IscsiStatsSnapshot's HeldCounters). */
const NOTHING_HELD = { writeBytesHeld: 0, immediateInFlight: 0, retainedBytes: 0, readPausesBackpressure: 0, readPausesBudget: 0 };
