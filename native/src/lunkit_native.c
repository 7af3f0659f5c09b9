/*
 * lunkit_native: the few Linux file calls Node does not expose.
 *
 *   fallocate(fd, mode, offset, length) -> Promise<void>
 *       FALLOC_FL_PUNCH_HOLE|KEEP_SIZE deallocates (UNMAP, WRITE SAME UNMAP),
 *       FALLOC_FL_ZERO_RANGE|KEEP_SIZE zeroes without writing data, mode 0
 *       preallocates (non-sparse files).
 *   lseek(fd, offset, whence) -> Promise<number>
 *       SEEK_DATA / SEEK_HOLE walk a sparse file's allocation (GET LBA STATUS);
 *       SEEK_END gives a block device's size.
 *   udp4SocketOnDevice(ifname, port) -> fd   (synchronous)
 *       A UDP socket with SO_REUSEADDR, SO_BROADCAST and SO_BINDTODEVICE,
 *       bound to 0.0.0.0:port, for the boot lab's proxy DHCP: it must share
 *       port 67 with the site's DHCP server, receive broadcasts only from one
 *       interface and send its broadcast replies out of that interface. Node's
 *       dgram has no SO_BINDTODEVICE; it adopts the fd with bind({ fd }).
 *   sdNotify(path, message) -> undefined   (synchronous)
 *       One datagram to systemd's NOTIFY_SOCKET (an AF_UNIX SOCK_DGRAM path,
 *       or "@name" in the abstract namespace). Node has no Unix datagram
 *       sockets, and a helper process (systemd-notify, python) would be the
 *       wrong sender: systemd checks the sender's PID against the service's
 *       main PID (NotifyAccess=main). MSG_DONTWAIT: a full receive queue is
 *       an EAGAIN error, never a blocked event loop.
 *
 * The file calls run on libuv's thread pool through napi async work, so a slow
 * file system never blocks the event loop. Errors reject with an Error whose
 * `code` is the errno name (EOPNOTSUPP, ENXIO...) and `errno` its negative
 * value, like Node's own fs errors. Only node_api.h is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <node_api.h>
#include "fuse_common.h"

enum op_kind { OP_FALLOCATE, OP_LSEEK };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  enum op_kind kind;
  int fd;
  int mode;   /* fallocate mode or lseek whence */
  int64_t offset;
  int64_t length;
  int64_t result;
  int err;    /* errno, 0 on success */
} op_t;

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case ENODEV: return "ENODEV";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EOVERFLOW: return "EOVERFLOW";
    case EDQUOT: return "EDQUOT";
    case ETXTBSY: return "ETXTBSY";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAGAIN: return "EAGAIN";
    case EMSGSIZE: return "EMSGSIZE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTDIR: return "ENOTDIR";
    default: return "EUNKNOWN";
  }
}

static void execute(napi_env env, void *data) {
  (void)env;
  op_t *op = (op_t *)data;
  if (op->kind == OP_FALLOCATE) {
    int rc;
    do {
      rc = fallocate(op->fd, op->mode, (off_t)op->offset, (off_t)op->length);
    } while (rc != 0 && errno == EINTR);
    op->err = rc == 0 ? 0 : errno;
    op->result = 0;
  } else {
    off_t r = lseek(op->fd, (off_t)op->offset, op->mode);
    op->err = r < 0 ? errno : 0;
    op->result = (int64_t)r;
  }
}

static napi_value make_error(napi_env env, int e, const char *syscall) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s, %s", errno_name(e), strerror(e), syscall);
  napi_value code, text, error, errnum, sys;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int32(env, -e, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "syscall", sys);
  return error;
}

static void complete(napi_env env, napi_status status, void *data) {
  op_t *op = (op_t *)data;
  if (status != napi_ok) {
    napi_value err = make_error(env, EINTR, op->kind == OP_FALLOCATE ? "fallocate" : "lseek");
    napi_reject_deferred(env, op->deferred, err);
  } else if (op->err != 0) {
    napi_value err = make_error(env, op->err, op->kind == OP_FALLOCATE ? "fallocate" : "lseek");
    napi_reject_deferred(env, op->deferred, err);
  } else {
    napi_value value;
    if (op->kind == OP_FALLOCATE) napi_get_undefined(env, &value);
    else napi_create_double(env, (double)op->result, &value);
    napi_resolve_deferred(env, op->deferred, value);
  }
  napi_delete_async_work(env, op->work);
  free(op);
}

/* Read argument i as an integer that fits a double exactly (offsets < 2^53). */
static int get_i64(napi_env env, napi_value v, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (d < -9007199254740991.0 || d > 9007199254740991.0 || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

static napi_value start(napi_env env, napi_callback_info info, enum op_kind kind) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t want = kind == OP_FALLOCATE ? 4 : 3;
  int64_t a[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < want; i++) {
    if (i >= argc || !get_i64(env, argv[i], &a[i])) {
      napi_throw_type_error(env, "EINVAL", "expected integer arguments");
      return NULL;
    }
  }
  op_t *op = calloc(1, sizeof *op);
  if (op == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  op->kind = kind;
  op->fd = (int)a[0];
  if (kind == OP_FALLOCATE) {
    op->mode = (int)a[1];
    op->offset = a[2];
    op->length = a[3];
  } else {
    op->offset = a[1];
    op->mode = (int)a[2];
  }
  napi_value promise, name;
  napi_create_promise(env, &op->deferred, &promise);
  napi_create_string_utf8(env, kind == OP_FALLOCATE ? "lunkit:fallocate" : "lunkit:lseek",
                          NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, op, &op->work);
  napi_queue_async_work(env, op->work);
  return promise;
}

static napi_value js_fallocate(napi_env env, napi_callback_info info) {
  return start(env, info, OP_FALLOCATE);
}

static napi_value js_lseek(napi_env env, napi_callback_info info) {
  return start(env, info, OP_LSEEK);
}

static napi_value js_udp4_socket_on_device(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char ifname[IFNAMSIZ];
  size_t iflen = 0;
  int64_t port = -1;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], ifname, sizeof ifname, &iflen) != napi_ok ||
      iflen == 0 || iflen >= IFNAMSIZ - 1 || !get_i64(env, argv[1], &port) || port < 0 || port > 65535) {
    napi_throw_type_error(env, "EINVAL", "expected (ifname: string, port: number)");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    napi_throw(env, make_error(env, errno, "socket"));
    return NULL;
  }
  int one = 1;
  const char *step = "setsockopt";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)(iflen + 1)) != 0)
    goto fail;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  step = "bind";
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) goto fail;
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
fail: {
    int e = errno;
    close(fd);
    napi_throw(env, make_error(env, e, step));
    return NULL;
  }
}

static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t plen = 0;
  /* +1: napi writes a terminating NUL; a path that fills sun_path is refused below. */
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], sa.sun_path, sizeof sa.sun_path, &plen) != napi_ok ||
      plen == 0 || plen >= sizeof sa.sun_path - 1 || (sa.sun_path[0] != '/' && sa.sun_path[0] != '@')) {
    napi_throw_type_error(env, "EINVAL", "expected (path: absolute path or @abstract name, message: string)");
    return NULL;
  }
  size_t mlen = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &mlen) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "message must be a string");
    return NULL;
  }
  char *msg = malloc(mlen + 1);
  if (msg == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], msg, mlen + 1, &mlen);
  /* An abstract address has a leading NUL and no terminator: its length is exact. */
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (sa.sun_path[0] == '@' ? 0 : 1));
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const char *step = "socket";
  if (fd >= 0) {
    step = "sendto";
    ssize_t n = sendto(fd, msg, mlen, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int e = errno;
    close(fd);
    if (n == (ssize_t)mlen) {
      free(msg);
      return NULL;
    }
    errno = n < 0 ? e : EMSGSIZE;
  }
  int e = errno;
  free(msg);
  napi_throw(env, make_error(env, e, step));
  return NULL;
}

static void set_int(napi_env env, napi_value obj, const char *name, int v) {
  napi_value value;
  napi_create_int32(env, v, &value);
  napi_set_named_property(env, obj, name, value);
}

/* fuse_channel.c: the /dev/fuse transport (fuseMount, fuseReaderStart...). */

static napi_value init(napi_env env, napi_value exports) {
  export_fn(env, exports, "fallocate", js_fallocate);
  export_fn(env, exports, "lseek", js_lseek);
  export_fn(env, exports, "udp4SocketOnDevice", js_udp4_socket_on_device);
  export_fn(env, exports, "sdNotify", js_sd_notify);
  set_int(env, exports, "FALLOC_FL_KEEP_SIZE", FALLOC_FL_KEEP_SIZE);
  set_int(env, exports, "FALLOC_FL_PUNCH_HOLE", FALLOC_FL_PUNCH_HOLE);
  set_int(env, exports, "FALLOC_FL_ZERO_RANGE", FALLOC_FL_ZERO_RANGE);
  set_int(env, exports, "SEEK_SET", SEEK_SET);
  set_int(env, exports, "SEEK_END", SEEK_END);
  set_int(env, exports, "SEEK_DATA", SEEK_DATA);
  set_int(env, exports, "SEEK_HOLE", SEEK_HOLE);
  fuse_channel_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
