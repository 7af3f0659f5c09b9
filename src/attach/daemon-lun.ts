// `lunkit attach|mount lunkit:<backstore>`: a backstore of the running
// daemon as a local file. No holder process opens it (the daemon owns the
// backstore, and a second opener would bypass its reservations and stats):
// the daemon adds a FUSE export on its own FuseFabric through the control
// socket (`fuse.export.add`, docs/control-protocol.md) on a mount point of
// our own under <run>/daemon-luns/, and `fuse.export.delete` takes it away
// (the daemon unmounts a directory with its last file). The attachment is
// recorded like a holder's (state.ts), with `daemon` instead of a live pid,
// so `lunkit detach` and `lunkit umount` undo it the same way.

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ControlClient, ControlError } from '../daemon/control-client.js';
import { AttachError } from './errors.js';
import { makeMountpoint, removeAttach, removeMadeDirs, runDir, saveAttach, type AttachState } from './state.js';

export const daemonLunsDir = (): string => join(runDir(), 'daemon-luns');

export interface DaemonLunOptions {
  backstore: string;
  /** Control socket (default $LUNKIT_SOCKET or /run/lunkit/lunkit.sock). */
  socket?: string | undefined;
  /** The file to show (its directory becomes the FUSE mount point); default <run>/daemon-luns/<id>/<backstore>. */
  file?: string | undefined;
  /** Attachment id; default derived from the backstore. */
  id?: string | undefined;
  readOnly?: boolean | undefined;
}

async function withClient<T>(socket: string | undefined, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const client = await ControlClient.connect(socket);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

async function waitForFile(file: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await stat(file).then((s) => s.isFile(), () => false)) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Asks the daemon to show `backstore` as a file and records the attachment.
 * The record is written before the request, so a failure part-way is undone
 * by detachDaemonLun (which tolerates an export that was never added).
 */
export async function attachDaemonLun(opts: DaemonLunOptions): Promise<AttachState> {
  if (!/^[^/\0]{1,255}$/.test(opts.backstore) || opts.backstore === '.' || opts.backstore === '..') {
    throw new AttachError('ERR_ATTACH_SOURCE', `lunkit:${opts.backstore}: not a backstore name`);
  }
  const id = opts.id ?? `lunkit_${opts.backstore.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 24)}-${randomBytes(3).toString('hex')}`;
  const owns = opts.file === undefined;
  const mountpoint = owns ? join(daemonLunsDir(), id) : dirname(resolve(opts.file as string));
  const name = owns ? opts.backstore : basename(resolve(opts.file as string));
  // The client resolves the default socket path; record the one really used.
  const client = await ControlClient.connect(opts.socket);
  const state: AttachState = {
    id,
    pid: 0,
    source: { kind: 'daemon-lun', backstore: opts.backstore },
    mountpoint,
    file: join(mountpoint, name),
    readOnly: opts.readOnly ?? false,
    ownsMountpoint: owns,
    startedAt: new Date().toISOString(),
    daemon: { socket: client.socketPath, name, mountpoint, added: false },
  };
  try {
    // A `[file]` whose directory we create is ours to remove on detach, like the default one.
    const made = await makeMountpoint(mountpoint);
    if (!owns) state.madeDir = made;
    await saveAttach(state);
    const res = await client.call<{ mountpoint: string; file: string }>('fuse.export.add', { name, backstore: opts.backstore, mountpoint, readOnly: opts.readOnly ?? false });
    (state.daemon as NonNullable<AttachState['daemon']>).added = true;
    state.file = res.file;
    await saveAttach(state);
    if (!(await waitForFile(res.file, 10_000))) {
      throw new AttachError('ERR_ATTACH_START', `the daemon added the FUSE export but ${res.file} did not appear`);
    }
    return state;
  } catch (e) {
    await detachDaemonLun(state).catch(() => {});
    if (e instanceof ControlError) throw new AttachError('ERR_ATTACH_START', `lunkit:${opts.backstore}: ${e.message} (${e.code})`, { cause: e });
    throw e;
  } finally {
    client.close();
  }
}

/**
 * Removes the daemon's FUSE export of an attachment and its record. A daemon
 * that no longer knows the export (ERR_NOT_FOUND) or is gone
 * (ERR_CONTROL_CONNECT) counts as done. Resolves false when the daemon could
 * not be reached: the caller then clears a FUSE mount the dead daemon left.
 */
export async function detachDaemonLun(state: AttachState): Promise<boolean> {
  const d = state.daemon;
  let reached = true;
  if (d) {
    try {
      await withClient(d.socket, (c) => c.call('fuse.export.delete', { name: d.name, mountpoint: d.mountpoint }));
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'ERR_CONTROL_CONNECT') reached = false;
      else if (code !== 'ERR_NOT_FOUND') throw e;
    }
  }
  await removeAttach(state.id);
  // The daemon may still be unmounting the directory: removeMadeDirs waits out EBUSY.
  await removeMadeDirs(state.mountpoint, state.ownsMountpoint ? state.mountpoint : state.madeDir);
  return reached;
}
