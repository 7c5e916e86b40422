/* args.c - flag parsing and help for the `resnet` subcommands. */
#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_error(const char *command, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "resnet %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static arg_spec *find(const arg_table *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->specs[i].name, name) == 0)
            return &t->specs[i];
    return NULL;
}

void args_print_help(const arg_table *t) {
    printf("usage: resnet %s [flags]\n%s\n\nflags:\n", t->command, t->summary);
    for (int i = 0; i < t->count; i++) {
        const arg_spec *s = &t->specs[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s", s->name,
                 s->kind == ARG_FLAG ? "" : s->kind == ARG_INT ? " N" : " VALUE");
        printf("  %-26s %s", left, s->help);
        if (s->kind == ARG_FLAG)
            printf(" (default: off)\n");
        else if (s->def)
            printf(" (default: %s)\n", s->def);
        else
            printf(" (required)\n");
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

int args_parse(arg_table *t, int argc, char **argv) {
    for (int i = 0; i < t->count; i++) {
        t->specs[i].value = t->specs[i].def;
        t->specs[i].set = 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_print_help(t);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            cli_error(t->command, "unexpected argument '%s' (see resnet %s --help)", a, t->command);
            return -1;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, a + 2, len);
        name[len] = '\0';
        arg_spec *s = find(t, name);
        if (!s) {
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
        } else if (i + 1 < argc) {
            s->value = argv[++i];
        } else {
            cli_error(t->command, "flag '--%s' needs a value", name);
            return -1;
        }
        s->set = 1;
    }
    for (int i = 0; i < t->count; i++) {
        const arg_spec *s = &t->specs[i];
        if (s->kind != ARG_FLAG && !s->value) {
            cli_error(t->command, "missing required flag '--%s' (see resnet %s --help)", s->name,
                      t->command);
            return -1;
        }
    }
    return 0;
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
