/* args.c - flag parsing and help for the `resnet` subcommands. */
#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One write per message, so that the lines of processes sharing a terminal
 * (the ranks under mpirun) do not interleave. */
void cli_error(const char *command, const char *fmt, ...) {
    char line[2048];
    int at = snprintf(line, sizeof line, "resnet %s: ", command);
    va_list ap;
    va_start(ap, fmt);
    if (at >= 0 && (size_t)at < sizeof line)
        vsnprintf(line + at, sizeof line - (size_t)at, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

static arg_spec *find(const arg_table *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->specs[i].name, name) == 0)
            return &t->specs[i];
    return NULL;
}

/* The ARG_POSITIONAL entry, or NULL. */
static arg_spec *positional_spec(const arg_table *t) {
    for (int i = 0; i < t->count; i++)
        if (t->specs[i].kind == ARG_POSITIONAL)
            return &t->specs[i];
    return NULL;
}

int args_typo_distance(const char *a, const char *b) {
    /* edit distance (insertions, deletions, substitutions, adjacent swaps) of two names */
    enum { CAP = 40 };
    const size_t la = strlen(a), lb = strlen(b);
    if (la >= CAP || lb >= CAP || (la > lb ? la - lb : lb - la) > 2)
        return -1;
    int d[CAP + 1][CAP + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            best = d[i - 1][j] + 1 < best ? d[i - 1][j] + 1 : best;
            best = d[i][j - 1] + 1 < best ? d[i][j - 1] + 1 : best;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb] <= (la < 5 ? 1 : 2) ? d[la][lb] : -1;
}

/* The name of flag argument a ("--name" or "--name=value") into name[64], cut to fit; returns
 * the '=' or NULL. */
static const char *flag_name(const char *a, char name[64]) {
    const char *eq = strchr(a + 2, '=');
    size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
    if (len >= 64)
        len = 63;
    memcpy(name, a + 2, len);
    name[len] = '\0';
    return eq;
}

/* "--name" (or "--name=...") naming a flag of t, or --help. */
static int names_a_flag(const arg_table *t, const char *a) {
    if (strncmp(a, "--", 2) != 0)
        return 0;
    char name[64];
    flag_name(a, name);
    const arg_spec *s = find(t, name);
    return strcmp(name, "help") == 0 || (s && s->kind != ARG_POSITIONAL);
}

static void (*help_hook)(const arg_table *t, void *ctx);
static void *help_hook_ctx;

void args_set_help_hook(void (*fn)(const arg_table *t, void *ctx), void *ctx) {
    help_hook = fn;
    help_hook_ctx = ctx;
}

const char *args_value_name(const arg_spec *s) {
    return s->kind == ARG_FLAG ? "" : s->kind == ARG_INT ? "N" : "VALUE";
}

void args_default_text(const arg_spec *s, char *buf, size_t cap) {
    if (s->kind == ARG_FLAG)
        snprintf(buf, cap, "default: off");
    else if (s->def)
        snprintf(buf, cap, "default: %s", s->def);
    else
        snprintf(buf, cap, "required");
}

void args_print_help(const arg_table *t) {
    if (help_hook) {
        help_hook(t, help_hook_ctx);
        return;
    }
    const arg_spec *p = positional_spec(t);
    /* positional arguments that may be left out (def not NULL) are shown in brackets */
    printf("usage: resnet %s [flags]%s%s%s\n%s\n\n", t->command, p ? (p->def ? " [" : " ") : "", p ? p->name : "",
           p && p->def ? "]" : "", t->summary);
    if (p)
        printf("arguments:\n  %-26s %s\n\n", p->name, p->help);
    printf("flags:\n");
    for (int i = 0; i < t->count; i++) {
        const arg_spec *s = &t->specs[i];
        if (s->kind == ARG_POSITIONAL)
            continue;
        char left[64], dflt[128];
        snprintf(left, sizeof left, "--%s%s%s", s->name, s->kind == ARG_FLAG ? "" : " ",
                 args_value_name(s));
        args_default_text(s, dflt, sizeof dflt);
        printf("  %-26s %s (%s)\n", left, s->help, dflt);
    }
    printf("  %-26s %s\n", "--help", ARGS_HELP_TEXT);
}

int args_parse(arg_table *t, int argc, char **argv) {
    for (int i = 0; i < t->count; i++) {
        t->specs[i].value = t->specs[i].def;
        t->specs[i].set = 0;
    }
    arg_spec *pos = positional_spec(t);
    int n_pos = 0, only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (pos && (only_positional || a[0] != '-' || a[1] == '\0')) {
            /* Move it to argv[1 + n_pos], shifting the flags seen so far up by one. */
            char *arg = argv[i];
            memmove(&argv[2 + n_pos], &argv[1 + n_pos], (size_t)(i - 1 - n_pos) * sizeof *argv);
            argv[1 + n_pos++] = arg;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_print_help(t);
            return 1;
        }
        if (pos && strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            cli_error(t->command, "unexpected argument '%s' (see resnet %s --help)", a, t->command);
            return -1;
        }
        char name[64];
        const char *eq = flag_name(a, name);
        arg_spec *s = find(t, name);
        if (!s || s->kind == ARG_POSITIONAL) {
            const char *near = NULL; /* the nearest flag one or two letters more, fewer or other */
            for (int k = 0, best = 3, d; k < t->count; k++)
                if (t->specs[k].kind != ARG_POSITIONAL && (d = args_typo_distance(name, t->specs[k].name)) >= 0 &&
                    d < best)
                    best = d, near = t->specs[k].name;
            if (near)
                cli_error(t->command, "unknown flag '--%s': did you mean --%s? (see resnet %s --help)", name, near,
                          t->command);
            else
                cli_error(t->command, "unknown flag '--%s' (see resnet %s --help)", name, t->command);
            return -1;
        }
        if (s->kind == ARG_FLAG) {
            if (eq) {
                cli_error(t->command, "flag '--%s' takes no value", name);
                return -1;
            }
            s->value = "1";
        } else if (eq) {
            s->value = eq + 1;
        } else if (i + 1 < argc && names_a_flag(t, argv[i + 1])) {
            /* `--save --overwrite` had saved to a file named --overwrite */
            cli_error(t->command, "flag '--%s' needs a value, and the next argument is the flag '%s' (a value that "
                      "starts with -- is given as --%s=VALUE)", name, argv[i + 1], name);
            return -1;
        } else if (i + 1 < argc) {
            s->value = argv[++i];
        } else {
            cli_error(t->command, "flag '--%s' needs a value", name);
            return -1;
        }
        if (!*s->value && s->kind != ARG_FLAG) { /* no flag means anything by "" ('--weights ""' had
                                                     been opened as a file named "") */
            cli_error(t->command, "flag '--%s' needs a value, got an empty one", name);
            return -1;
        }
        s->set = 1;
    }
    if (pos) {
        pos->set = n_pos;
        pos->value = n_pos ? argv[1] : NULL;
        if (n_pos == 0 && !pos->def) {
            cli_error(t->command, "missing %s (see resnet %s --help)", pos->name, t->command);
            return -1;
        }
    }
    for (int i = 0; i < t->count; i++) {
        const arg_spec *s = &t->specs[i];
        if (s->kind != ARG_FLAG && s->kind != ARG_POSITIONAL && !s->value) {
            cli_error(t->command, "missing required flag '--%s' (see resnet %s --help)", s->name,
                      t->command);
            return -1;
        }
    }
    return 0;
}

char **args_positional(const arg_table *t, char **argv, int *count) {
    const arg_spec *p = positional_spec(t);
    *count = p ? p->set : 0;
    return argv + 1;
}

const char *args_str(const arg_table *t, const char *name) {
    const arg_spec *s = find(t, name);
    return s ? s->value : NULL;
}

int args_flag(const arg_table *t, const char *name) {
    const arg_spec *s = find(t, name);
    return s && s->value && strcmp(s->value, "1") == 0;
}

int args_int(const arg_table *t, const char *name, int lo, int hi, int *out) {
    const char *v = args_str(t, name);
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        cli_error(t->command, "--%s must be an integer in %d..%d, got '%s'", name, lo, hi,
                  v ? v : "");
        return 0;
    }
    *out = (int)x;
    return 1;
}

arg_spec *args_spec(const arg_table *t, const char *name) { return find(t, name); }

int args_default_to(arg_table *t, const char *name, const char *value) {
    arg_spec *s = find(t, name);
    if (!s || s->set || s->kind == ARG_POSITIONAL)
        return 0;
    s->value = value;
    return 1;
}
