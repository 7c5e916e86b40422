/*
 * cpu.h - what the CPU can do, and which instruction set the kernels use.
 *
 * The instruction set ("ISA") of the fast kernels is chosen once per
 * process: the best one the CPU has, or the one the environment variable
 * RN_ISA names (amx, avx512, avx2 or portable). Asking for one the CPU lacks is
 * an error (rn_isa_default reports it), never a silent fallback. Nothing
 * here depends on the flags the program was compiled with: every kernel is
 * built for its own ISA and called only when the CPU has it.
 */
#ifndef RN_CORE_CPU_H
#define RN_CORE_CPU_H

#include "resnet.h"

typedef enum rn_isa {
    RN_ISA_PORTABLE = 0,  /* plain C, any CPU */
    RN_ISA_AVX2 = 1,      /* AVX2 + FMA (x86-64 since 2013) */
    RN_ISA_AVX512 = 2,    /* AVX-512 F/BW/DQ/VL + FMA */
    RN_ISA_AMX = 3,       /* AVX-512 as above, and AMX tiles for int8 and bf16 products (the fp32
                             kernels are AVX-512's: AMX has no fp32 product) */
    RN_ISA_COUNT
} rn_isa;

/* CPU features the kernels care about, read once. */
typedef struct rn_cpu_features {
    int avx2_fma;         /* AVX2 and FMA3 */
    int avx512;           /* AVX-512 F, BW, DQ, VL */
    int avx512_vnni;      /* AVX-512 VNNI (int8 dot products) */
    int avx512_bf16;      /* AVX-512 BF16 (bf16 dot products) */
    int avx512_vbmi;      /* AVX-512 VBMI (byte permutes: the int8 stem's window copy) */
    int avx_vnni;         /* AVX-VNNI (VEX-encoded int8 dot products) */
    int amx;              /* AMX tiles with bf16 and int8, and the kernel's leave to use them */
} rn_cpu_features;

const rn_cpu_features *rn_cpu(void);

/* "portable", "avx2", "avx512", "amx". */
const char *rn_isa_name(rn_isa isa);

/* Parses an ISA name; fails with a message listing the names. */
rn_status rn_isa_parse(const char *name, rn_isa *out);

/* Whether this build has kernels for isa and the CPU can run them. */
int rn_isa_usable(rn_isa isa);

/* The process default: RN_ISA when set (an error if unknown or not usable
 * here), else the best usable ISA. Resolved once; later calls return the
 * same answer. */
rn_status rn_isa_default(rn_isa *out);

/* The CPU's model name ("AMD EPYC ...", from /proc/cpuinfo on Linux), or
 * "unknown". */
const char *rn_cpu_name(void);

#endif
