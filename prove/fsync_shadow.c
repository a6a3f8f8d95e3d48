/*
 * LD_PRELOAD shim for the power-cut approximation of the crash campaign (prove/crash.ts).
 * On every fsync()/fdatasync() of a regular file under SHADOW_ROOT, the file's whole content as
 * it stands is copied to SHADOW_ROOT/../shadow/<name> (written to a temp file, then renamed):
 * the shadow is what the disk is known to hold. A "power cut" then rolls each file back to its
 * shadow and deletes the files that were never synced. Also counts syncs in SHADOW_COUNT (one
 * line per sync) when that is set. Directory fsyncs are passed through (entries are taken as
 * durable with the first sync of the file: see docs/reliability.md, what is not modelled). A
 * rename() inside SHADOW_ROOT reaches the shadow at the next fsync of SHADOW_ROOT itself (as a
 * directory entry does on disk); paths are taken as given (absolute, as the daemon uses them).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * One sync and its copy at a time in the process: the daemon syncs from two threads (the loop
 * and the write worker), and two copies of one file made side by side could land in the wrong
 * order (an older content renamed over a newer one) or mix in one temp file.
 */
static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP; /* shadow() renames too */

/* Renames inside SHADOW_ROOT not yet made durable by an fsync of the directory. */
#define MAX_PENDING 64
static char pending_old[MAX_PENDING][256], pending_new[MAX_PENDING][256];
static int npending;

/* The name of `path` directly inside SHADOW_ROOT, or NULL. */
static const char *in_root(const char *path) {
  const char *root = getenv("SHADOW_ROOT");
  if (!root || !getenv("SHADOW_DIR")) return NULL;
  size_t rl = strlen(root);
  if (strncmp(path, root, rl) != 0 || path[rl] != '/') return NULL;
  const char *name = path + rl + 1;
  if (strchr(name, '/') || strlen(name) >= 256) return NULL;
  return name;
}

static void apply_renames(void) {
  const char *dest = getenv("SHADOW_DIR");
  char a[PATH_MAX], b[PATH_MAX];
  for (int i = 0; i < npending; i++) {
    snprintf(a, sizeof a, "%s/%s", dest, pending_old[i]);
    snprintf(b, sizeof b, "%s/%s", dest, pending_new[i]);
    if (rename(a, b) != 0) unlink(b); /* the source was never synced: nothing known on disk */
  }
  npending = 0;
}

static void note_rename(const char *oldp, const char *newp) {
  const char *o = in_root(oldp), *n = in_root(newp);
  if (!o || !n || npending >= MAX_PENDING) return;
  strcpy(pending_old[npending], o);
  strcpy(pending_new[npending], n);
  npending++;
}

static void shadow(int fd) {
  const char *root = getenv("SHADOW_ROOT");
  const char *dest = getenv("SHADOW_DIR");
  if (!root || !dest) return;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return;
  path[n] = 0;
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (strcmp(path, root) == 0) apply_renames();
    return;
  }
  if (!S_ISREG(st.st_mode)) return;
  const char *name = in_root(path);
  if (!name) return;
  char tmp[PATH_MAX], out[PATH_MAX];
  snprintf(out, sizeof out, "%s/%s", dest, name);
  snprintf(tmp, sizeof tmp, "%s/.%s.%d", dest, name, (int)getpid());
  /* the synced fd may be write-only: read the file through a descriptor of our own */
  int src = open(path, O_RDONLY);
  if (src < 0) return;
  int dst = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (dst < 0) {
    close(src);
    return;
  }
  char buf[65536];
  off_t off = 0;
  ssize_t r;
  while ((r = pread(src, buf, sizeof buf, off)) > 0) {
    if (write(dst, buf, (size_t)r) != r) break;
    off += r;
  }
  close(dst);
  close(src);
  rename(tmp, out);
  const char *count = getenv("SHADOW_COUNT");
  if (count) {
    int c = open(count, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (c >= 0) {
      dprintf(c, "%s\n", name);
      close(c);
    }
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  pthread_mutex_lock(&lock);
  int rc = real(fd);
  if (rc == 0) shadow(fd);
  pthread_mutex_unlock(&lock);
  return rc;
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  pthread_mutex_lock(&lock);
  int rc = real(fd);
  if (rc == 0) shadow(fd);
  pthread_mutex_unlock(&lock);
  return rc;
}

int rename(const char *oldp, const char *newp) {
  static int (*real)(const char *, const char *);
  if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
  pthread_mutex_lock(&lock);
  int rc = real(oldp, newp);
  if (rc == 0) note_rename(oldp, newp);
  pthread_mutex_unlock(&lock);
  return rc;
}
