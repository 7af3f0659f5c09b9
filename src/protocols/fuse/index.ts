// Public surface of the FUSE kernel protocol codecs (include/uapi/linux/fuse.h),
// shared by the /dev/fuse session and its tests.
export * from './constants.js';
export * from './request.js';
export * from './reply.js';
