// NBD URLs (the NBD URI specification, doc/uri.md in the nbd project; the
// same syntax libnbd's nbd_connect_uri and qemu accept):
//
//   nbd://host[:port][/export]            TCP, port 10809 by default
//   nbd+unix:///[export]?socket=/path     Unix domain socket
//
// The export name is the path after the first '/', percent-decoded; an empty
// path names the default export "". TLS schemes (nbds, nbds+unix) are refused:
// this client does not speak STARTTLS.

import { NBD_DEFAULT_PORT } from '../protocols/nbd/constants.js';
import { NbdClientError } from './errors.js';

/** Where an NBD server is and which export to use. */
export type NbdAddress =
  | { transport: 'tcp'; host: string; port: number; exportName: string }
  | { transport: 'unix'; path: string; exportName: string };

function bad(url: string, why: string): NbdClientError {
  return new NbdClientError('ERR_NBD_BAD_URL', `bad NBD URL "${url}": ${why}`);
}

function decodeExportName(url: string, pathname: string): string {
  // pathname keeps its leading '/'; "nbd://h" and "nbd://h/" both name "".
  const raw = pathname.startsWith('/') ? pathname.slice(1) : pathname;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw bad(url, 'the export name is not valid percent-encoding');
  }
}

/** Parse an nbd:// or nbd+unix:// URL; throws ERR_NBD_BAD_URL. */
export function parseNbdUrl(url: string): NbdAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad(url, 'not a URL');
  }
  if (u.username !== '' || u.password !== '') throw bad(url, 'user names are not supported');
  if (u.hash !== '') throw bad(url, 'fragments are not allowed');
  switch (u.protocol) {
    case 'nbd:': {
      // WHATWG URL keeps IPv6 brackets in hostname; net.connect wants them off.
      const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
      if (host === '') throw bad(url, 'nbd:// needs a host');
      if (u.search !== '') throw bad(url, 'nbd:// URLs take no query parameters');
      const port = u.port === '' ? NBD_DEFAULT_PORT : Number(u.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(url, `port ${u.port} out of range`);
      return { transport: 'tcp', host, port, exportName: decodeExportName(url, u.pathname) };
    }
    case 'nbd+unix:': {
      if (u.host !== '') throw bad(url, 'nbd+unix:// takes no host (write nbd+unix:///export?socket=/path)');
      const path = u.searchParams.get('socket');
      if (path === null || path === '') throw bad(url, 'nbd+unix:// needs ?socket=/path');
      for (const k of u.searchParams.keys()) if (k !== 'socket') throw bad(url, `unknown query parameter "${k}"`);
      return { transport: 'unix', path, exportName: decodeExportName(url, u.pathname) };
    }
    case 'nbds:':
    case 'nbds+unix:':
      throw bad(url, 'TLS (nbds) is not supported by this client');
    default:
      throw bad(url, `scheme ${u.protocol} is not nbd: or nbd+unix:`);
  }
}

/** Format an address back into a URL (for logs and messages). */
export function formatNbdUrl(a: NbdAddress): string {
  const name = encodeURIComponent(a.exportName).replace(/%2F/gi, '/');
  if (a.transport === 'unix') return `nbd+unix:///${name}?socket=${a.path}`;
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `nbd://${host}:${a.port}/${name}`;
}
