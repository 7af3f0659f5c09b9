// Throwaway x509 material for NBD TLS tests, made with the openssl CLI: a CA,
// a server certificate for 127.0.0.1/localhost, and a client certificate.
// Files are named as libnbd (and qemu) look for them in a certificates
// directory: ca-cert.pem, client-cert.pem, client-key.pem.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCerts {
  /** ca-cert.pem, ca-key.pem, server-cert.pem, server-key.pem, client-cert.pem, client-key.pem, rogue-cert.pem, rogue-key.pem (self-signed). */
  dir: string;
  /** libnbd certificates directory with the CA only. */
  caOnlyDir: string;
  /** libnbd certificates directory with the CA and a client certificate. */
  clientDir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd, timeout: 30_000 });
}

async function signed(dir: string, name: string, cn: string, ext: string): Promise<void> {
  await openssl(dir, 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-out', `${name}-cert.pem`, '-extfile', `${name}.ext`);
}

export async function makeTestCerts(base: string): Promise<TestCerts> {
  const dir = join(base, 'pki');
  await mkdir(dir, { recursive: true });
  await openssl(
    dir,
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem',
    '-days', '2', '-subj', '/CN=lunkit test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  );
  await signed(dir, 'server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  await signed(dir, 'client', 'lunkit-test-client', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  // A self-signed client certificate no configured CA vouches for.
  await openssl(
    dir,
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'rogue-key.pem', '-out', 'rogue-cert.pem',
    '-days', '2', '-subj', '/CN=rogue client', '-addext', 'extendedKeyUsage=clientAuth',
  );
  const caOnlyDir = join(base, 'client-ca-only');
  const clientDir = join(base, 'client-with-cert');
  await mkdir(caOnlyDir);
  await mkdir(clientDir);
  await run('cp', [join(dir, 'ca-cert.pem'), caOnlyDir]);
  await run('cp', [join(dir, 'ca-cert.pem'), join(dir, 'client-cert.pem'), join(dir, 'client-key.pem'), clientDir]);
  return {
    dir,
    caOnlyDir,
    clientDir,
    caFile: join(dir, 'ca-cert.pem'),
    certFile: join(dir, 'server-cert.pem'),
    keyFile: join(dir, 'server-key.pem'),
  };
}
