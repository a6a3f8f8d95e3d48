/*
 * LD_PRELOAD shim for BlueZ btvirt on kernels without AF_ALG crypto sockets.
 *
 * btvirt's LE controllers create an AES (ecb) and a CMAC socket at start through
 * socket(AF_ALG, ...) + bind(); without the kernel's AF_ALG family that fails and the controller
 * never comes up. This shim hands back a harmless socket for socket(AF_ALG, ...) and accepts
 * bind()/setsockopt() on it, so the controller starts. LE Encrypt (pairing) then fails, which the
 * pile does not need: the charging-code protocol brings its own cryptography.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define MAX_FDS 1024
static unsigned char alg_fds[MAX_FDS];

static int is_alg(int fd) { return fd >= 0 && fd < MAX_FDS && alg_fds[fd]; }

int socket(int domain, int type, int protocol) {
  static int (*real_socket)(int, int, int);
  if (!real_socket) real_socket = dlsym(RTLD_NEXT, "socket");
  if (domain != AF_ALG) return real_socket(domain, type, protocol);
  int fd = real_socket(AF_UNIX, SOCK_SEQPACKET | (type & SOCK_CLOEXEC), 0);
  if (fd >= 0 && fd < MAX_FDS) alg_fds[fd] = 1;
  return fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real_bind)(int, const struct sockaddr *, socklen_t);
  if (!real_bind) real_bind = dlsym(RTLD_NEXT, "bind");
  if (is_alg(fd)) return 0;
  return real_bind(fd, addr, len);
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
  static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
  if (!real_setsockopt) real_setsockopt = dlsym(RTLD_NEXT, "setsockopt");
  if (is_alg(fd) || level == SOL_ALG) return 0;
  return real_setsockopt(fd, level, name, value, len);
}

int close(int fd) {
  static int (*real_close)(int);
  if (!real_close) real_close = dlsym(RTLD_NEXT, "close");
  if (fd >= 0 && fd < MAX_FDS) alg_fds[fd] = 0;
  return real_close(fd);
}
