/*
 * profile_layers.c - where inference time goes, layer by layer, inside the
 * network (unlike bench_conv, which times each convolution shape alone, with
 * its weights and input hot in cache).
 *
 *     build/dev/profile_layers [-a arch] [-b batch] [-s size] [-t threads] [-r repeats]
 *                              [-p fp32|bf16|int8] [-c auto|im2col|pointwise|winograd]
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
} stamps;

static void stamp(void *ctx, int value, const float *data, size_t count, int blocked16) {
    (void)data, (void)count, (void)blocked16;
    stamps *st = ctx;
    const double t = dev_now();
    st->at_value[value] += t - st->last;
    st->last = t;
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
    fprintf(stderr, "usage: profile_layers [-a arch] [-b batch] [-s size] [-t threads] [-r repeats] "
                    "[-p fp32|bf16|int8] [-c auto|im2col|pointwise|winograd]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *arch = "resnet50", *precision = "fp32", *algo = "auto";
    int batch = 1, size = 224, threads = 2, repeats = 20;
    for (int i = 1; i < argc; i++) {
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
    rn_set_threads(threads);

    rn_model *m = NULL;
    rn_session *s = NULL;
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    cfg.precision = precision;
    cfg.conv_algo = algo;
    if (rn_model_create(arch, 3, 1000, &m) != RN_OK || rn_model_init(m, "default", 1) != RN_OK ||
        (!strcmp(precision, "int8") && !quantize(&m, size)) ||
        rn_session_create(m, &cfg, &s) != RN_OK) {
        fprintf(stderr, "profile_layers: %s\n", rn_last_error());
        rn_model_free(m);
        return 1;
    }
    const size_t in = (size_t)batch * 3 * size * size;
    float *x = malloc(in * sizeof *x), *logits = malloc((size_t)batch * 1000 * sizeof *logits);
    for (size_t i = 0; x && i < in; i++)
        x[i] = (float)(i * 7919 % 1000) / 500.0f - 1.0f;
    int status = 1;
    for (int w = 0; x && logits && w < 2; w++)
        if (rn_session_forward(s, x, batch, size, size, RN_MODE_EVAL, logits) != RN_OK) {
            fprintf(stderr, "profile_layers: %s\n", rn_last_error());
            goto done;
        }
    if (!x || !logits)
        goto done;

    const rn_graph *g = s->sc;
    const int nv = g->n_values;
    /* per pass: each value's seconds, then the pass's total (column nv) */
    double *times = calloc((size_t)repeats * (size_t)(nv + 1), sizeof(double));
    double *tmp = malloc((size_t)repeats * sizeof(double));
    stamps st = {0};
    s->observe = stamp;
    s->observe_ctx = &st;
    for (int r = 0; times && tmp && r < repeats; r++) {
        st.at_value = times + (size_t)r * (nv + 1);
        const double t0 = dev_now();
        st.last = t0;
        rn_session_forward(s, x, batch, size, size, RN_MODE_EVAL, logits);
        st.at_value[nv] = dev_now() - t0;
    }
    s->observe = NULL;
    if (!times || !tmp) {
        free(times), free(tmp);
        goto done;
    }
    const double pass = dev_median(times + nv, repeats, nv + 1, tmp) * 1e3;

    printf("%s, batch %d, %dx%d, %d threads, %s, kernels %s, median of %d passes: %.2f ms\n", arch,
           batch, size, size, threads, precision, rn_session_kernel(s), repeats, pass);
    printf("node  layer                         algorithm        ms  GFLOP/s  share\n");
    double by_algo[RN_CONV_ALGO_COUNT] = {0}, q_convs = 0.0, pools = 0.0, accounted = 0.0;
    if (s->int8) { /* int8 passes stamp the input's quantization and every node */
        const double ms = dev_median(times, repeats, nv + 1, tmp) * 1e3;
        accounted += ms;
        printf("   -  input quantized               -         %7.3f        -  %4.1f%%\n", ms,
               100.0 * ms / pass);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const rn_node *nd = &g->nodes[i];
        if (s->int8 && (nd->op == RN_NODE_AVGPOOL || nd->op == RN_NODE_LINEAR)) {
            const double ms = dev_median(times + nd->out, repeats, nv + 1, tmp) * 1e3;
            accounted += ms;
            printf("%4d  %-29s -         %7.3f        -  %4.1f%%\n", i,
                   nd->op == RN_NODE_AVGPOOL ? "average pool" : "classifier", ms, 100.0 * ms / pass);
        }
        if (nd->op != RN_NODE_CONV && nd->op != RN_NODE_MAXPOOL)
            continue;
        const double ms = dev_median(times + nd->out, repeats, nv + 1, tmp) * 1e3;
        const double share = 100.0 * ms / pass;
        accounted += ms;
        if (nd->op == RN_NODE_MAXPOOL) {
            pools += ms;
            printf("%4d  max-pool %dx%d/%d                 -         %7.3f        -  %4.1f%%\n", i, nd->k,
                   nd->k, nd->stride, ms, share);
            continue;
        }
        const rn_conv_shape cs = rn_node_conv_shape(nd, batch);
        const double flops =
            2.0 * cs.n * cs.ho * cs.wo * cs.cout * (double)(cs.cin / cs.groups) * cs.kh * cs.kw;
        char layer[64];
        snprintf(layer, sizeof layer, "%dx%d/%d %d->%d @%d%s", cs.kh, cs.kw, cs.stride, cs.cin, cs.cout,
                 cs.h, nd->res >= 0 ? " +res" : "");
        if (s->int8)
            q_convs += ms;
        else
            by_algo[s->algo[i]] += ms;
        printf("%4d  %-29s %-10s %7.3f  %7.1f  %4.1f%%\n", i, layer,
               s->int8 ? "int8" : rn_conv_algo_get(s->algo[i])->name, ms, flops / (ms * 1e6), share);
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
    free(times), free(tmp);
    status = 0;
done:
    free(x);
    free(logits);
    rn_session_free(s);
    rn_model_free(m);
    return status;
}
