/* fit.c - planned memory against available memory (see fit.h). */
#include "fit.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

/* ---------------------------------------------------------------------------
 * What is available
 * ------------------------------------------------------------------------- */

/* The first number in a file (a "max" or a missing file: UINT64_MAX). */
static uint64_t read_number(const char *path) {
    FILE *f = fopen(path, "r");
    uint64_t v = UINT64_MAX;
    if (f) {
        if (fscanf(f, "%" SCNu64, &v) != 1)
            v = UINT64_MAX;
        fclose(f);
    }
    return v;
}

/* limit - usage of the memory cgroup this process is in, or UINT64_MAX. */
static uint64_t cgroup_room(char *source, size_t cap) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return UINT64_MAX;
    char line[1024], v1[1024] = "", v2[1024] = "";
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "0::", 3) == 0)
            snprintf(v2, sizeof v2, "%s", line + 3);
        const char *m = strstr(line, ":memory:");
        if (m)
            snprintf(v1, sizeof v1, "%s", m + 8);
    }
    fclose(f);
    /* the cgroup's own folder, or the mount's root when the mount is the
     * process's own cgroup (a cgroup namespace, as in containers) */
    const char *kinds[2][4] = {{"/sys/fs/cgroup/memory", v1, "memory.limit_in_bytes", "memory.usage_in_bytes"},
                               {"/sys/fs/cgroup", v2, "memory.max", "memory.current"}};
    uint64_t room = UINT64_MAX;
    for (int k = 0; k < 2; k++) {
        const char *root = kinds[k][0], *own = kinds[k][1];
        if (k == 0 && !*own)
            continue;
        for (int at_root = 0; at_root < 2; at_root++) {
            char lim[2200], use[2200];
            snprintf(lim, sizeof lim, "%s%s/%s", root, at_root ? "" : own, kinds[k][2]);
            snprintf(use, sizeof use, "%s%s/%s", root, at_root ? "" : own, kinds[k][3]);
            uint64_t limit = read_number(lim), usage = read_number(use);
            if (limit == UINT64_MAX || usage == UINT64_MAX)
                continue;
            if (limit < ((uint64_t)1 << 60)) { /* else "unlimited" */
                uint64_t r = limit > usage ? limit - usage : 0;
                if (r < room) {
                    room = r;
                    snprintf(source, cap, "the memory limit of the cgroup, %.180s", lim);
                }
            }
            break;
        }
    }
    return room;
}

size_t cli_memory_available(char *source, size_t cap) {
    snprintf(source, cap, "nothing");
    uint64_t avail = UINT64_MAX;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        uint64_t kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1 && kb < UINT64_MAX / 1024) {
                avail = kb * 1024;
                snprintf(source, cap, "MemAvailable in /proc/meminfo");
                break;
            }
        fclose(f);
    }
    char cg[256] = "";
    uint64_t room = cgroup_room(cg, sizeof cg);
    if (room < avail) {
        avail = room;
        snprintf(source, cap, "%s", cg);
    }
    if (avail == UINT64_MAX)
        return 0;
    return avail > SIZE_MAX ? SIZE_MAX : (size_t)avail;
}

/* ---------------------------------------------------------------------------
 * The check
 * ------------------------------------------------------------------------- */

static double gb(size_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

/* What a run needs: `at_one` bytes at batch 1 and `at_batch` at batch
 * `batch` (memory grows about linearly in between); `what` describes it. */
typedef struct cli_fit {
    const char *command, *what;
    size_t at_one, at_batch;
    int batch;
    const char *size_flag;
} cli_fit;

/* 1 when the run fits in the available memory (or the latter is unknown).
 * Else prints one line with the estimate, what is available and the largest
 * --batch-size that would fit (or that none does), and returns 0. */
static int check_fits(const cli_fit *f) {
    char source[256];
    size_t avail = cli_memory_available(source, sizeof source);
    if (avail == 0 || f->at_batch <= avail)
        return 1;
    char advice[160];
    size_t per = f->batch > 1 && f->at_batch > f->at_one ? (f->at_batch - f->at_one) / (size_t)(f->batch - 1) : 0;
    size_t fits = per && avail >= f->at_one ? (avail - f->at_one) / per + 1 : 0;
    if (fits >= 1)
        snprintf(advice, sizeof advice, "a --batch-size of %zu or less would fit", fits);
    else
        snprintf(advice, sizeof advice, "no batch size fits: try a smaller %s or architecture",
                 f->size_flag ? f->size_flag : "--image-size");
    cli_error(f->command, "too big to fit: %s needs about %.2f GiB, but %.2f GiB is available (%s); %s",
              f->what, gb(f->at_batch), gb(avail), source, advice);
    return 0;
}

int cli_plan_fits(const cli_plan *p) {
    const int n[2] = {1, p->batch};
    size_t need[2], train = 0, infer = 0;
    for (int i = 0; i < 2; i++) {
        rn_status st = RN_OK;
        train = infer = 0;
        if (p->tcfg)
            st = rn_trainer_plan_bytes(p->m, p->tcfg, n[i], p->h, p->w, &train);
        if (st == RN_OK && p->session) {
            st = rn_session_plan_bytes(p->m, p->scfg, n[i], p->h, p->w, &infer);
            infer = infer > SIZE_MAX / (size_t)p->session ? SIZE_MAX : infer * (size_t)p->session;
        }
        if (st != RN_OK && st != RN_ERR_NOMEM) {
            cli_error(p->command, "%s%s%s", p->weights ? p->weights : "", p->weights ? ": " : "", rn_last_error());
            return 0;
        }
        size_t sum = train + infer, mine = p->per_image * (size_t)n[i] + p->extra;
        need[i] = st == RN_ERR_NOMEM || sum < train || sum + mine < sum ? SIZE_MAX : sum + mine;
    }
    char what[256];
    if (p->tcfg && p->session)
        snprintf(what, sizeof what, "training %s on batches of %d images of %dx%d (the trainer %.2f GiB, the "
                 "evaluation %.2f GiB)", rn_model_arch(p->m), p->batch, p->h, p->w, gb(train), gb(infer));
    else
        snprintf(what, sizeof what, "%s %s on batches of %d images of %dx%d",
                 p->task ? p->task : p->tcfg ? "training" : "inference of", rn_model_arch(p->m), p->batch, p->h, p->w);
    cli_fit f = {p->command, what, need[0], need[1], p->batch, p->size_flag};
    return check_fits(&f);
}
