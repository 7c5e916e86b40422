/*
 * train_recipe.h - named training recipes: `resnet train --recipe NAME`.
 *
 * A recipe is a set of values for `resnet train`'s flags, measured to reach
 * a stated result. It gives each of its flags that is not on the command
 * line its value, so any flag given explicitly overrides the recipe. With
 * --resume the checkpoint's plan comes first (train_plan.h): the recipe only
 * fills what the checkpoint did not record. `--recipe list` prints every
 * recipe with its flags.
 */
#ifndef RN_CLI_TRAIN_RECIPE_H
#define RN_CLI_TRAIN_RECIPE_H

#include <stdio.h>

#include "args.h"
#include "train_plan.h"

/* The --recipe flag of `resnet train`. */
#define TRAIN_RECIPE_SPEC                                                                             \
    {"recipe", ARG_STRING, "none", "a named set of defaults for the flags not given: none, fmnist-fast "  \
     "(aims at >= 0.94 test accuracy on Fashion-MNIST within 15 minutes on 2 cores), fmnist-fast-bf16 (the same in " \
     "bf16 mixed precision) or torchvision-resnet50-v2 (the recipe of torchvision's ResNet-50 IMAGENET1K_V2 "        \
     "weights, for an ImageNet folder); list: print the recipes and their flags", 0, 0}

/* Applies --recipe to t (before --resume's plan_apply). Returns 1 (also for
 * "none"), or 0 after an error message naming the known recipes. */
int recipe_apply(arg_table *t);

/* argv holds "--recipe list" (or "--recipe=list"). */
int recipe_list_asked(int argc, char **argv);

/* Prints every recipe: its name, what it is for, and its flags. */
void recipe_list(FILE *out);

/* The flags --recipe gave their values to (not those given explicitly; resuming,
 * with `plan` the checkpoint's, not those its plan records, nor the model's and
 * the seed, which are the checkpoint's too), as " --flag value ..." into buf;
 * "" without a recipe. */
void recipe_describe(const arg_table *t, const train_plan *plan, char *buf, size_t cap);

#endif
