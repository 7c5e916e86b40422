/*
 * cpu.c - CPU features (CPUID + the OS's register-state support) and the
 * process's default kernel instruction set (contract in cpu.h).
 */
#include "core/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RN_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static rn_cpu_features features;
static char cpu_name[128] = "unknown";
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

#ifdef RN_X86
static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

/* Linux hands out the AMX tile registers (8 KB of state a thread) only to a process that asks
 * for them first; the answer covers every thread of the process, later ones too. */
static int amx_permitted(void) {
#if defined(__linux__)
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}
#endif

static void read_cpu_name(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(cpu_name, sizeof cpu_name, "%s", v);
        cpu_name[strcspn(cpu_name, "\n")] = 0;
        break;
    }
    fclose(f);
}

static void detect(void) {
    read_cpu_name();
#ifdef RN_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx)
        return;
    const unsigned long long xcr0 = xgetbv0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;            /* SSE + AVX state */
    const int os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0; /* opmask + upper zmm */
    const int os_amx = (xcr0 & 0x60000) == 0x60000;    /* XTILECFG + XTILEDATA */
    if (__get_cpuid_max(0, NULL) < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int vnni = (c >> 11) & 1;
    const int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    features.avx2_fma = os_ymm && avx2 && fma;
    features.avx512 = os_zmm && features.avx2_fma && f && dq && bw && vl;
    features.avx512_vnni = features.avx512 && vnni;
    features.avx512_bf16 = features.avx512 && ((a1 >> 5) & 1);
    features.avx512_vbmi = features.avx512 && ((c >> 1) & 1);
    features.avx_vnni = features.avx2_fma && ((a1 >> 4) & 1);
    features.amx = os_amx && amx_tile && amx_bf16 && amx_int8 && amx_permitted();
#endif
}

const rn_cpu_features *rn_cpu(void) {
    pthread_once(&features_once, detect);
    return &features;
}

const char *rn_cpu_name(void) {
    pthread_once(&features_once, detect);
    return cpu_name;
}

/* ---- instruction sets ------------------------------------------------------------------- */

static const char *const ISA_NAMES[RN_ISA_COUNT] = {"portable", "avx2", "avx512", "amx"};

const char *rn_isa_name(rn_isa isa) {
    return isa >= 0 && isa < RN_ISA_COUNT ? ISA_NAMES[isa] : "?";
}

rn_status rn_isa_parse(const char *name, rn_isa *out) {
    for (int i = 0; name && i < RN_ISA_COUNT; i++)
        if (strcmp(name, ISA_NAMES[i]) == 0) {
            *out = (rn_isa)i;
            return RN_OK;
        }
    return rn_fail(RN_ERR_ARG, "unknown instruction set '%s' (expected amx, avx512, avx2 or portable)",
                   name ? name : "(null)");
}

int rn_isa_usable(rn_isa isa) {
    const rn_cpu_features *f = rn_cpu();
    switch (isa) {
    case RN_ISA_PORTABLE:
        return 1;
#ifdef RN_HAVE_X86_KERNELS
    case RN_ISA_AVX2:
        return f->avx2_fma;
    case RN_ISA_AVX512:
        return f->avx512;
    case RN_ISA_AMX:
        return f->avx512 && f->avx512_vnni && f->avx512_bf16 && f->amx;
#endif
    default:
        (void)f;
        return 0;
    }
}

static rn_isa default_isa;
static rn_status default_status;
static char default_error[256];
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void resolve_default(void) {
    const char *env = getenv("RN_ISA");
    if (env && *env) {
        rn_isa isa;
        if (rn_isa_parse(env, &isa) != RN_OK) {
            default_status = RN_ERR_ARG;
            snprintf(default_error, sizeof default_error,
                     "RN_ISA=%s: unknown instruction set (expected amx, avx512, avx2 or portable)", env);
        } else if (!rn_isa_usable(isa)) {
            default_status = RN_ERR_UNSUPPORTED;
            snprintf(default_error, sizeof default_error,
                     "RN_ISA=%s: this CPU (%s) cannot run the %s kernels", env, rn_cpu_name(), env);
        } else {
            default_isa = isa;
        }
        return;
    }
    default_isa = RN_ISA_PORTABLE;
    for (int i = RN_ISA_COUNT - 1; i > 0; i--)
        if (rn_isa_usable((rn_isa)i)) {
            default_isa = (rn_isa)i;
            break;
        }
}

rn_status rn_isa_default(rn_isa *out) {
    pthread_once(&default_once, resolve_default);
    if (default_status != RN_OK)
        return rn_fail(default_status, "%s", default_error);
    *out = default_isa;
    return RN_OK;
}

/* ---- the public view --------------------------------------------------------------------- */

const char *rn_cpu_model(void) { return rn_cpu_name(); }

int rn_isa_supported(const char *name) {
    rn_isa isa;
    for (int i = 0; name && i < RN_ISA_COUNT; i++)
        if (strcmp(name, ISA_NAMES[i]) == 0) {
            isa = (rn_isa)i;
            return rn_isa_usable(isa);
        }
    return 0;
}

rn_status rn_isa_check(void) {
    rn_isa isa;
    return rn_isa_default(&isa);
}
