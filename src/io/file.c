/* file.c - opening and reading whole files; writing files atomically (see file.h). */
#include "io/file.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/status.h"

/* Temporary files are ".NAME" TMP_TAG "PID-" and TMP_RANDOM characters. */
#define TMP_TAG ".tmp-"
#define TMP_RANDOM 6

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

rn_status rn_file_open(const char *path, FILE **out, size_t *size) {
    *out = NULL;
    *size = 0;
    if (rn_file_is_temp(path))
        return rn_fail(RN_ERR_IO, "%s: a temporary file left by an interrupted write; it is never loaded "
                       "(delete it)", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    rn_status st = RN_OK;
    if (fstat(fileno(f), &sb) != 0)
        st = rn_fail(RN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = rn_fail(RN_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size < 0 || (uint64_t)sb.st_size > SIZE_MAX)
        st = rn_fail(RN_ERR_NOMEM, "%s: file too large", path);
    if (st != RN_OK) {
        fclose(f);
        return st;
    }
    *out = f;
    *size = (size_t)sb.st_size;
    return RN_OK;
}

rn_status rn_file_read_all(const char *path, unsigned char **buf, size_t *len) {
    return rn_file_read_limit(path, SIZE_MAX, buf, len);
}

rn_status rn_file_read_limit(const char *path, size_t max_bytes, unsigned char **buf,
                             size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f;
    RN_TRY(rn_file_open(path, &f, len));
    rn_status st = RN_OK;
    if (*len > max_bytes)
        st = rn_fail(RN_ERR_UNSUPPORTED, "%s: file of %zu bytes exceeds the limit of %zu", path,
                     *len, max_bytes);
    else if (!(*buf = rn_alloc(*len ? *len : 1)))
        st = rn_fail(RN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, *len);
    if (st == RN_OK) {
        size_t got = fread(*buf, 1, *len, f);
        if (got != *len)
            st = rn_fail(RN_ERR_IO, "%s: read failed at byte %zu: %s", path, got,
                         ferror(f) ? strerror(errno) : "file shrank while reading");
    }
    fclose(f);
    if (st != RN_OK) {
        free(*buf);
        *buf = NULL;
        *len = 0;
    }
    return st;
}

int rn_file_is_temp(const char *path) {
    if (!path)
        return 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *tag = NULL;
    for (const char *p = strstr(base, TMP_TAG); p; p = strstr(p + 1, TMP_TAG))
        tag = p;
    if (base[0] != '.' || !tag || tag <= base + 1)
        return 0;
    const char *p = tag + strlen(TMP_TAG);
    if (!isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p++ != '-' || strlen(p) != TMP_RANDOM)
        return 0;
    for (; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------------------
 * Folders
 * ------------------------------------------------------------------------- */

rn_status rn_make_parent_dirs(const char *path, char *created, size_t cap, char *outer,
                              size_t outer_cap) {
    if (created && cap)
        created[0] = '\0';
    if (outer && outer_cap)
        outer[0] = '\0';
    if (!path)
        return rn_fail(RN_ERR_ARG, "rn_make_parent_dirs: path is NULL");
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return RN_OK; /* the current folder, or "/" */
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    rn_status st = RN_OK;
    int made = 0;
    /* Each prefix ending before a '/' (and the whole folder), outermost first. */
    for (size_t i = 1; i <= n && st == RN_OK; i++) {
        if (i < n && dir[i] != '/')
            continue;
        if (dir[i - 1] == '/')
            continue; /* "a//b" */
        char keep = dir[i];
        dir[i] = '\0';
        struct stat sb;
        if (stat(dir, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode))
                st = rn_fail(RN_ERR_IO, "%s: cannot create its folder: '%s' exists and is not a "
                             "folder", path, dir);
        } else if (errno != ENOENT) {
            st = rn_fail(RN_ERR_IO, "%s: cannot create its folder: '%s': %s", path, dir,
                         strerror(errno));
        } else if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            st = rn_fail(RN_ERR_IO, "%s: cannot create the folder '%s': %s", path, dir,
                         strerror(errno));
        } else {
            if (!made && outer && outer_cap) /* the first one made: the outermost */
                snprintf(outer, outer_cap, "%s", dir);
            made = 1;
        }
        dir[i] = keep;
    }
    if (st == RN_OK && made && created && cap)
        snprintf(created, cap, "%s", dir);
    if (st != RN_OK && outer && outer_cap)
        outer[0] = '\0';
    free(dir);
    return st;
}

/* ---------------------------------------------------------------------------
 * Writing atomically
 * ------------------------------------------------------------------------- */

/* The folder of path ("." when it has none) and its last component. */
static rn_status split_path(const char *path, char **dir, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!*dir)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
    if (!**base)
        return rn_fail(RN_ERR_ARG, "%s: names a folder, not a file", path);
    return RN_OK;
}

/* Removes dir/.BASE.tmp-PID-XXXXXX files whose process is gone. */
static void remove_stale_in(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t blen = strlen(base), tlen = strlen(TMP_TAG);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, blen) != 0 || strncmp(n + 1 + blen, TMP_TAG, tlen) != 0 ||
            !rn_file_is_temp(n))
            continue;
        long pid = strtol(n + 1 + blen + tlen, NULL, 10);
        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

/* TMP_RANDOM characters of [a-z0-9], different on every call. */
static void random_suffix(char *out) {
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40 ^
                 __atomic_fetch_add(&counter, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
    x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ull, x ^= x >> 27, x *= 0x94d049bb133111ebull, x ^= x >> 31;
    for (int i = 0; i < TMP_RANDOM; i++, x /= 36)
        out[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36];
    out[TMP_RANDOM] = '\0';
}

void rn_file_remove_stale(const char *path) {
    char *dir = NULL;
    const char *base;
    if (path && split_path(path, &dir, &base) == RN_OK)
        remove_stale_in(dir, base);
    free(dir);
}

static void wfile_free(rn_wfile *w) {
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
}

rn_status rn_wfile_open(rn_wfile *w, const char *path) {
    memset(w, 0, sizeof *w);
    if (!path || !*path)
        return rn_fail(RN_ERR_ARG, "rn_wfile_open: empty path");
    struct stat sb;
    char *real = NULL;
    if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode))
        real = realpath(path, NULL);  /* a dangling link is replaced, as a missing file */
    if (!(w->path = real ? real : strdup(path)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
    int exists = stat(w->path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode)) {
        wfile_free(w);
        return rn_fail(RN_ERR_IO, "%s: is a folder", path);
    }
    if (exists && !S_ISREG(sb.st_mode)) {
        if (!(w->f = fopen(w->path, "wb"))) {
            rn_status st = rn_fail(RN_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
            wfile_free(w);
            return st;
        }
        return RN_OK;
    }
    char *dir = NULL;
    const char *base;
    rn_status st = split_path(w->path, &dir, &base);
    if (st == RN_OK) {
        remove_stale_in(dir, base);
        size_t cap = strlen(dir) + strlen(base) + 64;
        if (!(w->tmp = malloc(cap)))
            st = rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
        int fd = -1;
        for (int attempt = 0; st == RN_OK && fd < 0 && attempt < 100; attempt++) {
            char rnd[TMP_RANDOM + 1];
            random_suffix(rnd);
            snprintf(w->tmp, cap, "%s/.%s%s%ld-%s", dir, base, TMP_TAG, (long)getpid(), rnd);
            fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd < 0 && errno != EEXIST)
                st = rn_fail(RN_ERR_IO, "%s: cannot create a file in %s: %s", path, dir, strerror(errno));
        }
        if (st == RN_OK && fd < 0)
            st = rn_fail(RN_ERR_IO, "%s: cannot create a temporary file in %s", path, dir);
        if (st == RN_OK) {
            if (exists)
                (void)fchmod(fd, sb.st_mode & 07777);
            if (!(w->f = fdopen(fd, "wb"))) {
                st = rn_fail(RN_ERR_IO, "%s: cannot open %s: %s", path, w->tmp, strerror(errno));
                close(fd);
                unlink(w->tmp);
            }
        }
    }
    free(dir);
    if (st != RN_OK)
        wfile_free(w);
    return st;
}

rn_status rn_wfile_error(const rn_wfile *w, int err) {
    return rn_fail(RN_ERR_IO, "%s: write failed: %s%s", w->path, strerror(err ? err : EIO),
                   w->tmp ? " (the file on disk, if any, is unchanged)" : "");
}

rn_status rn_wfile_stage(rn_wfile *w) {
    if (!w || (!w->f && !w->staged))
        return rn_fail(RN_ERR_ARG, "rn_wfile_stage: no file open");
    if (w->staged)
        return RN_OK;
    int err = 0;
    errno = 0;
    if (fflush(w->f) != 0 || ferror(w->f))
        err = errno ? errno : EIO;
    if (!err && w->tmp && fsync(fileno(w->f)) != 0)
        err = errno;
    if (fclose(w->f) != 0 && !err)
        err = errno;
    w->f = NULL;
    if (err) {
        rn_status st = rn_wfile_error(w, err);
        rn_wfile_discard(w);
        return st;
    }
    w->staged = 1;
    return RN_OK;
}

/* fsync on the folder, so the rename itself is on disk. */
static rn_status sync_dir(const char *path) {
    char *dir = NULL;
    const char *base;
    rn_status st = split_path(path, &dir, &base);
    int fd = st == RN_OK ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (st == RN_OK && (fd < 0 || fsync(fd) != 0) && errno != EINVAL && errno != ENOTSUP && errno != EBADF)
        st = rn_fail(RN_ERR_IO, "%s: written, but syncing its folder %s failed: %s", path, dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return st;
}

rn_status rn_file_rename(const char *from, const char *to) {
    if (rename(from, to) != 0)
        return rn_fail(RN_ERR_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
    return sync_dir(to);
}

rn_status rn_wfile_commit(rn_wfile *w) {
    RN_TRY(rn_wfile_stage(w));
    rn_status st = RN_OK;
    if (w->tmp) {
        if (rename(w->tmp, w->path) != 0) {
            st = rn_fail(RN_ERR_IO, "%s: cannot replace it: %s (the file on disk, if any, is unchanged)", w->path,
                         strerror(errno));
            unlink(w->tmp);
        } else {
            st = sync_dir(w->path);
        }
    }
    wfile_free(w);
    return st;
}

void rn_wfile_discard(rn_wfile *w) {
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    if (w->tmp)
        unlink(w->tmp);
    wfile_free(w);
}

rn_status rn_file_write_all(const char *path, const void *data, size_t len) {
    rn_wfile w;
    RN_TRY(rn_wfile_open(&w, path));
    if (len && fwrite(data, 1, len, w.f) != len) {
        rn_status st = rn_wfile_error(&w, errno);
        rn_wfile_discard(&w);
        return st;
    }
    return rn_wfile_commit(&w);
}
