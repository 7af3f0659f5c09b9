// The one socket call the boot lab needs from the lunkit_native addon
// (native/src/lunkit_native.c): a UDP socket restricted to one interface with
// SO_BINDTODEVICE, which Node's dgram does not expose. Loaded lazily and
// optional: without the addon the proxy DHCP falls back to an unrestricted
// socket (see proxy-dhcp.ts for what that costs).

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeNet {
  /** socket + SO_REUSEADDR + SO_BROADCAST + SO_BINDTODEVICE + bind(0.0.0.0:port); throws an Error with `code` (ENODEV, EADDRINUSE, EPERM...). */
  udp4SocketOnDevice(ifname: string, port: number): number;
}

let cached: NativeNet | null | undefined;
let loadError: unknown;

/** Candidate locations: the package root from src/ (tsx, vitest) and from dist/src/ (built). */
function candidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const rel = path.join('native', 'build', 'Release', 'lunkit_native.node');
  return [path.resolve(here, '../..', rel), path.resolve(here, '../../..', rel)];
}

/** The addon's socket call, or undefined when the addon is missing or too old. */
export function nativeNet(): NativeNet | undefined {
  if (cached !== undefined) return cached ?? undefined;
  const require = createRequire(import.meta.url);
  for (const file of candidates()) {
    try {
      const mod: unknown = require(file);
      if (typeof mod === 'object' && mod !== null && typeof (mod as Record<string, unknown>).udp4SocketOnDevice === 'function') {
        cached = mod as NativeNet;
        return cached;
      }
      loadError = new Error(`${file} has no udp4SocketOnDevice (rebuild with npm run install)`);
    } catch (err) {
      loadError = err;
    }
  }
  cached = null;
  return undefined;
}

/** Why the addon could not be used (diagnostics). */
export function nativeNetLoadError(): unknown {
  return loadError;
}
