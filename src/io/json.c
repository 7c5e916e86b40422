/* json.c - a strict recursive-descent JSON parser and a string builder. */
#include "io/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"

/* ---------------------------------------------------------------------------
 * Parser state and errors
 * ------------------------------------------------------------------------- */

typedef struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;              /* next byte to read */
    size_t base;             /* added to every reported offset */
    size_t values;           /* values created so far (JSON_MAX_VALUES) */
    int depth;               /* open arrays and objects (JSON_MAX_DEPTH) */
} parser;

/* Fails with "invalid JSON at byte <at + base>: <reason>". */
static rn_status syntax(const parser *p, size_t at, const char *fmt, ...) RN_PRINTF(3, 4);
static rn_status syntax(const parser *p, size_t at, const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return rn_fail(RN_ERR_FORMAT, "invalid JSON at byte %zu: %s", at + p->base, reason);
}

static rn_status nomem(const parser *p, size_t at) {
    return rn_fail(RN_ERR_NOMEM, "out of memory parsing JSON at byte %zu", at + p->base);
}

/* Describes the byte at `at` (or the end of input) for messages. */
static void describe_byte(const parser *p, size_t at, char out[32]) {
    if (at >= p->len)
        snprintf(out, 32, "end of input");
    else if (p->s[at] > 0x20 && p->s[at] < 0x7f)
        snprintf(out, 32, "'%c'", p->s[at]);
    else
        snprintf(out, 32, "byte 0x%02x", p->s[at]);
}

static rn_status unexpected(const parser *p, const char *expected) {
    char got[32];
    describe_byte(p, p->pos, got);
    return syntax(p, p->pos, "expected %s, found %s", expected, got);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* ---------------------------------------------------------------------------
 * UTF-8 and messages
 * ------------------------------------------------------------------------- */

size_t json_utf8_seq(const unsigned char *s, size_t n) {
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;  /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;        /* overlong */
        if (c == 0xed) hi = 0x9f;        /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;        /* overlong */
        if (c == 0xf4) hi = 0x8f;        /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need;
}

int json_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = json_utf8_seq(u + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

void json_printable(char *out, size_t cap, const char *s) {
    size_t n = strlen(s), keep = n < cap ? n : cap - 4;
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (keep < n)
        memcpy(out + keep, "...", 4);
    else
        out[keep] = '\0';
}

/* ---------------------------------------------------------------------------
 * Strings
 * ------------------------------------------------------------------------- */

static int hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the \u escape at p->pos (pointing at the 'u') into *cp, joining a
 * surrogate pair; advances past it. */
static rn_status parse_u_escape(parser *p, size_t esc, unsigned *cp) {
    if (p->len - p->pos < 5 || !hex4(p->s + p->pos + 1, cp))
        return syntax(p, esc, "\\u must be followed by 4 hex digits");
    p->pos += 5;
    if (*cp >= 0xdc00 && *cp <= 0xdfff)
        return syntax(p, esc, "lone low surrogate \\u%04X", *cp);
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        unsigned lo;
        if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
            !hex4(p->s + p->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return syntax(p, esc, "high surrogate \\u%04X not followed by a low surrogate", *cp);
        p->pos += 6;
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (*cp == 0)
        return syntax(p, esc, "\\u0000 in a string is not supported");
    return RN_OK;
}

/* Parses the string at p->pos (a '"') into a malloc'ed, NUL-terminated
 * UTF-8 string. The decoded text is never longer than the quoted source. */
static rn_status parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->pos, end = start + 1;
    while (end < p->len && p->s[end] != '"')
        end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len)
        return syntax(p, start, "unterminated string");
    char *o = malloc(end - start);
    if (!o)
        return nomem(p, start);
    size_t n = 0;
    rn_status st = RN_OK;
    p->pos = start + 1;
    while (st == RN_OK && p->pos < end) {
        unsigned char c = p->s[p->pos];
        if (c < 0x20) {
            st = syntax(p, p->pos, "control character 0x%02x in string", c);
        } else if (c == '\\') {
            size_t esc = p->pos++;
            unsigned cp = 0;
            switch (p->s[p->pos]) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': st = parse_u_escape(p, esc, &cp); break;
            default: st = syntax(p, esc, "invalid escape in string");
            }
            if (st == RN_OK) {
                if (p->s[esc + 1] != 'u')
                    p->pos++;
                n += put_utf8(cp, o + n);
            }
        } else {
            size_t k = json_utf8_seq(p->s + p->pos, end - p->pos);
            if (k == 0) {
                st = syntax(p, p->pos, "invalid UTF-8 in string");
            } else {
                memcpy(o + n, p->s + p->pos, k);
                n += k;
                p->pos += k;
            }
        }
    }
    if (st != RN_OK) {
        free(o);
        return st;
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = o;
    *out_len = n;
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Numbers and literals
 * ------------------------------------------------------------------------- */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static rn_status parse_number(parser *p, json_value *v) {
    size_t start = p->pos;
    int negative = 0, overflow = 0;
    uint64_t mag = 0;
    if (p->s[p->pos] == '-') {
        negative = 1;
        p->pos++;
    }
    if (p->pos >= p->len || !is_digit(p->s[p->pos]))
        return syntax(p, start, "'-' must be followed by a digit");
    if (p->s[p->pos] == '0' && p->pos + 1 < p->len && is_digit(p->s[p->pos + 1]))
        return syntax(p, start, "number with a leading zero");
    while (p->pos < p->len && is_digit(p->s[p->pos])) {
        unsigned d = p->s[p->pos++] - '0';
        if (mag > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            mag = mag * 10 + d;
    }
    v->is_int = 1;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos]))
            return syntax(p, start, "'.' in a number must be followed by a digit");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
        v->is_int = 0;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos]))
            return syntax(p, start, "exponent in a number must have digits");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
        v->is_int = 0;
    }
    v->type = JSON_NUMBER;
    if (v->is_int) {
        uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (overflow || mag > limit)
            return syntax(p, start, "integer out of the 64-bit range");
        v->integer = negative ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    return RN_OK;
}

static rn_status parse_literal(parser *p, json_value *v) {
    static const struct { const char *word; json_type type; int boolean; } words[] = {
        {"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[i].word, n) == 0) {
            p->pos += n;
            v->type = words[i].type;
            v->boolean = words[i].boolean;
            return RN_OK;
        }
    }
    return unexpected(p, "a value");
}

/* ---------------------------------------------------------------------------
 * Arrays and objects
 * ------------------------------------------------------------------------- */

static rn_status parse_value(parser *p, json_value *v);

/* Grows *items (element size `size`) to hold at least n + 1 elements. */
static int grow(void **items, size_t *cap, size_t n, size_t size) {
    if (n < *cap)
        return 1;
    size_t new_cap, bytes;
    if (!rn_size_mul(*cap ? *cap : 4, *cap ? 2 : 1, &new_cap) ||
        !rn_size_mul(new_cap, size, &bytes))
        return 0;
    void *grown = realloc(*items, bytes);
    if (!grown)
        return 0;
    *items = grown;
    *cap = new_cap;
    return 1;
}

static rn_status parse_array(parser *p, json_value *v) {
    json_value *items = NULL;
    size_t n = 0, cap = 0;
    rn_status st = RN_OK;
    p->pos++;  /* '[' */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            if (!grow((void **)&items, &cap, n, sizeof *items)) {
                st = nomem(p, p->pos);
                break;
            }
            skip_ws(p);
            if ((st = parse_value(p, &items[n])) != RN_OK)
                break;
            n++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
            } else if (p->pos < p->len && p->s[p->pos] == ']') {
                p->pos++;
                break;
            } else {
                st = unexpected(p, "',' or ']' in array");
                break;
            }
        }
    }
    if (st != RN_OK) {
        for (size_t i = 0; i < n; i++)
            json_free(&items[i]);
        free(items);
        return st;
    }
    v->type = JSON_ARRAY;
    v->items = items;
    v->count = n;
    return RN_OK;
}

static int compare_members(const void *a, const void *b) {
    const json_member *x = *(const json_member *const *)a, *y = *(const json_member *const *)b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Fails if two members share a key, naming the later one. */
static rn_status check_unique_keys(const parser *p, const json_member *m, size_t n) {
    if (n < 2)
        return RN_OK;
    const json_member **sorted = malloc(n * sizeof *sorted);  /* n <= JSON_MAX_VALUES */
    if (!sorted)
        return nomem(p, m[0].offset - p->base);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &m[i];
    qsort(sorted, n, sizeof *sorted, compare_members);
    rn_status st = RN_OK;
    for (size_t i = 1; i < n && st == RN_OK; i++) {
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            char key[96];
            json_printable(key, sizeof key, sorted[i]->key);
            st = syntax(p, sorted[i]->offset - p->base, "duplicate key '%s' (first at byte %zu)",
                        key, sorted[i - 1]->offset);
        }
    }
    free(sorted);
    return st;
}

static rn_status parse_member(parser *p, json_member *m) {
    size_t key_len;
    if (p->pos >= p->len || p->s[p->pos] != '"')
        return unexpected(p, "a string key");
    m->offset = p->pos + p->base;
    RN_TRY(parse_string(p, &m->key, &key_len));
    skip_ws(p);
    rn_status st = RN_OK;
    if (p->pos >= p->len || p->s[p->pos] != ':') {
        st = unexpected(p, "':' after key");
    } else {
        p->pos++;
        skip_ws(p);
        st = parse_value(p, &m->value);
    }
    if (st != RN_OK)
        free(m->key);
    return st;
}

static rn_status parse_object(parser *p, json_value *v) {
    json_member *members = NULL;
    size_t n = 0, cap = 0;
    rn_status st = RN_OK;
    p->pos++;  /* '{' */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            if (!grow((void **)&members, &cap, n, sizeof *members)) {
                st = nomem(p, p->pos);
                break;
            }
            skip_ws(p);
            if ((st = parse_member(p, &members[n])) != RN_OK)
                break;
            n++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
            } else if (p->pos < p->len && p->s[p->pos] == '}') {
                p->pos++;
                break;
            } else {
                st = unexpected(p, "',' or '}' in object");
                break;
            }
        }
    }
    if (st == RN_OK)
        st = check_unique_keys(p, members, n);
    if (st != RN_OK) {
        for (size_t i = 0; i < n; i++) {
            free(members[i].key);
            json_free(&members[i].value);
        }
        free(members);
        return st;
    }
    v->type = JSON_OBJECT;
    v->members = members;
    v->count = n;
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------- */

/* Parses the value at p->pos (whitespace already skipped) into *v. On
 * failure *v is a JSON_NULL with nothing to free. */
static rn_status parse_value(parser *p, json_value *v) {
    memset(v, 0, sizeof *v);
    v->offset = p->pos + p->base;
    if (++p->values > JSON_MAX_VALUES)
        return syntax(p, p->pos, "more than %u values", JSON_MAX_VALUES);
    if (p->pos >= p->len)
        return unexpected(p, "a value");
    unsigned char c = p->s[p->pos];
    rn_status st;
    if (c == '{' || c == '[') {
        if (++p->depth > JSON_MAX_DEPTH)
            return syntax(p, p->pos, "nesting deeper than %d levels", JSON_MAX_DEPTH);
        st = c == '{' ? parse_object(p, v) : parse_array(p, v);
        p->depth--;
    } else if (c == '"') {
        char *s;
        size_t n;
        st = parse_string(p, &s, &n);
        if (st == RN_OK) {
            v->type = JSON_STRING;
            v->string = s;
            v->count = n;
        }
    } else if (c == '-' || is_digit(c)) {
        st = parse_number(p, v);
    } else {
        st = parse_literal(p, v);
    }
    if (st != RN_OK)
        memset(v, 0, sizeof *v);
    return st;
}

rn_status json_parse(const char *text, size_t len, size_t base, json_value *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "json_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!text && len)
        return rn_fail(RN_ERR_ARG, "json_parse: text is NULL");
    parser p = {(const unsigned char *)text, len, 0, base, 0, 0};
    skip_ws(&p);
    RN_TRY(parse_value(&p, out));
    skip_ws(&p);
    if (p.pos != p.len) {
        char got[32];
        describe_byte(&p, p.pos, got);
        json_free(out);
        return syntax(&p, p.pos, "unexpected %s after the value", got);
    }
    return RN_OK;
}

void json_free(json_value *v) {
    if (!v)
        return;
    if (v->type == JSON_STRING) {
        free(v->string);
    } else if (v->type == JSON_ARRAY) {
        for (size_t i = 0; i < v->count; i++)
            json_free(&v->items[i]);
        free(v->items);
    } else if (v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->count; i++) {
            free(v->members[i].key);
            json_free(&v->members[i].value);
        }
        free(v->members);
    }
    memset(v, 0, sizeof *v);
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key)
        return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->members[i].key, key) == 0)
            return &obj->members[i].value;
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

void json_buf_put(json_buf *b, const char *s, size_t n) {
    size_t need;
    if (b->failed)
        return;
    if (!rn_size_add(b->len, n, &need) || !rn_size_add(need, 1, &need)) {
        b->failed = 1;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            if (!rn_size_mul(cap, 2, &cap)) {
                b->failed = 1;
                return;
            }
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void json_buf_printf(json_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        json_buf_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    json_buf_put(b, big, (size_t)n);
    free(big);
}

void json_buf_string(json_buf *b, const char *s) {
    json_buf_put(b, "\"", 1);
    for (const char *run = s;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20)
            continue;
        json_buf_put(b, run, (size_t)(s - run));
        if (c == '\0')
            break;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            json_buf_put(b, esc, 2);
        } else {
            json_buf_printf(b, "\\u%04x", c);
        }
        run = s + 1;
    }
    json_buf_put(b, "\"", 1);
}

void json_buf_free(json_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}
