/*
 * folder.c - rn_folder_load: the file list and labels of an image folder in
 * torchvision's ImageFolder layout (DIR/{train,val}/CLASS/.../IMAGE).
 *
 * ImageFolder's order, reproduced: classes are the split's sub-folders
 * (symbolic links followed, hidden ones included) sorted by name; a class's
 * samples come from sorted(os.walk(class_dir, followlinks=True)), i.e. its
 * folders sorted by full path and each folder's files sorted by name.
 * Python compares str by code point, which for UTF-8 names is byte order,
 * so strcmp sorts as it does. Nothing is decoded here.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/status.h"
#include "data/dataset.h"
#include "data/resize.h"

#define FOLDER_MAX_DEPTH 64          /* deeper nesting is taken for a link loop */
#define FOLDER_MAX_IMAGES (INT_MAX / 2)
#define FOLDER_DEFAULT_SIZE 224

/* ---------------------------------------------------------------------------
 * Lists of strings
 * ------------------------------------------------------------------------- */

typedef struct strs {
    char **v;
    int n, cap;
} strs;

static rn_status strs_push_owned(strs *s, char *str) {
    if (!str)
        return rn_fail(RN_ERR_NOMEM, "image folder: out of memory for the file names");
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) {
            free(str);
            return rn_fail(RN_ERR_NOMEM, "image folder: out of memory for the file names");
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return RN_OK;
}

static void strs_free(strs *s) {
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strs_sort(strs *s) {
    if (s->n > 1)
        qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_str);
}

/* "a/b", malloc'ed (NULL when out of memory). */
/* a/b, as os.path.join: no second '/' after an a that ends in one ("photos/" given) */
static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    const int slash = la == 0 || a[la - 1] != '/';
    char *p = malloc(la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        if (slash)
            p[la] = '/';
        memcpy(p + la + slash, b, lb + 1);
    }
    return p;
}

/* ---------------------------------------------------------------------------
 * Folders
 * ------------------------------------------------------------------------- */

/* Whether path/name (the entry ent) is a folder, following symbolic links as
 * os.DirEntry.is_dir() does; an entry that cannot be stat'ed is not one. */
static int is_dir_entry(const char *path, const struct dirent *ent) {
#ifdef _DIRENT_HAVE_D_TYPE
    if (ent->d_type == DT_DIR)
        return 1;
    if (ent->d_type != DT_LNK && ent->d_type != DT_UNKNOWN)
        return 0;
#endif
    char *full = join(path, ent->d_name);
    struct stat sb;
    int dir = full && stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(full);
    return dir;
}

/* The names in folder `path`, without "." and "..": sub-folders into *dirs
 * (when not NULL) and everything else into *files (when not NULL), unsorted. */
static rn_status list_folder(const char *path, strs *dirs, strs *files) {
    DIR *d = opendir(path);
    if (!d)
        return rn_fail(RN_ERR_IO, "%s: cannot open the folder: %s", path, strerror(errno));
    rn_status st = RN_OK;
    for (;;) {
        errno = 0;
        struct dirent *ent = readdir(d);
        if (!ent) {
            if (errno)
                st = rn_fail(RN_ERR_IO, "%s: cannot list the folder: %s", path, strerror(errno));
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        strs *to = is_dir_entry(path, ent) ? dirs : files;
        if (to && (st = strs_push_owned(to, strdup(ent->d_name))) != RN_OK)
            break;
    }
    closedir(d);
    return st;
}

/* Appends `path` and every folder below it (links followed) to *out. */
static rn_status walk(const char *path, int depth, strs *out) {
    if (depth > FOLDER_MAX_DEPTH)
        return rn_fail(RN_ERR_FORMAT, "%s: folders nested more than %d deep (a symbolic-link "
                       "loop?)", path, FOLDER_MAX_DEPTH);
    RN_TRY(strs_push_owned(out, strdup(path)));
    strs sub = {0};
    rn_status st = list_folder(path, &sub, NULL);
    for (int i = 0; st == RN_OK && i < sub.n; i++) {
        char *child = join(path, sub.v[i]);
        st = child ? walk(child, depth + 1, out)
                   : rn_fail(RN_ERR_NOMEM, "image folder: out of memory for the file names");
        free(child);
    }
    strs_free(&sub);
    return st;
}

/* ---------------------------------------------------------------------------
 * Samples
 * ------------------------------------------------------------------------- */

static int ends_with_ci(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

/* 1: an image we read; -1: an extension ImageFolder takes that we cannot
 * decode; 0: not an image (ignored, as ImageFolder ignores it). */
static int image_kind(const char *name) {
    static const char *const ours[] = {".jpg", ".jpeg", ".png"};
    static const char *const theirs[] = {".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
    for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
        if (ends_with_ci(name, ours[i]))
            return 1;
    for (size_t i = 0; i < sizeof theirs / sizeof *theirs; i++)
        if (ends_with_ci(name, theirs[i]))
            return -1;
    return 0;
}

/* The growing sample list: full paths and labels. */
typedef struct samples {
    strs paths;
    int32_t *labels;
    int cap;
} samples;

static rn_status add_sample(samples *s, const char *folder, const char *name, int label) {
    if (s->paths.n >= FOLDER_MAX_IMAGES)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: more than %d images", folder, FOLDER_MAX_IMAGES);
    if (s->paths.n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        int32_t *l = realloc(s->labels, (size_t)cap * sizeof *l);
        if (!l)
            return rn_fail(RN_ERR_NOMEM, "image folder: out of memory for the labels");
        s->labels = l;
        s->cap = cap;
    }
    s->labels[s->paths.n] = label;
    return strs_push_owned(&s->paths, join(folder, name));
}

/* Appends the images of folder `dir` and those below it in ImageFolder's order (the folders
 * sorted by path, each one's files by name), labelled `label`. */
/* Appends the images among `files` (names in `folder`, sorted here) in order, labelled `label`;
 * a kind ImageFolder takes that is not read here fails naming it. */
static rn_status add_files(samples *s, const char *folder, strs *files, int label) {
    strs_sort(files);
    rn_status st = RN_OK;
    for (int k = 0; st == RN_OK && k < files->n; k++) {
        int kind = image_kind(files->v[k]);
        if (kind < 0)
            st = rn_fail(RN_ERR_UNSUPPORTED, "%s/%s: only JPEG and PNG images are read (convert "
                         "the file or move it out of the folder)", folder, files->v[k]);
        else if (kind > 0)
            st = add_sample(s, folder, files->v[k], label);
    }
    return st;
}

static rn_status add_tree(samples *s, const char *dir, int label) {
    strs folders = {0};
    rn_status st = walk(dir, 0, &folders);
    strs_sort(&folders);
    for (int i = 0; st == RN_OK && i < folders.n; i++) {
        strs files = {0};
        st = list_folder(folders.v[i], NULL, &files);
        if (st == RN_OK)
            st = add_files(s, folders.v[i], &files, label);
        strs_free(&files);
    }
    strs_free(&folders);
    return st;
}

/* Appends the images of class folder `class_dir` in ImageFolder's order. */
static rn_status add_class(samples *s, const char *class_dir, int label) {
    const int before = s->paths.n;
    RN_TRY(add_tree(s, class_dir, label));
    if (s->paths.n == before)
        return rn_fail(RN_ERR_FORMAT, "%s: no .jpg, .jpeg or .png images in this class folder",
                       class_dir);
    return RN_OK;
}

/* Moves the paths into one block: count pointers, then the strings. */
static rn_status pack_paths(strs *paths, char ***out) {
    size_t bytes = (size_t)paths->n * sizeof(char *);
    for (int i = 0; i < paths->n; i++)
        bytes += strlen(paths->v[i]) + 1;
    char **block = malloc(bytes);
    if (!block)
        return rn_fail(RN_ERR_NOMEM, "image folder: out of memory for %d file names", paths->n);
    char *p = (char *)(block + paths->n);
    for (int i = 0; i < paths->n; i++) {
        size_t len = strlen(paths->v[i]) + 1;
        memcpy(p, paths->v[i], len);
        block[i] = p;
        p += len;
    }
    *out = block;
    return RN_OK;
}

rn_status rn_folder_images(const char *dir, char ***paths, int *count) {
    *paths = NULL;
    *count = 0;
    samples s = {0};
    /* the folder's own files, then each sub-folder as ImageFolder takes a class folder (a
     * sorted(os.walk) of it): a folder of class folders in ImageFolder's order, which a walk of
     * the whole tree sorted by path is not where a class's name holds a character before '/' */
    strs subs = {0}, files = {0};
    rn_status st = list_folder(dir, &subs, &files);
    strs_sort(&subs);
    if (st == RN_OK)
        st = add_files(&s, dir, &files, 0);
    for (int k = 0; st == RN_OK && k < subs.n; k++) {
        char *sub = join(dir, subs.v[k]);
        st = sub ? add_tree(&s, sub, 0)
                 : rn_fail(RN_ERR_NOMEM, "image folder: out of memory for the file names");
        free(sub);
    }
    strs_free(&subs);
    strs_free(&files);
    if (st == RN_OK && s.paths.n == 0)
        st = rn_fail(RN_ERR_FORMAT, "%s: no .jpg, .jpeg or .png images in this folder or below it",
                     dir);
    if (st == RN_OK)
        st = pack_paths(&s.paths, paths);
    if (st == RN_OK)
        *count = s.paths.n;
    strs_free(&s.paths);
    free(s.labels);
    return st;
}

/* ---------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------- */

rn_status rn_folder_load(const char *dir, int train, const rn_folder_options *opt,
                         rn_dataset *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_folder_load: NULL output");
    memset(out, 0, sizeof *out);
    if (!dir)
        return rn_fail(RN_ERR_ARG, "rn_folder_load: NULL directory");
    int channels = opt && opt->channels ? opt->channels : 3;
    int size = opt && opt->image_size ? opt->image_size : FOLDER_DEFAULT_SIZE;
    if (channels != 1 && channels != 3)
        return rn_fail(RN_ERR_ARG, "image folder: channels must be 1 or 3, not %d", channels);
    if (size < 1 || size > RN_RESIZE_MAX_SIDE)
        return rn_fail(RN_ERR_ARG, "image folder: image size %d is not in 1..%d", size,
                       RN_RESIZE_MAX_SIDE);

    char *split = join(dir, train ? "train" : "val");
    if (!split)
        return rn_fail(RN_ERR_NOMEM, "image folder: out of memory");
    struct stat sb;
    int found = stat(split, &sb) == 0;
    if (!found || !S_ISDIR(sb.st_mode)) {
        const char *why = found ? "not a folder" : strerror(errno);
        rn_status st = rn_fail(RN_ERR_IO, "%s: %s (an image folder holds DIR/train/CLASS/IMAGE "
                               "and DIR/val/CLASS/IMAGE)", split, why);
        free(split);
        return st;
    }

    strs classes = {0}, trained = {0};
    samples s = {0};
    rn_status st = list_folder(split, &classes, NULL);
    strs_sort(&classes);
    if (st == RN_OK && classes.n == 0)
        st = rn_fail(RN_ERR_FORMAT, "%s: no class folders", split);
    /* the validation split labelled by the training split's classes, matched by name (where
     * DIR/train is there): val/{a,c} beside train/{a,b,c} had labelled c as 1, the model's b */
    char *train_dir = train ? NULL : join(dir, "train");
    const int by_train = train_dir && stat(train_dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (st == RN_OK && by_train) {
        st = list_folder(train_dir, &trained, NULL);
        strs_sort(&trained);
    }
    for (int c = 0; st == RN_OK && c < classes.n; c++) {
        int label = c;
        if (by_train) {
            label = -1;
            for (int k = 0; k < trained.n && label < 0; k++)
                if (strcmp(trained.v[k], classes.v[c]) == 0)
                    label = k;
            if (label < 0) {
                st = rn_fail(RN_ERR_FORMAT, "%s/%s: a class the training split (%s) does not have",
                             split, classes.v[c], train_dir);
                break;
            }
        }
        char *class_dir = join(split, classes.v[c]);
        st = class_dir ? add_class(&s, class_dir, label)
                       : rn_fail(RN_ERR_NOMEM, "image folder: out of memory");
        free(class_dir);
    }
    free(train_dir);
    if (st == RN_OK && by_train) { /* the training split's names and count */
        strs_free(&classes);
        classes = trained;
        memset(&trained, 0, sizeof trained);
    }
    strs_free(&trained);
    if (st == RN_OK)
        st = pack_paths(&s.paths, &out->paths);
    if (st == RN_OK) {
        out->storage = RN_DATASET_FILES;
        out->count = s.paths.n;
        out->channels = channels;
        out->height = out->width = size;
        out->num_classes = classes.n;
        out->class_names = classes.v;
        out->labels = s.labels;
        classes.v = NULL, classes.n = 0;   /* now owned by out */
        s.labels = NULL;
    } else {
        free(out->paths);
        out->paths = NULL;
    }
    strs_free(&classes);
    strs_free(&s.paths);
    free(s.labels);
    free(split);
    return st;
}
