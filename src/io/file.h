/*
 * file.h - opening, reading and writing whole files, and creating the
 * folders of files to write, with errors that name the file.
 */
#ifndef RN_IO_FILE_H
#define RN_IO_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "resnet.h"

/* Opens a regular file for reading and gives its size. On failure nothing
 * is left open. */
rn_status rn_file_open(const char *path, FILE **f, size_t *size);

/* Reads a whole regular file into a malloc'ed buffer (free with free()). */
rn_status rn_file_read_all(const char *path, unsigned char **buf, size_t *len);

/* Creates the folders missing above `path` (as mkdir -p on its dirname;
 * path itself is not touched). When some were created, `created` (cap
 * bytes, may be NULL) receives the folder path lies in, else "". Fails with
 * RN_ERR_IO naming path and the folder at fault (one that exists but is
 * not a folder, or that mkdir refuses). Never prints. */
rn_status rn_make_parent_dirs(const char *path, char *created, size_t cap);

/* Writes data[0..len) to path, replacing the file. Fails with RN_ERR_IO
 * naming the file. */
rn_status rn_file_write_all(const char *path, const void *data, size_t len);

#endif
