// `lunkit mount` / `lunkit umount` as a library. mount = attach (FUSE file in
// a holder process) + losetup + optional mkfs + mount(8); each step is
// recorded before the next starts, and any failure undoes the steps done so
// far in reverse order, so a failed mount leaves no loop device, FUSE mount
// or process behind. umount undoes the same three, also for a mount whose
// holder died (SIGKILL): the filesystem is then unmounted lazily.
// A lunkit:<backstore> source has no holder: the running daemon serves the
// file (daemon-lun.ts), and its FUSE export is deleted as the last step.

import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { mountsAt } from '../fabrics/fuse/mountpoint.js';
import type { BlockSize } from '../backstores/index.js';
import { detach, findAttach, startDetached } from './attach.js';
import { AttachError } from './errors.js';
import { planAttach } from './plan.js';
import { attachDaemonLun } from './daemon-lun.js';
import { describeSource, parseSource, withSourceOptions } from './source.js';
import { isHolder, loadAttach, loadMount, mountKey, removeMount, saveMount, type AttachState, type MountState } from './state.js';
import { loopAttach, loopBackingFile, loopDetach, mkfs, mountDev, umountDir, type MkfsType } from './system.js';

export interface MountOptions {
  /** Image file, nbd:// or iscsi:// URL, or lunkit:<backstore> (a LUN of the running daemon). */
  source: string;
  dir: string;
  /** mount(8) -o options, passed through. */
  options?: string | undefined;
  /** mount(8) -t; default: let mount probe. */
  fsType?: string | undefined;
  /** Create a filesystem first (destroys the contents). */
  mkfs?: MkfsType | undefined;
  readOnly?: boolean | undefined;
  blockSize?: BlockSize | undefined;
  /** losetup --direct-io=on: no second page cache in the loop device. */
  loopDirectIo?: boolean | undefined;
  /** iscsi://: connections per session (MC/S) and ErrorRecoveryLevel; nbd://: connections (multi-conn, default 4). */
  connections?: number | undefined;
  erl?: number | undefined;
  /** lunkit:<backstore>: the daemon's control socket. */
  socket?: string | undefined;
  /** Progress lines (one per step). */
  onStep?: ((msg: string) => void) | undefined;
}

/** Mounts a source on dir; on failure everything done so far is undone before the error is thrown. */
export async function mountImage(opts: MountOptions): Promise<MountState> {
  const dir = resolve(opts.dir);
  const say = opts.onStep ?? (() => {});
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new AttachError('ERR_MOUNT_STEP', `${dir} is not a directory`);
  const old = await loadMount(dir);
  if (old) {
    const holder = old.attachId ? await loadAttach(old.attachId) : undefined;
    const ours = holder?.daemon !== undefined && old.loop !== undefined && (await mountsAt(dir)).some((m) => m.source === old.loop);
    if (holder && (ours || (await isHolder(holder.pid)))) {
      throw new AttachError('ERR_MOUNT_IN_USE', `${dir} is already mounted by lunkit (${old.loop ?? 'no loop'}, holder pid ${holder.pid}); lunkit umount ${dir} first`);
    }
    say(`recovering the earlier mount on ${dir} (its holder is gone or it was left half done)`);
    await umountImage(dir);
  }
  const live = await mountsAt(dir);
  if (live.length > 0) throw new AttachError('ERR_MOUNT_IN_USE', `${dir} is in use by a mount (${live[live.length - 1].fsType} from ${live[live.length - 1].source})`);

  const source = withSourceOptions(parseSource(opts.source), { connections: opts.connections, erl: opts.erl });
  const state: MountState = { dir, mounted: false, fsType: opts.fsType, options: opts.options, createdAt: new Date().toISOString() };
  await saveMount(state);
  try {
    let att: AttachState;
    if (source.kind === 'daemon-lun') {
      const id = `m${mountKey(dir)}`;
      state.attachId = id;
      await saveMount(state);
      att = await attachDaemonLun({ backstore: source.backstore, socket: opts.socket, id, readOnly: opts.readOnly });
    } else {
      const plan = planAttach(source, { blockSize: opts.blockSize, readOnly: opts.readOnly });
      state.attachId = plan.id;
      await saveMount(state);
      att = await startDetached(plan);
    }
    state.file = att.file;
    await saveMount(state);
    say(`attached ${describeSource(source)} as ${att.file}`);
    state.loop = await loopAttach(att.file, { readOnly: opts.readOnly, directIo: opts.loopDirectIo });
    await saveMount(state);
    say(`loop device ${state.loop}`);
    if (opts.mkfs) {
      if (opts.readOnly) throw new AttachError('ERR_MOUNT_STEP', '--mkfs and --read-only exclude each other');
      await mkfs(opts.mkfs, state.loop);
      say(`created ${opts.mkfs} on ${state.loop}`);
      state.fsType ??= opts.mkfs;
    }
    await mountDev(state.loop, dir, { fsType: state.fsType, options: opts.options, readOnly: opts.readOnly });
    state.mounted = true;
    await saveMount(state);
    say(`mounted ${state.loop} on ${dir}`);
    return state;
  } catch (e) {
    await umountImage(dir).catch((u: unknown) => say(`cleanup after the failure also failed: ${(u as Error).message}`));
    throw e;
  }
}

/**
 * Undoes a `lunkit mount` in reverse order: umount(8) (lazily when the holder
 * is dead: the device cannot answer), losetup -d (only the recorded device,
 * and only if it still points at our file), detach the holder. Each step is
 * skipped when already undone, so it also cleans up after a partial failure.
 */
export async function umountImage(dirArg: string): Promise<void> {
  const dir = resolve(dirArg);
  const state = await loadMount(dir);
  if (!state) throw new AttachError('ERR_MOUNT_NOT_FOUND', `nothing mounted on ${dir} by lunkit`);
  const att = state.attachId ? await loadAttach(state.attachId) : undefined;
  // A daemon's LUN: the daemon is assumed to answer (a plain umount, as with a live holder).
  const holderAlive = att ? att.daemon !== undefined || (await isHolder(att.pid)) : false;
  // 1. the filesystem: only if a mount from our loop device is on dir.
  const here = await mountsAt(dir);
  if (state.loop && here.some((m) => m.source === state.loop)) {
    try {
      await umountDir(dir, !holderAlive);
    } catch (e) {
      if (holderAlive) throw e;
      await umountDir(dir, true);
    }
  }
  state.mounted = false;
  await saveMount(state);
  // 2. the loop device: only the one we made, and only while it still points at our file.
  if (state.loop) {
    const back = await loopBackingFile(state.loop);
    if (back !== undefined && (state.file === undefined || back === state.file)) await loopDetach(state.loop);
    state.loop = undefined;
    await saveMount(state);
  }
  // 3. the holder and its FUSE mount.
  const a = att ?? (state.file ? await findAttach(state.file) : undefined);
  if (a) await detach(a, { force: true });
  await removeMount(dir);
}
