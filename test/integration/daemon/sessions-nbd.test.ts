// sessions.list over the control socket lists NBD connections beside iSCSI
// sessions, and nbd.export.delete ends the connections to that export.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../../src/daemon/control-client.js';
import { LunkitDaemon } from '../../../src/daemon/daemon.js';
import { NbdClient } from '../../../src/nbd-client/index.js';
import { writeFile } from 'node:fs/promises';

let dir: string;
let daemon: LunkitDaemon;
let client: ControlClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-sess-'));
  const configFile = join(dir, 'lunkit.json');
  await writeFile(
    configFile,
    JSON.stringify({
      backstores: { r0: { type: 'ramdisk', size: '4M' } },
      nbd: { listen: ['127.0.0.1:0'], exports: { e0: { backstore: 'r0' } } },
    }),
  );
  daemon = await LunkitDaemon.start({ configFile, socketPath: join(dir, 's.sock') });
  client = await ControlClient.connect(daemon.socketPath);
});

afterAll(async () => {
  client?.close();
  await daemon?.stop(0);
  await rm(dir, { recursive: true, force: true });
});

interface NbdSession {
  fabric: string;
  export?: string;
  inFlight: number;
  address: string;
}

describe('NBD connections in sessions.list', () => {
  it('lists a connected NBD client with its export, and ends it when the export is deleted', async () => {
    const a = daemon.runtime.nbdAddresses()[0];
    const nbd = await NbdClient.connect(`nbd://127.0.0.1:${a.port}/e0`);
    let closed = false;
    nbd.on('close', () => (closed = true));
    try {
      expect((await nbd.read(0, 4096)).length).toBe(4096);
      const { sessions } = await client.call<{ sessions: NbdSession[] }>('sessions.list');
      const mine = sessions.filter((s) => s.fabric === 'nbd');
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ fabric: 'nbd', export: 'e0', inFlight: 0 });
      expect(mine[0].address).toMatch(/^127\.0\.0\.1:\d+$/);

      await client.call('nbd.export.delete', { name: 'e0' });
      const deadline = Date.now() + 10_000;
      while (!closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(closed).toBe(true);
      const after = await client.call<{ sessions: NbdSession[] }>('sessions.list');
      expect(after.sessions.filter((s) => s.fabric === 'nbd')).toEqual([]);
    } finally {
      nbd.destroy();
    }
  }, 30_000);
});
