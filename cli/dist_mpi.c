/*
 * dist_mpi.c - the process group over MPI (contract in dist.h).
 *
 * Only the main thread calls MPI (MPI_THREAD_FUNNELED); the library's
 * OpenMP threads never do. Every collective is non-blocking and waited for
 * by wait_all(), which watches the time: past the timeout it says what it
 * was waiting for and aborts the job.
 *
 * Progress: MPI moves non-blocking operations on only inside MPI calls (an
 * Open MPI build has no progress thread by default), so the reducer tests
 * its buckets at every range the trainer reports - once per layer of the
 * backward pass - and the BatchNorm sums waited for in backward move them
 * on too.
 *
 * The gradient reducer, per step: ranges arrive from the end of the block
 * towards its start, contiguous; they are gathered into a bucket until it
 * holds bucket_floats, then the bucket is scaled by 1/N and its reduction
 * started in place on the gradients:
 *   default:        MPI_Iallreduce (MPI_SUM) - the library's algorithm;
 *   deterministic:  a reduce-scatter and an all-gather of our own: the
 *                   bucket is cut in N chunks, rank j receives everyone's
 *                   chunk j, adds them in rank order 0, 1, ..., N-1, and
 *                   sends the sum back to all. The order of the additions
 *                   is fixed by the code, and every rank gets the same bits.
 */
#include <mpi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"

static int g_on;              /* MPI initialised by us */
static int g_rank, g_size = 1;
static double g_timeout = 300.0;
static int g_deterministic;
static MPI_Comm g_comm;       /* small collectives */
static double *g_tmp;         /* dist_sum's gather buffer */
static size_t g_tmp_cap;
static char g_library[MPI_MAX_LIBRARY_VERSION_STRING];

/* ---------------------------------------------------------------------------
 * The group
 * ------------------------------------------------------------------------- */

/* Whether an MPI launcher started this process: Open MPI's mpirun, PMIx
 * (srun --mpi=pmix, Open MPI 5), or MPICH's Hydra / PMI-1. */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int dist_init(int *argc, char ***argv) {
    if (!launched_by_mpi())
        return 1;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "resnet: MPI_Init_thread failed\n");
        return 0;
    }
    g_on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm_dup(MPI_COMM_WORLD, &g_comm);
    return 1;
}

void dist_finalize(void) {
    if (!g_on)
        return;
    free(g_tmp);
    g_tmp = NULL;
    MPI_Comm_free(&g_comm);
    MPI_Finalize();
    g_on = 0;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }

const char *dist_library(void) {
    if (!g_library[0]) {
        int len = 0;
        MPI_Get_library_version(g_library, &len);
        g_library[strcspn(g_library, "\n")] = '\0';
    }
    return g_library;
}

void dist_set_timeout(double seconds) { g_timeout = seconds; }
void dist_set_deterministic(int on) { g_deterministic = on; }

_Noreturn void dist_abort(int status) {
    fflush(stdout);
    fflush(stderr);
    if (g_on)
        MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One round of a wait that started at `start`: past the timeout, ends the
 * job; after the first 0.1 s, sleeps a little between tests (a rank waiting
 * for a checkpoint to be written needs no core). */
static void wait_round(double start, const char *what) {
    double waited = now_s() - start;
    if (waited > g_timeout) {
        fprintf(stderr, "resnet train: rank %d: no answer from the other ranks for %.0f s while %s; a rank "
                        "died or hangs: stopping every rank\n", g_rank, waited, what);
        dist_abort(1);
    }
    if (waited > 0.1) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

static void wait_all(int n, MPI_Request *req, const char *what) {
    double start = now_s();
    for (;;) {
        int done = 0;
        MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (done)
            return;
        wait_round(start, what);
    }
}

/* Rank order sum of `size` vectors of n doubles laid one after another in all. */
static void sum_in_rank_order(const double *all, size_t n, double *v) {
    for (size_t i = 0; i < n; i++) {
        double s = all[i];
        for (int k = 1; k < g_size; k++)
            s += all[(size_t)k * n + i];
        v[i] = s;
    }
}

void dist_sum(double *v, size_t n, const char *what) {
    if (g_size == 1 || n == 0)
        return;
    MPI_Request req;
    if (!g_deterministic) {
        MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_DOUBLE, MPI_SUM, g_comm, &req);
        wait_all(1, &req, what);
        return;
    }
    size_t need = n * (size_t)g_size;
    if (need > g_tmp_cap) {
        free(g_tmp);
        g_tmp = malloc(need * sizeof *g_tmp);
        g_tmp_cap = g_tmp ? need : 0;
        if (!g_tmp) {
            fprintf(stderr, "resnet train: rank %d: out of memory while %s\n", g_rank, what);
            dist_abort(1);
        }
    }
    MPI_Iallgather(v, (int)n, MPI_DOUBLE, g_tmp, (int)n, MPI_DOUBLE, g_comm, &req);
    wait_all(1, &req, what);
    sum_in_rank_order(g_tmp, n, v);
}

#define CHUNK_BYTES ((size_t)1 << 30)

void dist_broadcast(void *buf, size_t bytes, const char *what) {
    if (g_size == 1)
        return;
    for (size_t at = 0; at < bytes; at += CHUNK_BYTES) {
        size_t len = bytes - at < CHUNK_BYTES ? bytes - at : CHUNK_BYTES;
        MPI_Request req;
        MPI_Ibcast((char *)buf + at, (int)len, MPI_BYTE, 0, g_comm, &req);
        wait_all(1, &req, what);
    }
}

void dist_gather(const void *mine, size_t bytes, void *all, const char *what) {
    if (g_size == 1) {
        memcpy(all, mine, bytes);
        return;
    }
    MPI_Request req;
    MPI_Igather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, 0, g_comm, &req);
    wait_all(1, &req, what);
}

/* ---------------------------------------------------------------------------
 * The gradient reducer
 * ------------------------------------------------------------------------- */

typedef struct bucket {
    size_t lo, len;
    int phase;                 /* deterministic: 0 chunks to their owners, 1 sums back, 2 done;
                                * default: 0 all-reduce running, 2 done */
    MPI_Request *req;          /* 2 (N - 1) */
    float *scratch;            /* deterministic: (N - 1) x this rank's chunk */
} bucket;

struct dist_reducer {
    MPI_Comm comm;
    int has_comm;
    size_t n, cap;
    int max_buckets, nb, first_open;
    bucket *b;
    MPI_Request *reqs;
    float *scratch;
    size_t scratch_floats, scratch_used;
    float *grads;              /* this step's block */
    size_t pend_lo, pend_hi;   /* the bucket being filled; empty when equal */
    size_t step_floats;
    dist_reducer_stats st;
};

dist_reducer *dist_reducer_create(size_t n, size_t bucket_floats, int max_ranges) {
    dist_reducer *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "resnet train: out of memory for the gradient reducer\n");
        return NULL;
    }
    r->n = n;
    r->cap = bucket_floats ? bucket_floats : 1;
    /* each range closes at most one bucket, and finishing one more; a bucket
     * over INT_MAX / 2 floats is cut in pieces */
    r->max_buckets = max_ranges + 2 + (int)(n / ((size_t)INT32_MAX / 2));
    int per = 2 * (g_size > 1 ? g_size - 1 : 1);
    r->b = calloc((size_t)r->max_buckets, sizeof *r->b);
    r->reqs = malloc((size_t)r->max_buckets * per * sizeof *r->reqs);
    /* deterministic: (N - 1) x ceil(len / N) per bucket, at most n + N per bucket over all */
    r->scratch_floats = g_deterministic ? n + (size_t)g_size * r->max_buckets : 0;
    r->scratch = r->scratch_floats ? malloc(r->scratch_floats * sizeof *r->scratch) : NULL;
    if (!r->b || !r->reqs || (r->scratch_floats && !r->scratch)) {
        fprintf(stderr, "resnet train: out of memory for the gradient reducer (%zu floats)\n", n);
        dist_reducer_free(r);
        return NULL;
    }
    for (int i = 0; i < r->max_buckets; i++)
        r->b[i].req = r->reqs + (size_t)i * per;
    if (g_on) {
        MPI_Comm_dup(MPI_COMM_WORLD, &r->comm);
        r->has_comm = 1;
    }
    return r;
}

void dist_reducer_free(dist_reducer *r) {
    if (!r)
        return;
    if (r->has_comm)
        MPI_Comm_free(&r->comm);
    free(r->b);
    free(r->reqs);
    free(r->scratch);
    free(r);
}

/* chunk j of bucket b: [lo + len*j/N, lo + len*(j+1)/N) */
static size_t chunk_at(const bucket *b, int j) { return b->lo + b->len * (size_t)j / (size_t)g_size; }
static size_t chunk_len(const bucket *b, int j) { return chunk_at(b, j + 1) - chunk_at(b, j); }

static void post_phase(dist_reducer *r, bucket *b, int index) {
    float *g = r->grads;
    int nreq = 0, tag = (index % 8000) * 2 + b->phase;
    size_t mine = chunk_len(b, g_rank);
    for (int j = 0, slot = 0; j < g_size; j++) {
        if (j == g_rank)
            continue;
        if (b->phase == 0) {
            /* my copy of chunk j to its owner; everyone's copy of my chunk into scratch */
            MPI_Isend(g + chunk_at(b, j), (int)chunk_len(b, j), MPI_FLOAT, j, tag, r->comm, &b->req[nreq++]);
            MPI_Irecv(b->scratch + (size_t)slot * mine, (int)mine, MPI_FLOAT, j, tag, r->comm, &b->req[nreq++]);
        } else {
            /* my summed chunk to everyone; their summed chunks into place */
            MPI_Isend(g + chunk_at(b, g_rank), (int)mine, MPI_FLOAT, j, tag, r->comm, &b->req[nreq++]);
            MPI_Irecv(g + chunk_at(b, j), (int)chunk_len(b, j), MPI_FLOAT, j, tag, r->comm, &b->req[nreq++]);
        }
        slot++;
    }
}

/* Deterministic: my chunk <- the ranks' copies added in rank order. */
static void reduce_own_chunk(dist_reducer *r, bucket *b) {
    float *own = r->grads + chunk_at(b, g_rank);
    size_t len = chunk_len(b, g_rank);
    for (size_t i = 0; i < len; i++) {
        float s = 0.0f;
        for (int k = 0, slot = 0; k < g_size; k++) {
            float v = k == g_rank ? own[i] : b->scratch[(size_t)slot++ * len + i];
            s = k == 0 ? v : s + v;
        }
        own[i] = s;
    }
}

static int progress(dist_reducer *r);

/* Waits for every open bucket; the bucket table and scratch are free again. */
static void drain(dist_reducer *r, const char *what) {
    double start = now_s();
    while (!progress(r))
        wait_round(start, what);
    r->nb = r->first_open = 0;
    r->scratch_used = 0;
}

static void start_one(dist_reducer *r, size_t lo, size_t len);

/* Starts the reduction of grads[lo .. lo + len), in pieces MPI's int counts hold. */
static void start_bucket(dist_reducer *r, size_t lo, size_t len) {
    const size_t most = (size_t)INT32_MAX / 2;
    while (len > most) {
        start_one(r, lo + len - most, most);
        len -= most;
    }
    if (len)
        start_one(r, lo, len);
}

static void start_one(dist_reducer *r, size_t lo, size_t len) {
    if (r->nb == r->max_buckets)
        drain(r, "averaging the gradients"); /* more ranges than announced: no overlap, still right */
    float *g = r->grads + lo;
    const float inv = 1.0f / (float)g_size;
    for (size_t i = 0; i < len; i++)
        g[i] *= inv;
    int index = r->nb++;
    bucket *b = &r->b[index];
    b->lo = lo;
    b->len = len;
    b->phase = 0;
    r->step_floats += len;
    r->st.buckets++;
    if (!g_deterministic) {
        MPI_Iallreduce(MPI_IN_PLACE, g, (int)len, MPI_FLOAT, MPI_SUM, r->comm, &b->req[0]);
        return;
    }
    size_t mine = chunk_len(b, g_rank);
    b->scratch = r->scratch + r->scratch_used;
    r->scratch_used += (size_t)(g_size - 1) * mine;
    post_phase(r, b, index);
}

/* Tests the bucket's requests; moves it to its next phase when they are done. */
static void advance(dist_reducer *r, int index) {
    bucket *b = &r->b[index];
    if (b->phase == 2)
        return;
    int nreq = g_deterministic ? 2 * (g_size - 1) : 1, done = 0;
    MPI_Testall(nreq, b->req, &done, MPI_STATUSES_IGNORE);
    if (!done)
        return;
    if (!g_deterministic || b->phase == 1) {
        b->phase = 2;
        return;
    }
    reduce_own_chunk(r, b);
    b->phase = 1;
    post_phase(r, b, index);
}

/* Moves every open bucket on; returns 1 when all are done. */
static int progress(dist_reducer *r) {
    for (int i = r->first_open; i < r->nb; i++)
        advance(r, i);
    while (r->first_open < r->nb && r->b[r->first_open].phase == 2)
        r->first_open++;
    return r->first_open == r->nb;
}

void dist_reducer_ready(dist_reducer *r, float *grads, size_t offset, size_t count) {
    if (g_size == 1 || count == 0)
        return;
    double t0 = now_s();
    r->grads = grads;
    if (r->pend_lo != r->pend_hi && offset + count != r->pend_lo) {
        /* not contiguous with the bucket being filled: send that first */
        start_bucket(r, r->pend_lo, r->pend_hi - r->pend_lo);
        r->pend_lo = r->pend_hi = 0;
    }
    if (r->pend_lo == r->pend_hi)
        r->pend_hi = offset + count;
    r->pend_lo = offset;
    if (r->pend_hi - r->pend_lo >= r->cap) {
        start_bucket(r, r->pend_lo, r->pend_hi - r->pend_lo);
        r->pend_lo = r->pend_hi = 0;
    }
    progress(r);
    r->st.inline_s += now_s() - t0;
}

static void wait_buckets(dist_reducer *r, const char *what) {
    if (r->pend_lo != r->pend_hi)
        start_bucket(r, r->pend_lo, r->pend_hi - r->pend_lo);
    r->pend_lo = r->pend_hi = 0;
    drain(r, what);
}

void dist_reducer_finish(dist_reducer *r) {
    if (g_size == 1)
        return;
    double t0 = now_s();
    wait_buckets(r, "averaging the gradients");
    r->st.floats_per_step = (double)r->step_floats;
    r->step_floats = 0;
    r->st.steps++;
    r->st.wait_s += now_s() - t0;
}

void dist_reducer_get_stats(const dist_reducer *r, dist_reducer_stats *st) { *st = r->st; }

double dist_reducer_time_alone(dist_reducer *r, int repeats) {
    if (g_size == 1)
        return 0.0;
    float *buf = calloc(r->n ? r->n : 1, sizeof *buf);
    if (!buf) {
        fprintf(stderr, "resnet train: rank %d: out of memory timing the all-reduce\n", g_rank);
        dist_abort(1);
    }
    dist_reducer_stats keep = r->st;
    double best = 1e30;
    for (int k = 0; k < repeats; k++) {
        MPI_Request req;
        MPI_Ibarrier(g_comm, &req);
        wait_all(1, &req, "timing the all-reduce");
        double t0 = now_s();
        r->grads = buf;
        for (size_t hi = r->n; hi > 0;) {
            size_t lo = hi > r->cap ? hi - r->cap : 0;
            start_bucket(r, lo, hi - lo);
            hi = lo;
        }
        wait_buckets(r, "timing the all-reduce");
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    r->st = keep;
    r->step_floats = 0;
    free(buf);
    return best;
}
