/*
 * cmd_bench.c - `resnet bench`: inference (or training-step) throughput.
 * Warm-up batches, then timed repeats; reports the median, min and max
 * time per batch, images/s and GFLOP/s (from the model's MAC count), the
 * kernels' instruction set, the convolution algorithms that ran, the
 * engine's memory and the process's peak resident set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "args.h"
#include "fit.h"
#include "commands.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"arch", ARG_STRING, "resnet18", "architecture", 0, 0},
    {"weights", ARG_STRING, "none", "weights to load (safetensors, PyTorch .pth or ONNX); none: default initialisation", 0, 0},
    {"stem", ARG_STRING, "imagenet", "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no max-pool); "
     "not with --weights: the file's", 0, 0},
    {"width", ARG_INT, "64", CLI_WIDTH_TEXT " (not with --weights: the file's)", 0, 0},
    {"in-channels", ARG_INT, "3", "input channels (not with --weights: the file's)", 0, 0},
    {"num-classes", ARG_INT, "1000", "output classes (not with --weights: the file's)", 0, 0},
    {"batch-size", ARG_INT, "32", "images per batch", 0, 0},
    {"image-size", ARG_INT, "224", "input height and width", 0, 0},
    {"mode", ARG_STRING, "eval", "eval or train (BatchNorm with batch statistics)", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    {"warmup", ARG_INT, "2", "untimed batches first", 0, 0},
    {"repeats", ARG_INT, "10", "timed batches", 0, 0},
    CLI_CONV_ALGO_SPEC,
    {"precision", ARG_STRING, "auto", CLI_PRECISION_TEXT "; with --train: fp32 or bf16, as train --precision",
     0, 0},
    {"train", ARG_FLAG, NULL, "time a training step (forward, backward, SGD update) instead of inference", 0, 0},
    {"json", ARG_FLAG, NULL, "print one JSON object instead of text", 0, 0},
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The process's peak resident set, in MB (Linux reports KB). */
static double peak_rss_mb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;
}

/* The process's memory now in transparent huge pages, in MB (Linux's smaps_rollup); -1 where
 * unknown. */
static double huge_pages_mb(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f)
        return -1.0;
    char line[256];
    double kb = -1.0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %lf kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1.0 : kb / 1024.0;
}

/* x[0..n) uniform in [-1, 1) from a seeded LCG: the same input every run. */
static void fill_uniform(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cmd_bench(int argc, char **argv) {
    arg_table t = {"bench", "Time the forward pass (or, with --train, a training step) on random input.", SPECS,
                   sizeof SPECS / sizeof SPECS[0]};
    int r = args_parse(&t, argc, argv);
    if (r)
        return r > 0 ? 0 : EXIT_USAGE;
    int in_ch, classes, batch, size, threads, warmup, repeats;
    if (!args_int(&t, "in-channels", 1, 4096, &in_ch) || !args_int(&t, "num-classes", 1, 1000000, &classes) ||
        !args_int(&t, "batch-size", 1, 65536, &batch) || !args_int(&t, "image-size", 1, 16384, &size) ||
        !args_int(&t, "threads", 0, 1024, &threads) || !args_int(&t, "warmup", 0, 100000, &warmup) ||
        !args_int(&t, "repeats", 1, 100000, &repeats))
        return EXIT_USAGE;
    int mode_i = cli_mode(&t);
    if (mode_i < 0)
        return EXIT_USAGE;
    rn_mode mode = (rn_mode)mode_i;
    const char *mode_s = args_str(&t, "mode");
    if (args_flag(&t, "train") && args_spec(&t, "mode")->set) {
        cli_error("bench", "--mode is inference's (BatchNorm with running or batch statistics); --train "
                  "times a training step, always in train mode: drop --mode");
        return EXIT_USAGE;
    }
    rn_set_threads(threads);

    rn_model *m = NULL;
    const char *weights = args_str(&t, "weights");
    int stem = cli_stem(&t), width = stem < 0 ? -1 : cli_width(&t);
    if (stem < 0 || width < 0 || !cli_arch_ok(&t, 0) || !cli_conv_algo_ok(&t) || !cli_precision_ok(&t, 0) ||
        !cli_new_model_flags_ok(&t))
        return EXIT_USAGE;
    rn_status st = strcmp(weights, "none") == 0
                       ? rn_model_create_width(args_str(&t, "arch"), in_ch, classes, (rn_stem)stem, width, &m)
                       : rn_model_load(weights, t.specs[0].set ? args_str(&t, "arch") : NULL, &m);
    if (st != RN_OK) {
        cli_error("bench", "%s", rn_last_error());
        return st == RN_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
    }
    in_ch = rn_model_in_channels(m);
    const char *prec = args_str(&t, "precision");
    int train = args_flag(&t, "train");
    if (train && strcmp(prec, "auto") != 0 && strcmp(prec, "fp32") != 0 && strcmp(prec, "bf16") != 0) {
        cli_error("bench", "--train runs in fp32 or bf16, not %s", prec);
        rn_model_free(m);
        return EXIT_USAGE;
    }
    if (!train && strcmp(prec, "int8") == 0 && !rn_model_is_quantized(m)) {
        /* random (or float32) weights: quantize them on synthetic calibration input; first
         * that it fits: its float32 passes of one image, beside its 8 images */
        rn_session_config fcfg;
        cli_session_config(&t, &fcfg);
        fcfg.precision = "fp32";
        cli_plan calib = {.command = "bench", .m = m, .scfg = &fcfg, .session = 1, .batch = 1, .h = size, .w = size,
                          .per_image = 8 * (size_t)in_ch * (size_t)size * (size_t)size * sizeof(float),
                          .task = "int8 calibration (float32 passes of one image) of"};
        if (!cli_plan_fits(&calib)) {
            rn_model_free(m);
            return EXIT_RUNTIME;
        }
        rn_model *q = NULL;
        if (rn_quantize_synthetic(m, size, size, &q) != RN_OK) {
            cli_error("bench", "quantizing: %s", rn_last_error());
            rn_model_free(m);
            return EXIT_RUNTIME;
        }
        rn_model_free(m);
        m = q;
        if (!args_flag(&t, "json"))
            fprintf(stderr, "quantized the weights to int8 on synthetic calibration input\n");
    }
    size_t nx = (size_t)batch * (size_t)in_ch * (size_t)size * (size_t)size;
    rn_trainer *tr = NULL;
    rn_session *sess = NULL;
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    cfg.lr = 0.01;
    cfg.momentum = 0.9;
    cfg.conv_algo = args_str(&t, "conv-algo");
    cfg.precision = strcmp(prec, "bf16") == 0 ? "bf16" : "fp32";
    rn_session_config scfg;
    cli_session_config(&t, &scfg);
    cli_plan plan = {.command = "bench", .m = m, .tcfg = train ? &cfg : NULL, .scfg = &scfg, .session = !train,
                     .batch = batch, .h = size, .w = size,
                     .per_image = ((size_t)in_ch * (size_t)size * (size_t)size + (size_t)rn_model_num_classes(m)) *
                                  sizeof(float),
                     .weights = strcmp(weights, "none") ? weights : NULL};
    if (!cli_plan_fits(&plan)) {
        rn_model_free(m);
        return EXIT_RUNTIME;
    }
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    if (train) {
        rn_status cst = rn_trainer_create(m, &cfg, &tr);
        if (cst != RN_OK) {
            cli_error("bench", "%s", rn_last_error());
            rn_model_free(m);
            free(labels);
            return cst == RN_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
        }
    }
    if (!train) {
        /* the flags are checked: what is refused now is the weights' (an int8 file at fp32...) */
        if (rn_session_create(m, &scfg, &sess) != RN_OK) {
            cli_error("bench", "%s", rn_last_error());
            rn_model_free(m);
            free(labels);
            return EXIT_RUNTIME;
        }
    }
    float *x = malloc(nx * sizeof *x);
    float *y = malloc((size_t)batch * (size_t)rn_model_num_classes(m) * sizeof *y);
    double *ms = malloc((size_t)repeats * sizeof *ms);
    int status = EXIT_RUNTIME;
    if (!x || !y || !ms || !labels) {
        cli_error("bench", "out of memory");
        goto done;
    }
    fill_uniform(x, nx, 12345);
    for (int i = 0; i < batch; i++)
        labels[i] = i % rn_model_num_classes(m);
    for (int i = 0; i < warmup + repeats; i++) {
        double t0 = now_ms();
        rn_status st = train ? rn_trainer_step(tr, x, labels, batch, size, size, NULL)
                             : rn_session_forward(sess, x, batch, size, size, mode, y);
        if (st != RN_OK) {
            cli_error("bench", "%s", rn_last_error());
            goto done;
        }
        double dt = now_ms() - t0;
        if (i >= warmup)
            ms[i - warmup] = dt;
        else if (!args_flag(&t, "json"))
            fprintf(stderr, "warm-up %d/%d: %.1f ms\n", i + 1, warmup, dt);
    }
    qsort(ms, (size_t)repeats, sizeof *ms, cmp_double);
    double med = repeats % 2 ? ms[repeats / 2] : 0.5 * (ms[repeats / 2 - 1] + ms[repeats / 2]);
    double ips = batch * 1e3 / med;
    /* a training step: forward + backward (data and weight gradients), about 3 forward passes */
    double flops_per_image = rn_model_flops(m, size, size) * (train ? 3.0 : 1.0);
    double gflops = flops_per_image * batch / (med * 1e6);
    if (train)
        mode_s = "train-step";
    char algos[384] = "";
    if (sess)
        rn_session_algorithms(sess, algos, sizeof algos);
    else
        rn_trainer_algorithms(tr, algos, sizeof algos);
    const char *isa = sess ? rn_session_isa(sess) : rn_trainer_isa(tr);
    const char *kernel = sess ? rn_session_kernel(sess) : rn_trainer_kernel(tr);
    double engine_mb = (double)(sess ? rn_session_bytes(sess) : rn_trainer_bytes(tr)) / 1048576.0;
    double rss = peak_rss_mb(), huge = huge_pages_mb();
    char huge_json[32] = "null", huge_text[64] = "";
    if (huge >= 0) {
        snprintf(huge_json, sizeof huge_json, "%.1f", huge);
        snprintf(huge_text, sizeof huge_text, " (%.1f MB in huge pages)", huge);
    }
    const char *prec_name = sess ? rn_session_precision(sess) : rn_trainer_precision(tr);
    if (args_flag(&t, "json")) {
        printf("{\"arch\": \"%s\", \"mode\": \"%s\", \"batch_size\": %d, \"image_size\": %d, "
               "\"in_channels\": %d, \"num_classes\": %d, \"threads\": %d, \"repeats\": %d, "
               "\"ms_per_batch_median\": %.3f, \"ms_per_batch_min\": %.3f, \"ms_per_batch_max\": %.3f, "
               "\"images_per_second\": %.2f, \"gflops_per_second\": %.2f, \"isa\": \"%s\", \"kernel\": \"%s\", "
               "\"cpu\": \"%s\", \"conv_algorithms\": \"%s\", \"engine_mb\": %.1f, "
               "\"peak_rss_mb\": %.1f, \"huge_pages_mb\": %s, \"precision\": \"%s\"}\n",
               rn_model_arch(m), mode_s, batch, size, in_ch, rn_model_num_classes(m), rn_get_threads(),
               repeats, med, ms[0], ms[repeats - 1], ips, gflops, isa, kernel, rn_cpu_model(), algos,
               engine_mb, rss, huge_json, prec_name);
    } else {
        printf("%s %s, batch %d, %dx%d, %d threads, %d repeats\n", rn_model_arch(m), mode_s, batch, size,
               size, rn_get_threads(), repeats);
        printf("precision: %s\nkernels: %s (%s) on %s\nconvolutions: %s\n", prec_name, isa, kernel,
               rn_cpu_model(), algos);
        printf("ms per batch: median %.2f, min %.2f, max %.2f\n", med, ms[0], ms[repeats - 1]);
        /* effective: the network's multiply-adds as a direct convolution does them, over the time;
         * Winograd's layers do fewer, so this may pass the machine's peak */
        printf("images/s: %.1f\neffective GFLOP/s: %.1f (%.3f GFLOP per image, counted as direct "
               "convolutions; Winograd's layers do fewer)\n", ips, gflops, flops_per_image / 1e9);
        printf("memory: engine %.1f MB, peak resident set %.1f MB%s\n", engine_mb, rss, huge_text);
    }
    status = 0;
done:
    free(x);
    free(y);
    free(ms);
    free(labels);
    rn_trainer_free(tr);
    rn_session_free(sess);
    rn_model_free(m);
    return status;
}
