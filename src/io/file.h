/*
 * file.h - opening and reading whole files, writing files atomically, and
 * creating the folders of files to write, with errors that name the file.
 *
 * Every file resnet.c writes goes through rn_wfile: the contents go to a
 * temporary file beside the target, named ".NAME.tmp-PID-XXXXXX", which is
 * flushed and fsync'ed, then renamed over NAME, and the folder fsync'ed. A
 * reader sees the old file or the new one, never a part of either; a crash,
 * a kill or a full disk leaves the old file as it was. Opening a target
 * removes the temporary files of NAME that dead processes left behind, and
 * the readers refuse to open such a file, so it is never loaded.
 *
 * A target that exists and is not a regular file (/dev/stdout, a FIFO) is
 * written in place: it cannot be replaced. A symbolic link is followed: the
 * file it points to is replaced, the link stays. A replaced file keeps its
 * permission bits; a new one gets 0666 less the umask, as fopen gives.
 */
#ifndef RN_IO_FILE_H
#define RN_IO_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "resnet.h"

/* Opens a regular file for reading and gives its size. On failure nothing
 * is left open. A temporary file of an unfinished write is refused. */
rn_status rn_file_open(const char *path, FILE **f, size_t *size);

/* Reads a whole regular file into a buffer from rn_alloc (huge pages from 2 MB; free with
 * free() or rn_free()). */
rn_status rn_file_read_all(const char *path, unsigned char **buf, size_t *len);

/* As rn_file_read_all, refusing (RN_ERR_UNSUPPORTED, before reading) a file larger than
 * max_bytes. */
rn_status rn_file_read_limit(const char *path, size_t max_bytes, unsigned char **buf,
                             size_t *len);

/* 1 when the file name (the part after the last '/') is that of an
 * rn_wfile temporary file, ".NAME.tmp-PID-XXXXXX". */
int rn_file_is_temp(const char *path);

/* ---- writing ------------------------------------------------------------------ */

typedef struct rn_wfile {
    FILE *f;          /* write the contents here */
    char *path;       /* the target (a link resolved) */
    char *tmp;        /* the temporary file; NULL when writing in place */
    int staged;       /* the contents are on disk; only the rename is left */
} rn_wfile;

/* Creates the temporary file for `path`. On failure (the folder is missing,
 * read-only, not writable...) *w is empty and the message names the file. */
rn_status rn_wfile_open(rn_wfile *w, const char *path);

/* Flushes and fsyncs the contents, and closes the stream: the temporary file
 * is complete on disk, the target not yet replaced. A write error seen at
 * any time (no space, quota, I/O error, file-size limit) fails here with its
 * reason; the temporary file is then removed and the target is unchanged. */
rn_status rn_wfile_stage(rn_wfile *w);

/* Stages if needed, renames the temporary file over the target and fsyncs
 * the folder. On success and on failure *w is released; on failure the
 * temporary file is removed. */
rn_status rn_wfile_commit(rn_wfile *w);

/* Fails with RN_ERR_IO and a message naming the target and the reason
 * (errno value err; 0: "Input/output error"), for a writer whose fwrite
 * failed. Does not release *w. */
rn_status rn_wfile_error(const rn_wfile *w, int err);

/* Abandons the write: closes and removes the temporary file, releases *w.
 * Does nothing on an empty or released *w. */
void rn_wfile_discard(rn_wfile *w);

/* Removes the temporary files of `path` that dead processes left (rn_wfile_open
 * does it for its target). */
void rn_file_remove_stale(const char *path);

/* Renames a file (in one folder) and fsyncs the folder. */
rn_status rn_file_rename(const char *from, const char *to);

/* Creates the folders missing above `path` (as mkdir -p on its dirname;
 * path itself is not touched). When some were created, `created` (cap
 * bytes, may be NULL) receives the folder path lies in, and `outer`
 * (outer_cap bytes, may be NULL) the outermost one created
 * (runs/a/b/m beside no runs: runs/a/b and runs), else "". Fails with
 * RN_ERR_IO naming path and the folder at fault (one that exists but is
 * not a folder, or that mkdir refuses). Never prints. */
rn_status rn_make_parent_dirs(const char *path, char *created, size_t cap, char *outer,
                              size_t outer_cap);

/* Writes len bytes to path atomically (open, write, commit). */
rn_status rn_file_write_all(const char *path, const void *data, size_t len);

#endif
