/*
 * peercred(fd) -> { pid, uid, gid }: the credentials of the peer of a connected Unix socket,
 * from getsockopt(SOL_SOCKET, SO_PEERCRED). Node has no API for it, and the npm `sockopt`
 * package passes a 4-byte buffer (only the pid comes back), hence this small addon.
 *
 * N-API is a stable C ABI; the few functions used are declared here rather than taken from
 * node_api.h, so the build needs only gcc and libc headers (Debian's nodejs ships no headers).
 * The declarations follow js_native_api.h / node_api.h of N-API version 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok == 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env env, napi_callback_info cbinfo, size_t *argc,
                                    napi_value *argv, napi_value *this_arg, void **data);
extern napi_status napi_get_value_int32(napi_env env, napi_value value, int *result);
extern napi_status napi_create_object(napi_env env, napi_value *result);
extern napi_status napi_create_int32(napi_env env, int value, napi_value *result);
extern napi_status napi_create_uint32(napi_env env, unsigned int value, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *name,
                                           napi_value value);
extern napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb,
                                        void *data, napi_value *result);
extern napi_status napi_throw_error(napi_env env, const char *code, const char *msg);
extern napi_status napi_throw_type_error(napi_env env, const char *code, const char *msg);

static int set_u32(napi_env env, napi_value obj, const char *name, unsigned int v) {
  napi_value n;
  return napi_create_uint32(env, v, &n) == 0 && napi_set_named_property(env, obj, name, n) == 0;
}

static napi_value peercred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != 0 || fd < 0) {
    napi_throw_type_error(env, "EINVAL", "peercred(fd): fd must be a descriptor number >= 0");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    int e = errno;
    napi_throw_error(env, e == EBADF ? "EBADF" : e == ENOTSOCK ? "ENOTSOCK" : "EPEERCRED", strerror(e));
    return NULL;
  }
  napi_value obj;
  if (napi_create_object(env, &obj) != 0 || !set_u32(env, obj, "pid", (unsigned int)cred.pid) ||
      !set_u32(env, obj, "uid", cred.uid) || !set_u32(env, obj, "gid", cred.gid)) {
    napi_throw_error(env, "ENOMEM", "peercred: cannot build the result");
    return NULL;
  }
  return obj;
}

/* The module's entry point as NAPI_MODULE_INIT declares it (looked up by name by Node). */
__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env,
                                                                            napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "peercred", 8, peercred, NULL, &fn) != 0 ||
      napi_set_named_property(env, exports, "peercred", fn) != 0)
    return NULL;
  return exports;
}

/* N-API version this module needs (Node reads it when present). */
__attribute__((visibility("default"))) int node_api_module_get_api_version_v1(void) { return 1; }
