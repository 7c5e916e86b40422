/* train_recipe.c - the named training recipes (train_recipe.h). */
#include "train_recipe.h"

#include <string.h>

typedef struct recipe_flag {
    const char *flag, *value;   /* RECIPE_ON for a flag without a value */
} recipe_flag;

static const char RECIPE_ON[] = "1";   /* what args_flag reads as on */

#define RECIPE_FLAGS 32         /* flags of one recipe, its base's apart */

typedef struct recipe {
    const char *name, *summary;
    const char *base;           /* another recipe whose flags this one takes, or NULL */
    recipe_flag flags[RECIPE_FLAGS]; /* ends at the first NULL flag; over the base's */
} recipe;

/* ---- the recipes ------------------------------------------------------------------------------ */

static const recipe RECIPES[] = {
    {"fmnist-fast",
     "aims at >= 0.94 test top-1 on Fashion-MNIST (60k/10k, 28x28) within 900 s of wall time on 2 cores: "
     "a ResNet-18 with the CIFAR stem (28x28 maps in its first stage) at a quarter of the width, "
     "Nesterov SGD with a one-cycle learning rate, weight decay, label smoothing 0.1, flips, 6 epochs, "
     "tested with flips after epochs 3 and 6 (0.9429 in 863 s on an AVX2 Zen 3; without label "
     "smoothing and before its narrow layers ran the direct convolution, 0.9423 in 809 s on an "
     "AVX-512 Zen 4)",
     NULL,
     {{"dataset", "fashion-mnist"}, {"arch", "resnet18"}, {"stem", "cifar"}, {"width", "16"},
      {"epochs", "6"}, {"eval-every", "3"}, {"batch-size", "128"}, {"optimizer", "sgd"}, {"lr", "0.1"}, {"momentum", "0.9"},
      {"nesterov", RECIPE_ON}, {"weight-decay", "5e-4"}, {"schedule", "onecycle"},
      {"label-smoothing", "0.1"}, {"augment", "flip"}, {"tta", "flip"}, {"seed", "0"}, {NULL, NULL}}},
    {"fmnist-fast-bf16",
     "fmnist-fast in bf16 mixed precision (--precision bf16: needs AVX-512 BF16 or AMX): "
     "0.9420 in 509 s on a Zen 4, against fp32's 0.9423 in 809 s (both without label smoothing)",
     "fmnist-fast",
     {{"precision", "bf16"}, {NULL, NULL}}},
    {"torchvision-resnet50-v2",
     "the recipe of torchvision's ResNet-50 IMAGENET1K_V2 weights, its classification reference's flags "
     "(torchrun --nproc_per_node=8 train.py --model resnet50 --batch-size 128 --lr 0.5 --lr-scheduler "
     "cosineannealinglr --lr-warmup-epochs 5 --lr-warmup-method linear --auto-augment ta_wide --epochs 600 "
     "--random-erase 0.1 --weight-decay 0.00002 --norm-weight-decay 0.0 --label-smoothing 0.1 --mixup-alpha 0.2 "
     "--cutmix-alpha 1.0 --train-crop-size 176 --model-ema --val-resize-size 232 --ra-sampler --ra-reps 4) in "
     "this tool's terms: the global batch of 8 x 128, the average's decay as its reference derives it from "
     "--model-ema-decay 0.99998 and --model-ema-steps 32 for 600 epochs of that batch (other --epochs or "
     "--batch-size keep it; torchvision derives it again); for an ImageNet folder (DIR/train, DIR/val) and a "
     "cluster (mpirun): 600 epochs of ImageNet-1k",
     NULL,
     {{"dataset", "folder"}, {"arch", "resnet50"}, {"epochs", "600"}, {"batch-size", "1024"},
      {"optimizer", "sgd"}, {"lr", "0.5"}, {"momentum", "0.9"}, {"weight-decay", "2e-5"},
      {"norm-weight-decay", "0"}, {"schedule", "cosine"}, {"schedule-by", "epoch"}, {"warmup-epochs", "5"},
      {"warmup-method", "linear"}, {"warmup-factor", "0.01"}, {"label-smoothing", "0.1"},
      {"auto-augment", "ta_wide"}, {"aa-interpolation", "bilinear"}, {"random-erase", "0.1"},
      {"mixup-alpha", "0.2"}, {"cutmix-alpha", "1.0"}, {"image-size", "176"}, {"val-image-size", "224"},
      {"val-resize-size", "232"}, {"ema", "0.9989077333333323"}, {"ema-every", "32"},
      {"ra-sampler", RECIPE_ON}, {"ra-reps", "4"}, {NULL, NULL}}},
};
#define N_RECIPES ((int)(sizeof RECIPES / sizeof RECIPES[0]))

static const recipe *find(const char *name) {
    for (int i = 0; i < N_RECIPES; i++)
        if (strcmp(RECIPES[i].name, name) == 0)
            return &RECIPES[i];
    return NULL;
}

/* r's flags into out (room for 2 * RECIPE_FLAGS): its base's, but those r sets itself, then r's
 * own; the count. */
static int flags_of(const recipe *r, const recipe_flag **out) {
    int n = 0;
    const recipe *b = r->base ? find(r->base) : NULL;
    for (const recipe_flag *f = b ? b->flags : NULL; f && f->flag; f++) {
        int own = 0;
        for (const recipe_flag *g = r->flags; g->flag && !own; g++)
            own = strcmp(g->flag, f->flag) == 0;
        if (!own)
            out[n++] = f;
    }
    for (const recipe_flag *f = r->flags; f->flag; f++)
        out[n++] = f;
    return n;
}

/* ---- applying and describing ------------------------------------------------------------------ */

int recipe_apply(arg_table *t) {
    const char *name = args_str(t, "recipe");
    if (strcmp(name, "none") == 0)
        return 1;
    const recipe *r = find(name);
    if (!r) {
        char known[256] = "";
        for (int i = 0; i < N_RECIPES; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", RECIPES[i].name);
        cli_error(t->command, "unknown --recipe '%s' (expected none, list or one of: %s)", name, known);
        return 0;
    }
    const recipe_flag *fl[2 * RECIPE_FLAGS];
    const int n = flags_of(r, fl);
    for (int i = 0; i < n; i++)
        args_default_to(t, fl[i]->flag, fl[i]->value);
    return 1;
}

void recipe_describe(const arg_table *t, const train_plan *plan, char *buf, size_t cap) {
    static const char *const from_checkpoint[] = {"arch", "stem", "width", "seed"};
    const recipe *r = find(args_str(t, "recipe"));
    size_t used = 0;
    buf[0] = '\0';
    const recipe_flag *fl[2 * RECIPE_FLAGS];
    const int n = r ? flags_of(r, fl) : 0;
    for (int i = 0; i < n && used < cap; i++) {
        const recipe_flag *f = fl[i];
        const arg_spec *s = args_spec(t, f->flag);
        if (!s || s->set)
            continue;
        /* resuming, the plan's value (a resumed run had listed the recipe's --precision bf16 and
         * --schedule onecycle while it ran on in fp32 at a constant rate) */
        int theirs = plan && plan_value(plan, f->flag) != NULL;
        for (size_t k = 0; plan && k < sizeof from_checkpoint / sizeof from_checkpoint[0]; k++)
            theirs |= strcmp(f->flag, from_checkpoint[k]) == 0;
        if (theirs)
            continue;
        if (s->kind == ARG_FLAG)
            used += (size_t)snprintf(buf + used, cap - used, " --%s", f->flag);
        else
            used += (size_t)snprintf(buf + used, cap - used, " --%s %s", f->flag, f->value);
    }
}

int recipe_list_asked(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--recipe=list") == 0 || (strcmp(argv[i], "--recipe") == 0 && i + 1 < argc &&
                                                     strcmp(argv[i + 1], "list") == 0))
            return 1;
    }
    return 0;
}

void recipe_list(FILE *out) {
    for (int i = 0; i < N_RECIPES; i++) {
        fprintf(out, "%s: %s\n ", RECIPES[i].name, RECIPES[i].summary);
        const recipe_flag *fl[2 * RECIPE_FLAGS];
        const int n = flags_of(&RECIPES[i], fl);
        for (int j = 0; j < n; j++) {
            const recipe_flag *f = fl[j];
            if (f->value == RECIPE_ON)
                fprintf(out, " --%s", f->flag);
            else
                fprintf(out, " --%s %s", f->flag, f->value);
        }
        fputc('\n', out);
    }
}
