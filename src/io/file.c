/* file.c - opening, reading and writing whole files, creating the folders of files to write. */
#include "io/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"

rn_status rn_file_open(const char *path, FILE **out, size_t *size) {
    *out = NULL;
    *size = 0;
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
    *buf = NULL;
    *len = 0;
    FILE *f;
    RN_TRY(rn_file_open(path, &f, len));
    rn_status st = RN_OK;
    if (!(*buf = malloc(*len ? *len : 1)))
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

rn_status rn_make_parent_dirs(const char *path, char *created, size_t cap) {
    if (created && cap)
        created[0] = '\0';
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
            made = 1;
        }
        dir[i] = keep;
    }
    if (st == RN_OK && made && created && cap)
        snprintf(created, cap, "%s", dir);
    free(dir);
    return st;
}

rn_status rn_file_write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return rn_fail(RN_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    int err = put != len ? errno : 0;
    if (fclose(f) != 0 && !err)
        err = errno ? errno : EIO;
    if (put != len || err)
        return rn_fail(RN_ERR_IO, "%s: write failed: %s", path, strerror(err ? err : EIO));
    return RN_OK;
}
