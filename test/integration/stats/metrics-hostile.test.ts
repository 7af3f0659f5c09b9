// The metrics endpoint under a client that pipelines scrapes and never reads
// the answers (issue 17): snapshots are shared while one is being taken, and
// the server stops reading the socket once answers pile up, so the number of
// snapshots taken stays far below the number of requests sent.

import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsServer, type MetricsServer, type StatsSnapshot } from '../../../src/daemon/metrics.js';

let server: MetricsServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('metrics endpoint budgets', () => {
  it('takes far fewer snapshots than a never-reading client pipelines requests', async () => {
    let snapshots = 0;
    const snap = { takenAt: 0, backstores: [], iscsi: undefined, nbd: undefined } as unknown as StatsSnapshot;
    server = await startMetricsServer({ host: '127.0.0.1', port: 0 }, async () => {
      snapshots++;
      await sleep(1);
      return snap;
    });
    const s = connect(server.port, '127.0.0.1');
    s.on('error', () => {});
    s.pause();
    const N = 20_000;
    const req = `GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n`;
    await new Promise<void>((resolve) => s.once('connect', resolve));
    s.write(req.repeat(N));
    await sleep(2000);
    console.log(`snapshots ${snapshots} for ${N} pipelined requests`);
    expect(snapshots).toBeGreaterThan(0);
    expect(snapshots).toBeLessThan(N / 4);
    s.destroy();
  }, 30_000);
});
