/*
 * fuzz.h - what the libFuzzer targets share: handing the fuzzer's bytes to a
 * reader that takes a path (an in-memory file, reached directly or by name
 * through a link in a private temporary folder), and a stored zip writer
 * for the .pth target.
 *
 * Each target is one C file defining LLVMFuzzerTestOneInput; it is built by
 * `make fuzz` with clang -fsanitize=fuzzer,address,undefined and run by
 * tests/fuzz.sh. A target never aborts on bad input: the library returns a
 * status, and only a sanitizer report or a crash counts as a finding.
 */
#ifndef RN_TESTS_FUZZ_H
#define RN_TESTS_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- in-memory files with a path ------------------------------------------------ */

#define FUZZ_MEM_FILES 4
static int fuzz_memfd[FUZZ_MEM_FILES] = {-1, -1, -1, -1};

/* The bytes as regular file number `slot` (0..FUZZ_MEM_FILES-1) in memory;
 * returns its path ("/proc/self/fd/N"), valid until the next call for the slot. */
static inline const char *fuzz_mem_file(int slot, const uint8_t *data, size_t size) {
    static char paths[FUZZ_MEM_FILES][64];
    if (fuzz_memfd[slot] < 0) {
        fuzz_memfd[slot] = memfd_create("fuzz-input", 0);
        if (fuzz_memfd[slot] < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fuzz_memfd[slot]);
    }
    /* written over, then cut to size: the pages the last input used are kept */
    if ((size && pwrite(fuzz_memfd[slot], data, size, 0) != (ssize_t)size) ||
        ftruncate(fuzz_memfd[slot], (off_t)size) != 0) {
        perror("memfd write");
        abort();
    }
    return paths[slot];
}

/* The bytes as an in-memory file (slot 0). */
static inline const char *fuzz_mem_path(const uint8_t *data, size_t size) {
    return fuzz_mem_file(0, data, size);
}

/* ---- a private temporary folder --------------------------------------------- */

static char fuzz_dir_path[256];

static inline void fuzz_dir_remove(void) {
    DIR *d = opendir(fuzz_dir_path);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(fuzz_dir_path);
}

/* A folder of this process, in /dev/shm when it exists (no disk writes). */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/rn_fuzz.XXXXXX", base);
        if (!mkdtemp(fuzz_dir_path)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* The bytes as NAME in the folder: a symbolic link, made once, to in-memory
 * file `slot` (so no file is created, written to disk or removed per
 * input); NULL data removes the link, so that NAME is absent. */
static inline void fuzz_put_file(int slot, const char *name, const uint8_t *data, size_t size) {
    static int linked[FUZZ_MEM_FILES];
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fuzz_dir(), name);
    if (!data) {
        if (linked[slot])
            unlink(p);
        linked[slot] = 0;
        return;
    }
    const char *target = fuzz_mem_file(slot, data, size);
    if (!linked[slot]) {
        unlink(p);
        if (symlink(target, p) != 0) {
            perror(p);
            abort();
        }
        linked[slot] = 1;
    }
}

/* Splits the input in two at a point given by its first two bytes; returns
 * the second part's offset (the first part is data[2..cut)). */
static inline size_t fuzz_split(const uint8_t *data, size_t size) {
    if (size < 2)
        return size;
    size_t want = (size_t)data[0] | (size_t)data[1] << 8;
    return 2 + (want < size - 2 ? want : size - 2);
}

/* ---- a stored zip archive ---------------------------------------------------- */

typedef struct fuzz_buf {
    uint8_t *p;
    size_t len, cap;
} fuzz_buf;

static inline void fuzz_put(fuzz_buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static inline void fuzz_put16(fuzz_buf *b, unsigned v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    fuzz_put(b, x, 2);
}

static inline void fuzz_put32(fuzz_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fuzz_put(b, x, 4);
}

typedef struct fuzz_zip_entry {
    const uint8_t *name, *data;
    size_t name_len, data_len;
} fuzz_zip_entry;

/* A STORED zip of the entries, with correct CRCs (so the fuzzer's changes
 * reach what lies inside the records). */
static inline void fuzz_zip(const fuzz_zip_entry *e, size_t n, fuzz_buf *out) {
    uint32_t *offsets = calloc(n + 1, sizeof *offsets), *crcs = calloc(n + 1, sizeof *crcs);
    if (!offsets || !crcs)
        abort();
    out->len = 0;
    for (size_t i = 0; i < n; i++) {
        offsets[i] = (uint32_t)out->len;
        crcs[i] = (uint32_t)crc32(0, e[i].data, (uInt)e[i].data_len);
        fuzz_put32(out, 0x04034b50);
        fuzz_put16(out, 20), fuzz_put16(out, 0), fuzz_put16(out, 0), fuzz_put16(out, 0), fuzz_put16(out, 0);
        fuzz_put32(out, crcs[i]), fuzz_put32(out, (uint32_t)e[i].data_len), fuzz_put32(out, (uint32_t)e[i].data_len);
        fuzz_put16(out, (unsigned)e[i].name_len), fuzz_put16(out, 0);
        fuzz_put(out, e[i].name, e[i].name_len);
        fuzz_put(out, e[i].data, e[i].data_len);
    }
    size_t cd = out->len;
    for (size_t i = 0; i < n; i++) {
        fuzz_put32(out, 0x02014b50);
        fuzz_put16(out, 20), fuzz_put16(out, 20), fuzz_put16(out, 0), fuzz_put16(out, 0);
        fuzz_put16(out, 0), fuzz_put16(out, 0);
        fuzz_put32(out, crcs[i]), fuzz_put32(out, (uint32_t)e[i].data_len), fuzz_put32(out, (uint32_t)e[i].data_len);
        fuzz_put16(out, (unsigned)e[i].name_len), fuzz_put16(out, 0), fuzz_put16(out, 0);
        fuzz_put16(out, 0), fuzz_put16(out, 0), fuzz_put32(out, 0);
        fuzz_put32(out, offsets[i]);
        fuzz_put(out, e[i].name, e[i].name_len);
    }
    size_t cd_len = out->len - cd;
    fuzz_put32(out, 0x06054b50);
    fuzz_put16(out, 0), fuzz_put16(out, 0), fuzz_put16(out, (unsigned)n), fuzz_put16(out, (unsigned)n);
    fuzz_put32(out, (uint32_t)cd_len), fuzz_put32(out, (uint32_t)cd), fuzz_put16(out, 0);
    free(offsets);
    free(crcs);
}

#endif
