/*
 * test_report.c - the parts of the training report: base64 and PNG encoding
 * (decoded back by our PNG reader), markup escaping, the canvas's SVG (parsed
 * by Python's minidom) and raster output (pixels checked), the run log's run
 * record, checkpoint class names, the evaluation pass that picks the grid
 * images (checked against a separate forward pass), and a whole report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "data/dataset.h"
#include "data/resize.h"
#include "io/image.h"
#include "io/png_write.h"
#include "report/canvas.h"
#include "report/markup.h"
#include "report/report_impl.h"
#include "resnet.h"
#include "train/runlog.h"

#define PY "/usr/bin/python3"

static char tmpdir[512];

static char *path_of(const char *name) {
    static char path[2048];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", tmpdir, name) >= sizeof path)
        path[0] = '\0';   /* no such file: the checks on it fail */
    return path;
}

/* ---------------------------------------------------------------------------
 * Encoding and text
 * ------------------------------------------------------------------------- */

static void test_base64(void) {
    static const char *const IN[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const OUT[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        json_buf b = {0};
        rn_base64_append(&b, IN[i], strlen(IN[i]));
        CHECK(strcmp(b.len ? b.data : "", OUT[i]) == 0, "base64(%s) = %s", IN[i], b.len ? b.data : "");
        json_buf_free(&b);
    }
}

static void test_png_roundtrip(int w, int h, int channels) {
    uint8_t *px = malloc((size_t)w * h * channels);
    for (int i = 0; i < w * h * channels; i++)
        px[i] = (uint8_t)check_int(0, 255);
    json_buf png = {0};
    rn_status st = rn_png_encode(px, w, h, channels, &png);
    CHECK(st == RN_OK, "encode %dx%dx%d: %s", w, h, channels, rn_last_error());
    rn_image img = {0};
    if (st == RN_OK)
        st = rn_image_decode(png.data, png.len, "roundtrip", channels, NULL, &img);
    CHECK(st == RN_OK && img.width == w && img.height == h && img.channels == channels,
          "decode %dx%dx%d: %s", w, h, channels, rn_last_error());
    int same = st == RN_OK;
    for (int y = 0; same && y < h; y++)          /* ours interleaved, the reader's planar */
        for (int x = 0; same && x < w; x++)
            for (int c = 0; same && c < channels; c++)
                same = img.pixels[(size_t)c * w * h + (size_t)y * w + x] == px[((size_t)y * w + x) * channels + c];
    CHECK(same, "PNG %dx%dx%d decodes to the pixels encoded", w, h, channels);
    rn_image_free(&img);
    json_buf_free(&png);
    free(px);
}

static void test_png(void) {
    test_png_roundtrip(17, 9, 3);
    test_png_roundtrip(5, 3, 1);
    test_png_roundtrip(1, 1, 3);
    uint8_t px[16] = {0};
    json_buf b = {0};
    CHECK(rn_png_encode(px, 0, 1, 3, &b) == RN_ERR_ARG, "width 0 is refused");
    CHECK(rn_png_encode(px, 2, 2, 2, &b) == RN_ERR_ARG, "2 channels are refused");
    CHECK(rn_png_encode(px, 70000, 1, 1, &b) == RN_ERR_ARG, "a width over 65535 is refused");
    json_buf_free(&b);
}

static void test_markup(void) {
    json_buf b = {0};
    rn_markup_escape(&b, "<a&b>\"'\x01 caf\xc3\xa9 \xff!");
    CHECK(strcmp(b.data, "&lt;a&amp;b&gt;&quot;&#39; caf\xc3\xa9 ?!") == 0, "escaped: %s", b.data);
    json_buf_free(&b);
    static const double V[] = {12.0, 0.5, -0.001, 3.14159, 1e6};
    static const char *const S[] = {"12", "0.5", "0", "3.14", "1000000"};
    for (int i = 0; i < 5; i++) {
        json_buf n = {0};
        rn_markup_number(&n, V[i], 2);
        CHECK(strcmp(n.data, S[i]) == 0, "number %g -> %s, want %s", V[i], n.data, S[i]);
        json_buf_free(&n);
    }
    const char *s = "\xc3\xa9z\xff";
    CHECK(rn_utf8_next(&s) == 0xe9 && rn_utf8_next(&s) == 'z' && rn_utf8_next(&s) == '?' && !*s,
          "UTF-8 decoding, an invalid byte as '?'");
    rn_font f = {12, RN_ALIGN_START, 0, 0, 0};
    char out[64];
    rn_text_fit(&f, "Ankle boot", 500, out, sizeof out);
    CHECK(strcmp(out, "Ankle boot") == 0, "a name that fits is kept: %s", out);
    rn_text_fit(&f, "American Staffordshire terrier", 80, out, sizeof out);
    size_t n = strlen(out);
    CHECK(n > 3 && strcmp(out + n - 3, "...") == 0 && rn_text_width(&f, out) <= 80 &&
              strncmp(out, "American", n - 3 < 8 ? n - 3 : 8) == 0,
          "a long name is cut to fit with '...': %s", out);
    CHECK(rn_text_width(&f, "WWW") > rn_text_width(&f, "iii") && rn_text_width(&f, "") == 0,
          "text widths follow the glyphs");
}

/* ---------------------------------------------------------------------------
 * The canvas
 * ------------------------------------------------------------------------- */

static void draw_sample(rn_canvas *c) {
    rn_draw_rect(c, 10, 10, 20, 10, 0x000000, RN_NONE, 0);
    rn_draw_rect(c, 40.5, 10, 10, 10, 0x000000, RN_NONE, 0);
    rn_draw_circle(c, 80, 20, 6, 0xff0000);
    rn_draw_line(c, 0, 50, 100, 50, 0x0000ff, 2, 1);
    double xy[6] = {10, 90, 50, 60, 90, 90};
    rn_draw_group_begin(c, "curve & more");
    rn_draw_polyline(c, xy, 3, 0x00ff00, 3, 0);
    rn_draw_group_end(c);
    rn_font f = {14, RN_ALIGN_MIDDLE, 1, 0x222222, 0};
    rn_draw_text(c, 150, 30, &f, "a<b & \"c\"");
    rn_font v = {14, RN_ALIGN_MIDDLE, 0, 0x222222, 1};
    rn_draw_text(c, 180, 80, &v, "upwards");
    uint8_t img[4] = {0, 255, 255, 0};
    rn_draw_image(c, 110, 60, 20, 20, img, 2, 2, 1);
}

static void test_canvas_svg(void) {
    rn_canvas *c;
    CHECK(rn_canvas_create_svg(0, 10, NULL, &c) == RN_ERR_ARG, "a zero-width canvas is refused");
    CHECK(rn_canvas_create_svg(200, 100, "T<itle>", &c) == RN_OK, "create an SVG canvas");
    draw_sample(c);
    json_buf file = {0}, inl = {0};
    CHECK(rn_canvas_svg(c, 1, &file) == RN_OK && rn_canvas_svg(c, 0, &inl) == RN_OK, "SVG out");
    CHECK(rn_canvas_png(c, &file) == RN_ERR_ARG, "no PNG from an SVG canvas");
    rn_canvas_free(c);
    const char *root_end = strchr(inl.data, '>');
    CHECK(strncmp(file.data, "<?xml", 5) == 0 && strstr(file.data, " width=\"200\" height=\"100\" viewBox") &&
              strncmp(inl.data, "<svg", 4) == 0 && root_end && !memmem(inl.data, (size_t)(root_end - inl.data), " width=", 7),
          "a file has the XML declaration and a size, the inline copy neither");
    char *path = path_of("sample.svg");
    CHECK(check_write_file(path, file.data, file.len), "write %s", path);
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             PY " -c 'import sys, xml.dom.minidom as m\n"
                "r = m.parse(sys.argv[1]).documentElement\n"
                "assert r.tagName == \"svg\" and r.getAttribute(\"viewBox\") == \"0 0 200 100\"\n"
                "assert r.getElementsByTagName(\"title\")[0].firstChild.data == \"T<itle>\"\n"
                "t = [e.firstChild.data for e in r.getElementsByTagName(\"text\")]\n"
                "assert t == [\"a<b & \\\"c\\\"\", \"upwards\"], t\n"
                "assert len(r.getElementsByTagName(\"polyline\")) == 1 and len(r.getElementsByTagName(\"line\")) == 1\n"
                "g = r.getElementsByTagName(\"g\")\n"
                "assert len(g) == 1 and g[0].getAttribute(\"class\") == \"curve & more\"\n"
                "i = r.getElementsByTagName(\"image\")[0].getAttribute(\"xlink:href\")\n"
                "assert i.startswith(\"data:image/png;base64,iVBORw0KGgo\")\n"
                "' '%s'", path);
    CHECK(system(cmd) == 0, "the SVG parses, with its text escaped and the image inline");
    json_buf_free(&file);
    json_buf_free(&inl);
}

static void test_canvas_raster(void) {
    rn_canvas *c;
    CHECK(rn_canvas_create_raster(200, 100, 0.1, &c) == RN_ERR_ARG, "scale 0.1 is refused");
    CHECK(rn_canvas_create_raster(5000, 100, 2, &c) == RN_ERR_ARG, "10000 pixels wide is refused");
    CHECK(rn_canvas_create_raster(200, 100, 1, &c) == RN_OK, "create a raster canvas");
    draw_sample(c);
    json_buf png = {0};
    json_buf svg = {0};
    CHECK(rn_canvas_svg(c, 1, &svg) == RN_ERR_ARG, "no SVG from a raster canvas");
    rn_status st = rn_canvas_png(c, &png);
    rn_canvas_free(c);
    rn_image img = {0};
    if (st == RN_OK)
        st = rn_image_decode(png.data, png.len, "raster", 3, NULL, &img);
    CHECK(st == RN_OK && img.width == 200 && img.height == 100, "the raster is a 200x100 PNG");
    if (st == RN_OK) {
        const uint8_t *R = img.pixels, *G = R + 200 * 100, *B = G + 200 * 100;
#define PX(x, y) ((y) * 200 + (x))
        CHECK(R[PX(15, 15)] == 0 && G[PX(15, 15)] == 0, "inside the black rectangle");
        CHECK(R[PX(5, 5)] == 255 && B[PX(5, 5)] == 255, "the background is white");
        CHECK(R[PX(40, 15)] > 100 && R[PX(40, 15)] < 155, "a half-covered pixel is grey: %d", R[PX(40, 15)]);
        CHECK(R[PX(80, 20)] == 255 && G[PX(80, 20)] == 0, "the circle is red");
        CHECK(B[PX(2, 50)] == 255 && R[PX(2, 50)] < 60 && R[PX(8, 50)] == 255,
              "the dashed line: a dash, then a gap");
        CHECK(G[PX(50, 61)] == 255 && R[PX(50, 61)] < 60, "the polyline's corner");
        CHECK(R[PX(115, 65)] == 0 && R[PX(125, 65)] == 255, "the image, nearest neighbour");
        int ink = 0, x0 = 200, x1 = 0, y0 = 100, y1 = 0;
        for (int y = 40; y < 100; y++)
            for (int x = 165; x < 200; x++)
                if (R[PX(x, y)] < 128) {
                    ink++;
                    x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1, y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                }
        CHECK(ink > 50 && y1 - y0 > 2 * (x1 - x0), "vertical text is drawn upright-rotated (%d px, %dx%d)",
              ink, x1 - x0, y1 - y0);
#undef PX
    }
    rn_image_free(&img);
    json_buf_free(&png);
    json_buf_free(&svg);
}

/* ---------------------------------------------------------------------------
 * The log's run record, and class names from a checkpoint
 * ------------------------------------------------------------------------- */

static void test_runlog(void) {
    const char *text =
        "{\"run\": {\"cpu\": \"first\", \"threads\": 1}}\n"
        "{\"epoch\": 1, \"train_loss\": 2.5, \"lr\": 0.1, \"seconds\": 3.5, \"images_per_second\": 100}\n"
        "{\"step\": 5, \"epoch\": 1, \"loss\": 9}\n"
        "{\"run\": {\"cpu\": \"Second CPU\", \"threads\": 2, \"flags\": {\"lr\": \"0.1\"}}}\n"
        "{\"epoch\": 2, \"train_loss\": 1.25, \"test_acc\": null, \"ema_test_acc\": 0.75}\n";
    char *path = path_of("run.jsonl");
    CHECK(check_write_file(path, text, strlen(text)), "write the log");
    rn_run_log log;
    rn_status st = rn_run_log_read(path, &log);
    CHECK(st == RN_OK && log.count == 2, "two epochs: %s", rn_last_error());
    const json_value *cpu = json_get(&log.run, "cpu"), *threads = json_get(&log.run, "threads");
    CHECK(cpu && cpu->type == JSON_STRING && strcmp(cpu->string, "Second CPU") == 0 && threads &&
              rn_json_number(threads, log.run_line) == 2 && json_get(&log.run, "flags"),
          "the last run record is kept");
    CHECK(log.count == 2 && log.epochs[0].v[RN_LOG_SECONDS] == 3.5 &&
              log.epochs[0].v[RN_LOG_IMAGES_PER_SECOND] == 100 && log.epochs[1].v[RN_LOG_TRAIN_LOSS] == 1.25 &&
              isnan(log.epochs[1].v[RN_LOG_TEST_ACC]) && isnan(log.epochs[1].v[RN_LOG_LR]) &&
              log.epochs[1].v[RN_LOG_EMA_TEST_ACC] == 0.75 && isnan(log.epochs[0].v[RN_LOG_EMA_TEST_ACC]),
          "epoch metrics, NAN where null or missing");
    rn_run_log_free(&log);
    const char *none = "{\"step\": 1}\n";
    CHECK(check_write_file(path, none, strlen(none)), "write the log");
    CHECK(rn_run_log_read(path, &log) == RN_OK && log.count == 0 && log.run.type == JSON_NULL,
          "a log without epochs or run record reads as empty");
    rn_run_log_free(&log);
}

static void test_class_names(void) {
    rn_model *m = NULL;
    CHECK(rn_model_create("d2l_resnet18", 1, 3, &m) == RN_OK, "model");
    if (!m)
        return;
    char *path = path_of("names.safetensors");
    const char *keys[] = {"class_names", "dataset"}, *vals[] = {"cat\ndog\nbig bird", "cifar10"};
    char **names = NULL;
    CHECK(rn_model_save_meta(m, path, keys, vals, 2) == RN_OK, "save");
    CHECK(rn_checkpoint_class_names(path, 3, &names) == RN_OK && names && strcmp(names[0], "cat") == 0 &&
              strcmp(names[2], "big bird") == 0, "class_names from the metadata");
    free(names);
    CHECK(rn_checkpoint_class_names(path, 2, &names) == RN_OK && !names, "more names than classes: none");
    CHECK(rn_checkpoint_class_names(path, 4, &names) == RN_OK && names && strcmp(names[2], "big bird") == 0 &&
              strcmp(names[3], "3") == 0, "fewer names than classes: the rest by index");
    free(names);
    vals[0] = "a\nb";
    rn_model_free(m);
    m = NULL;
    CHECK(rn_model_create("d2l_resnet18", 1, 10, &m) == RN_OK && rn_model_save_meta(m, path, keys, vals, 2) == RN_OK,
          "save a 10-class model");
    CHECK(rn_checkpoint_class_names(path, 10, &names) == RN_OK && names && strcmp(names[9], "truck") == 0,
          "the dataset's built-in names when class_names do not fit");
    free(names);
    keys[1] = "image_size"; /* no dataset: the two names, then the rest by index */
    CHECK(rn_model_save_meta(m, path, keys, vals, 2) == RN_OK && rn_checkpoint_class_names(path, 10, &names) == RN_OK &&
              names && strcmp(names[1], "b") == 0 && strcmp(names[2], "2") == 0 && strcmp(names[9], "9") == 0,
          "fewer class_names than classes (train --num-classes): the rest by index");
    free(names);
    CHECK(rn_checkpoint_class_names(path_of("none.safetensors"), 10, &names) == RN_ERR_IO && !names,
          "a missing file fails");
    rn_model_free(m);
}

/* ---------------------------------------------------------------------------
 * The evaluation pass and a whole report
 * ------------------------------------------------------------------------- */

#define N 40
#define S 32
#define K 3
#define GRID 5

static double probability(const float *row, int j) {
    int best = 0;
    for (int k = 1; k < K; k++)
        best = row[k] > row[best] ? k : best;
    double sum = 0;
    for (int k = 0; k < K; k++)
        sum += exp((double)row[k] - row[best]);
    return exp((double)row[j] - row[best]) / sum;
}

static void test_collect_and_report(rn_model *m) {
    rn_dataset ds = {.count = N, .channels = 1, .height = S, .width = S, .num_classes = K};
    ds.pixels = malloc(N * S * S);
    ds.labels = malloc(N * sizeof *ds.labels);
    float *x = malloc(N * S * S * sizeof *x), logits[N * K];
    for (int i = 0; i < N * S * S; i++) {
        ds.pixels[i] = (uint8_t)check_int(0, 255);
        x[i] = ds.pixels[i] / 255.0f;
    }
    for (int i = 0; i < N; i++)
        ds.labels[i] = i % K;
    const char *names[K] = {"alpha", "beta", "gamma & delta"};
    CHECK(rn_dataset_set_class_names(&ds, names, K) == RN_OK, "names");
    CHECK(rn_model_forward(m, x, N, S, S, RN_MODE_EVAL, logits) == RN_OK, "reference forward");

    /* what the picks must be: the GRID most confident mistakes, the most confident right one per class */
    int wrong_idx[N], n_wrong = 0, best_right[K] = {-1, -1, -1};
    double p[N];
    for (int i = 0; i < N; i++) {
        const float *row = logits + i * K;
        int pred = 0;
        for (int k = 1; k < K; k++)
            pred = row[k] > row[pred] ? k : pred;
        p[i] = probability(row, pred);
        if (pred != ds.labels[i])
            wrong_idx[n_wrong++] = i;
        else if (best_right[pred] < 0 || p[i] > p[best_right[pred]])
            best_right[pred] = i;
    }
    for (int a = 1; a < n_wrong; a++)   /* by confidence, most first */
        for (int b = a; b > 0 && p[wrong_idx[b]] > p[wrong_idx[b - 1]]; b--) {
            int t = wrong_idx[b];
            wrong_idx[b] = wrong_idx[b - 1];
            wrong_idx[b - 1] = t;
        }

    rn_loader_config cfg = {.batch_size = N};
    report_eval e;
    rn_status st = report_collect(m, &ds, &cfg, GRID, NULL, NULL, &e);
    CHECK(st == RN_OK, "collect: %s", rn_last_error());
    if (st == RN_OK) {
        int want_wrong = n_wrong < GRID ? n_wrong : GRID, same = e.n_wrong == want_wrong;
        for (int i = 0; same && i < want_wrong; i++)
            same = e.wrong[i].index == wrong_idx[i] && fabs(e.wrong[i].p_pred - p[wrong_idx[i]]) < 1e-6 &&
                   e.wrong[i].label == ds.labels[wrong_idx[i]] && e.wrong[i].pred != e.wrong[i].label &&
                   memcmp(e.wrong[i].thumb, ds.pixels + wrong_idx[i] * S * S, S * S) == 0;
        CHECK(same, "the %d most confident of %d mistakes, in order, with their images", want_wrong, n_wrong);
        int classes_right = 0, right_ok = e.right_per_class == GRID / K;
        for (int k = 0; k < K; k++)
            classes_right += best_right[k] >= 0;
        right_ok &= e.n_right == classes_right;
        for (int i = 0; right_ok && i < e.n_right; i++)
            right_ok = e.right[i].index == best_right[e.right[i].label] && e.right[i].pred == e.right[i].label &&
                       (i == 0 || e.right[i].label > e.right[i - 1].label);
        CHECK(right_ok, "the most confident right image of each class (%d classes right)", classes_right);
        CHECK(e.ev.count == N && e.thumb_h == S && e.thumb_w == S && e.channels == 1, "counts and sizes");
        report_eval_free(&e);
    }

    /* a whole report, with a log */
    const char *log = "{\"run\": {\"cpu\": \"Test CPU 9000\", \"threads\": 3, \"seed\": 7}}\n"
                      "{\"epoch\": 1, \"train_loss\": 1.1, \"train_acc\": 0.4, \"test_loss\": 1.2, "
                      "\"test_acc\": 0.35, \"lr\": 0.1, \"seconds\": 2, \"images_per_second\": 20}\n"
                      "{\"epoch\": 2, \"train_loss\": 1.0, \"train_acc\": 0.5, \"test_loss\": 1.1, "
                      "\"test_acc\": 0.4, \"ema_test_loss\": 1.05, \"ema_test_acc\": 0.4375, \"lr\": 0.1, "
                      "\"seconds\": 8, \"images_per_second\": 5}\n";
    CHECK(check_write_file(path_of("r.jsonl"), log, strlen(log)), "log");
    char logpath[2048], outdir[2048];
    memcpy(logpath, path_of("r.jsonl"), sizeof logpath);
    memcpy(outdir, path_of("report"), sizeof outdir);
    rn_report_config rc = {.output_dir = outdir, .log_path = logpath, .loader = cfg,
                           .grid = GRID, .png = 1, .png_scale = 1};
    rn_report_summary sum;
    st = rn_report_write(m, &ds, &rc, NULL, NULL, &sum);
    CHECK(st == RN_OK && sum.images == N && sum.figures == 10 && !sum.warning[0], "report: %s (%d figures)",
          rn_last_error(), sum.figures);
    size_t len = 0;
    char *html = (char *)check_read_file(path_of("report/report.html"), &len);
    CHECK(html && strstr(html, "Test CPU 9000") && strstr(html, "gamma &amp; delta") &&
              !strstr(html, "gamma & delta") && !strstr(html, "<script") && strstr(html, "</html>"),
          "the page has the run's CPU and the escaped class names, and no script");
    /* throughput as train prints it: 80 images in 10 s, 8 a second (the epochs' mean rate, 12.5,
     * had been shown) */
    CHECK(html && strstr(html, "8.0 training images/s") && !strstr(html, "12.5 training images/s"),
          "the throughput is the images over the seconds");
    /* train --ema's moving average: a column of the epochs' table, a curve of each panel */
    CHECK(html && strstr(html, "EMA test acc</th>") && strstr(html, "0.4375</td>"),
          "the epochs' table has the moving average's test accuracy");
    free(html);
    char *curves = (char *)check_read_file(path_of("report/curves.svg"), &len);
    CHECK(curves && strstr(curves, "test, moving average"), "the curves have the moving average's");
    free(curves);
    struct stat sb;
    CHECK(stat(path_of("report/confusion.png"), &sb) == 0 && sb.st_size > 1000, "confusion.png written");
    rc.grid = 0, rc.png_scale = 9;
    CHECK(rn_report_write(m, &ds, &rc, NULL, NULL, &sum) == RN_ERR_ARG, "a PNG scale of 9 is refused");
    rc.png_scale = 1, rc.output_dir = path_of("report/report.html");
    CHECK(rn_report_write(m, &ds, &rc, NULL, NULL, &sum) == RN_ERR_IO && strstr(rn_last_error(), "report.html"),
          "a file where the folder should be: %s", rn_last_error());
    free(x);
    rn_dataset_free(&ds);
}

/* Images larger than the thumbnail limit are shrunk with Pillow's bilinear. */
static void test_thumbnail_shrink(rn_model *m) {
    enum { BIG = 120, SMALL = 112 };
    rn_dataset ds = {.count = 2, .channels = 1, .height = BIG, .width = BIG, .num_classes = K};
    ds.pixels = malloc(2 * BIG * BIG);
    ds.labels = malloc(2 * sizeof *ds.labels);
    for (int i = 0; i < 2 * BIG * BIG; i++)
        ds.pixels[i] = (uint8_t)check_int(0, 255);
    ds.labels[0] = 0, ds.labels[1] = 1;
    rn_loader_config cfg = {.batch_size = 2};
    report_eval e;
    rn_status st = report_collect(m, &ds, &cfg, 1, NULL, NULL, &e);
    CHECK(st == RN_OK && e.thumb_h == SMALL && e.thumb_w == SMALL, "thumbnails of %d shrink to %d", BIG, SMALL);
    if (st == RN_OK) {
        const report_pick *pk = e.n_wrong ? &e.wrong[0] : &e.right[0];
        uint8_t want[SMALL * SMALL];
        rn_resize_bilinear_u8(ds.pixels + pk->index * BIG * BIG, 1, BIG, BIG, want, SMALL, SMALL);
        CHECK(memcmp(pk->thumb, want, sizeof want) == 0, "the thumbnail is the bilinear resize");
        report_eval_free(&e);
    }
    rn_dataset_free(&ds);
}

/* More classes than a grid has cells: a seeded sample of the right ones,
 * and the confusion figure's 30 classes with the most mistakes. */
static void test_many_classes(void) {
    enum { MK = 40, MN = 80, MG = 6 };
    rn_model *m = NULL;
    rn_dataset ds = {.count = MN, .channels = 1, .height = S, .width = S, .num_classes = MK};
    ds.pixels = malloc(MN * S * S);
    ds.labels = malloc(MN * sizeof *ds.labels);
    for (int i = 0; i < MN * S * S; i++)
        ds.pixels[i] = (uint8_t)check_int(0, 255);
    for (int i = 0; i < MN; i++)
        ds.labels[i] = (i * 7) % MK;
    rn_loader_config cfg = {.batch_size = 32};
    report_eval e;
    char more_text[64] = "";
    rn_status st = rn_model_create("d2l_resnet18", 1, MK, &m);
    if (st == RN_OK)
        st = report_collect(m, &ds, &cfg, MG, NULL, NULL, &e);
    CHECK(st == RN_OK, "collect with %d classes: %s", MK, rn_last_error());
    if (st == RN_OK) {
        int64_t right = e.ev.top1;
        int ok = e.right_per_class == 0 && e.n_right == (right < MG ? right : MG);
        for (int i = 0; ok && i < e.n_right; i++)
            ok = e.right[i].pred == e.right[i].label && ds.labels[e.right[i].index] == e.right[i].label;
        CHECK(ok, "a sample of %d of the %lld right images", e.n_right, (long long)right);
        int idx[MK], n = fig_confusion_classes(&e, idx);
        int64_t miss[MK] = {0};
        for (int r = 0; r < MK; r++)
            for (int c = 0; c < MK; c++)
                if (r != c)
                    miss[r] += e.ev.confusion[r * MK + c], miss[c] += e.ev.confusion[r * MK + c];
        int64_t least_in = INT64_MAX, most_out = -1;
        int in[MK] = {0};
        ok = n == 30;
        for (int i = 0; ok && i < n; i++) {
            ok = i == 0 || idx[i] > idx[i - 1];
            in[idx[i]] = 1;
            least_in = miss[idx[i]] < least_in ? miss[idx[i]] : least_in;
        }
        for (int k = 0; k < MK; k++)
            if (!in[k])
                most_out = miss[k] > most_out ? miss[k] : most_out;
        CHECK(ok && least_in >= most_out, "the 30 classes with the most mistakes, in class order");
        /* the pairs as common as the 8th of the list of mistakes, past it: the page says how many */
        int64_t counts[MK * MK];
        int nc = 0;
        for (int i = 0; i < MK * MK; i++)
            if (i / MK != i % MK && e.ev.confusion[i] > 0)
                counts[nc++] = e.ev.confusion[i];
        for (int i = 1; i < nc; i++) /* descending */
            for (int j = i; j > 0 && counts[j] > counts[j - 1]; j--) {
                int64_t tmp = counts[j];
                counts[j] = counts[j - 1], counts[j - 1] = tmp;
            }
        int64_t tied = 0;
        for (int i = 8; nc > 8 && i < nc; i++)
            tied += counts[i] == counts[7];
        if (tied > 0)
            snprintf(more_text, sizeof more_text, "and %lld more pair", (long long)tied);
        report_eval_free(&e);
    }
    rn_report_config rc = {.output_dir = path_of("many"), .loader = cfg, .grid = MG};
    rn_report_summary sum;
    CHECK(m && rn_report_write(m, &ds, &rc, NULL, NULL, &sum) == RN_OK && sum.figures >= 3,
          "a report with %d classes and no PNG: %s", MK, rn_last_error());
    size_t len = 0;
    char *html = (char *)check_read_file(path_of("many/report.html"), &len);
    CHECK(html && more_text[0] && strstr(html, more_text), "the mistakes past the list as common as its last "
          "are counted ('%s')", more_text);
    free(html);
    rn_model_free(m);
    rn_dataset_free(&ds);
}

int main(void) {
    if (!check_tmpdir("test_report", tmpdir, sizeof tmpdir))
        return 1;
    rn_set_threads(2);
    test_base64();
    test_png();
    test_markup();
    test_canvas_svg();
    test_canvas_raster();
    test_runlog();
    test_class_names();
    rn_model *m = NULL;
    CHECK(rn_model_create("d2l_resnet18", 1, K, &m) == RN_OK && rn_model_init(m, "default", 3) == RN_OK, "model");
    if (m) {
        test_collect_and_report(m);
        test_thumbnail_shrink(m);
    }
    test_many_classes();
    rn_model_free(m);
    check_tmpdir_remove(tmpdir);
    return check_done("test_report");
}
