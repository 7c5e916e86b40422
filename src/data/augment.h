/*
 * augment.h - torchvision's TrivialAugmentWide, RandAugment and AutoAugment on 8-bit images, as its
 * reference runs it on PIL images (each operation as Pillow 9 computes it,
 * bit for bit; tests/test_augment.c checks every operation at every
 * magnitude against torchvision).
 *
 * Images are planar: c planes (1: "L", 3: "RGB") of h x w bytes. The
 * operations work in place with a scratch of c * h * w bytes; they allocate
 * nothing.
 */
#ifndef RN_DATA_AUGMENT_H
#define RN_DATA_AUGMENT_H

#include <stdint.h>

#include "core/rng.h"
#include "resnet.h"

/* TrivialAugmentWide's operations, in its order (its draw and RandAugment's pick one of the first
 * RN_AUG_WIDE_OPS), then invert (AutoAugment's policies use it) */
typedef enum rn_augment_op {
    RN_AUG_IDENTITY,
    RN_AUG_SHEAR_X,
    RN_AUG_SHEAR_Y,
    RN_AUG_TRANSLATE_X,
    RN_AUG_TRANSLATE_Y,
    RN_AUG_ROTATE,
    RN_AUG_BRIGHTNESS,
    RN_AUG_COLOR,
    RN_AUG_CONTRAST,
    RN_AUG_SHARPNESS,
    RN_AUG_POSTERIZE,
    RN_AUG_SOLARIZE,
    RN_AUG_AUTOCONTRAST,
    RN_AUG_EQUALIZE,
    RN_AUG_INVERT,
    RN_AUG_OPS
} rn_augment_op;

/* TrivialAugmentWide's and RandAugment's 14 operations: those before invert */
#define RN_AUG_WIDE_OPS RN_AUG_INVERT

#define RN_AUG_BINS 31 /* TrivialAugmentWide's num_magnitude_bins */

/* The operation's name, as torchvision spells it ("ShearX", ...). */
const char *rn_augment_op_name(int op);

/* Whether the operation takes a magnitude, and whether its sign is drawn. */
int rn_augment_op_has_magnitude(int op);
int rn_augment_op_signed(int op);

/* TrivialAugmentWide's magnitude of `bin` (0..30) for the operation, as its
 * float32 table holds it (torch.linspace's values; posterize's bits); 0 for
 * the operations without one. */
double rn_augment_magnitude(int op, int bin);

/* Applies `op` at `magnitude` (signed where the operation is) to img, as
 * torchvision's _apply_op does on a PIL image with fill 0 and nearest
 * interpolation (bilinear 0: the classes' default) or bilinear (1: their
 * reference script's --interpolation default). scratch: c * h * w bytes. c
 * must be 1 or 3. Unknown operations leave img as it is. */
void rn_augment_apply(uint8_t *img, int c, int h, int w, int op, double magnitude, int bilinear,
                      uint8_t *scratch);

/* RandAugment's magnitude of `bin` (0..30) for the operation on an h x w image: torch.linspace's
 * float32 value by its scalar rule (its vectorised loop rounds some entries a last bit otherwise,
 * depending on the vector width torch's CPU dispatch picks), posterize's bits; 0 for the
 * operations without one. */
double rn_rand_augment_magnitude(int op, int bin, int h, int w);

/* RandAugment(num_ops, magnitude=bin): num_ops draws from r of an operation and a sign, each
 * applied at the bin's magnitude in turn. */
void rn_rand_augment(uint8_t *img, int c, int h, int w, int num_ops, int bin, int bilinear,
                     rn_rng *r, uint8_t *scratch);

/* One TrivialAugmentWide draw from r: the operation, its magnitude bin and
 * sign (torchvision's order: operation, bin, sign), applied to img. *op,
 * *magnitude: what was applied (may be NULL). */
void rn_trivial_augment(uint8_t *img, int c, int h, int w, int bilinear, rn_rng *r,
                        uint8_t *scratch, int *op, double *magnitude);

/* AutoAugment's policies (torchvision's AutoAugmentPolicy): 25 sub-policies of two steps each */
enum { RN_AA_IMAGENET, RN_AA_CIFAR10, RN_AA_SVHN, RN_AA_POLICIES };
#define RN_AA_SUBPOLICIES 25
#define RN_AA_BINS 10 /* AutoAugment's magnitude bins */

/* One step of a sub-policy: the operation, the probability it is applied with, its magnitude bin
 * (0..9; -1 where the operation takes none). */
typedef struct rn_aa_step {
    int op;
    float prob;
    int bin;
} rn_aa_step;

/* The policy's name as torchvision spells it ("imagenet", "cifar10", "svhn"). */
const char *rn_auto_augment_policy_name(int policy);

/* The two steps of sub-policy `id` (0..24) of `policy`, as torchvision's AutoAugment lists them;
 * NULL out of range. */
const rn_aa_step *rn_auto_augment_subpolicy(int policy, int id);

/* AutoAugment's magnitude of `bin` (0..9) for the operation on an h x w image: its float32 table
 * by torch.linspace's scalar rule (as rn_rand_augment_magnitude's), posterize's bits; 0 for the
 * operations without one. */
double rn_auto_augment_magnitude(int op, int bin, int h, int w);

/* Sub-policy `id` of `policy` on img, given its draws as torchvision's forward takes them: step k
 * applied when probs[k] <= its probability (compared in float32), its magnitude negated where
 * the operation is signed and negative[k]. */
void rn_auto_augment_apply(uint8_t *img, int c, int h, int w, int policy, int id,
                           const float probs[2], const int negative[2], int bilinear,
                           uint8_t *scratch);

/* AutoAugment(policy): draws from r a sub-policy, two uniform probabilities in [0, 1) and two
 * signs (torchvision's get_params), and applies it. */
void rn_auto_augment(uint8_t *img, int c, int h, int w, int policy, int bilinear, rn_rng *r,
                     uint8_t *scratch);

#endif
