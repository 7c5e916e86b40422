/* train_flags.h - `resnet train`'s flags checked and read into the run. */
#ifndef RN_CLI_TRAIN_FLAGS_H
#define RN_CLI_TRAIN_FLAGS_H

#include "train_loop.h"

/* Every flag's value: the integers into r (batch, image size and threads into the pointers), the
 * loader's configuration into r->lcfg, and the names, numbers and combinations the trainer and
 * the data would refuse later. Returns 0 after an error message (a usage error: exit 2). Runs
 * before anything is read or written (planned 0), and again once --resume's plan has filled the
 * flags (planned 1). */
int train_check_flags(train_run *r, int *batch, int *size, int *threads, int planned);

#endif
