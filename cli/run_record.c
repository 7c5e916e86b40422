/* run_record.c - the run record at the top of a training log (see run_record.h). */
#include "run_record.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/json.h"

#define PUT(b, lit) json_buf_put((b), "" lit, sizeof(lit) - 1)

void cli_cpu_name(char *out, size_t cap) {
    static const char *const KEYS[] = {"model name", "Hardware", "cpu model"};
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0] && !found; k++) {
            size_t n = strlen(KEYS[k]);
            char *colon = strchr(line, ':');
            if (strncmp(line, KEYS[k], n) != 0 || !colon)
                continue;
            char *v = colon + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\r\n")] = '\0';
            if (*v) {
                snprintf(out, cap, "%s", v);
                found = 1;
            }
        }
    }
    fclose(f);
}

/* Appends arg to b, quoted for a POSIX shell when it needs to be. */
static void shell_word(json_buf *b, const char *arg) {
    if (*arg && strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "-_./:,=+@%") == strlen(arg)) {
        json_buf_put(b, arg, strlen(arg));
        return;
    }
    PUT(b, "'");
    for (const char *p = arg; *p; p++) {
        if (*p == '\'')
            PUT(b, "'\\''");
        else
            json_buf_put(b, p, 1);
    }
    PUT(b, "'");
}

/* Appends s as a JSON string, with bytes that are not valid UTF-8 as '?'. */
static void json_text(json_buf *b, const char *s) {
    if (json_utf8_valid(s, strlen(s))) {
        json_buf_string(b, s);
        return;
    }
    char clean[1024];
    json_printable(clean, sizeof clean, s);
    json_buf_string(b, clean);
}

int cli_write_run_record(FILE *f, const arg_table *t, int argc, char **argv, const run_facts *r) {
    json_buf b = {0};
    char text[256];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    json_buf_printf(&b, "{\"run\": {\"version\": \"%s\", \"compiler\": ", RN_VERSION);
#if defined(__clang__)
    json_buf_printf(&b, "\"clang %d.%d.%d\"", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    json_buf_printf(&b, "\"gcc %d.%d.%d\"", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    PUT(&b, "null");
#endif
    json_buf_printf(&b, ", \"started\": \"%s\", \"command\": ", text);
    json_buf cmd = {0};
    PUT(&cmd, "resnet");
    for (int i = 0; i < argc; i++) {
        PUT(&cmd, " ");
        shell_word(&cmd, argv[i]);
    }
    json_text(&b, cmd.failed ? "" : cmd.data);
    json_buf_free(&cmd);

    PUT(&b, ", \"flags\": {");
    int first = 1;
    /* the flags that describe the model, as the model is (a resumed run's, or one --init loads,
     * is the file's: the flags' defaults had been recorded, --width 64 for a width 8 model) */
    char model_flag[32];
    const char *const model_flags[] = {"arch", "stem", "width", "num-classes"};
    for (int i = 0; i < t->count; i++) {
        const arg_spec *s = &t->specs[i];
        if (s->kind == ARG_POSITIONAL)
            continue;
        json_buf_printf(&b, "%s\"%s\": ", first ? "" : ", ", s->name);
        int k = 0;
        while (k < 4 && strcmp(s->name, model_flags[k]) != 0)
            k++;
        if (k < 4 && r->model) {
            if (k == 0)
                snprintf(model_flag, sizeof model_flag, "%s", rn_model_arch(r->model));
            else if (k == 1)
                snprintf(model_flag, sizeof model_flag, "%s",
                         rn_model_stem(r->model) == RN_STEM_CIFAR ? "cifar" : "imagenet");
            else
                snprintf(model_flag, sizeof model_flag, "%d",
                         k == 2 ? rn_model_width(r->model) : rn_model_num_classes(r->model));
            json_text(&b, model_flag);
        } else if (s->kind == ARG_FLAG) /* on from the command line, a recipe or a resumed plan */
            json_buf_put(&b, args_flag(t, s->name) ? "true" : "false", args_flag(t, s->name) ? 4u : 5u);
        else
            json_text(&b, s->value ? s->value : "");
        first = 0;
    }
    PUT(&b, "}, \"given\": [");
    first = 1;
    for (int i = 0; i < t->count; i++) {
        if (t->specs[i].kind != ARG_POSITIONAL && t->specs[i].set) {
            json_buf_printf(&b, "%s\"%s\"", first ? "" : ", ", t->specs[i].name);
            first = 0;
        }
    }
    PUT(&b, "]");

    json_buf_printf(&b, ", \"arch\": \"%s\", \"stem\": \"%s\", \"width\": %d, \"params\": %lld, "
                    "\"flops_per_image\": %.6g",
                    rn_model_arch(r->model), rn_model_stem(r->model) == RN_STEM_CIFAR ? "cifar" : "imagenet",
                    rn_model_width(r->model),
                    (long long)rn_model_param_count(r->model),
                    rn_model_flops(r->model, r->image_size, r->image_size));
    PUT(&b, ", \"dataset\": ");
    json_text(&b, r->dataset_kind);
    PUT(&b, ", \"data\": ");
    json_text(&b, r->data_dir);
    json_buf_printf(&b, ", \"train_images\": %d, \"test_images\": %d, \"channels\": %d, \"image_size\": %d, "
                    "\"num_classes\": %d, \"normalize\": ",
                    r->train->count, r->test->count, r->train->channels, r->image_size,
                    rn_model_num_classes(r->model));
    json_text(&b, r->normalize);
    json_buf_printf(&b, ", \"batch_size\": %d, \"steps_per_epoch\": %d, \"epochs\": %d, \"seed\": %d",
                    r->batch_size, r->steps_per_epoch, r->epochs, r->seed);
    cli_cpu_name(text, sizeof text);
    PUT(&b, ", \"cpu\": ");
    json_text(&b, text);
    json_buf_printf(&b, ", \"cores\": %ld, \"threads\": %d, \"resumed_from\": ", sysconf(_SC_NPROCESSORS_ONLN),
                    rn_get_threads());
    if (r->resumed_from)
        json_text(&b, r->resumed_from);
    else
        PUT(&b, "null");
    PUT(&b, "}}\n");
    int ok = !b.failed && fwrite(b.data, 1, b.len, f) == b.len && fflush(f) == 0;
    json_buf_free(&b);
    return ok;
}
