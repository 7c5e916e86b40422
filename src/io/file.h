/*
 * file.h - opening, reading and writing whole files, with errors that name the file.
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

/* Writes data[0..len) to path, replacing the file. Fails with RN_ERR_IO
 * naming the file. */
rn_status rn_file_write_all(const char *path, const void *data, size_t len);

#endif
