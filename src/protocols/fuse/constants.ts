// Linux FUSE kernel protocol constants, from the kernel's
// include/uapi/linux/fuse.h (protocol 7.45) unless a line says otherwise.
// Debug names are generated from the tables so a new entry cannot lack one.
//
// Only protocol minor >= 28 request layouts are decoded (see request.ts):
// every struct decoded here has had its present size since 7.28 or earlier,
// except fuse_init_in, which grew from 16 to 64 bytes in 7.36.

/** FUSE_KERNEL_VERSION: the only major version there is. */
export const FUSE_KERNEL_VERSION = 7;
/** Oldest minor whose request layouts this codec decodes (FUSE_MAX_PAGES, 7.28). */
export const FUSE_MIN_SUPPORTED_MINOR = 28;
/** FUSE_KERNEL_MINOR_VERSION of the fuse.h these constants come from. */
export const FUSE_HEADER_MINOR_VERSION = 45;
/** FUSE_ROOT_ID: node id of the mount's root inode. */
export const FUSE_ROOT_ID = 1n;
/** FUSE_MIN_READ_BUFFER: a read(2) of /dev/fuse with less than this fails EINVAL. */
export const FUSE_MIN_READ_BUFFER = 8192;
/** FUSE_NAME_MAX (fs/fuse/fuse_i.h): longest name the kernel sends or accepts. */
export const FUSE_NAME_MAX = 1024;
/** FUSE_UNIQUE_RESEND: bit 63 of a unique marks a resent request (7.40). */
export const FUSE_UNIQUE_RESEND = 1n << 63n;
/** FUSE_INT_REQ_BIT (fs/fuse/fuse_i.h): an INTERRUPT's unique is the target's | 1. */
export const FUSE_INT_REQ_BIT = 1n;

/** enum fuse_opcode. */
export const FuseOpcode = {
  LOOKUP: 1,
  /** No reply. */
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  /** No reply. */
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53,
  CUSE_INIT: 4096,
} as const;
export type FuseOpcode = (typeof FuseOpcode)[keyof typeof FuseOpcode];

export const FUSE_OPCODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(FuseOpcode).map(([k, v]) => [v, k]),
);
export const fuseOpcodeName = (code: number): string => FUSE_OPCODE_NAMES[code] ?? `OPCODE_${code}`;

/**
 * Requests the kernel expects no answer to: FORGET and BATCH_FORGET. (An
 * INTERRUPT may be answered only with EAGAIN, to have it queued again, or
 * ENOSYS, to stop the kernel sending more: fs/fuse/dev.c fuse_dev_do_write.)
 */
export const fuseOpcodeHasReply = (code: number): boolean =>
  code !== FuseOpcode.FORGET && code !== FuseOpcode.BATCH_FORGET && code !== FuseOpcode.INTERRUPT;

/**
 * INIT flags, the low 32 bits (fuse_init_in.flags / fuse_init_out.flags).
 * Values are unsigned: combine with `(a | b) >>> 0` so bit 31 stays positive.
 */
export const FuseInitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  FILE_OPS: 1 << 2,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  HAS_IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  /** fuse_init_in is 64 bytes and flags2 is valid (7.36). */
  INIT_EXT: 1 << 30,
  INIT_RESERVED: 0x8000_0000,
} as const;

/** INIT flags 32..63, shifted down into fuse_init_in/out.flags2 (7.36). */
export const FuseInitFlag2 = {
  SECURITY_CTX: 1 << 0,
  HAS_INODE_DAX: 1 << 1,
  CREATE_SUPP_GROUP: 1 << 2,
  HAS_EXPIRE_ONLY: 1 << 3,
  DIRECT_IO_ALLOW_MMAP: 1 << 4,
  PASSTHROUGH: 1 << 5,
  NO_EXPORT_SUPPORT: 1 << 6,
  HAS_RESEND: 1 << 7,
  ALLOW_IDMAP: 1 << 8,
  OVER_IO_URING: 1 << 9,
  REQUEST_TIMEOUT: 1 << 10,
} as const;

/** FOPEN_* flags in fuse_open_out.open_flags. */
export const FuseOpenOutFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  PASSTHROUGH: 1 << 7,
} as const;

/** FUSE_OPEN_* flags in fuse_open_in.open_flags. */
export const FuseOpenInFlag = {
  KILL_SUIDGID: 1 << 0,
} as const;

/** FATTR_* bits of fuse_setattr_in.valid: which fields to apply. */
export const FuseSetattrValid = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** FUSE_RELEASE_* bits of fuse_release_in.release_flags. */
export const FuseReleaseFlag = {
  FLUSH: 1 << 0,
  FLOCK_UNLOCK: 1 << 1,
} as const;

/** FUSE_GETATTR_FH: fuse_getattr_in.fh is valid. */
export const FUSE_GETATTR_FH = 1 << 0;
/** FUSE_READ_LOCKOWNER: fuse_read_in.lock_owner is valid. */
export const FUSE_READ_LOCKOWNER = 1 << 1;

/** FUSE_WRITE_* bits of fuse_write_in.write_flags. */
export const FuseWriteFlag = {
  /** Delayed write from the page cache; the file handle is guessed. */
  CACHE: 1 << 0,
  LOCKOWNER: 1 << 1,
  KILL_SUIDGID: 1 << 2,
} as const;

/** FUSE_FSYNC_FDATASYNC: sync data only. */
export const FUSE_FSYNC_FDATASYNC = 1 << 0;

/** fuse_attr.flags. */
export const FuseAttrFlag = {
  SUBMOUNT: 1 << 0,
  DAX: 1 << 1,
} as const;

/** fallocate(2) modes in fuse_fallocate_in.mode (include/uapi/linux/falloc.h). */
export const FallocFlag = {
  KEEP_SIZE: 0x01,
  PUNCH_HOLE: 0x02,
  NO_HIDE_STALE: 0x04,
  COLLAPSE_RANGE: 0x08,
  ZERO_RANGE: 0x10,
  INSERT_RANGE: 0x20,
  UNSHARE_RANGE: 0x40,
} as const;

/** lseek(2) whence values in fuse_lseek_in.whence (include/uapi/linux/fs.h). */
export const SeekWhence = {
  SET: 0,
  CUR: 1,
  END: 2,
  DATA: 3,
  HOLE: 4,
} as const;

/** d_type values for fuse_dirent.type: (mode & S_IFMT) >> 12 (include/linux/fs_types.h). */
export const DirentType = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

/** The d_type that goes with a st_mode. */
export const direntTypeOfMode = (mode: number): number => (mode & 0o170000) >>> 12;

/**
 * Errno numbers for fuse_out_header.error (negated on the wire). These are
 * the asm-generic values (x86, arm, arm64, riscv, s390, ...); alpha, mips,
 * parisc and sparc number some of them differently and are not supported.
 */
export const FuseErrno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  EPROTO: 71,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
} as const;
export type FuseErrno = (typeof FuseErrno)[keyof typeof FuseErrno];

export const FUSE_ERRNO_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(FuseErrno).map(([k, v]) => [v, k]),
);

/**
 * fs/fuse/dev.c fuse_dev_do_write refuses a reply whose error is > 0 or
 * <= -512, so an errno must be 1..511.
 */
export const FUSE_MAX_ERRNO = 511;

/**
 * FUSE_DEV_IOC_CLONE = _IOR(229, 0, uint32_t): dir read (2) << 30 | size 4 << 16
 * | type 229 << 8 | nr 0, in the asm-generic ioctl encoding (not powerpc,
 * mips, sparc or alpha).
 */
export const FUSE_DEV_IOC_MAGIC = 229;
export const FUSE_DEV_IOC_CLONE = 0x8004_e500;

// --- Struct sizes (bytes) ------------------------------------------------------

export const FuseSize = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  /** fuse_init_in before 7.36: major, minor, max_readahead, flags. */
  INIT_IN_COMPAT: 16,
  INIT_IN: 64,
  INIT_OUT: 64,
  FORGET_IN: 8,
  FORGET_ONE: 16,
  BATCH_FORGET_IN: 8,
  GETATTR_IN: 16,
  SETATTR_IN: 88,
  OPEN_IN: 8,
  RELEASE_IN: 24,
  FLUSH_IN: 24,
  READ_IN: 40,
  WRITE_IN: 40,
  FSYNC_IN: 16,
  ACCESS_IN: 8,
  INTERRUPT_IN: 8,
  FALLOCATE_IN: 32,
  LSEEK_IN: 24,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  OPEN_OUT: 16,
  WRITE_OUT: 8,
  KSTATFS: 80,
  LSEEK_OUT: 8,
  /** offsetof(struct fuse_dirent, name). */
  DIRENT: 24,
  /** offsetof(struct fuse_direntplus, dirent.name). */
  DIRENTPLUS: 152,
} as const;
