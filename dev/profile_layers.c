/*
 * profile_layers.c - where inference time goes, layer by layer, inside the
 * network (unlike bench_conv, which times each convolution shape alone, with
 * its weights and input hot in cache).
 *
 *     build/dev/profile_layers [-a arch] [-b batch] [-s size] [-t threads] [-r repeats]
 *                              [-p fp32|bf16|int8] [-c auto|im2col|pointwise|winograd] [-1] [-w]
 *
 * A session on random weights runs `repeats` forward passes after two
 * warm-ups; the session's per-value hook (the one int8 calibration uses)
 * stamps the time as each convolution and max-pool finishes, so a node's
 * time is from the end of the node before it to its own end. With -p int8
 * the random weights are quantized first, calibrated (percentile) on 8
 * uniform random images as `resnet bench --precision int8` does. Prints, per
 * node, the algorithm that ran, milliseconds (median over the passes: the
 * hosts here are shared, and a disturbed pass moves a mean), the
 * direct convolution's FLOPs over that time (effective GFLOP/s) and the share
 * of the pass; then the totals by algorithm. RN_ISA picks the kernels.
 * With -1, a second session on one thread runs a pass before each of the first's (the two
 * under the same disturbances of a shared host), and each node also shows its time on one
 * thread, the speedup, and its loss: the milliseconds it takes beyond a perfect split of its
 * one-thread time over the threads (where a pass loses its parallel speedup, by node and by
 * algorithm).
 * With -w (fp32 and bf16), before each convolution runs, its prepared weights are read on every
 * thread (untimed: neither the node's time nor the pass's counts it), so that they come to the
 * node from the caches of every core, not from memory: against a run without -w, what
 * streaming each layer's weights from memory costs it inside the network (bench_conv's
 * weights are always hot).
 * Defaults: -a resnet50 -b 1 -s 224 -t 2 -r 20 -p fp32 -c auto.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session.h"
#include "model/model.h"
#include "ops/conv_algo.h"
#include "resnet.h"
#include "timing.h"

typedef struct stamps {
    double last;
    double *at_value; /* seconds per value written, this pass */
    const rn_session *warm; /* -w: its convolutions' weights read ahead, else NULL */
    double warming;         /* seconds spent reading them, this pass */
} stamps;

/* -w: the prepared weights (and bias) of the first convolution from node `from` on, read by
 * every thread of the session, each all of them (the algorithms' splits differ: some threads
 * read all the weights, some a share), a float a cache line. */
static void warm_weights(const rn_session *s, int from) {
    const rn_graph *g = s->sc;
    int i = from;
    while (i < g->n_nodes && g->nodes[i].op != RN_NODE_CONV)
        i++;
    if (i >= g->n_nodes)
        return;
    int next = i + 1;
    while (next < g->n_nodes && g->nodes[next].op != RN_NODE_CONV)
        next++;
    const size_t a = s->prep_at[i], b = next < g->n_nodes ? s->prep_at[next] : s->prepared_floats;
    const float *p = s->prepared;
    float sum = 0.0f;
#pragma omp parallel num_threads(s->threads) reduction(+ : sum)
    for (size_t q = a; q < b; q += 16) /* every thread all of them (no work sharing) */
        sum += p[q];
    if (sum == 1234.5f) /* the reads are used, so kept */
        fputs("", stderr);
}

static void stamp(void *ctx, int value, const float *data, size_t count, int blocked16) {
    (void)data, (void)count, (void)blocked16;
    stamps *st = ctx;
    const double t = dev_now();
    st->at_value[value] += t - st->last;
    st->last = t;
    if (st->warm) { /* the next convolution's weights, after the node that wrote `value` (the
                       * input, value 0, has none: then the first convolution's) */
        warm_weights(st->warm, st->warm->sc->values[value].producer + 1);
        st->last = dev_now();
        st->warming += st->last - t;
    }
}

/* *m replaced by its int8 model calibrated on synthetic images (rn_quantize_synthetic); 0 on
 * error */
static int quantize(rn_model **m, int size) {
    rn_model *q = NULL;
    if (rn_quantize_synthetic(*m, size, size, &q) != RN_OK)
        return 0;
    rn_model_free(*m);
    *m = q;
    return 1;
}

static int usage(void) {
    fprintf(stderr, "usage: profile_layers [-a arch] [-b batch] [-s size] [-t threads] [-r repeats] [-1] "
                    "[-p fp32|bf16|int8] [-c auto|im2col|pointwise|winograd] [-w]\n");
    return 2;
}

/* Two untimed passes of s; 0 (the error printed) where one fails. */
static int warm_up(rn_session *s, const float *x, int batch, int size, float *logits) {
    for (int w = 0; w < 2; w++)
        if (rn_session_forward(s, x, batch, size, size, RN_MODE_EVAL, logits) != RN_OK) {
            fprintf(stderr, "profile_layers: %s\n", rn_last_error());
            return 0;
        }
    return 1;
}

/* One timed pass of s on `threads` threads; row: each value's seconds, then the pass's. */
static void timed_pass(rn_session *s, int threads, const float *x, int batch, int size,
                       float *logits, int warm, double *row) {
    stamps st = {.at_value = row, .warm = warm ? s : NULL};
    rn_set_threads(threads);
    s->observe = stamp;
    s->observe_ctx = &st;
    const double t0 = dev_now();
    st.last = t0;
    rn_session_forward(s, x, batch, size, size, RN_MODE_EVAL, logits);
    row[s->sc->n_values] = dev_now() - t0 - st.warming;
    s->observe = NULL;
}

/* The median over the passes of column v of times (rows of nv + 1), in ms. */
static double median_ms(const double *times, int v, int repeats, int nv, double *tmp) {
    return dev_median(times + v, repeats, nv + 1, tmp) * 1e3;
}

/* -1's columns: the one-thread session's times (rows of nv + 1), and the losses summed. */
typedef struct one_thread {
    int on, threads, repeats, nv;
    const double *times;
    double *tmp, loss;
} one_thread;

/* The one-thread columns of value v, whose median on the threads was ms, into tail (empty
 * without -1); returns v's loss, ms beyond a perfect split of its one-thread time. */
static double one_thread_cols(one_thread *o, int v, double ms, char *tail, size_t cap) {
    tail[0] = 0;
    if (!o->on)
        return 0.0;
    const double one = median_ms(o->times, v, o->repeats, o->nv, o->tmp);
    const double loss = ms - one / o->threads;
    snprintf(tail, cap, "  %9.3f  %7.2f  %5.3f", one, one / ms, loss);
    o->loss += loss;
    return loss;
}

int main(int argc, char **argv) {
    const char *arch = "resnet50", *precision = "fp32", *algo = "auto";
    int batch = 1, size = 224, threads = 2, repeats = 20, scaling = 0, warm = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-1")) {
            scaling = 1;
            continue;
        }
        if (!strcmp(argv[i], "-w")) {
            warm = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "-a"))
            arch = v;
        else if (!strcmp(argv[i], "-b"))
            batch = atoi(v);
        else if (!strcmp(argv[i], "-s"))
            size = atoi(v);
        else if (!strcmp(argv[i], "-t"))
            threads = atoi(v);
        else if (!strcmp(argv[i], "-r"))
            repeats = atoi(v);
        else if (!strcmp(argv[i], "-p"))
            precision = v;
        else if (!strcmp(argv[i], "-c"))
            algo = v;
        else
            return usage();
        i++;
    }
    if (batch < 1 || size < 1 || threads < 1 || repeats < 1 ||
        (strcmp(precision, "fp32") && strcmp(precision, "bf16") && strcmp(precision, "int8")))
        return usage();
    if (warm && !strcmp(precision, "int8")) { /* its weights are laid out per node elsewhere */
        fprintf(stderr, "profile_layers: -w is for fp32 and bf16 sessions, not int8\n");
        return 2;
    }

    rn_model *m = NULL;
    rn_session *s = NULL, *s1 = NULL; /* s1: the one-thread session of -1 */
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    cfg.precision = precision;
    cfg.conv_algo = algo;
    rn_set_threads(threads);
    int made = rn_model_create(arch, 3, 1000, &m) == RN_OK &&
               rn_model_init(m, "default", 1) == RN_OK &&
               (strcmp(precision, "int8") || quantize(&m, size)) &&
               rn_session_create(m, &cfg, &s) == RN_OK;
    if (made && scaling) { /* sized for one thread */
        rn_set_threads(1);
        made = rn_session_create(m, &cfg, &s1) == RN_OK;
    }
    if (!made) {
        fprintf(stderr, "profile_layers: %s\n", rn_last_error());
        rn_session_free(s1);
        rn_session_free(s);
        rn_model_free(m);
        return 1;
    }
    const size_t in = (size_t)batch * 3 * size * size;
    float *x = malloc(in * sizeof *x), *logits = malloc((size_t)batch * 1000 * sizeof *logits);
    for (size_t i = 0; x && i < in; i++)
        x[i] = (float)(i * 7919 % 1000) / 500.0f - 1.0f;
    int status = 1;
    double *times = NULL, *tmp = NULL;
    if (!x || !logits)
        goto done;
    if (scaling) {
        rn_set_threads(1);
        if (!warm_up(s1, x, batch, size, logits))
            goto done;
    }
    rn_set_threads(threads);
    if (!warm_up(s, x, batch, size, logits)) /* the schedule is built on the first pass */
        goto done;
    const rn_graph *g = s->sc;
    const int nv = g->n_values;
    /* per pass: each value's seconds, then the pass's total (column nv); one thread's after */
    times = calloc((size_t)(scaling ? 2 : 1) * repeats * (size_t)(nv + 1), sizeof(double));
    tmp = malloc((size_t)repeats * sizeof(double));
    if (!times || !tmp)
        goto done;
    double *times1 = times + (size_t)repeats * (nv + 1);
    for (int r = 0; r < repeats; r++) {
        if (scaling)
            timed_pass(s1, 1, x, batch, size, logits, warm, times1 + (size_t)r * (nv + 1));
        timed_pass(s, threads, x, batch, size, logits, warm, times + (size_t)r * (nv + 1));
    }
    const double pass = median_ms(times, nv, repeats, nv, tmp);
    const double pass1 = scaling ? median_ms(times1, nv, repeats, nv, tmp) : 0.0;

    printf("%s, batch %d, %dx%d, %d threads, %s, kernels %s, median of %d passes: %.2f ms%s\n",
           arch, batch, size, size, threads, precision, rn_session_kernel(s), repeats, pass,
           warm ? " (each convolution's weights read into the caches first, untimed: -w)" : "");
    if (scaling)
        printf("on one thread, interleaved: %.2f ms (speedup %.2f; a perfect split: %.2f ms)\n",
               pass1, pass1 / pass, pass1 / threads);
    printf("node  layer                         algorithm        ms  GFLOP/s  share%s\n",
           scaling ? "   1 thread  speedup   loss" : "");
    double by_algo[RN_CONV_ALGO_COUNT] = {0}, q_convs = 0.0, pools = 0.0, accounted = 0.0;
    double loss_algo[RN_CONV_ALGO_COUNT] = {0}, loss_q = 0.0, loss_pools = 0.0;
    one_thread o = {.on = scaling, .threads = threads, .repeats = repeats, .nv = nv,
                    .times = times1, .tmp = tmp};
    char tail[64];
    if (s->int8) { /* int8 passes stamp the input's quantization and every node */
        const double ms = median_ms(times, 0, repeats, nv, tmp);
        accounted += ms;
        loss_q += one_thread_cols(&o, 0, ms, tail, sizeof tail);
        printf("   -  input quantized               -         %7.3f        -  %4.1f%%%s\n", ms,
               100.0 * ms / pass, tail);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const rn_node *nd = &g->nodes[i];
        if (s->int8 && (nd->op == RN_NODE_AVGPOOL || nd->op == RN_NODE_LINEAR)) {
            const double ms = median_ms(times, nd->out, repeats, nv, tmp);
            accounted += ms;
            one_thread_cols(&o, nd->out, ms, tail, sizeof tail);
            printf("%4d  %-29s -         %7.3f        -  %4.1f%%%s\n", i,
                   nd->op == RN_NODE_AVGPOOL ? "average pool" : "classifier", ms, 100.0 * ms / pass,
                   tail);
        }
        if (nd->op != RN_NODE_CONV && nd->op != RN_NODE_MAXPOOL)
            continue;
        const double ms = median_ms(times, nd->out, repeats, nv, tmp);
        const double share = 100.0 * ms / pass;
        accounted += ms;
        const double loss = one_thread_cols(&o, nd->out, ms, tail, sizeof tail);
        if (nd->op == RN_NODE_MAXPOOL) {
            pools += ms;
            loss_pools += loss;
            printf("%4d  max-pool %dx%d/%d                 -         %7.3f        -  %4.1f%%%s\n", i,
                   nd->k, nd->k, nd->stride, ms, share, tail);
            continue;
        }
        const rn_conv_shape cs = rn_node_conv_shape(nd, batch);
        const double flops =
            2.0 * cs.n * cs.ho * cs.wo * cs.cout * (double)(cs.cin / cs.groups) * cs.kh * cs.kw;
        char layer[64];
        snprintf(layer, sizeof layer, "%dx%d/%d %d->%d @%d%s", cs.kh, cs.kw, cs.stride, cs.cin, cs.cout,
                 cs.h, nd->res >= 0 ? " +res" : "");
        if (s->int8) {
            q_convs += ms;
            loss_q += loss;
        } else {
            by_algo[s->algo[i]] += ms;
            loss_algo[s->algo[i]] += loss;
        }
        printf("%4d  %-29s %-10s %7.3f  %7.1f  %4.1f%%%s\n", i, layer,
               s->int8 ? "int8" : rn_conv_algo_get(s->algo[i])->name, ms, flops / (ms * 1e6), share,
               tail);
    }
    printf("totals (medians):");
    if (s->int8)
        printf(" int8 %.2f ms (%.1f%%),", q_convs, 100.0 * q_convs / pass);
    for (int a = 0; a < RN_CONV_ALGO_COUNT; a++)
        if (by_algo[a] > 0.0)
            printf(" %s %.2f ms (%.1f%%),", rn_conv_algo_get(a)->name, by_algo[a], 100.0 * by_algo[a] / pass);
    printf(" max-pool %.2f ms (%.1f%%), %s %.2f ms\n", pools,
           100.0 * pools / pass, s->int8 ? "the rest" : "the rest (input layout, pooling, classifier)",
           pass - accounted);
    if (scaling) {
        printf("loss beyond a perfect split (ms):");
        if (s->int8)
            printf(" int8 %.2f,", loss_q);
        for (int a = 0; a < RN_CONV_ALGO_COUNT; a++)
            if (by_algo[a] > 0.0)
                printf(" %s %.2f,", rn_conv_algo_get(a)->name, loss_algo[a]);
        printf(" max-pool %.2f; the nodes %.2f, the pass %.2f\n", loss_pools, o.loss,
               pass - pass1 / threads);
    }
    status = 0;
done:
    free(times), free(tmp);
    free(x);
    free(logits);
    rn_session_free(s1);
    rn_session_free(s);
    rn_model_free(m);
    return status;
}
