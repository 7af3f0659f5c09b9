/*
 * fuse_channel: lunkit's own /dev/fuse transport (issue 16). It mounts, reads
 * kernel FUSE requests on reader threads and writes replies; the protocol
 * itself (decoding, dispatch) is JavaScript (src/protocols/fuse, the session).
 *
 *   fuseMount(mountpoint, opts) -> fd                      (synchronous)
 *       open("/dev/fuse") + mount(2) "fuse.<subtype>". Needs CAP_SYS_ADMIN.
 *       mount(2) does not wait for INIT (the kernel queues it), so a reader
 *       started afterwards sees INIT as its first request.
 *   fuseUnmount(mountpoint, lazy)                           (synchronous)
 *       umount2(MNT_DETACH when lazy, UMOUNT_NOFOLLOW). "Not mounted" throws
 *       with code EINVAL (or ENOENT when the directory is gone).
 *   fuseClone(fd) -> fd
 *       A second /dev/fuse fd on the same connection (FUSE_DEV_IOC_CLONE),
 *       so that each reader thread has its own processing queue.
 *   fuseWrite(fd, parts) -> bytes | -ENOENT                 (synchronous)
 *       One reply = one writev. /dev/fuse writes never block. The reply must
 *       go to the fd its request was read from: each cloned fd has its own
 *       processing queue and the kernel looks the unique up only there.
 *   fuseReaderStart(fds, buffers, onRequest, onExit) -> handle
 *       See "Reader" below: one thread per fd.
 *   fuseReaderStartPoll(fds, buffers, onRequest, onExit) -> handle
 *       The same contract, reading on the Node event loop (fuse_poll.c).
 *   fuseReaderRelease(handle, bufIndex)
 *   fuseReaderStop(handle) -> Promise<void>
 *   fuseReaderRef(handle, ref)
 *       Work on either kind of handle.
 *
 * Errors are Errors whose `code` is the errno name and `errno` its negative
 * value, like Node's own fs errors, with a message naming the path or fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fuse.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include "fuse_common.h"

/* Optional properties: absent or undefined leaves *out unchanged. */
static int prop_u32(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return 0;
  return t == napi_undefined || get_u32(env, v, out);
}

static int prop_bool(napi_env env, napi_value obj, const char *name, int *out) {
  napi_value v;
  napi_valuetype t;
  bool b;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_undefined) return 1;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return 0;
  *out = b;
  return 1;
}

static int prop_string(napi_env env, napi_value obj, const char *name, char *out, size_t size) {
  napi_value v;
  return napi_get_named_property(env, obj, name, &v) == napi_ok && get_path(env, v, out, size);
}

/* ---- mount, unmount, clone ------------------------------------------------ */

typedef struct {
  char fsname[256];
  char type[256];
  uint32_t root_mode, uid, gid, max_read;
  int allow_other, default_permissions, read_only;
} mount_opts_t;

static int get_mount_opts(napi_env env, napi_value obj, mount_opts_t *o) {
  char subtype[240];
  memset(o, 0, sizeof *o);
  o->root_mode = 040755;
  if (!prop_string(env, obj, "fsname", o->fsname, sizeof o->fsname) ||
      !prop_string(env, obj, "subtype", subtype, sizeof subtype) ||
      !prop_u32(env, obj, "rootMode", &o->root_mode) || !prop_u32(env, obj, "uid", &o->uid) ||
      !prop_u32(env, obj, "gid", &o->gid) || !prop_u32(env, obj, "maxRead", &o->max_read) ||
      !prop_bool(env, obj, "allowOther", &o->allow_other) ||
      !prop_bool(env, obj, "defaultPermissions", &o->default_permissions) ||
      !prop_bool(env, obj, "readOnly", &o->read_only))
    return 0;
  snprintf(o->type, sizeof o->type, "fuse.%s", subtype);
  return 1;
}

/* The option string fuse(5) documents; only numbers go in, so no escaping. */
static void mount_data(const mount_opts_t *o, int fd, char *out, size_t size) {
  int n = snprintf(out, size, "fd=%d,rootmode=%o,user_id=%u,group_id=%u%s%s", fd, o->root_mode, o->uid, o->gid,
                   o->allow_other ? ",allow_other" : "", o->default_permissions ? ",default_permissions" : "");
  if (o->max_read > 0 && n > 0 && (size_t)n < size) snprintf(out + n, size - (size_t)n, ",max_read=%u", o->max_read);
}

static napi_value js_fuse_mount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char dir[PATH_MAX], data[256];
  mount_opts_t o;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !get_path(env, argv[0], dir, sizeof dir) || !get_mount_opts(env, argv[1], &o)) {
    napi_throw_type_error(env, "EINVAL", "fuseMount(mountpoint, { fsname, subtype, rootMode, uid, gid, ... })");
    return NULL;
  }
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "open /dev/fuse for", dir);
    return NULL;
  }
  mount_data(&o, fd, data, sizeof data);
  unsigned long flags = MS_NOSUID | MS_NODEV | (o.read_only ? MS_RDONLY : 0);
  if (mount(o.fsname, dir, o.type, flags, data) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, "mount", dir);
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value js_fuse_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char dir[PATH_MAX];
  bool lazy = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !get_path(env, argv[0], dir, sizeof dir) || napi_get_value_bool(env, argv[1], &lazy) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "fuseUnmount(mountpoint: string, lazy: boolean)");
    return NULL;
  }
  /* NOFOLLOW: we run as root and the path may sit in a user's directory. */
  if (umount2(dir, UMOUNT_NOFOLLOW | (lazy ? MNT_DETACH : 0)) != 0) throw_errno(env, errno, "umount2", dir);
  return NULL;
}

static napi_value js_fuse_clone(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !get_fd(env, argv[0], &fd)) {
    napi_throw_type_error(env, "EINVAL", "fuseClone(fd: number)");
    return NULL;
  }
  int clone_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (clone_fd < 0) {
    throw_errno(env, errno, "open", "/dev/fuse");
    return NULL;
  }
  uint32_t src = (uint32_t)fd;
  if (ioctl(clone_fd, FUSE_DEV_IOC_CLONE, &src) != 0) {
    int e = errno;
    close(clone_fd);
    char what[32];
    snprintf(what, sizeof what, "fd %d", fd);
    throw_errno(env, e, "ioctl FUSE_DEV_IOC_CLONE", what);
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, clone_fd, &out);
  return out;
}

/* ---- replies -------------------------------------------------------------- */

static int get_iovecs(napi_env env, napi_value arr, struct iovec *iov, uint32_t max, uint32_t *count) {
  bool is_array;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) return 0;
  if (napi_get_array_length(env, arr, count) != napi_ok || *count == 0 || *count > max) return 0;
  for (uint32_t i = 0; i < *count; i++) {
    napi_value item;
    void *data;
    size_t len;
    if (napi_get_element(env, arr, i, &item) != napi_ok ||
        napi_get_buffer_info(env, item, &data, &len) != napi_ok)
      return 0;
    iov[i].iov_base = data;
    iov[i].iov_len = len;
  }
  return 1;
}

static napi_value js_fuse_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct iovec iov[64]; /* a reply is a header and a few payload pieces */
  uint32_t count = 0;
  int fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !get_fd(env, argv[0], &fd) || !get_iovecs(env, argv[1], iov, 64, &count)) {
    napi_throw_type_error(env, "EINVAL", "fuseWrite(fd: number, parts: Buffer[]) with 1..64 parts");
    return NULL;
  }
  ssize_t n;
  do n = writev(fd, iov, (int)count);
  while (n < 0 && errno == EINTR);
  int e = n < 0 ? errno : 0;
  napi_value out;
  if (e != 0 && e != ENOENT) {
    char what[32];
    snprintf(what, sizeof what, "fd %d", fd);
    throw_errno(env, e, "writev", what);
    return NULL;
  }
  /* ENOENT: the request was interrupted or the connection aborted; not an error for the caller. */
  napi_create_int64(env, n < 0 ? -ENOENT : (int64_t)n, &out);
  return out;
}

/* ---- Reader ----------------------------------------------------------------
 * One thread per fd. JS owns the request buffers (napi references keep them
 * alive); a free list under a mutex hands each thread a buffer before it
 * reads, so the buffer count bounds both memory and requests in flight, and a
 * thread with no free buffer waits instead of reading. A request goes to JS
 * through a threadsafe function carrying (bufIndex, length, fdIndex); JS calls
 * release(bufIndex) when done with the bytes (a WRITE's data stays in the
 * buffer until the backstore has written it).
 *
 * The fds are dup'ed and set O_NONBLOCK: a thread reads until EAGAIN and only
 * then poll()s its fd together with an eventfd. That eventfd is how stop()
 * wakes threads no matter what (a blocking read() is not woken by close()
 * nor by stop, only by unmount or abort). The price is that every idle thread
 * wakes for a new request (poll wakes all waiters; a blocking read wakes one)
 * and the losers get EAGAIN; busy threads never poll.
 *
 * Thread exits: stop() (code null), unmount or /sys/fs/fuse/connections/N/
 * abort (ENODEV; an abort gives ECONNABORTED instead when INIT negotiated
 * FUSE_ABORT_ERROR), any other read error (its name, once).
 * Each thread reports its exit through the same threadsafe function and
 * releases it; after the last one Node finalizes it, and the finalizer joins
 * the threads, drops the buffer references and resolves stop()'s promise.
 * Node also runs that finalizer at environment teardown, while threads may
 * still run, so it always stops and joins them first: no thread outlives the
 * memory it uses. The handle (a napi external) and the threadsafe function
 * each hold one count on the reader struct; the last to go frees it.
 */

enum ev_kind { EV_REQUEST, EV_EXIT };

typedef struct {
  enum ev_kind kind;
  int32_t index;   /* buffer index (request) or fd index (exit) */
  uint32_t length; /* request length */
  int32_t fd_index;
  int err; /* exit: errno, 0 for stop */
} event_t;

typedef struct reader reader_t;

typedef struct {
  reader_t *r;
  int index;
  int fd; /* our dup */
  pthread_t tid;
  int started;
  event_t exit_ev;
} thread_t;

struct reader {
  enum reader_kind kind; /* READER_THREADS: first, see fuse_common.h */
  int nfds, nbufs, wake_fd, handle_refs;
  atomic_int stopping;
  int finished; /* tsfn finalized: JS-thread only */
  thread_t *threads;
  uint8_t **bufs;
  size_t *lens;
  napi_ref *buf_refs;
  napi_ref on_exit;
  event_t *slots; /* one per buffer: a request's event lives in its buffer's slot */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int *free_list, nfree;
  uint8_t *busy;
  napi_threadsafe_function tsfn;
  napi_deferred stop_deferred;
  napi_ref stop_promise;
};

static void reader_free(reader_t *r) {
  for (int i = 0; r->threads != NULL && i < r->nfds; i++)
    if (r->threads[i].fd >= 0) close(r->threads[i].fd);
  if (r->wake_fd >= 0) close(r->wake_fd);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r->threads);
  free(r->bufs);
  free(r->lens);
  free(r->buf_refs);
  free(r->slots);
  free(r->free_list);
  free(r->busy);
  free(r);
}

static void reader_unref(reader_t *r) {
  if (--r->handle_refs == 0) reader_free(r);
}

/* Any thread: ask every reader thread to exit. */
static void reader_signal_stop(reader_t *r) {
  uint64_t one = 1;
  atomic_store(&r->stopping, 1);
  pthread_mutex_lock(&r->mu);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (write(r->wake_fd, &one, sizeof one) < 0) { /* the counter cannot overflow with ones; nothing to do */ }
}

static int take_buffer(reader_t *r) {
  int idx = -1;
  pthread_mutex_lock(&r->mu);
  while (r->nfree == 0 && !atomic_load(&r->stopping)) pthread_cond_wait(&r->cv, &r->mu);
  if (!atomic_load(&r->stopping)) {
    idx = r->free_list[--r->nfree];
    r->busy[idx] = 1;
  }
  pthread_mutex_unlock(&r->mu);
  return idx;
}

/* 0: buffer put back; -1: it was not taken (a double release). */
static int give_back(reader_t *r, int idx) {
  int rc = -1;
  pthread_mutex_lock(&r->mu);
  if (r->busy[idx]) {
    r->busy[idx] = 0;
    r->free_list[r->nfree++] = idx;
    pthread_cond_signal(&r->cv);
    rc = 0;
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* Waits until fd has a request (1), stop was asked (0, *err = 0) or poll failed (0, *err set). */
static int wait_readable(reader_t *r, int fd, int *err) {
  struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = r->wake_fd, .events = POLLIN}};
  for (;;) {
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      return 0;
    }
    if (p[1].revents != 0 || atomic_load(&r->stopping)) {
      *err = 0;
      return 0;
    }
    return 1; /* POLLIN, or POLLERR after unmount: the read reports which */
  }
}

/* Reads one request into buffer idx: its length, or -1 with *err (0 = stop). */
static ssize_t read_request(reader_t *r, int fd, int idx, int *err) {
  for (;;) {
    if (atomic_load(&r->stopping)) {
      *err = 0;
      return -1;
    }
    ssize_t n = read(fd, r->bufs[idx], r->lens[idx]);
    if (n > 0) return n;
    int e = n == 0 ? EIO : errno;
    /* ENOENT: the request was interrupted before we read it; take the next. */
    if (e == EINTR || e == ENOENT) continue;
    if (e == EAGAIN) {
      if (wait_readable(r, fd, err)) continue;
      return -1;
    }
    *err = e;
    return -1;
  }
}

static void *reader_main(void *arg) {
  thread_t *t = arg;
  reader_t *r = t->r;
  int err = 0;
  for (;;) {
    int idx = take_buffer(r);
    if (idx < 0) break;
    ssize_t n = read_request(r, t->fd, idx, &err);
    if (n < 0) {
      give_back(r, idx);
      break;
    }
    event_t *ev = &r->slots[idx];
    *ev = (event_t){.kind = EV_REQUEST, .index = idx, .length = (uint32_t)n, .fd_index = t->index};
    if (napi_call_threadsafe_function(r->tsfn, ev, napi_tsfn_blocking) != napi_ok) {
      give_back(r, idx); /* napi_closing: the environment is going away */
      break;
    }
  }
  t->exit_ev = (event_t){.kind = EV_EXIT, .index = t->index, .err = err};
  napi_call_threadsafe_function(r->tsfn, &t->exit_ev, napi_tsfn_blocking);
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  return NULL;
}

static void call_exit(napi_env env, reader_t *r, const event_t *ev) {
  napi_value fn, undef, args[2];
  if (napi_get_reference_value(env, r->on_exit, &fn) != napi_ok || fn == NULL) return;
  const char *name = ev->err == 0 ? NULL : strerrorname_np(ev->err);
  napi_get_undefined(env, &undef);
  napi_create_int32(env, ev->index, &args[0]);
  if (name == NULL && ev->err == 0) napi_get_null(env, &args[1]);
  else napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &args[1]);
  napi_call_function(env, undef, fn, 2, args, NULL);
}

/* JS thread: deliver one event. env is NULL when Node drops queued items at teardown. */
static void call_js(napi_env env, napi_value on_request, void *context, void *data) {
  reader_t *r = context;
  const event_t *ev = data;
  if (env == NULL) return;
  if (ev->kind == EV_EXIT) {
    call_exit(env, r, ev);
    return;
  }
  napi_value undef, args[3];
  napi_get_undefined(env, &undef);
  napi_create_int32(env, ev->index, &args[0]);
  napi_create_uint32(env, ev->length, &args[1]);
  napi_create_int32(env, ev->fd_index, &args[2]);
  napi_call_function(env, undef, on_request, 3, args, NULL);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  reader_t *r = data;
  reader_signal_stop(r);
  for (int i = 0; i < r->nfds; i++)
    if (r->threads[i].started) pthread_join(r->threads[i].tid, NULL);
  for (int i = 0; i < r->nbufs; i++)
    if (r->buf_refs[i] != NULL) napi_delete_reference(env, r->buf_refs[i]);
  if (r->on_exit != NULL) napi_delete_reference(env, r->on_exit);
  r->finished = 1;
  if (r->stop_deferred != NULL) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, r->stop_deferred, undef);
    r->stop_deferred = NULL;
  }
  if (r->stop_promise != NULL) napi_delete_reference(env, r->stop_promise);
  r->stop_promise = NULL;
  reader_unref(r);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  reader_t *r = data;
  /* Nobody can release buffers any more: let the threads go. */
  if (!r->finished) reader_signal_stop(r);
  reader_unref(r);
}

static reader_t *reader_alloc(int nfds, int nbufs) {
  reader_t *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->kind = READER_THREADS;
  r->nfds = nfds;
  r->nbufs = nbufs;
  r->wake_fd = -1;
  r->handle_refs = 1; /* the threadsafe function's, or ours until it exists */
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->threads = calloc((size_t)nfds, sizeof *r->threads);
  r->bufs = calloc((size_t)nbufs, sizeof *r->bufs);
  r->lens = calloc((size_t)nbufs, sizeof *r->lens);
  r->buf_refs = calloc((size_t)nbufs, sizeof *r->buf_refs);
  r->slots = calloc((size_t)nbufs, sizeof *r->slots);
  r->free_list = calloc((size_t)nbufs, sizeof *r->free_list);
  r->busy = calloc((size_t)nbufs, 1);
  for (int i = 0; r->threads != NULL && i < nfds; i++) r->threads[i].fd = -1;
  if (!r->threads || !r->bufs || !r->lens || !r->buf_refs || !r->slots || !r->free_list || !r->busy) {
    reader_free(r);
    return NULL;
  }
  return r;
}

/* dup + O_NONBLOCK each fd (see above); 0 with errno on failure. */
static int reader_take_fds(napi_env env, reader_t *r, napi_value arr) {
  for (int i = 0; i < r->nfds; i++) {
    napi_value v;
    int fd;
    if (napi_get_element(env, arr, (uint32_t)i, &v) != napi_ok || !get_fd(env, v, &fd)) {
      errno = EINVAL;
      return 0;
    }
    r->threads[i].r = r;
    r->threads[i].index = i;
    r->threads[i].fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (r->threads[i].fd < 0) return 0;
    int fl = fcntl(r->threads[i].fd, F_GETFL);
    if (fl < 0 || fcntl(r->threads[i].fd, F_SETFL, fl | O_NONBLOCK) != 0) return 0;
  }
  r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return r->wake_fd >= 0;
}

static int overlaps(const reader_t *r, int n, const uint8_t *p, size_t len) {
  for (int i = 0; i < n; i++)
    if (p < r->bufs[i] + r->lens[i] && r->bufs[i] < p + len) return 1;
  return 0;
}

/* Buffers: each at least FUSE_MIN_READ_BUFFER, none sharing memory with another. */
static int reader_take_buffers(napi_env env, reader_t *r, napi_value arr) {
  for (int i = 0; i < r->nbufs; i++) {
    napi_value v;
    void *data;
    size_t len;
    if (napi_get_element(env, arr, (uint32_t)i, &v) != napi_ok ||
        napi_get_buffer_info(env, v, &data, &len) != napi_ok || len < FUSE_MIN_READ_BUFFER ||
        overlaps(r, i, data, len))
      return 0;
    if (napi_create_reference(env, v, 1, &r->buf_refs[i]) != napi_ok) return 0;
    r->bufs[i] = data;
    r->lens[i] = len;
    r->free_list[r->nfree++] = r->nbufs - 1 - i; /* hand out index 0 first */
  }
  return 1;
}

/* Threads start with every signal blocked: signals belong to Node's main thread. */
static int reader_spawn(reader_t *r) {
  sigset_t all, old;
  int rc = 0;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < r->nfds && rc == 0; i++) {
    rc = pthread_create(&r->threads[i].tid, NULL, reader_main, &r->threads[i]);
    if (rc == 0) r->threads[i].started = 1;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) { /* the threads that never started release their counts */
    reader_signal_stop(r);
    for (int i = 0; i < r->nfds; i++)
      if (!r->threads[i].started) napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  }
  return rc;
}

/* Before the threadsafe function exists, failures just undo what was taken. */
static void reader_abandon(napi_env env, reader_t *r) {
  if (r == NULL) return;
  for (int i = 0; i < r->nbufs; i++)
    if (r->buf_refs[i] != NULL) napi_delete_reference(env, r->buf_refs[i]);
  if (r->on_exit != NULL) napi_delete_reference(env, r->on_exit);
  reader_free(r);
}

static napi_value reader_start_fail(napi_env env, reader_t *r, int e, const char *what) {
  reader_abandon(env, r);
  if (e == EINVAL) napi_throw_type_error(env, "EINVAL", what);
  else throw_errno(env, e, "fuseReaderStart", what);
  return NULL;
}

static napi_value js_reader_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], name, handle;
  uint32_t nfds = 0, nbufs = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || !array_length(env, argv[0], &nfds) || nfds < 1 || nfds > MAX_FDS ||
      !array_length(env, argv[1], &nbufs) || nbufs < 1 || nbufs > MAX_BUFFERS || !is_function(env, argv[2]) ||
      !is_function(env, argv[3])) {
    napi_throw_type_error(env, "EINVAL", "fuseReaderStart(fds[1..64], buffers[1..1024], onRequest, onExit)");
    return NULL;
  }
  reader_t *r = reader_alloc((int)nfds, (int)nbufs);
  if (r == NULL) return reader_start_fail(env, NULL, ENOMEM, "reader");
  if (!reader_take_buffers(env, r, argv[1]))
    return reader_start_fail(env, r, EINVAL, "buffers must be distinct Buffers of at least 8192 bytes");
  if (!reader_take_fds(env, r, argv[0])) return reader_start_fail(env, r, errno, "fds");
  if (napi_create_reference(env, argv[3], 1, &r->on_exit) != napi_ok)
    return reader_start_fail(env, r, EINVAL, "onExit");
  napi_create_string_utf8(env, "lunkit:fuse-reader", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, nfds, r, tsfn_finalize, r, call_js, &r->tsfn) !=
      napi_ok)
    return reader_start_fail(env, r, ENOMEM, "threadsafe function");
  /* From here the threadsafe function owns r: its finalizer cleans up, even on failure below. */
  r->handle_refs++;
  napi_create_external(env, r, handle_finalize, NULL, &handle);
  int rc = reader_spawn(r);
  if (rc != 0) {
    throw_errno(env, rc, "pthread_create", "fuse reader");
    return NULL;
  }
  return handle;
}

/* Either kind of reader handle (*kind tells which), or NULL. */
static void *get_any_handle(napi_env env, napi_value v, enum reader_kind *kind) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) return NULL;
  *kind = *(enum reader_kind *)data;
  return *kind == READER_THREADS || *kind == READER_POLL ? data : NULL;
}

static int fuse_reader_buffers(const void *h, enum reader_kind kind) {
  return kind == READER_POLL ? fuse_poll_buffers(h) : ((const reader_t *)h)->nbufs;
}

static napi_value js_reader_release(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t idx;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  enum reader_kind kind;
  void *h = argc < 2 ? NULL : get_any_handle(env, argv[0], &kind);
  if (h == NULL || !get_u32(env, argv[1], &idx) || idx >= (uint32_t)fuse_reader_buffers(h, kind)) {
    napi_throw_type_error(env, "EINVAL", "fuseReaderRelease(handle, bufIndex)");
    return NULL;
  }
  if (kind == READER_POLL) {
    if (fuse_poll_release(h, (int)idx) != 0) napi_throw_error(env, "EINVAL", "fuseReaderRelease: buffer released twice");
    return NULL;
  }
  reader_t *r = h;
  /* After the threads are gone a release has nothing to wake: ignore it. */
  if (!r->finished && give_back(r, (int)idx) != 0)
    napi_throw_error(env, "EINVAL", "fuseReaderRelease: buffer released twice");
  return NULL;
}

static napi_value js_reader_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  enum reader_kind kind;
  void *h = argc < 1 ? NULL : get_any_handle(env, argv[0], &kind);
  if (h == NULL) {
    napi_throw_type_error(env, "EINVAL", "fuseReaderStop(handle)");
    return NULL;
  }
  if (kind == READER_POLL) return fuse_poll_stop(env, h);
  reader_t *r = h;
  if (r->stop_promise != NULL) {
    napi_get_reference_value(env, r->stop_promise, &promise);
    return promise;
  }
  napi_deferred deferred;
  napi_create_promise(env, &deferred, &promise);
  if (r->finished) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, deferred, undef);
    return promise;
  }
  r->stop_deferred = deferred;
  napi_create_reference(env, promise, 1, &r->stop_promise);
  reader_signal_stop(r);
  return promise;
}

static napi_value js_reader_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool ref;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  enum reader_kind kind;
  void *h = argc < 2 ? NULL : get_any_handle(env, argv[0], &kind);
  if (h == NULL || napi_get_value_bool(env, argv[1], &ref) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "fuseReaderRef(handle, ref: boolean)");
    return NULL;
  }
  if (kind == READER_POLL) {
    fuse_poll_ref(h, ref);
    return NULL;
  }
  reader_t *r = h;
  if (r->finished) return NULL;
  if (ref) napi_ref_threadsafe_function(env, r->tsfn);
  else napi_unref_threadsafe_function(env, r->tsfn);
  return NULL;
}

/* ---- registration --------------------------------------------------------- */

void fuse_channel_register(napi_env env, napi_value exports) {
  export_fn(env, exports, "fuseMount", js_fuse_mount);
  export_fn(env, exports, "fuseUnmount", js_fuse_unmount);
  export_fn(env, exports, "fuseClone", js_fuse_clone);
  export_fn(env, exports, "fuseWrite", js_fuse_write);
  export_fn(env, exports, "fuseReaderStart", js_reader_start);
  export_fn(env, exports, "fuseReaderStartPoll", fuse_poll_start);
  export_fn(env, exports, "fuseReaderRelease", js_reader_release);
  export_fn(env, exports, "fuseReaderStop", js_reader_stop);
  export_fn(env, exports, "fuseReaderRef", js_reader_ref);
}
