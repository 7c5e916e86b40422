/*
 * weights.c - a model's state_dict in and out of safetensors files.
 *
 * The file must hold exactly the model's tensors under PyTorch's names:
 * a missing, unexpected, wrong-shape or wrong-dtype tensor is an error that
 * names the key. Float tensors may be stored as F32, F16, BF16 or F64;
 * num_batches_tracked as I64, or not at all (files from before PyTorch
 * 0.4.1): then 0, as PyTorch's load_state_dict sets it.
 *
 * A weights file is a safetensors file, a PyTorch checkpoint (torch.save's
 * zip or legacy format) or an ONNX model (onnx_import.h), told apart by
 * content, not by name (sniff.h); any other file is refused with a message
 * saying what it looks like.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/pth.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/sniff.h"
#include "model/model.h"
#include "model/onnx_import.h"

/* A model saved inside nn.DataParallel or DistributedDataParallel (the wrapper's state_dict())
 * names every tensor "module.NAME": where every name has that prefix it is dropped, so that such
 * a file loads as the model's own. */
static void drop_wrapper_prefix(st_file *f) {
    static const char prefix[] = "module.";
    const size_t n = sizeof prefix - 1;
    if (f->count == 0)
        return;
    for (size_t i = 0; i < f->count; i++)
        if (strncmp(f->tensors[i].name, prefix, n) != 0 || !f->tensors[i].name[n])
            return;
    for (size_t i = 0; i < f->count; i++)
        memmove(f->tensors[i].name, f->tensors[i].name + n, strlen(f->tensors[i].name + n) + 1);
}

/* The first name component every tensor of f shares ("model." of a Lightning module), into buf
 * (capacity cap), or "" (no names, no such component, or one of a model's own modules). */
static void shared_prefix(const st_file *f, char *buf, size_t cap) {
    static const char *const OWN[] = {"conv.", "conv1.", "bn1.", "layer1.", "layer2.", "layer3.",
                                      "layer4.", "fc."};
    buf[0] = '\0';
    const char *dot = f->count ? strchr(f->tensors[0].name, '.') : NULL;
    if (!dot || (size_t)(dot - f->tensors[0].name) + 2 > cap)
        return;
    const size_t n = (size_t)(dot - f->tensors[0].name) + 1;
    for (size_t i = 1; i < f->count; i++)
        if (strncmp(f->tensors[i].name, f->tensors[0].name, n) != 0)
            return;
    for (size_t i = 0; i < sizeof OWN / sizeof OWN[0]; i++)
        if (strlen(OWN[i]) == n && strncmp(f->tensors[0].name, OWN[i], n) == 0)
            return;
    memcpy(buf, f->tensors[0].name, n);
    buf[n] = '\0';
}

/* The refusal of a file whose names all start with `prefix` (shared_prefix), missing `key`. */
static rn_status refuse_prefixed(const char *path, const char *key, const char *arch, const char *prefix) {
    return rn_fail(RN_ERR_MISMATCH, "%s: missing tensor '%s' for %s: every name of the file starts with "
                   "'%s', a wrapper's prefix (only DataParallel's 'module.' is dropped); save the inner "
                   "model's state_dict, or strip the prefix", path, key, arch, prefix);
}

/* Reads a safetensors file, a PyTorch .pth checkpoint or an ONNX model
 * (matched to `arch` when not NULL) into f. */
static rn_status weights_read(const char *path, const char *arch, st_file *f) {
    memset(f, 0, sizeof *f);
    unsigned char *buf = NULL;
    size_t len = 0;
    RN_TRY(rn_file_read_all(path, &buf, &len));
    rn_status st;
    switch (rn_sniff(buf, len)) {
    case RN_FMT_SAFETENSORS: st = st_parse(buf, len, path, f); break;
    case RN_FMT_ZIP:
    case RN_FMT_PICKLE: st = pth_parse(buf, len, path, f); break;
    case RN_FMT_ONNX: st = rn_onnx_import(buf, len, path, arch, f); break;
    default: st = rn_sniff_refuse(buf, len, path, NULL); break;
    }
    free(buf);
    if (st == RN_OK)
        drop_wrapper_prefix(f);
    return st;
}

static void pass_meta(const st_file *f, void (*get_meta)(void *, const char *, const char *),
                      void *ctx) {
    for (size_t i = 0; get_meta && i < f->meta_count; i++)
        get_meta(ctx, f->meta[i].key, f->meta[i].value);
}

/* Whether file tensor s fits model tensor t (shape and dtype); else fails naming the key. */
static rn_status tensor_fits(const rn_model *m, const rn_tensor_ref *t, const st_tensor *s,
                             const char *path) {
    if (!s && t->i64) /* a BatchNorm's num_batches_tracked, which files from before PyTorch 0.4.1
                         lack: PyTorch's load_state_dict sets it to 0 */
        return RN_OK;
    if (!s)
        return rn_fail(RN_ERR_MISMATCH, "%s: missing tensor '%s' for %s", path, t->name,
                       m->arch->name);
    if (!st_shape_is(s, t->ndim, t->shape)) {
        char want[96], got[96];
        rn_shape_str(want, sizeof want, t->ndim, t->shape);
        rn_shape_str(got, sizeof got, s->ndim, s->shape);
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has shape %s, %s expects %s", path, t->name,
                       got, m->arch->name, want);
    }
    if (s->dtype == ST_I8)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' is int8 but the file is not an int8 "
                       "model (resnet quantize writes those)", path, t->name);
    if (t->i64 && !s->i64)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has dtype %s, expected I64", path, t->name,
                       st_dtype_name(s->dtype));
    if (!t->i64 && !s->f32)
        return rn_fail(RN_ERR_MISMATCH,
                       "%s: tensor '%s' has dtype %s, expected a float type (F32, F16, BF16, F64)",
                       path, t->name, st_dtype_name(s->dtype));
    return RN_OK;
}

/* Copies every model tensor from f; with skip_head, fc.* keep their values. Every tensor is
 * checked first: a file that does not fit leaves the model as it was. */
static rn_status copy_tensors(rn_model *m, const st_file *f, const char *path, int skip_head) {
    if (m->quantized)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: float32 weights cannot be loaded into an int8 "
                       "model (quantize the float32 model instead)", path);
    char prefix[64];
    shared_prefix(f, prefix, sizeof prefix);
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *t = &m->tensors[i];
        if (skip_head && strncmp(t->name, "fc.", 3) == 0)
            continue;
        const st_tensor *s = st_find(f, t->name);
        if (!s && !t->i64 && prefix[0])
            return refuse_prefixed(path, t->name, m->arch->name, prefix);
        RN_TRY(tensor_fits(m, t, s, path));
    }
    /* Every name in the file must belong to the model. */
    for (size_t j = 0; j < f->count; j++) {
        int known = 0;
        for (int i = 0; i < m->n_tensors && !known; i++)
            known = strcmp(m->tensors[i].name, f->tensors[j].name) == 0;
        if (!known)
            return rn_fail(RN_ERR_MISMATCH, "%s: unexpected tensor '%s' for %s", path,
                           f->tensors[j].name, m->arch->name);
    }
    rn_model_params_changed(m);
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *t = &m->tensors[i];
        if (skip_head && strncmp(t->name, "fc.", 3) == 0)
            continue;
        const st_tensor *s = st_find(f, t->name);
        if (t->i64)
            *t->i64 = s ? s->i64[0] : 0;
        else
            memcpy(t->f32, s->f32, t->numel * sizeof(float));
    }
    return RN_OK;
}

rn_status rn_model_load_weights(rn_model *m, const char *path) {
    if (!m || !path)
        return rn_fail(RN_ERR_ARG, "rn_model_load_weights: NULL argument");
    st_file f;
    RN_TRY(weights_read(path, m->arch->name, &f));
    rn_status st;
    if (rn_quant_is_file(&f)) /* before copy_tensors, which would find int8 tensors */
        st = rn_fail(RN_ERR_UNSUPPORTED, "%s is an int8 model: its weights cannot be loaded into "
                     "%s model; load it as a model of its own (rn_model_load)", path,
                     m->quantized ? "another int8" : "a float32");
    else
        st = copy_tensors(m, &f, path, 0);
    st_free(&f);
    return st;
}

static int st_shape_of(const void *ctx, const char *key, int64_t dims[4]) {
    const st_tensor *t = st_find((const st_file *)ctx, key);
    if (!t)
        return -1;
    for (int i = 0; i < 4; i++)
        dims[i] = i < t->ndim ? t->shape[i] : 0;
    return t->ndim;
}

/* Reads a dimension of a tensor the architecture is inferred from. */
static rn_status dim_of(const st_file *f, const char *path, const char *key, int ndim, int dim,
                        int *out) {
    const st_tensor *t = st_find(f, key);
    if (!t)
        return rn_fail(RN_ERR_MISMATCH, "%s: missing tensor '%s'", path, key);
    if (t->ndim != ndim || t->shape[dim] < 1 || t->shape[dim] > 1000000)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has an unexpected shape", path, key);
    *out = (int)t->shape[dim];
    return RN_OK;
}

/* Reads a weights file and creates the model it describes (num_classes > 0
 * overrides the classifier size; *file_classes receives the file's). */
static rn_status load_file_model(const char *path, const char *arch, int num_classes, st_file *f,
                                 rn_model **out, int *file_classes) {
    *out = NULL;
    RN_TRY(weights_read(path, arch, f));
    rn_status st = RN_OK;
    const rn_arch_desc *a = NULL;
    char prefix[64];
    shared_prefix(f, prefix, sizeof prefix);
    if (!arch)
        arch = st_meta_get(f, "arch");
    if (arch) {
        a = rn_arch_find(arch);
        if (!a)
            st = rn_fail(RN_ERR_ARG, "%s: unknown architecture '%s'", path, arch);
    } else {
        a = rn_arch_guess(st_shape_of, f);
        if (!a && prefix[0])
            st = rn_fail(RN_ERR_MISMATCH,
                         "%s: cannot tell the architecture from the tensor names: every name starts "
                         "with '%s', a wrapper's prefix (only DataParallel's 'module.' is dropped); "
                         "save the inner model's state_dict, or strip the prefix", path, prefix);
        else if (!a)
            st = rn_fail(RN_ERR_MISMATCH,
                         "%s: cannot tell the architecture from the tensor names; name it (the arch "
                         "argument; --arch in the CLI)", path);
    }
    int in_channels = 0, kernel = 7, width = RN_DEFAULT_WIDTH;
    const char *stem_key = a && a->kind == RN_BLOCK_D2L ? "conv.block.0.weight" : "conv1.weight";
    if (st == RN_OK && prefix[0] && !st_find(f, stem_key))
        st = refuse_prefixed(path, stem_key, a->name, prefix);
    if (st == RN_OK)
        st = dim_of(f, path, stem_key, 4, 0, &width);
    if (st == RN_OK)
        st = dim_of(f, path, stem_key, 4, 1, &in_channels);
    if (st == RN_OK)
        st = dim_of(f, path, stem_key, 4, 2, &kernel);
    if (st == RN_OK)
        st = dim_of(f, path, "fc.weight", 2, 0, file_classes);
    /* the sizes rn_model_create_zero accepts, refused here as the file's (naming it and the
     * tensor) rather than as a bad argument */
    const int bad_width = a && (width > 4096 || (a->kind == RN_BLOCK_BOTTLENECK &&
                                                 (width * a->width_per_group) % 64 != 0));
    if (st == RN_OK && (bad_width || in_channels > 4096)) {
        const st_tensor *t = st_find(f, stem_key);
        char got[96];
        rn_shape_str(got, sizeof got, t->ndim, t->shape);
        if (in_channels > 4096)
            st = rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' has shape %s: %d input channels, out of "
                         "range 1..4096", path, stem_key, got, in_channels);
        else if (width > 4096)
            st = rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' has shape %s: a stem of %d channels (the "
                         "width), out of range 1..4096", path, stem_key, got, width);
        else
            st = rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' has shape %s: a %s stem of %d channels "
                         "gives a fractional number of channels per group (width x %d must be a "
                         "multiple of 64)", path, stem_key, got, a->name, width, a->width_per_group);
    }
    /* zero, not randomly initialised: copy_tensors overwrites every tensor (the
     * random initialisation took half the time of loading a large model) */
    if (st == RN_OK) {
        st = rn_model_create_zero(a->name, in_channels, num_classes > 0 ? num_classes : *file_classes,
                                  kernel == 3 ? RN_STEM_CIFAR : RN_STEM_IMAGENET, width, out);
        if (st != RN_OK) { /* the file's sizes were checked above: say which file it was */
            char why[512];
            snprintf(why, sizeof why, "%s", rn_last_error());
            st = rn_fail(st, "%s: %s", path, why);
        }
    }
    if (st != RN_OK)
        st_free(f);
    return st;
}

rn_status rn_model_load_meta(const char *path, const char *arch,
                            void (*get_meta)(void *ctx, const char *key, const char *value),
                            void *ctx, rn_model **out) {
    if (!path || !out)
        return rn_fail(RN_ERR_ARG, "rn_model_load: NULL argument");
    st_file f;
    int classes = 0;
    RN_TRY(load_file_model(path, arch, 0, &f, out, &classes));
    pass_meta(&f, get_meta, ctx);
    rn_status st = rn_quant_is_file(&f) ? rn_quant_load(*out, &f, path) : copy_tensors(*out, &f, path, 0);
    st_free(&f);
    if (st != RN_OK) {
        rn_model_free(*out);
        *out = NULL;
    }
    return st;
}

rn_status rn_model_load(const char *path, const char *arch, rn_model **out) {
    return rn_model_load_meta(path, arch, NULL, NULL, out);
}

rn_status rn_model_load_finetune(const char *path, const char *arch, int num_classes, uint64_t seed,
                                 rn_model **out, int *head_replaced) {
    if (!path || !out || num_classes < 1)
        return rn_fail(RN_ERR_ARG, "rn_model_load_finetune: bad argument");
    st_file f;
    int classes = 0;
    RN_TRY(load_file_model(path, arch, num_classes, &f, out, &classes));
    if (rn_quant_is_file(&f)) {
        st_free(&f);
        rn_model_free(*out);
        *out = NULL;
        return rn_fail(RN_ERR_UNSUPPORTED, "%s is an int8 model: it can be evaluated and run, not "
                       "trained; start from the float32 weights it was quantized from", path);
    }
    int replace = classes != num_classes;
    if (replace)
        rn_model_init_default(*out, seed); /* the fresh classifier; the rest is overwritten */
    rn_status st = copy_tensors(*out, &f, path, replace);
    st_free(&f);
    if (st != RN_OK) {
        rn_model_free(*out);
        *out = NULL;
        return st;
    }
    if (head_replaced)
        *head_replaced = replace;
    return RN_OK;
}

rn_status rn_model_write_to(const rn_model *m, rn_wfile *w, const char *const *keys,
                            const char *const *values, int count) {
    if (!m || !w || !w->f || count < 0 || (count > 0 && (!keys || !values)))
        return rn_fail(RN_ERR_ARG, "rn_model_save: bad argument");
    for (int i = 0; i < count; i++)
        if (!keys[i] || !values[i])
            return rn_fail(RN_ERR_ARG, "%s: metadata entry %d has a NULL %s", w->path, i,
                           keys[i] ? "value" : "key");
    if (m->quantized)
        return rn_quant_write(m, w, keys, values, count);
    const char *path = w->path;
    st_entry *e = calloc((size_t)m->n_tensors, sizeof *e);
    st_meta *meta = calloc((size_t)count + 4, sizeof *meta);
    if (!e || !meta) {
        free(e);
        free(meta);
        return rn_fail(RN_ERR_NOMEM, "out of memory saving %s", path);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *t = &m->tensors[i];
        e[i] = (st_entry){.name = t->name, .dtype = t->i64 ? ST_I64 : ST_F32, .ndim = t->ndim,
                          .shape = t->shape, .data = t->i64 ? (const void *)t->i64 : (const void *)t->f32};
    }
    char in_ch[16], classes[16];
    snprintf(in_ch, sizeof in_ch, "%d", m->in_channels);
    snprintf(classes, sizeof classes, "%d", m->num_classes);
    meta[0] = (st_meta){"format", "pt"};
    meta[1] = (st_meta){"arch", (char *)m->arch->name};
    meta[2] = (st_meta){"in_channels", in_ch};
    meta[3] = (st_meta){"num_classes", classes};
    int n = 4;
    for (int i = 0; i < count; i++) {
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = strcmp(meta[j].key, keys[i]) == 0;
        if (!dup)
            meta[n++] = (st_meta){(char *)keys[i], (char *)values[i]};
    }
    rn_status st = st_write_to(w, e, (size_t)m->n_tensors, meta, (size_t)n);
    free(e);
    free(meta);
    return st;
}

rn_status rn_model_save_meta(const rn_model *m, const char *path, const char *const *keys,
                             const char *const *values, int count) {
    if (!m || !path)
        return rn_fail(RN_ERR_ARG, "rn_model_save: bad argument");
    rn_wfile w;
    RN_TRY(rn_wfile_open(&w, path));
    rn_status st = rn_model_write_to(m, &w, keys, values, count);
    if (st != RN_OK) {
        rn_wfile_discard(&w);
        return st;
    }
    return rn_wfile_commit(&w);
}

rn_status rn_model_save(const rn_model *m, const char *path) {
    return rn_model_save_meta(m, path, NULL, NULL, 0);
}

rn_status rn_weights_meta(const char *path, const char *key, char *value, size_t cap) {
    if (!path || !key || !value || cap == 0)
        return rn_fail(RN_ERR_ARG, "rn_weights_meta: bad argument");
    st_file f;
    RN_TRY(weights_read(path, NULL, &f));
    const char *v = st_meta_get(&f, key);
    rn_status st;
    char what[1024];
    snprintf(what, sizeof what, "%s: metadata '%s'", path, key);
    if (!v) {
        value[0] = 0;
        st = rn_fail(RN_ERR_MISMATCH, "%s: no metadata key '%s'", path, key);
    } else {
        st = rn_copy_text(value, cap, v, what); /* not cut short in silence */
    }
    st_free(&f);
    return st;
}

rn_status rn_weights_meta_each(const char *path,
                               void (*get_meta)(void *ctx, const char *key, const char *value),
                               void *ctx) {
    if (!path || !get_meta)
        return rn_fail(RN_ERR_ARG, "rn_weights_meta_each: NULL argument");
    st_file f;
    RN_TRY(weights_read(path, NULL, &f));
    pass_meta(&f, get_meta, ctx);
    st_free(&f);
    return RN_OK;
}
