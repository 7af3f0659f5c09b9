// Typings for fuse-native 2.2.6 (it ships none). Written from its index.js,
// not its README: the README has fsync's arguments in the wrong order (the
// real call is fsync(path, datasync, fd, cb)), and read/write callbacks take
// the byte count (or a negative errno) as their first argument.

declare module 'fuse-native' {
  /** Result callback: 0 or a negative errno. */
  type Done = (code: number) => void;

  export interface FuseStat {
    mode: number;
    uid?: number;
    gid?: number;
    size?: number;
    dev?: number;
    nlink?: number;
    ino?: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
    atime?: Date | number;
    mtime?: Date | number;
    ctime?: Date | number;
  }

  export interface FuseStatfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }

  /** The operations fuse-native dispatches; only the ones given are registered with libfuse. */
  export interface FuseOps {
    init?(cb: Done): void;
    getattr?(path: string, cb: (code: number, stat?: FuseStat) => void): void;
    fgetattr?(path: string, fd: number, cb: (code: number, stat?: FuseStat) => void): void;
    readdir?(path: string, cb: (code: number, names?: string[], stats?: FuseStat[]) => void): void;
    open?(path: string, flags: number, cb: (code: number, fd?: number) => void): void;
    opendir?(path: string, flags: number, cb: (code: number, fd?: number) => void): void;
    release?(path: string, fd: number, cb: Done): void;
    releasedir?(path: string, fd: number, cb: Done): void;
    /** cb(bytesRead) or cb(-errno). buf is only valid until cb is called. */
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
    /** cb(bytesWritten) or cb(-errno). buf is only valid until cb is called. */
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
    flush?(path: string, fd: number, cb: Done): void;
    fsync?(path: string, datasync: number, fd: number, cb: Done): void;
    statfs?(path: string, cb: (code: number, statfs?: FuseStatfs) => void): void;
    truncate?(path: string, size: number, cb: Done): void;
    ftruncate?(path: string, fd: number, size: number, cb: Done): void;
    chmod?(path: string, mode: number, cb: Done): void;
    chown?(path: string, uid: number, gid: number, cb: Done): void;
    utimens?(path: string, atime: number, mtime: number, cb: Done): void;
    create?(path: string, mode: number, cb: (code: number, fd?: number) => void): void;
    mknod?(path: string, mode: number, dev: number, cb: Done): void;
    unlink?(path: string, cb: Done): void;
    rename?(src: string, dest: string, cb: Done): void;
    link?(src: string, dest: string, cb: Done): void;
    symlink?(src: string, dest: string, cb: Done): void;
    mkdir?(path: string, mode: number, cb: Done): void;
    rmdir?(path: string, cb: Done): void;
  }

  export interface FuseOptions {
    /**
     * Per-op timeout in ms, or false; default 15000 (then the op fails with
     * ETIMEDOUT). An object sets a default and per-operation values
     * (fuse-native's makeHandler reads `timeout[op]` before `timeout.default`).
     */
    timeout?: number | false | ({ default: number | false } & { [op: string]: number | false });
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    allowRoot?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    maxRead?: number;
    /**
     * Appended verbatim after "fsname=" in the -o string: the only way to
     * pass options fuse-native does not know (big_writes, max_write=N, direct_io).
     */
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    uid?: number;
    gid?: number;
    entryTimeout?: number;
    attrTimeout?: number;
  }

  class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly EIO: number;
    static readonly EACCES: number;
    static readonly EROFS: number;
    static readonly ENOSPC: number;
    static readonly EINVAL: number;
  }
  export default Fuse;
}
