/*
 * imagenet_classes.h - the 1000 ImageNet-1k class names, in the order of
 * torchvision's classifiers (index i is logit i). Generated into
 * imagenet_classes.c by tools/gen_imagenet_classes.py.
 */
#ifndef RN_DATA_IMAGENET_CLASSES_H
#define RN_DATA_IMAGENET_CLASSES_H

#define RN_IMAGENET_CLASSES 1000

extern const char *const rn_imagenet_classes[RN_IMAGENET_CLASSES];

#endif
