// systemd's readiness protocol (sd_notify(3)): when a Type=notify service
// starts, systemd sets NOTIFY_SOCKET to a Unix datagram socket and waits for
// "READY=1" on it; "STOPPING=1", "STATUS=..." and "MAINPID=..." tell it more.
// Messages are newline-separated KEY=VALUE lines in one datagram.
//
// Why the native addon sends them: Node has no Unix datagram sockets, and a
// helper process (`systemd-notify`, python) would be the sender systemd sees;
// with the default NotifyAccess=main systemd drops messages whose sender PID
// is not the service's main PID (and even with NotifyAccess=all a helper that
// exits at once races systemd's cgroup lookup). The addon sends from this
// process, so the kernel's SCM_CREDENTIALS carry the daemon's own PID.
//
// Without NOTIFY_SOCKET every call is a no-op: outside systemd nothing changes.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { silentLogger, type Logger } from '../util/log.js';

/** Sends one datagram to `socketPath` (absolute path or "@abstract"); throws an Error with an errno `code`. */
export type DatagramSender = (socketPath: string, message: string) => void;

export interface SdNotifier {
  /** Whether systemd asked for notifications (NOTIFY_SOCKET was set and usable). */
  readonly enabled: boolean;
  /** Sends the fields as one message; false when disabled or the send failed (logged once per failure). */
  notify(fields: Record<string, string | number>): boolean;
}

/**
 * One message from fields: `KEY=VALUE` lines in insertion order. A value
 * cannot contain a newline (it would start another field), so newlines in
 * free text (STATUS) become spaces; keys are checked like sd_notify's.
 */
export function formatNotifyMessage(fields: Record<string, string | number>): string {
  const lines: string[] = [];
  for (const [key, raw] of Object.entries(fields)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(key)) throw new TypeError(`sd_notify field name ${JSON.stringify(key)} is not upper-case KEY`);
    lines.push(`${key}=${String(raw).replace(/[\r\n]+/g, ' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The NOTIFY_SOCKET value as an address the addon takes: an absolute path or
 * "@name" (abstract namespace). Anything else (relative paths, systemd's
 * "vsock:" addresses for VMs) is undefined with a reason.
 */
export function parseNotifySocket(value: string | undefined): { path?: string; problem?: string } {
  if (value === undefined || value === '') return {};
  if (value.startsWith('/') || (value.startsWith('@') && value.length > 1)) {
    // sockaddr_un.sun_path holds 108 bytes with its terminator.
    if (Buffer.byteLength(value) > 107) return { problem: `NOTIFY_SOCKET ${value} is longer than a Unix socket path can be` };
    return { path: value };
  }
  return { problem: `NOTIFY_SOCKET=${value} is not an absolute path or @abstract name (vsock: is not supported)` };
}

let addonSender: DatagramSender | null | undefined;

/** The addon's sdNotify, or undefined when the addon is missing or older than this function. */
export function nativeDatagramSender(): DatagramSender | undefined {
  if (addonSender !== undefined) return addonSender ?? undefined;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const rel = path.join('native', 'build', 'Release', 'lunkit_native.node');
  const require = createRequire(import.meta.url);
  // The package root from src/daemon (vitest) and dist/daemon (built) alike.
  for (const file of [path.resolve(here, '../..', rel), path.resolve(here, '../../..', rel)]) {
    try {
      const mod = require(file) as { sdNotify?: unknown };
      if (typeof mod.sdNotify === 'function') {
        addonSender = mod.sdNotify as DatagramSender;
        return addonSender;
      }
    } catch {
      // try the next location
    }
  }
  addonSender = null;
  return undefined;
}

export interface SdNotifierOptions {
  /** Environment to read NOTIFY_SOCKET from; it is removed from it (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** How datagrams go out (default: the native addon). */
  send?: DatagramSender | undefined;
  logger?: Logger;
}

/**
 * A notifier for this process. It takes NOTIFY_SOCKET out of the environment,
 * as sd_notify(unset_environment=1) does, so child processes (qemu in the boot
 * lab, hooks) cannot speak for the daemon.
 */
export function createSdNotifier(opts: SdNotifierOptions = {}): SdNotifier {
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? silentLogger;
  const raw = env.NOTIFY_SOCKET;
  delete env.NOTIFY_SOCKET;
  const { path: socketPath, problem } = parseNotifySocket(raw);
  if (problem) logger.warn('systemd notifications are off', { reason: problem });
  const send = socketPath ? ('send' in opts ? opts.send : nativeDatagramSender()) : undefined;
  if (socketPath && !send) {
    logger.error('NOTIFY_SOCKET is set but the lunkit_native addon (with sdNotify) is not built: systemd will not see READY=1; run `npm run install`', {
      socket: socketPath,
    });
  }
  const enabled = socketPath !== undefined && send !== undefined;
  return {
    enabled,
    notify(fields) {
      if (!enabled) return false;
      const message = formatNotifyMessage(fields);
      try {
        send(socketPath, message);
        return true;
      } catch (e) {
        logger.warn('systemd notification not delivered', { socket: socketPath, message: message.trimEnd(), err: e });
        return false;
      }
    },
  };
}
