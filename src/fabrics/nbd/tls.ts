// NBD_OPT_STARTTLS (proto.md "TLS support"): after the server's ACK the same
// TCP connection carries a TLS handshake, then the rest of option haggling
// and the transmission phase, encrypted. node:tls does the TLS; this file
// builds the secure context once per server and upgrades one socket.

import type { Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { LunkitError } from '../../protocols/errors.js';
import type { NbdTlsMode } from './negotiation.js';

/** PEM material and policy, as NbdServerOptions.tls gives them. */
export interface NbdTlsConfig {
  cert: Buffer | string;
  key: Buffer | string;
  ca?: Buffer | string | undefined;
  require: boolean;
}

/** What every connection of a server shares: built once at server start. */
export interface NbdTlsSetup {
  context: SecureContext;
  /** A CA was given: ask for a client certificate and refuse any it does not sign. */
  verifyClient: boolean;
  /** The CA bundle, parsed, to check client certificates against. */
  cas: X509Certificate[];
  mode: NbdTlsMode;
}

/** A TLS handshake that has not finished by then is abandoned (the connection closes). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Throws (at server construction) when the certificate or key cannot be loaded. */
export function makeTlsSetup(cfg: NbdTlsConfig): NbdTlsSetup {
  const context = createSecureContext({ cert: cfg.cert, key: cfg.key, ...(cfg.ca !== undefined ? { ca: cfg.ca } : {}) });
  const cas = cfg.ca === undefined ? [] : splitPem(cfg.ca).map((pem) => new X509Certificate(pem));
  if (cfg.ca !== undefined && cas.length === 0) throw new LunkitError('ERR_NBD_TLS', 'the TLS CA file holds no certificate');
  return { context, verifyClient: cfg.ca !== undefined, cas, mode: cfg.require ? 'require' : 'on' };
}

function splitPem(pem: Buffer | string): string[] {
  return String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Why the client's certificate is not trusted, or undefined if it is: some
 * certificate on its chain (leaf first, then the issuers it sent) must be
 * signed by a configured CA, each link signed by the next, all within their
 * validity dates. Done here because a TLSSocket made without a tls.Server
 * never sets `authorized` (node:tls only checks that in tls.Server's path).
 */
export function untrustedClient(secure: TLSSocket, cas: readonly X509Certificate[], now = new Date()): string | undefined {
  let c: X509Certificate | undefined = secure.getPeerX509Certificate();
  if (!c) return 'no client certificate';
  for (let depth = 0; c && depth < 8; depth++) {
    if (new Date(c.validFrom) > now || new Date(c.validTo) < now) return `certificate "${c.subject}" is not valid now`;
    const cert: X509Certificate = c;
    if (cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) return undefined;
    const next: X509Certificate | undefined = cert.issuerCertificate;
    if (!next || next.fingerprint256 === cert.fingerprint256 || !next.ca || !cert.checkIssued(next) || !cert.verify(next.publicKey)) break;
    c = next;
  }
  return 'client certificate not signed by the configured CA';
}

/**
 * Wraps an accepted plain socket in a server-side TLS socket and waits for the
 * handshake. `buffered` holds bytes that arrived after the STARTTLS option
 * (the start of the client's handshake, if it did not wait for our ACK): they
 * are put back in front of the stream so TLS reads them first.
 */
export function upgradeToTls(plain: Socket, setup: NbdTlsSetup, buffered: Buffer, timeoutMs = TLS_HANDSHAKE_TIMEOUT_MS): Promise<TLSSocket> {
  if (buffered.length > 0) plain.unshift(buffered);
  const secure = new TLSSocket(plain, {
    isServer: true,
    secureContext: setup.context,
    requestCert: setup.verifyClient,
    rejectUnauthorized: setup.verifyClient,
  });
  return new Promise((resolve, reject) => {
    const fail = (e: Error): void => {
      cleanup();
      secure.destroy();
      reject(e);
    };
    const onError = (e: Error): void => fail(e);
    const onClose = (): void => fail(new LunkitError('ERR_NBD_TLS', 'the client closed the connection during the TLS handshake'));
    const timer = setTimeout(() => fail(new LunkitError('ERR_NBD_TLS', `no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      secure.off('error', onError);
      secure.off('close', onClose);
    };
    secure.once('error', onError);
    secure.once('close', onClose);
    secure.once('secure', () => {
      // requestCert + rejectUnauthorized make OpenSSL demand a certificate,
      // but whether a CA signed it is left to us (see untrustedClient).
      const why = setup.verifyClient ? untrustedClient(secure, setup.cas) : undefined;
      if (why !== undefined) {
        fail(new LunkitError('ERR_NBD_TLS', `client certificate refused: ${why}`));
        return;
      }
      cleanup();
      resolve(secure);
    });
  });
}
