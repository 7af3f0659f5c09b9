/*
 * Shared by fuse_channel.c (mount, replies, the reader threads) and
 * fuse_poll.c (the reader on the event loop): argument helpers, errno errors,
 * and the two reader kinds behind one handle type.
 */
#ifndef LUNKIT_FUSE_COMMON_H
#define LUNKIT_FUSE_COMMON_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>

#define MAX_FDS 64
#define MAX_BUFFERS 1024

/*
 * A reader handle is a napi external whose data starts with one of these, so
 * fuseReaderRelease/Stop/Ref serve both kinds (values are arbitrary tags).
 */
enum reader_kind { READER_THREADS = 0x54485244, READER_POLL = 0x504f4c4c };

/* fuse_poll.c: fuseReaderStartPoll and the poll kind's release/stop/ref. */
napi_value fuse_poll_start(napi_env env, napi_callback_info info);
/* 0, or -1 on a double release. */
int fuse_poll_release(void *handle, int idx);
int fuse_poll_buffers(const void *handle);
napi_value fuse_poll_stop(napi_env env, void *handle);
void fuse_poll_ref(void *handle, int ref);

/* fuse_channel.c: exports fuseMount ... fuseReaderRef (called from the module init). */
void fuse_channel_register(napi_env env, napi_value exports);

/* Sets exports[name] to a function calling cb. */
static inline void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

/* ---- errors and arguments ------------------------------------------------ */

static inline napi_value errno_error(napi_env env, int e, const char *syscall, const char *what) {
  const char *name = strerrorname_np(e);
  if (name == NULL) name = "EUNKNOWN";
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof msg, "%s %s: %s: %s", syscall, what, name, strerror(e));
  napi_value code, text, error, errnum, sys;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int32(env, -e, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "syscall", sys);
  return error;
}

static inline void throw_errno(napi_env env, int e, const char *syscall, const char *what) {
  napi_throw(env, errno_error(env, e, syscall, what));
}

static inline int get_path(napi_env env, napi_value v, char *out, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, size, &len) != napi_ok) return 0;
  return len > 0 && len < size - 1 && strlen(out) == len; /* no NUL inside, not truncated */
}

static inline int get_u32(napi_env env, napi_value v, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) return 0;
  *out = (uint32_t)d;
  return 1;
}

static inline int get_fd(napi_env env, napi_value v, int *out) {
  uint32_t u;
  if (!get_u32(env, v, &u) || u > INT_MAX) return 0;
  *out = (int)u;
  return 1;
}

static inline int array_length(napi_env env, napi_value v, uint32_t *len) {
  bool is_array;
  return napi_is_array(env, v, &is_array) == napi_ok && is_array && napi_get_array_length(env, v, len) == napi_ok;
}

static inline int is_function(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_function;
}


#endif
