/*
 * profile_train.c - where a training step's time goes, layer by layer and
 * pass by pass, inside the network (profile_layers does the same for
 * inference; bench_backward times each pass of a shape alone).
 *
 *     build/dev/profile_train [-a arch] [-S imagenet|cifar] [-w width] [-i in_channels]
 *                             [-k classes] [-b batch] [-s size] [-t threads] [-r repeats]
 *                             [-c auto|im2col|...] [-p fp32|bf16]
 *
 * Runs `repeats` training forward and backward passes (rn_backprop, as the
 * trainer does; the optimizer's update, a few percent of a step, is not in
 * them) after two warm-ups, on random input with the default initialisation.
 * The backprop's stamp hook marks the end of each part of each node's work,
 * so a part's time is from the end of the part before it. Prints, per
 * convolution, the median milliseconds (over the passes: the hosts here are
 * shared) of the forward convolution (with, for Winograd and direct, its
 * weights made first: the "prep" column), BatchNorm forward, ReLU/BatchNorm
 * backward, the weight gradient and the data gradient, with the effective
 * GFLOP/s of the three convolution passes (the direct convolution's FLOPs,
 * 2 x multiply-adds, over the time); then the totals by part and by forward
 * algorithm. Pools, classifier, loss and input layout get a row each (their total only), and
 * are summed as "other".
 * RN_ISA picks the kernels; -p bf16 runs the step on the bf16 descriptor of the same
 * instruction set, as `train --precision bf16` does. Defaults: -a resnet18 -S imagenet -w 64 -i 3
 * -k 1000 -b 32 -s 224 -t 2 -r 5 -c auto -p fp32. The fmnist-fast network:
 * -a resnet18 -S cifar -w 16 -i 1 -k 10 -b 128 -s 28.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "model/model.h"
#include "ops/conv_algo.h"
#include "ops/kernels.h"
#include "resnet.h"
#include "timing.h"
#include "train/backprop.h"

/* Seconds per (node + 1, part) of one pass: row 0 is node -1 (the input's layout), the last
 * row the loss. */
typedef struct stamps {
    double last;
    double *at; /* (n_nodes + 2) x RN_BP_PARTS */
} stamps;

static void stamp(void *ctx, int node, rn_bp_part part) {
    stamps *st = ctx;
    const double t = dev_now();
    st->at[(size_t)(node + 1) * RN_BP_PARTS + part] += t - st->last;
    st->last = t;
}

static int usage(void) {
    fprintf(stderr, "usage: profile_train [-a arch] [-S imagenet|cifar] [-w width] [-i in_channels] "
                    "[-k classes] [-b batch] [-s size] [-t threads] [-r repeats] [-c auto|im2col|...] [-p fp32|bf16]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *arch = "resnet18", *stem_s = "imagenet", *algo_s = "auto", *prec = "fp32";
    int width = 64, in_ch = 3, classes = 1000, batch = 32, size = 224, threads = 2, repeats = 5;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "-a"))
            arch = v;
        else if (!strcmp(argv[i], "-S"))
            stem_s = v;
        else if (!strcmp(argv[i], "-w"))
            width = atoi(v);
        else if (!strcmp(argv[i], "-i"))
            in_ch = atoi(v);
        else if (!strcmp(argv[i], "-k"))
            classes = atoi(v);
        else if (!strcmp(argv[i], "-b"))
            batch = atoi(v);
        else if (!strcmp(argv[i], "-s"))
            size = atoi(v);
        else if (!strcmp(argv[i], "-t"))
            threads = atoi(v);
        else if (!strcmp(argv[i], "-r"))
            repeats = atoi(v);
        else if (!strcmp(argv[i], "-c"))
            algo_s = v;
        else if (!strcmp(argv[i], "-p"))
            prec = v;
        else
            return usage();
    }
    const int cifar = !strcmp(stem_s, "cifar");
    if ((!cifar && strcmp(stem_s, "imagenet")) || width < 1 || in_ch < 1 || classes < 1 || batch < 1 ||
        size < 1 || threads < 1 || repeats < 1 || (strcmp(prec, "fp32") && strcmp(prec, "bf16")))
        return usage();
    int forced = -1;
    if (strcmp(algo_s, "auto") && rn_conv_algo_parse(algo_s, &forced) != RN_OK) {
        fprintf(stderr, "profile_train: %s\n", rn_last_error());
        return 2;
    }
    rn_set_threads(threads);
    const rn_kernels *k = rn_kernels_or_default(NULL);
    if (!strcmp(prec, "bf16") && !(k = rn_kernels_bf16(k))) {
        fprintf(stderr, "profile_train: kernels %s have no bf16 products\n", rn_kernels_or_default(NULL)->name);
        return 2;
    }

    rn_model *m = NULL;
    rn_backprop *bp = NULL;
    float *x = NULL, *grads = NULL;
    int32_t *labels = NULL;
    double *times = NULL, *tmp = NULL, *pass = NULL;
    int status = 1;
    if (rn_model_create_width(arch, in_ch, classes, cifar ? RN_STEM_CIFAR : RN_STEM_IMAGENET, width,
                              &m) != RN_OK ||
        rn_model_init(m, "default", 1) != RN_OK || rn_backprop_create(m, k, forced, &bp) != RN_OK) {
        fprintf(stderr, "profile_train: %s\n", rn_last_error());
        goto done;
    }
    const size_t in = (size_t)batch * in_ch * size * size;
    x = malloc(in * sizeof *x);
    labels = malloc((size_t)batch * sizeof *labels);
    grads = calloc(m->n_params, sizeof *grads);
    if (!x || !labels || !grads)
        goto nomem;
    for (size_t i = 0; i < in; i++)
        x[i] = (float)(i * 7919 % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < batch; i++)
        labels[i] = i % classes;
    for (int w = 0; w < 2; w++) {
        float loss;
        int correct;
        if (rn_backprop_forward(bp, x, labels, NULL, 1.0f, batch, size, size, 0.0f, &loss, &correct) != RN_OK ||
            rn_backprop_backward(bp, grads, NULL, NULL) != RN_OK) {
            fprintf(stderr, "profile_train: %s\n", rn_last_error());
            goto done;
        }
    }

    rn_graph *g = NULL;
    if (rn_graph_build(m, size, size, &g) != RN_OK) {
        fprintf(stderr, "profile_train: %s\n", rn_last_error());
        goto done;
    }
    const int N = g->n_nodes;
    const size_t per_pass = (size_t)(N + 2) * RN_BP_PARTS;
    times = calloc((size_t)repeats * per_pass, sizeof *times);
    tmp = malloc((size_t)repeats * sizeof *tmp);
    pass = malloc((size_t)repeats * sizeof *pass);
    if (!times || !tmp || !pass) {
        rn_graph_free(g);
        goto nomem;
    }
    stamps st = {0};
    rn_backprop_set_stamp(bp, stamp, &st);
    for (int r = 0; r < repeats; r++) {
        float loss;
        int correct;
        st.at = times + (size_t)r * per_pass;
        const double t0 = dev_now();
        st.last = t0;
        if (rn_backprop_forward(bp, x, labels, NULL, 1.0f, batch, size, size, 0.0f, &loss, &correct) != RN_OK ||
            rn_backprop_backward(bp, grads, NULL, NULL) != RN_OK) {
            fprintf(stderr, "profile_train: %s\n", rn_last_error());
            rn_graph_free(g);
            goto done;
        }
        pass[r] = dev_now() - t0;
    }
    rn_backprop_set_stamp(bp, NULL, NULL);
    const double total = dev_median(pass, repeats, 1, tmp) * 1e3;

    printf("%s (%s stem, width %d, %d -> %d), batch %d, %dx%d, %d threads, kernels %s, "
           "forward + backward, median of %d: %.2f ms\n",
           arch, stem_s, width, in_ch, classes, batch, size, size, threads,
           k->name, repeats, total);
    printf("node  layer                        algorithm    prep    conv    norm   normb  wgrad   "
           "dgrad   total | GFLOP/s conv wgrad dgrad\n");
    double part_sum[RN_BP_PARTS] = {0}, by_algo[RN_CONV_ALGO_COUNT] = {0};
    for (int i = -1; i <= N; i++) {
        double ms[RN_BP_PARTS], node_ms = 0.0;
        for (int p = 0; p < RN_BP_PARTS; p++) {
            ms[p] = dev_median(times + (size_t)(i + 1) * RN_BP_PARTS + p, repeats, per_pass, tmp) * 1e3;
            part_sum[p] += ms[p];
            node_ms += ms[p];
        }
        if (i < 0 || i == N || g->nodes[i].op != RN_NODE_CONV) {
            static const char *const other_name[] = {"conv", "max-pool", "average pool", "classifier"};
            const char *what = i < 0 ? "input layout" : i == N ? "loss" : other_name[g->nodes[i].op];
            printf("%4d  %-28s %-10s %55.2f\n", i, what, "-", node_ms);
            continue;
        }
        const rn_node *nd = &g->nodes[i];
        const rn_conv_shape cs = rn_node_conv_shape(nd, batch);
        const double gflop = 2.0 * cs.n * cs.ho * cs.wo * cs.cout * (double)(cs.cin / cs.groups) *
                             cs.kh * cs.kw / 1e9;
        const int a = rn_backprop_conv_algo(bp, i);
        if (a >= 0)
            by_algo[a] += ms[RN_BP_PREPARE] + ms[RN_BP_CONV];
        char layer[64];
        snprintf(layer, sizeof layer, "%dx%d/%d %d->%d @%d%s", cs.kh, cs.kw, cs.stride, cs.cin, cs.cout,
                 cs.h, nd->res >= 0 ? " +res" : "");
        const double fwd = ms[RN_BP_PREPARE] + ms[RN_BP_CONV];
        printf("%4d  %-28s %-10s %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f | %12.1f %5.1f %5.1f\n", i,
               layer, a >= 0 ? rn_conv_algo_get(a)->name : "-", ms[RN_BP_PREPARE], ms[RN_BP_CONV],
               ms[RN_BP_NORM], ms[RN_BP_NORM_BACK], ms[RN_BP_WEIGHT_GRAD], ms[RN_BP_DATA_GRAD],
               node_ms, gflop * 1e3 / fwd, gflop * 1e3 / ms[RN_BP_WEIGHT_GRAD],
               ms[RN_BP_DATA_GRAD] > 0.0 ? gflop * 1e3 / ms[RN_BP_DATA_GRAD] : 0.0);
    }
    static const char *const part_name[RN_BP_PARTS] = {
        "weights made", "forward conv", "BatchNorm forward", "other (pools, classifier, loss, layout)",
        "ReLU/BatchNorm backward", "weight gradients", "data gradients"};
    printf("totals (sums of the medians; the step's median is %.2f ms):\n", total);
    for (int p = 0; p < RN_BP_PARTS; p++)
        printf("  %-40s %8.2f ms  %5.1f%%\n", part_name[p], part_sum[p], 100.0 * part_sum[p] / total);
    printf("forward convolutions by algorithm (weights made included):");
    for (int a = 0; a < RN_CONV_ALGO_COUNT; a++)
        if (by_algo[a] > 0.0)
            printf(" %s %.2f ms", rn_conv_algo_get(a)->name, by_algo[a]);
    printf("\n");
    rn_graph_free(g);
    status = 0;
    goto done;
nomem:
    fprintf(stderr, "profile_train: out of memory\n");
done:
    free(x), free(labels), free(grads), free(times), free(tmp), free(pass);
    rn_backprop_free(bp);
    rn_model_free(m);
    return status;
}
