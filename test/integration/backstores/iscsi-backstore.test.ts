// A remote iSCSI LUN as an ordinary backstore of the daemon: a "far" lunkit
// serves ramdisks over iSCSI with CHAP; a "near" lunkit has them as `iscsi`
// backstores (CHAP secret from a file, and inline) and serves them again over
// NBD and iSCSI. Data written near lands far; a remote write-protected LUN
// refuses writes with the errno of WRITE PROTECTED; a wrong secret fails the
// apply without logging the secret.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { defaultInitiatorName, formatSense, openUrl, read16 } from '../../../src/initiator/index.js';
import { NbdClient } from '../../../src/nbd-client/index.js';
import type { Logger } from '../../../src/util/log.js';

const FAR = 'iqn.2024-01.org.lunkit.test:far';
const NEAR = 'iqn.2024-01.org.lunkit.test:near';
const SECRET = 'far-secret-0123';
const MiB = 1024 * 1024;

let far: LunkitRuntime;
let near: LunkitRuntime | undefined;
let dir: string;
let farUrl: string;
let secretFile: string;
const logged: string[] = [];
const logger: Logger = {
  debug: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  info: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  warn: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
} as Logger;

function nearConfig(secret: { passwordFile: string } | { password: string }): ReturnType<typeof parseConfig> {
  return parseConfig({
    backstores: {
      far0: { type: 'iscsi', url: `${farUrl}/0`, chap: { userid: 'near', ...secret }, connections: 2 },
      far1: { type: 'iscsi', url: `${farUrl}/1`, chap: { userid: 'near', password: SECRET } },
    },
    iscsi: { targets: { [NEAR]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'far0' }, attributes: { generateNodeAcls: true } } } } } },
    nbd: { listen: ['127.0.0.1:0'], exports: { far0: { backstore: 'far0' }, far1: { backstore: 'far1' } } },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-iscsi-bs-'));
  secretFile = join(dir, 'far.secret');
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  far = await LunkitRuntime.start(
    parseConfig({
      backstores: { disk: { type: 'ramdisk', size: '16M' }, ro: { type: 'ramdisk', size: '4M', readOnly: true } },
      iscsi: {
        targets: {
          [FAR]: {
            tpgs: {
              '1': {
                portals: ['127.0.0.1:0'],
                luns: { '0': 'disk', '1': 'ro' },
                attributes: { authentication: true },
                acls: { [defaultInitiatorName()]: { mappedLuns: { '0': 0, '1': 1 }, chap: { userid: 'near', password: SECRET } } },
              },
            },
          },
        },
      },
      nbd: { listen: ['127.0.0.1:0'], exports: { disk: { backstore: 'disk' } } },
    }),
  );
  farUrl = `iscsi://127.0.0.1:${far.addresses()[0].port}/${FAR}`;
}, 30_000);

afterAll(async () => {
  await near?.stop(0);
  await far?.stop(0);
  await rm(dir, { recursive: true, force: true });
});

describe('iscsi backstore in the daemon', () => {
  it('a wrong CHAP secret fails the apply, and the secret is in no log line or message', async () => {
    const err = await LunkitRuntime.start(nearConfig({ password: 'not-the-secret-9' }), { logger }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_APPLY_FAILED' });
    expect((err as Error).message).toMatch(/opening backstore "far0"/);
    expect((err as Error).message).not.toContain('not-the-secret-9');
    expect(logged.join('\n')).not.toContain('not-the-secret-9');
  }, 30_000);

  it('serves the remote LUN over NBD and iSCSI; writes land on the far side', async () => {
    near = await LunkitRuntime.start(nearConfig({ passwordFile: secretFile }), { logger });
    expect(near.backstores.get('far0')?.ops.kind).toBe('iscsi');
    expect(near.backstores.get('far0')?.ops.size).toBe(16 * MiB);
    const data = Buffer.alloc(64 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;

    const nearNbd = await NbdClient.connect(`nbd://127.0.0.1:${near.nbdAddresses()[0].port}/far0`);
    const farNbd = await NbdClient.connect(`nbd://127.0.0.1:${far.nbdAddresses()[0].port}/disk`);
    try {
      expect(nearNbd.size).toBe(16 * MiB);
      await nearNbd.write(data, MiB);
      await nearNbd.flush();
      expect((await farNbd.read(MiB, data.length)).equals(data)).toBe(true);
      // The far ramdisk is thin, so the near LUN offers TRIM, and trimmed blocks read back as zeroes.
      expect(nearNbd.canTrim).toBe(true);
      await nearNbd.trim(MiB, data.length);
      expect((await farNbd.read(MiB, data.length)).every((b) => b === 0)).toBe(true);
      await nearNbd.write(data, 2 * MiB);
    } finally {
      nearNbd.destroy();
      farNbd.destroy();
    }

    // The same remote LUN, served again by the near target.
    const { session, lun } = await openUrl(`iscsi://127.0.0.1:${near.addresses()[0].port}/${NEAR}/0`, { env: {} });
    try {
      // The new nexus first hears POWER ON OCCURRED (a UNIT ATTENTION), as from any target.
      let r = await read16(session, lun, (2 * MiB) / 512, data.length / 512, { blockSize: 512 });
      if (!r.ok && r.sense?.key === 0x06) r = await read16(session, lun, (2 * MiB) / 512, data.length / 512, { blockSize: 512 });
      if (!r.ok) throw new Error(`READ(16) through the near target: status ${r.status} ${r.sense ? formatSense(r.sense) : "no sense"}`);
      expect(r.value.equals(data)).toBe(true);
    } finally {
      await session.logout(2000).catch(() => session.destroy());
    }
    expect(logged.join('\n')).not.toContain(SECRET);
  }, 30_000);

  it('a remote write-protected LUN refuses writes with the errno of WRITE PROTECTED', async () => {
    const nbd = await NbdClient.connect(`nbd://127.0.0.1:${near!.nbdAddresses()[0].port}/far1`);
    try {
      // A medium that cannot be written is a write-protected LU: the NBD export says so.
      expect(nbd.readOnly).toBe(true);
      expect((await nbd.read(0, 4096)).length).toBe(4096);
    } finally {
      nbd.destroy();
    }
    const ops = near!.backstores.get('far1')!.ops;
    expect(ops.caps.canWrite).toBe(false);
    await expect(ops.write(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'EROFS', senseReason: 'WRITE_PROTECTED' });
  }, 30_000);
});
