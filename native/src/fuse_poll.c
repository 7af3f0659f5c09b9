/*
 * fuse_poll: the second reader of lunkit's /dev/fuse transport (issue 16).
 * Where fuse_channel.c reads on one thread per fd and hands each request to
 * the event loop through a threadsafe function (a uv_async wakeup and a
 * futex per request), this one reads on the event loop itself: each fd is
 * O_NONBLOCK and watched by a uv_poll_t, and when the kernel has requests the
 * poll callback reads them (up to BATCH, or until EAGAIN or no free buffer)
 * and calls onRequest synchronously for each. No threads, no hops.
 *
 *   fuseReaderStartPoll(fds, buffers, onRequest, onExit) -> handle
 *       Same arguments and callbacks as fuseReaderStart; fuseReaderRelease,
 *       fuseReaderStop and fuseReaderRef take either kind of handle.
 *
 * Buffers: a free list as in the threaded reader, but only this thread
 * touches it, so no lock. With no buffer free the polls stop (uv_poll_stop)
 * and release() starts them again; epoll is level-triggered, so requests the
 * kernel queued meanwhile are seen at the next loop iteration.
 *
 * Read results: a request (length > 0) goes to onRequest; EAGAIN/EINTR end
 * the batch; ENOENT (a request interrupted before we read it) takes the
 * next; ENODEV (unmounted, or aborted) and any other error end that fd:
 * onExit(fdIndex, code) and its poll stops for good. After an unmount
 * /dev/fuse polls as POLLERR and libuv reports UV_EBADF and stops the poll:
 * the callback then still reads once to learn the real errno.
 *
 * stop(): every poll is stopped and uv_close()d; each close callback reports
 * onExit(fdIndex, null) for an fd still running (as the threaded reader does
 * on stop), and the last one drops the buffer references and resolves the
 * promise. The handle (a napi external) and the open uv handles each hold a
 * count on the struct; the last to go frees it. At environment teardown a
 * cleanup hook closes the polls without calling into JS any more.
 *
 * Callbacks run like any I/O callback of Node's: each in a callback scope
 * (napi_make_callback, so nextTicks and promise jobs run after it), and an
 * exception thrown by one becomes an uncaught exception (napi_fatal_exception).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/fuse.h>
#include <uv.h>
#include "fuse_common.h"

/* Requests read per readable callback at most, so other I/O of the loop gets its turn. */
#define BATCH 32

typedef struct poller poller_t;

typedef struct {
  uv_poll_t poll; /* poll.data points back here */
  poller_t *p;
  int index;
  int fd;      /* our dup: libuv must not watch an fd JS may close */
  int inited;  /* uv_poll_init done: needs a uv_close */
  int exited;  /* onExit reported (or due): never polled again */
  int watching; /* uv_poll_start in effect */
} pfd_t;

struct poller {
  enum reader_kind kind; /* READER_POLL: first, see fuse_common.h */
  napi_env env;
  uv_loop_t *loop;
  int nfds, nbufs;
  pfd_t *fds;
  uint8_t **bufs;
  size_t *lens;
  napi_ref *buf_refs;
  napi_ref on_request, on_exit;
  napi_async_context actx;
  int *free_list, nfree;
  uint8_t *busy;
  int refs;      /* 1 for the uv handles (until the last closes), 1 for the external */
  int open;      /* uv handles not yet closed */
  int paused;    /* polls stopped for lack of a free buffer */
  int stopping;  /* stop() or teardown began: no more reads */
  int finished;  /* JS side let go (refs, promise): JS thread only */
  int silent;    /* environment going away: no calls into JS */
  int hooked;    /* env cleanup hook registered */
  napi_deferred stop_deferred;
  napi_ref stop_promise;
};

static void poller_free(poller_t *p) {
  for (int i = 0; p->fds != NULL && i < p->nfds; i++)
    if (p->fds[i].fd >= 0) close(p->fds[i].fd);
  free(p->fds);
  free(p->bufs);
  free(p->lens);
  free(p->buf_refs);
  free(p->free_list);
  free(p->busy);
  free(p);
}

static void poller_unref(poller_t *p) {
  if (--p->refs == 0) poller_free(p);
}

/* Deletes every napi reference once (normal finish, teardown or failed start). */
static void drop_js(napi_env env, poller_t *p) {
  for (int i = 0; i < p->nbufs; i++)
    if (p->buf_refs[i] != NULL) {
      napi_delete_reference(env, p->buf_refs[i]);
      p->buf_refs[i] = NULL;
    }
  if (p->on_request != NULL) napi_delete_reference(env, p->on_request);
  if (p->on_exit != NULL) napi_delete_reference(env, p->on_exit);
  if (p->actx != NULL) napi_async_destroy(env, p->actx);
  p->on_request = p->on_exit = NULL;
  p->actx = NULL;
}

/* ---- calling JS ---------------------------------------------------------- */

/* fn(args) in a callback scope; a throw becomes an uncaught exception. */
static void make_callback(poller_t *p, napi_ref ref, size_t argc, napi_value *args) {
  napi_env env = p->env;
  napi_value fn, recv, exc;
  if (p->silent || ref == NULL || napi_get_reference_value(env, ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv); /* napi_make_callback needs an object as this (undefined throws) */
  if (napi_make_callback(env, p->actx, recv, fn, argc, args, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(env, &exc) == napi_ok)
    napi_fatal_exception(env, exc);
}

static void call_exit(poller_t *p, int index, int err) {
  napi_value args[2];
  napi_create_int32(p->env, index, &args[0]);
  if (err == 0) napi_get_null(p->env, &args[1]);
  else {
    const char *name = strerrorname_np(err);
    napi_create_string_utf8(p->env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &args[1]);
  }
  make_callback(p, p->on_exit, 2, args);
}

static void call_request(poller_t *p, int idx, uint32_t length, int fd_index) {
  napi_value args[3];
  napi_create_int32(p->env, idx, &args[0]);
  napi_create_uint32(p->env, length, &args[1]);
  napi_create_int32(p->env, fd_index, &args[2]);
  make_callback(p, p->on_request, 3, args);
}

/* ---- polling --------------------------------------------------------------- */

static void on_readable(uv_poll_t *h, int status, int events);

static void watch(pfd_t *f) {
  if (f->watching || f->exited) return;
  if (uv_poll_start(&f->poll, UV_READABLE, on_readable) == 0) f->watching = 1;
}

static void unwatch(pfd_t *f) {
  if (!f->watching) return;
  uv_poll_stop(&f->poll);
  f->watching = 0;
}

static void pause_all(poller_t *p) {
  p->paused = 1;
  for (int i = 0; i < p->nfds; i++) unwatch(&p->fds[i]);
}

static void resume_all(poller_t *p) {
  p->paused = 0;
  for (int i = 0; i < p->nfds; i++) watch(&p->fds[i]);
}

/* An fd ends: no more polling, onExit(index, code). */
static void fd_exit(pfd_t *f, int err) {
  unwatch(f);
  f->exited = 1;
  call_exit(f->p, f->index, err);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  pfd_t *f = h->data;
  poller_t *p = f->p;
  /* A poll error (UV_EBADF for POLLERR) has stopped the handle; the read below says why. */
  if (status < 0) f->watching = 0;
  napi_handle_scope scope;
  if (napi_open_handle_scope(p->env, &scope) != napi_ok) return;
  for (int n = 0; n < BATCH && !p->stopping && !f->exited;) {
    if (p->nfree == 0) {
      pause_all(p);
      break;
    }
    int idx = p->free_list[--p->nfree];
    ssize_t len = read(f->fd, p->bufs[idx], p->lens[idx]);
    if (len > 0) {
      p->busy[idx] = 1;
      n++;
      call_request(p, idx, (uint32_t)len, f->index);
      continue;
    }
    p->nfree++; /* the buffer goes back where it was */
    int e = len == 0 ? EIO : errno;
    if (e == ENOENT) continue;
    if (e == EAGAIN || e == EINTR) {
      if (status < 0) fd_exit(f, -status); /* libuv gave up on the fd and the kernel says nothing more */
      break;
    }
    fd_exit(f, e);
  }
  /* Requests came after all: libuv stopped the poll on the error, so watch again. */
  if (status < 0 && !f->exited && !p->stopping && !p->paused) watch(f);
  napi_close_handle_scope(p->env, scope);
}

/* ---- closing --------------------------------------------------------------- */

static void finish(napi_env env, poller_t *p);

static void on_closed(uv_handle_t *h) {
  pfd_t *f = h->data;
  poller_t *p = f->p;
  close(f->fd);
  f->fd = -1;
  if (!p->silent && !f->exited) {
    f->exited = 1;
    napi_handle_scope scope;
    if (napi_open_handle_scope(p->env, &scope) == napi_ok) {
      call_exit(p, f->index, 0);
      napi_close_handle_scope(p->env, scope);
    }
  }
  if (--p->open > 0) return;
  if (!p->silent) finish(p->env, p);
  poller_unref(p); /* the uv handles' count */
}

static void teardown_hook(void *arg);

/* JS thread, all uv handles closed: let the buffers go and resolve stop(). */
static void finish(napi_env env, poller_t *p) {
  napi_handle_scope scope;
  if (p->finished || napi_open_handle_scope(env, &scope) != napi_ok) return;
  p->finished = 1;
  if (p->hooked) napi_remove_env_cleanup_hook(env, teardown_hook, p);
  p->hooked = 0;
  if (p->stop_deferred != NULL) {
    /* In a callback scope, so the promise's reactions run when it closes (we are in a uv callback). */
    napi_value undef, resource;
    napi_callback_scope cs;
    napi_get_undefined(env, &undef);
    napi_create_object(env, &resource);
    int scoped = napi_open_callback_scope(env, resource, p->actx, &cs) == napi_ok;
    napi_resolve_deferred(env, p->stop_deferred, undef);
    p->stop_deferred = NULL;
    if (scoped) napi_close_callback_scope(env, cs);
  }
  drop_js(env, p);
  if (p->stop_promise != NULL) napi_delete_reference(env, p->stop_promise);
  p->stop_promise = NULL;
  napi_close_handle_scope(env, scope);
}

/* Stops and closes every poll; on_closed does the rest. */
static void begin_close(poller_t *p) {
  if (p->stopping) return;
  p->stopping = 1;
  for (int i = 0; i < p->nfds; i++) {
    pfd_t *f = &p->fds[i];
    unwatch(f);
    if (f->inited) uv_close((uv_handle_t *)&f->poll, on_closed);
  }
}

/* Environment teardown: no more JS; the close callbacks (if the loop still runs) only free. */
static void teardown_hook(void *arg) {
  poller_t *p = arg;
  p->hooked = 0;
  p->silent = 1;
  if (!p->finished) {
    drop_js(p->env, p);
    if (p->stop_promise != NULL) napi_delete_reference(p->env, p->stop_promise);
    p->stop_promise = NULL;
    p->finished = 1;
  }
  begin_close(p);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  poller_t *p = data;
  /* Unreachable handle: nobody can release or stop any more. Close quietly. */
  if (!p->finished) {
    p->silent = 1;
    if (p->hooked) napi_remove_env_cleanup_hook(env, teardown_hook, p);
    p->hooked = 0;
    drop_js(env, p);
    if (p->stop_promise != NULL) napi_delete_reference(env, p->stop_promise);
    p->stop_promise = NULL;
    p->finished = 1;
    begin_close(p);
  }
  poller_unref(p);
}

/* ---- start ----------------------------------------------------------------- */

static poller_t *poller_alloc(napi_env env, int nfds, int nbufs) {
  poller_t *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->kind = READER_POLL;
  p->env = env;
  p->nfds = nfds;
  p->nbufs = nbufs;
  p->refs = 1;
  p->fds = calloc((size_t)nfds, sizeof *p->fds);
  p->bufs = calloc((size_t)nbufs, sizeof *p->bufs);
  p->lens = calloc((size_t)nbufs, sizeof *p->lens);
  p->buf_refs = calloc((size_t)nbufs, sizeof *p->buf_refs);
  p->free_list = calloc((size_t)nbufs, sizeof *p->free_list);
  p->busy = calloc((size_t)nbufs, 1);
  for (int i = 0; p->fds != NULL && i < nfds; i++) p->fds[i].fd = -1;
  if (!p->fds || !p->bufs || !p->lens || !p->buf_refs || !p->free_list || !p->busy) {
    poller_free(p);
    return NULL;
  }
  return p;
}

static int overlaps(const poller_t *p, int n, const uint8_t *b, size_t len) {
  for (int i = 0; i < n; i++)
    if (b < p->bufs[i] + p->lens[i] && p->bufs[i] < b + len) return 1;
  return 0;
}

/* Buffers: each at least FUSE_MIN_READ_BUFFER, none sharing memory with another. */
static int take_buffers(napi_env env, poller_t *p, napi_value arr) {
  for (int i = 0; i < p->nbufs; i++) {
    napi_value v;
    void *data;
    size_t len;
    if (napi_get_element(env, arr, (uint32_t)i, &v) != napi_ok ||
        napi_get_buffer_info(env, v, &data, &len) != napi_ok || len < FUSE_MIN_READ_BUFFER ||
        overlaps(p, i, data, len))
      return 0;
    if (napi_create_reference(env, v, 1, &p->buf_refs[i]) != napi_ok) return 0;
    p->bufs[i] = data;
    p->lens[i] = len;
    p->free_list[p->nfree++] = p->nbufs - 1 - i; /* hand out index 0 first */
  }
  return 1;
}

/* dup (CLOEXEC) each fd; uv_poll_init makes the dup O_NONBLOCK. 0 with errno on failure. */
static int take_fds(napi_env env, poller_t *p, napi_value arr) {
  for (int i = 0; i < p->nfds; i++) {
    napi_value v;
    int fd;
    if (napi_get_element(env, arr, (uint32_t)i, &v) != napi_ok || !get_fd(env, v, &fd)) {
      errno = EINVAL;
      return 0;
    }
    p->fds[i].p = p;
    p->fds[i].index = i;
    p->fds[i].fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (p->fds[i].fd < 0) return 0;
  }
  return 1;
}

static napi_value start_fail(napi_env env, poller_t *p, int e, const char *what) {
  if (p != NULL) {
    drop_js(env, p);
    poller_free(p);
  }
  if (e == EINVAL) napi_throw_type_error(env, "EINVAL", what);
  else throw_errno(env, e, "fuseReaderStartPoll", what);
  return NULL;
}

napi_value fuse_poll_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], name, handle;
  uint32_t nfds = 0, nbufs = 0;
  uv_loop_t *loop;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || !array_length(env, argv[0], &nfds) || nfds < 1 || nfds > MAX_FDS ||
      !array_length(env, argv[1], &nbufs) || nbufs < 1 || nbufs > MAX_BUFFERS || !is_function(env, argv[2]) ||
      !is_function(env, argv[3])) {
    napi_throw_type_error(env, "EINVAL", "fuseReaderStartPoll(fds[1..64], buffers[1..1024], onRequest, onExit)");
    return NULL;
  }
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return start_fail(env, NULL, EINVAL, "no event loop");
  poller_t *p = poller_alloc(env, (int)nfds, (int)nbufs);
  if (p == NULL) return start_fail(env, NULL, ENOMEM, "reader");
  p->loop = loop;
  if (!take_buffers(env, p, argv[1]))
    return start_fail(env, p, EINVAL, "buffers must be distinct Buffers of at least 8192 bytes");
  if (!take_fds(env, p, argv[0])) return start_fail(env, p, errno, "fds");
  napi_create_string_utf8(env, "lunkit:fuse-poll", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[2], 1, &p->on_request) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &p->on_exit) != napi_ok ||
      napi_async_init(env, NULL, name, &p->actx) != napi_ok)
    return start_fail(env, p, EINVAL, "callbacks");
  for (int i = 0; i < p->nfds; i++) {
    int rc = uv_poll_init(loop, &p->fds[i].poll, p->fds[i].fd);
    if (rc != 0) {
      /* Close what was set up; the last close callback frees p (silently: nothing was reported). */
      p->silent = 1;
      p->finished = 1;
      drop_js(env, p);
      if (p->open == 0) poller_free(p);
      else begin_close(p);
      throw_errno(env, -rc, "uv_poll_init", "/dev/fuse");
      return NULL;
    }
    p->fds[i].poll.data = &p->fds[i];
    p->fds[i].inited = 1;
    p->open++;
  }
  if (napi_create_external(env, p, handle_finalize, NULL, &handle) != napi_ok) {
    p->silent = 1;
    p->finished = 1;
    drop_js(env, p);
    begin_close(p);
    return start_fail(env, NULL, ENOMEM, "handle");
  }
  p->refs++; /* the external's */
  if (napi_add_env_cleanup_hook(env, teardown_hook, p) == napi_ok) p->hooked = 1;
  for (int i = 0; i < p->nfds; i++) watch(&p->fds[i]);
  return handle;
}

/* ---- release, stop, ref ----------------------------------------------------- */

int fuse_poll_buffers(const void *handle) {
  return ((const poller_t *)handle)->nbufs;
}

int fuse_poll_release(void *handle, int idx) {
  poller_t *p = handle;
  if (p->finished) return 0; /* after stop() a release has nothing to free */
  if (!p->busy[idx]) return -1;
  p->busy[idx] = 0;
  p->free_list[p->nfree++] = idx;
  if (p->paused && !p->stopping) resume_all(p);
  return 0;
}

napi_value fuse_poll_stop(napi_env env, void *handle) {
  poller_t *p = handle;
  napi_value promise;
  if (p->stop_promise != NULL) {
    napi_get_reference_value(env, p->stop_promise, &promise);
    return promise;
  }
  napi_deferred deferred;
  napi_create_promise(env, &deferred, &promise);
  if (p->finished) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, deferred, undef);
    return promise;
  }
  p->stop_deferred = deferred;
  napi_create_reference(env, promise, 1, &p->stop_promise);
  begin_close(p);
  return promise;
}

void fuse_poll_ref(void *handle, int ref) {
  poller_t *p = handle;
  if (p->finished || p->stopping) return;
  for (int i = 0; i < p->nfds; i++) {
    if (ref) uv_ref((uv_handle_t *)&p->fds[i].poll);
    else uv_unref((uv_handle_t *)&p->fds[i].poll);
  }
}
