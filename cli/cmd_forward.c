/* cmd_forward.c - `resnet forward`: weights + input .npy -> logits .npy (and the features). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "core/status.h"
#include "data/dataset.h"
#include "io/npy.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"arch", ARG_STRING, "auto", "architecture; auto: from the file's metadata or tensor names", 0, 0},
    {"weights", ARG_STRING, NULL, "weights: safetensors or PyTorch .pth with PyTorch state_dict names, or an ONNX ResNet", 0, 0},
    {"input", ARG_STRING, NULL, ".npy float32 input of shape (N, C, H, W)", 0, 0},
    {"output", ARG_STRING, "none", ".npy file to write the (N, num_classes) float32 logits to; missing folders are created; none: no logits (then --features is needed)", 0, 0},
    {"features", ARG_STRING, "none", ".npy file to write each image's (N, D) float32 features to, from the same pass: what the classifier reads, the global average pool of the last stage (D 512 for resnet18/34, 2048 for resnet50 and deeper; torchvision's model with fc = nn.Identity()), or with --feature-layer a stage's maps; none: no features", 0, 0},
    CLI_FEATURE_LAYER_SPEC,
    {"mode", ARG_STRING, "eval", "eval: BatchNorm uses running statistics; train: batch statistics", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    CLI_CONV_ALGO_SPEC,
    CLI_PRECISION_SPEC,
    {"print", ARG_FLAG, NULL, "also print each image's top class (by name when the checkpoint has them) and logit", 0, 0},
    {"true-labels", ARG_STRING, "none", "with --print (only): a text file of the images' labels (class indices, "
     "whitespace-separated), to print each one beside the prediction and count the right ones; read before "
     "anything is written", 0, 0},
};

/* Reads n whitespace-separated class indices in 0..k-1 from path into labels;
 * returns 0 after an error message. */
static int read_true_labels(const char *path, int n, int k, int *labels) {
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("forward", "%s: cannot open the labels", path);
        return 0;
    }
    /* each whitespace-separated word a whole integer in 0..k-1: "2.5" or "abc" is refused, not
     * read as far as it goes */
    int got = 0, bad = 0;
    char word[64];
    while (fscanf(f, "%63s", word) == 1) {
        char *end = NULL;
        errno = 0;
        long v = strtol(word, &end, 10);
        if (got == n || *end != '\0' || end == word || errno || v < 0 || v >= k) {
            bad = 1;
            break;
        }
        labels[got++] = (int)v;
    }
    fclose(f);
    if (bad || got != n) {
        if (bad && got < n)
            cli_error("forward", "%s: label %d is '%s': expected %d labels in 0..%d, one per image", path,
                      got + 1, word, n, k - 1);
        else
            cli_error("forward", "%s: expected %d labels in 0..%d, one per image, found %s", path, n,
                      k - 1, bad ? "more" : "fewer");
        return 0;
    }
    return 1;
}

/* Prints each image's top class, by name if the checkpoint has names, and
 * with truth (may be NULL) the label and a count of right answers. */
static void print_top(const float *y, int n, int k, char **names, const int *truth) {
    int right = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (y[(size_t)i * k + j] > y[(size_t)i * k + best])
                best = j;
        if (names)
            printf("image %d: %-12s (class %d, logit %.4f)", i, names[best], best, y[(size_t)i * k + best]);
        else
            printf("image %d: class %d (logit %.4f)", i, best, y[(size_t)i * k + best]);
        if (truth) {
            right += truth[i] == best;
            if (names)
                printf("  label %s: %s", names[truth[i]], truth[i] == best ? "right" : "wrong");
            else
                printf("  label %d: %s", truth[i], truth[i] == best ? "right" : "wrong");
        }
        printf("\n");
    }
    if (truth)
        printf("%d of %d right\n", right, n);
}

int cmd_forward(int argc, char **argv) {
    arg_table t = {"forward", "Run a forward pass and write the logits, the features, or both.", SPECS,
                   sizeof SPECS / sizeof SPECS[0]};
    int r = args_parse(&t, argc, argv);
    if (r)
        return r > 0 ? 0 : EXIT_USAGE;
    int threads;
    if (!args_int(&t, "threads", 0, 1024, &threads))
        return EXIT_USAGE;
    int mode_i = cli_mode(&t);
    if (mode_i < 0)
        return EXIT_USAGE;
    rn_mode mode = (rn_mode)mode_i;
    const int print = args_flag(&t, "print");
    const char *truth_path = args_str(&t, "true-labels");
    if (strcmp(truth_path, "none") != 0 && !print) {
        cli_error("forward", "--true-labels needs --print (it prints each label beside the prediction)");
        return EXIT_USAGE;
    }
    const char *out = args_str(&t, "output"), *fout = args_str(&t, "features");
    const int want_logits = strcmp(out, "none") != 0, want_features = strcmp(fout, "none") != 0;
    if (!want_logits && !want_features) {
        cli_error("forward", "nothing to write: give --output (the logits), --features, or both");
        return EXIT_USAGE;
    }
    if (!cli_arch_ok(&t, 1) || !cli_conv_algo_ok(&t) || !cli_precision_ok(&t, 0) ||
        !cli_feature_layer_ok(&t))
        return EXIT_USAGE;
    /* each file written: not a folder, not one of the files read, not the other output */
    const char *outs[2][2] = {{"--output", want_logits ? out : NULL},
                              {"--features", want_features ? fout : NULL}};
    for (int o = 0; o < 2; o++) {
        const char *what = outs[o][0], *path = outs[o][1];
        if (path &&
            (!cli_path_ok(&t, what + 2) || !cli_output_file_ok("forward", what, path) ||
             !cli_output_not_input("forward", what, path, "--input", args_str(&t, "input")) ||
             !cli_output_not_input("forward", what, path, "--weights", args_str(&t, "weights")) ||
             (strcmp(truth_path, "none") != 0 &&
              !cli_output_not_input("forward", what, path, "--true-labels", truth_path))))
            return EXIT_USAGE;
    }
    if (want_logits && want_features && !cli_output_not_input("forward", "--features", fout, "--output", out))
        return EXIT_USAGE;
    const char *arch = args_str(&t, "arch");
    if (strcmp(arch, "auto") == 0)
        arch = NULL;
    rn_set_threads(threads);

    rn_model *m = NULL;
    rn_session *sess = NULL;
    float *x = NULL, *y = NULL, *feats = NULL;
    char **names = NULL;
    int *truth = NULL;
    int ndim = 0, status = EXIT_RUNTIME;
    int64_t shape[RN_NPY_MAX_DIMS];
    /* The input first: it is small, and a bad one is reported without loading the weights. */
    if (rn_npy_read(args_str(&t, "input"), &x, &ndim, shape) != RN_OK ||
        rn_model_load(args_str(&t, "weights"), arch, &m) != RN_OK) {
        cli_error("forward", "%s", rn_last_error());
        goto done;
    }
    if (ndim != 4 || shape[1] != rn_model_in_channels(m) || shape[0] < 1 || shape[2] < 1 ||
        shape[3] < 1 || shape[0] > 1000000 || shape[2] > 65536 || shape[3] > 65536) {
        char got[96];
        rn_shape_str(got, sizeof got, ndim, shape);
        cli_error("forward", "%s has shape %s: expected an input of shape (N, %d, H, W), N, H and W at "
                  "least 1", args_str(&t, "input"), got, rn_model_in_channels(m));
        goto done;
    }
    int n = (int)shape[0], h = (int)shape[2], w = (int)shape[3], k = rn_model_num_classes(m);
    const int stage = want_features ? cli_feature_layer(&t, m) : RN_STAGE_POOL;
    if (stage < 0) {
        status = EXIT_USAGE;
        goto done;
    }
    cli_features fp;
    if (!cli_features_shape("forward", m, stage, h, w, &fp))
        goto done;
    /* the logits are computed for --print too, without --output */
    y = malloc((size_t)n * (size_t)k * sizeof *y);
    feats = want_features ? malloc((size_t)n * fp.per_image * sizeof *feats) : NULL;
    if (!y || (want_features && !feats)) {
        cli_error("forward", "out of memory");
        goto done;
    }
    /* what --print needs is read before anything is written: a bad labels file writes nothing */
    if (print && rn_checkpoint_class_names(args_str(&t, "weights"), k, &names) != RN_OK) {
        cli_error("forward", "%s", rn_last_error());
        goto done;
    }
    if (print && strcmp(truth_path, "none") != 0) {
        truth = malloc((size_t)n * sizeof *truth);
        if (!truth) {
            cli_error("forward", "out of memory");
            goto done;
        }
        if (!read_true_labels(truth_path, n, k, truth))
            goto done;
    }
    int64_t out_shape[2] = {n, k}, feat_shape[4] = {n, fp.shape[0], fp.shape[1], fp.shape[2]};
    rn_session_config scfg;
    cli_session_config(&t, &scfg);
    /* the flags' values are checked above: what the session refuses now is the file's (an int8
     * model at --precision fp32, a float32 one at int8), a failure at run time as in eval */
    /* a stage's maps alone take only the pass up to the stage */
    const int logits_wanted = want_logits || print || stage == RN_STAGE_POOL;
    if (rn_session_create(m, &scfg, &sess) != RN_OK ||
        cli_features_forward(sess, &fp, x, n, h, w, mode, feats, logits_wanted ? y : NULL) != RN_OK) {
        cli_error("forward", "%s: %s", args_str(&t, "weights"), rn_last_error());
        goto done;
    }
    /* both files written whole before either is renamed into place: a failed write leaves
     * neither (only a failed rename could leave the first) */
    rn_npy_writer wy = {0}, wf = {0};
    rn_status st = RN_OK;
    if (want_logits) {
        st = cli_make_output_dirs("forward", out);
        if (st == RN_OK)
            st = rn_npy_writer_open(&wy, out, RN_NPY_F32, 2, out_shape);
        if (st == RN_OK)
            st = rn_npy_writer_f32(&wy, y, (size_t)n * (size_t)k);
    }
    if (st == RN_OK && want_features) {
        st = cli_make_output_dirs("forward", fout);
        if (st == RN_OK)
            st = rn_npy_writer_open(&wf, fout, RN_NPY_F32, fp.ndim, feat_shape);
        if (st == RN_OK)
            st = rn_npy_writer_f32(&wf, feats, (size_t)n * fp.per_image);
    }
    if (st == RN_OK && want_logits)
        st = rn_npy_writer_commit(&wy);
    if (st == RN_OK && want_features)
        st = rn_npy_writer_commit(&wf);
    rn_npy_writer_discard(&wy);
    rn_npy_writer_discard(&wf);
    if (st != RN_OK) {
        status = cli_write_failed("forward", st);
        goto done;
    }
    if (print)
        print_top(y, n, k, names, truth);
    status = 0;
done:
    free(x);
    free(y);
    free(feats);
    free(truth);
    free(names);
    rn_session_free(sess);
    rn_model_free(m);
    return status;
}
