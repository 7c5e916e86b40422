/*
 * test_plot.c - rn_plot_svg: logs in, well-formed SVG out, errors named.
 *
 * Each rendered SVG is parsed with Python's xml.dom.minidom (/usr/bin/python3,
 * a failure to parse fails the test), which also counts its <polyline>s and
 * checks the root element, the title and the panels: loss and accuracy, and
 * the learning rate when the log has "lr". A long log's lines are thinned to the plot's pixel
 * columns, its spikes kept, and lose their circles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "resnet.h"
#include "train/plot.h"

#define PY "/usr/bin/python3"

static char tmpdir[512];

static void path_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_text(const char *name, const char *text) {
    char path[768];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* Renders log `name` and checks the SVG parses as XML with `panels` panels,
 * `polylines` polylines and `circles` circles. */
static void render_ok(const char *name, const char *log, int panels, int polylines, int circles) {
    char lpath[768], spath[800], cmd[2400];
    write_text(name, log);
    path_of(lpath, sizeof lpath, name);
    snprintf(spath, sizeof spath, "%s.svg", lpath);
    rn_status st = rn_plot_svg(lpath, spath);
    CHECK(st == RN_OK, "%s: %s", name, rn_last_error());
    if (st != RN_OK)
        return;
    snprintf(cmd, sizeof cmd,
             "%s -c 'import sys, xml.dom.minidom as m\n"
             "d = m.parse(sys.argv[1]); r = d.documentElement\n"
             "assert r.tagName == \"svg\" and r.getAttribute(\"xmlns\") == "
             "\"http://www.w3.org/2000/svg\"\n"
             "assert len(r.getElementsByTagName(\"title\")) == 1\n"
             "assert len([g for g in r.getElementsByTagName(\"g\") "
             "if g.getAttribute(\"class\") == \"panel\"]) == int(sys.argv[4])\n"
             "w = float(r.getAttribute(\"width\")); h = float(r.getAttribute(\"height\"))\n"
             "n = len(r.getElementsByTagName(\"polyline\"))\n"
             "c = len(r.getElementsByTagName(\"circle\"))\n"
             "assert (n, c) == (int(sys.argv[2]), int(sys.argv[3])), (n, c)\n"
             "for p in r.getElementsByTagName(\"polyline\"):\n"
             "    for xy in p.getAttribute(\"points\").split():\n"
             "        x, y = map(float, xy.split(\",\"))\n"
             "        assert 0 <= x <= w and 0 <= y <= h, xy\n"
             "' '%s' %d %d %d",
             PY, spath, polylines, circles, panels);
    int rc = system(cmd);
    CHECK(rc == 0, "%s: the SVG is not well-formed or not as expected (status %d)", name, rc);
    char *svg = read_text(spath);
    CHECK(svg != NULL, "read %s", spath);
    if (svg) {
        CHECK(strstr(svg, ">loss<") && strstr(svg, ">accuracy<") && strstr(svg, ">epoch<"),
              "%s: panel titles and axis labels", name);
        CHECK((strstr(svg, ">learning rate<") != NULL) == (panels == 3),
              "%s: a learning-rate panel exactly when the log has \"lr\"", name);
        CHECK(count(svg, ">train<") == 2 && count(svg, ">test<") == 2, "%s: legends", name);
        free(svg);
    }
}

/* Renders log `name` and expects failure `want` with `needle` in the message. */
static void render_fails(const char *name, const char *log, rn_status want,
                         const char *needle) {
    char lpath[768], spath[800];
    write_text(name, log);
    path_of(lpath, sizeof lpath, name);
    snprintf(spath, sizeof spath, "%s.svg", lpath);
    rn_status st = rn_plot_svg(lpath, spath);
    CHECK(st == want && strstr(rn_last_error(), needle) != NULL,
          "%s: status %d, message '%s' (want %d with '%s')", name, (int)st, rn_last_error(),
          (int)want, needle);
}

int main(void) {
    if (!check_tmpdir("test_plot", tmpdir, sizeof tmpdir))
        return 1;

    /* a typical log: step records interleaved with epoch records */
    char log[8192] = "";
    size_t used = 0;
    for (int e = 1; e <= 10; e++) {
        for (int s = 0; s < 3; s++)
            used += (size_t)snprintf(log + used, sizeof log - used,
                                     "{\"step\": %d, \"loss\": %.4f, \"lr\": 0.05}\n",
                                     (e - 1) * 3 + s, 2.0 / (e + s));
        used += (size_t)snprintf(log + used, sizeof log - used,
                                 "{\"epoch\": %d, \"train_loss\": %.5f, \"train_acc\": %.4f, "
                                 "\"test_loss\": %.5f, \"test_acc\": %.4f, \"lr\": 5e-2, "
                                 "\"seconds\": 12.5, \"extra\": [1, {\"a\": null}]}\n",
                                 e, 1.5 / e, 1.0 - 0.5 / e, 1.6 / e + 0.05, 0.95 - 0.5 / e);
    }
    render_ok("typical.jsonl", log, 3, 5, 50);

    /* one epoch; CRLF; blank lines; a killed run's partial last line */
    render_ok("one.jsonl",
              "\r\n{\"epoch\": 0, \"train_loss\": 0.5, \"train_acc\": 0.8, \"test_loss\": 0.6,"
              " \"test_acc\": 0.78, \"lr\": 0.1, \"seconds\": 3}\r\n\n"
              "{\"epoch\": 1, \"train_lo",
              3, 5, 5);
    /* gaps: a null and a missing metric are passed over, the curve joined across them (as the
     * test metrics of the epochs --eval-every passes over); unordered and repeated epochs (a
     * resumed run replaces epoch 2); integer-valued metrics */
    render_ok("gaps.jsonl",
              "{\"epoch\": 3, \"train_loss\": 1, \"train_acc\": 0.5, \"test_loss\": 1.2, "
              "\"test_acc\": 0.4}\n"
              "{\"epoch\": 1, \"train_loss\": 2, \"train_acc\": 0.2, \"test_loss\": 2.5, "
              "\"test_acc\": 0.1}\n"
              "{\"epoch\": 2, \"train_loss\": 9, \"train_acc\": 0.1, \"test_loss\": 9, "
              "\"test_acc\": 0.1}\n"
              "{\"epoch\": 2, \"train_loss\": 1.5, \"train_acc\": 0.3, \"test_loss\": null, "
              "\"test_acc\": 0.3}\n"
              "{\"epoch\": 4, \"train_loss\": 0.9, \"test_loss\": 1.1, \"test_acc\": 0.45}\n",
              /* polylines: one a series (test_loss joined across epoch 2's null) */
              2, 4, 4 + 3 + 3 + 4);
    /* odd values: fractional epochs, equal values, percentages, huge losses */
    render_ok("odd.jsonl",
              "{\"epoch\": 0.5, \"train_loss\": 1e3, \"train_acc\": 50, \"test_loss\": 1e3, "
              "\"test_acc\": 50}\n"
              "{\"epoch\": 1.5, \"train_loss\": 1e3, \"train_acc\": 50, \"test_loss\": 1e3, "
              "\"test_acc\": 50}\n",
              2, 4, 8);

    /* an unusual file name ends up escaped in the title */
    render_ok("a&b<c>.jsonl",
              "{\"epoch\": 1, \"train_loss\": 1, \"train_acc\": 0.5, \"test_loss\": 1, "
              "\"test_acc\": 0.5}\n", 2, 4, 4);

    /* errors name the file and the line */
    render_fails("bad_json.jsonl",
                 "{\"epoch\": 1, \"train_loss\": 1}\n{\"epoch\": 2, \"train_loss\": 1,}\n"
                 "{\"epoch\": 3}\n", RN_ERR_FORMAT, "bad_json.jsonl:2: invalid JSON");
    render_fails("not_object.jsonl", "{\"epoch\": 1}\n[1, 2]\n", RN_ERR_FORMAT,
                 "not_object.jsonl:2: expected a JSON object");
    render_fails("bad_metric.jsonl", "\n\n{\"epoch\": 1, \"test_acc\": \"high\"}\n",
                 RN_ERR_FORMAT, "bad_metric.jsonl:3: \"test_acc\" is not a number");
    render_fails("bad_epoch.jsonl", "{\"epoch\": null}\n", RN_ERR_FORMAT,
                 "bad_epoch.jsonl:1: \"epoch\" is null");
    render_fails("huge.jsonl", "{\"epoch\": 1, \"train_loss\": 1e999}\n", RN_ERR_FORMAT,
                 "huge.jsonl:1: \"train_loss\" is out of range");
    render_fails("steps_only.jsonl", "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"epoch\": 0}\n",
                 RN_ERR_FORMAT, "no per-epoch records");
    render_fails("empty.jsonl", "", RN_ERR_FORMAT, "no per-epoch records");
    CHECK(rn_plot_svg("/nonexistent/log.jsonl", "/tmp/x.svg") == RN_ERR_IO &&
              strstr(rn_last_error(), "/nonexistent/log.jsonl"), "missing log: %s",
          rn_last_error());
    char lpath[768];
    path_of(lpath, sizeof lpath, "typical.jsonl");
    CHECK(rn_plot_svg(lpath, "/nonexistent/dir/out.svg") == RN_ERR_IO &&
              strstr(rn_last_error(), "/nonexistent/dir/out.svg"), "unwritable svg: %s",
          rn_last_error());
    CHECK(rn_plot_svg(NULL, "x") == RN_ERR_ARG, "NULL path");

    /* 20000 epochs against 100, each with a spike of the train loss (10, else 1 + a wiggle) and
     * the test loss: the long one's lines hold at most 4 points a pixel column (1272 for the
     * 318-pixel plots) and no circles, yet reach the spike's height as the short one's do */
    for (int big = 0; big < 2; big++) {
        const int epochs = big ? 20000 : 100;
        char name[64], lp[768], sp[800], cmd[4096];
        snprintf(name, sizeof name, "long%d.jsonl", epochs);
        path_of(lp, sizeof lp, name);
        snprintf(sp, sizeof sp, "%s.svg", lp);
        FILE *f = fopen(lp, "wb");
        CHECK(f != NULL, "write %s", lp);
        for (int e = 1; f && e <= epochs; e++)
            fprintf(f, "{\"epoch\": %d, \"train_loss\": %.4f, \"test_loss\": 1.5, "
                    "\"train_acc\": 0.5, \"test_acc\": 0.5}\n", e,
                    e == epochs * 3 / 7 ? 10.0 : 1.0 + 0.01 * (e % 7));
        if (f)
            fclose(f);
        CHECK(rn_plot_svg(lp, sp) == RN_OK, "%s: %s", name, rn_last_error());
        snprintf(cmd, sizeof cmd,
                 "%s -c 'import sys, xml.dom.minidom as m\n"
                 "r = m.parse(sys.argv[1]).documentElement\n"
                 "lines = [[tuple(map(float, q.split(\",\"))) for q in p.getAttribute(\"points\").split()]\n"
                 "         for p in r.getElementsByTagName(\"polyline\")]\n"
                 "c = len(r.getElementsByTagName(\"circle\"))\n"
                 "top = min(y for x, y in lines[0])\n"
                 "assert len(lines) == 4 and max(map(len, lines)) <= 1272 and (c == 0) == (sys.argv[2] == \"1\"), "
                 "(len(lines), max(map(len, lines)), c)\n"
                 "open(sys.argv[3], \"w\").write(\"%%.3f\" %% top)\n"
                 "' '%s' %d '%s.top'",
                 PY, sp, big, sp);
        CHECK(system(cmd) == 0, "%s: thinned lines, circles only on the short log", name);
    }
    char ptop[900], *t1, *t2;
    path_of(ptop, sizeof ptop, "long100.jsonl.svg.top");
    t1 = read_text(ptop);
    path_of(ptop, sizeof ptop, "long20000.jsonl.svg.top");
    t2 = read_text(ptop);
    CHECK(t1 && t2 && strcmp(t1, t2) == 0, "the long log's line reaches its spike (%s) as the short "
          "one's (%s)", t2 ? t2 : "?", t1 ? t1 : "?");
    free(t1);
    free(t2);

    check_tmpdir_remove(tmpdir);
    return check_done("test_plot");
}
