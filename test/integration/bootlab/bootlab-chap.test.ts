// Per-client CHAP in a boot lab: secrets are generated per client, stored in
// the configuration, carried by the client's script, required at login, and
// never written to the log.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LunkitDaemon } from '../../../src/daemon/daemon.js';
import type { RequestContext } from '../../../src/daemon/control-server.js';
import { IscsiSession } from '../../../src/initiator/index.js';
import { clientInitiatorIqn, labTargetIqn } from '../../../src/bootlab/names.js';
import { createLogger } from '../../../src/util/log.js';
import { freePort } from '../../helpers/daemon-process.js';

const ctx = { id: 1, progress: () => {}, connection: { notify: () => true, onClose: () => {} } } as unknown as RequestContext;
let dir: string;
let daemon: LunkitDaemon;
let log = '';
let ports: { http: number; tftp: number; iscsi: number };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-bootlab-chap-'));
  await writeFile(join(dir, 'golden.img'), Buffer.alloc(4 * 1024 * 1024, 7));
  ports = { http: await freePort(), tftp: await freePort(), iscsi: await freePort() };
  const out = new PassThrough();
  out.on('data', (b: Buffer) => (log += b.toString()));
  daemon = await LunkitDaemon.start({ socketPath: join(dir, 's.sock'), logger: createLogger({ level: 'debug', out }) });
});

afterAll(async () => {
  await daemon?.stop(0);
  await rm(dir, { recursive: true, force: true });
});

describe('boot lab with per-client CHAP', () => {
  it('generates secrets, puts them in the script, requires them at login, never logs them', async () => {
    await daemon.handle('bootlab.create', { name: 'sec', golden: join(dir, 'golden.img'), listen: '127.0.0.1', ports, dir: join(dir, 'ovl'), chap: true }, ctx);
    await daemon.handle('bootlab.client.add', { lab: 'sec', mac: '52:54:00:00:00:01', name: 'pc01' }, ctx);
    await daemon.handle('bootlab.client.add', { lab: 'sec', mac: '52:54:00:00:00:02', name: 'pc02' }, ctx);
    const chap1 = daemon.config.bootlabs!.sec.clients['52:54:00:00:00:01'].chap!;
    const chap2 = daemon.config.bootlabs!.sec.clients['52:54:00:00:00:02'].chap!;
    expect(chap1.password).toMatch(/^[0-9a-f]{24}$/);
    expect(chap1.password).not.toBe(chap2.password);

    const body = await fetch(`http://127.0.0.1:${ports.http}/boot/52:54:00:00:00:01.ipxe`).then((r) => r.text());
    expect(body).toContain(`set username ${chap1.userid}\nset password ${chap1.password}\n`);

    const base = { host: '127.0.0.1', port: ports.iscsi, targetName: labTargetIqn('sec'), initiatorName: clientInitiatorIqn('sec', 'pc01'), keepaliveIntervalMs: 0 };
    await expect(IscsiSession.open(base)).rejects.toThrow();
    await expect(IscsiSession.open({ ...base, chap: { user: chap2.userid, password: chap2.password } })).rejects.toThrow();
    const s = await IscsiSession.open({ ...base, chap: { user: chap1.userid, password: chap1.password } });
    await s.logout();

    expect(log).toContain('boot lab: script served');
    expect(log).not.toContain(chap1.password);
    expect(log).not.toContain(chap2.password);
  });
});
