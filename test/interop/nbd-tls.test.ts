// NBD over TLS with real clients: libnbd's nbdinfo and nbdcopy (GnuTLS) and
// qemu-img (QEMU's tls-creds-x509) against a lunkit NBD server configured with
// `nbd.tls` (require: true), certificates made by the openssl CLI. A plain
// client is refused with a clear error; TLS clients read and write
// byte-identically.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { LunkitRuntime } from '../../src/daemon/runtime.js';
import { makeTestCerts, type TestCerts } from '../integration/nbd/tls-certs.js';

const run = promisify(execFile);
const SIZE = 16 * 1024 * 1024;
let rt: LunkitRuntime;
let dir: string;
let certs: TestCerts;
let port: number;

const url = (name: string, certDir = certs.caOnlyDir): string => `nbds://127.0.0.1:${port}/${name}?tls-certificates=${certDir}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-tls-interop-'));
  certs = await makeTestCerts(dir);
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { disk: { type: 'file', path: join(dir, 'disk.img'), size: SIZE } },
      nbd: {
        listen: ['127.0.0.1:0'],
        tls: { certFile: certs.certFile, keyFile: certs.keyFile, require: true },
        exports: { disk: { backstore: 'disk', description: 'over TLS' } },
      },
    }),
  );
  port = rt.nbdAddresses()[0].port;
}, 60_000);

afterAll(async () => {
  await rt?.stop(0);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('NBD over TLS (require)', () => {
  it('nbdinfo over nbds:// reads the size and flags', async () => {
    const { stdout } = await run('nbdinfo', ['--json', url('disk')], { timeout: 30_000 });
    const exp = ((JSON.parse(stdout) as Record<string, unknown>).exports as Array<Record<string, unknown>>)[0];
    expect(exp['export-size']).toBe(SIZE);
    expect(exp.can_multi_conn).toBe(true);
    const { stdout: text } = await run('nbdinfo', [url('disk')], { timeout: 30_000 });
    expect(text).toMatch(/newstyle-fixed with TLS/);
  });

  it('plain clients are refused; the server says TLS is required', async () => {
    const fails = (cmd: string, args: string[]): Promise<string> =>
      run(cmd, args, { timeout: 30_000 }).then(
        () => {
          throw new Error(`${cmd} succeeded without TLS`);
        },
        (e: { stderr?: string }) => e.stderr ?? '',
      );
    // libnbd 1.14 shows NBD_REP_ERR_TLS_REQD as a refused NBD_OPT_GO (as with nbdkit --tls=require).
    expect(await fails('nbdinfo', [`nbd://127.0.0.1:${port}/disk`])).toMatch(/server replied with error to opt_go/);
    // QEMU names the error and prints our message.
    const qemu = await fails('qemu-img', ['info', '--image-opts', `driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=${port},export=disk`]);
    expect(qemu).toMatch(/TLS negotiation required/);
    expect(qemu).toMatch(/server reported: TLS is required/);
  });

  it('nbdcopy writes a random image over TLS and reads it back byte-identically', async () => {
    const src = join(dir, 'src.img');
    const back = join(dir, 'back.img');
    const data = randomBytes(SIZE);
    await writeFile(src, data);
    await run('nbdcopy', [src, url('disk')], { timeout: 120_000 });
    await run('nbdcopy', [url('disk'), back], { timeout: 120_000 });
    expect((await readFile(back)).equals(data)).toBe(true);
  });

  it('qemu-img compare over TLS agrees with the image', async () => {
    const tlsObject = `tls-creds-x509,id=tls0,endpoint=client,dir=${certs.caOnlyDir}`;
    const image = `driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=${port},export=disk,tls-creds=tls0`;
    const local = `driver=raw,file.driver=file,file.filename=${join(dir, 'src.img')}`;
    const { stdout } = await run('qemu-img', ['compare', '--object', tlsObject, '--image-opts', local, image], {
      timeout: 120_000,
    }).catch((e: { stdout?: string; stderr?: string }) => {
      throw new Error(`qemu-img compare failed: ${e.stderr ?? ''}`);
    });
    expect(stdout).toMatch(/Images are identical/);
  });
});
