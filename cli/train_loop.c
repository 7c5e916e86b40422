/*
 * train_loop.c - `resnet train`'s loop (contract in train_loop.h): the optimizer steps of each
 * epoch with the progress line, the JSON-lines log and the SVG curves, the evaluation of the
 * test split, checkpoints (every --save-every steps, at epoch ends, at --max-steps and when
 * interrupted), and the guard against steps whose loss or gradient is not finite.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "interrupt.h"
#include "report/report.h"
#include "run_common.h"
#include "train/plot.h"
#include "train_loop.h"

double train_clock_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

rn_loader_config train_eval_loader(const train_run *r) {
    rn_loader_config c = r->lcfg;
    if (r->val_size)
        c.image_size = r->val_size;
    c.resize_size = r->val_resize;
    return c;
}

int train_eval_side(const train_run *r) {
    const rn_loader_config c = train_eval_loader(r);
    return c.image_size ? c.image_size : r->test.height;
}

/* Writes the checkpoint; returns 0 or, after saying why, an exit status. */
static int save_checkpoint(train_run *r, int64_t epoch, int64_t position) {
    char size[16], resize[16], ep[32], pos[32], seed[32], ranks[16], elapsed[32], tally[7][40];
    /* what eval and predict take: the evaluation's sizes */
    snprintf(size, sizeof size, "%d", train_eval_side(r));
    snprintf(resize, sizeof resize, "%d", r->val_resize);
    snprintf(ep, sizeof ep, "%lld", (long long)epoch);
    snprintf(pos, sizeof pos, "%lld", (long long)position);
    snprintf(seed, sizeof seed, "%d", r->seed);
    snprintf(ranks, sizeof ranks, "%d", r->dist.size);
    /* the class names, one per line, for `resnet predict` */
    char names[65536] = "";
    size_t used = 0;
    for (int c = 0; r->train.class_names && c < r->train.num_classes && used < sizeof names; c++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", c ? "\n" : "", r->train.class_names[c]);
    const char *keys[] = {"image_size", "resize_size", "normalize", "dataset", "stem", "class_names"};
    const char *vals[] = {size, resize, r->norm_text, args_str(r->t, "dataset"),
                          rn_model_stem(r->m) == RN_STEM_CIFAR ? "cifar" : "imagenet", names};
    const double now = train_clock_s();
    snprintf(elapsed, sizeof elapsed, "%.3f", r->elapsed_before + now - r->started);
    const char *okeys[12 + PLAN_MAX_META] = {"epoch", "position", "seed", "ranks", "elapsed"};
    const char *ovals[12 + PLAN_MAX_META] = {ep, pos, seed, ranks, elapsed};
    int no = 5;
    const epoch_tally *e = &r->tally;
    if (e->present && e->epoch == epoch) { /* saved inside the epoch (or on its last step) */
        snprintf(tally[0], sizeof tally[0], "%lld", (long long)e->epoch);
        snprintf(tally[1], sizeof tally[1], "%lld", (long long)e->images);
        snprintf(tally[2], sizeof tally[2], "%lld", (long long)e->correct);
        snprintf(tally[3], sizeof tally[3], "%lld", (long long)e->skipped);
        snprintf(tally[4], sizeof tally[4], "%.17g", e->loss_sum);
        snprintf(tally[5], sizeof tally[5], "%.3f", e->seconds + now - r->tally_t0);
        snprintf(tally[6], sizeof tally[6], "%.17g", e->lr);
        for (int i = 0; i < 7; i++)
            okeys[no] = plan_tally_keys[i], ovals[no++] = tally[i];
    }
    memcpy(okeys + no, r->plan.keys, (size_t)r->plan.count * sizeof *okeys);
    memcpy(ovals + no, r->plan.values, (size_t)r->plan.count * sizeof *ovals);
    int nkeys = r->train.class_names && used < sizeof names ? 6 : 5;
    int status = train_ckpt_save(&r->ck, r->m, r->tr, keys, vals, nkeys, okeys, ovals, no + r->plan.count);
    /* --ema: the average as a weights file of its own, with the checkpoint's metadata and its run
     * id and step, which tell whether it is the checkpoint's (a kill between the two writes leaves
     * the one before); the checkpoint's optimizer state holds the average for a resume, this file
     * is for eval, predict, export */
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)rn_trainer_steps(r->tr));
    const char *ekeys[] = {"run_id", "step", keys[0], keys[1], keys[2], keys[3], keys[4], keys[5]};
    const char *evals[] = {r->ck.run_id, step, vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]};
    if (status == 0 && r->lead && r->ema_path[0] &&
        (rn_trainer_ema_weights(r->tr, r->ema_m) != RN_OK ||
         rn_model_save_meta(r->ema_m, r->ema_path, ekeys, evals, nkeys + 2) != RN_OK)) {
        cli_error(r->dist.what, "%s", rn_last_error());
        status = EXIT_WRITE;
    }
    /* the replaced run's log and report go with its checkpoint, not before: a run that fails before
     * its first save leaves the old checkpoint, its log and its report as they were */
    if (status == 0 && r->lead && r->log_final[0]) { /* the new log takes the old one's place */
        if (r->logf)
            fflush(r->logf);
        if (rename(r->log, r->log_final) != 0)
            cli_error(r->dist.what, "warning: cannot rename the new log %s to %s (%s): the run logs on in %s; "
                      "rename it before running in this folder again", r->log, r->log_final, strerror(errno),
                      r->log);
        else
            snprintf(r->log, sizeof r->log, "%s", r->log_final);
        r->log_final[0] = '\0';
    }
    /* a moving average beside the checkpoint belongs to it: one an earlier run left (a run
     * --overwrite replaced, or resumed here with --ema 0) goes with this run's first save */
    if (status == 0 && r->lead && !r->ema_path[0]) {
        char stale[1100];
        cli_beside(stale, sizeof stale, r->save, ".ema.safetensors");
        if (unlink(stale) == 0)
            printf("removed %s, the moving average of the weights (--ema) of the run before, which "
                   "this one does not keep\n", stale);
    }
    if (status == 0 && r->lead && r->old_report[0]) {
        if (rn_report_remove(r->old_report))
            printf("removed the report of the run --overwrite replaced (%s/report.html and its figures)\n",
                   r->old_report);
        r->old_report[0] = '\0';
    }
    return status;
}

/* After a signal: the checkpoint, where it is and how to resume. Returns the exit status. */
static int stop_interrupted(train_run *r, int sig) {
    if (!r->quiet && r->tty)
        fputc('\n', stderr);
    rn_loader_state now;
    rn_loader_get_state(r->loader, &now);
    printf("interrupted by %s after step %lld (epoch %lld, %lld images into it)\n", interrupt_name(sig),
           (long long)rn_trainer_steps(r->tr), (long long)now.epoch + 1, (long long)now.position);
    if (!r->save[0]) {
        printf("no checkpoint written (no --save)\n");
        return EXIT_INTERRUPTED;
    }
    int status = save_checkpoint(r, now.epoch, now.position);
    if (status)
        return status;
    printf("checkpoint: %s (+ %s)\nresume with:\n", r->save, r->optim);
    train_print_resume(r->t, r->save, NULL, NULL);
    fflush(stdout);
    return EXIT_INTERRUPTED;
}

/* A step whose loss or gradient was not finite, and so changed nothing: a
 * warning, and after --max-bad-steps of them in a row, the end of the run
 * (the weights, those of the last good step, are saved). Returns 0 to go
 * on, else the exit status. */
static int bad_step(train_run *r, const rn_step_result *res, int in_a_row) {
    if (!r->quiet && r->tty)
        fputc('\n', stderr);
    long long good = (long long)rn_trainer_steps(r->tr);
    char what[96];
    if (isfinite(res->loss))
        snprintf(what, sizeof what, "a gradient or a BatchNorm statistic is not finite (loss %g)", res->loss);
    else if (r->dist.size > 1) /* a process's own BatchNorm statistics poison the summed loss */
        snprintf(what, sizeof what, "the loss, or a BatchNorm statistic of some process, is not finite");
    else
        snprintf(what, sizeof what, "the loss is %g", res->loss);
    if (r->lead) /* under MPI every rank skips the same steps */
        cli_error(r->dist.what, "warning: the step after step %lld skipped: %s; weights, BatchNorm statistics "
                  "and optimizer state unchanged (%d in a row)", good, what, in_a_row);
    if (r->max_bad_steps == 0 || in_a_row < r->max_bad_steps)
        return 0;
    r->stopped_together = 1;
    char lower[32];
    snprintf(lower, sizeof lower, "%g", res->lr / 10.0);
    if (r->lead)
        printf("stopped: %d steps in a row had a non-finite loss, gradient or BatchNorm statistic "
               "(--max-bad-steps %d); the weights are those of step %lld. The learning rate (%g at this step) "
               "is likely too high: try --lr %s, or a --warmup\n", in_a_row, r->max_bad_steps, good, res->lr,
               lower);
    if (r->save[0]) {
        rn_loader_state now;
        rn_loader_get_state(r->loader, &now);
        int status = save_checkpoint(r, now.epoch, now.position);
        if (status)
            return status;
        printf("checkpoint: %s (+ %s), step %lld\nresume with a lower learning rate:\n", r->save, r->optim, good);
        train_print_resume(r->t, r->save, "lr", lower);
    }
    fflush(stdout);
    if (r->lead)
        cli_error(r->dist.what, "stopped after %d non-finite steps in a row (--max-bad-steps); lower the "
                  "learning rate", in_a_row);
    return EXIT_RUNTIME;
}

/* A log line that cannot be written (a full disk) stops the log, not the run:
 * the checkpoint is what must be saved, and it reports its own failure. */
static void log_flush(train_run *r) {
    if (fflush(r->logf) == 0 && !ferror(r->logf))
        return;
    cli_error(r->dist.what, "warning: %s: write failed: %s; training goes on without the log", r->log,
              strerror(errno ? errno : EIO));
    fclose(r->logf);
    r->logf = NULL;
}

/* Draws the log's curves into r->svg. A log without a finished epoch has nothing to draw: a
 * warning with `always`, else silence. */
static void write_curves(train_run *r, int always) {
    if (!r->svg[0] || !r->logf)
        return;
    rn_status st = rn_plot_svg(r->log, r->svg);
    if (st == RN_OK)
        r->curves = 1;
    else if (always || st != RN_ERR_FORMAT)
        cli_error(r->dist.what, "warning: %s", rn_last_error());
}

static void progress_line(train_run *r, int epoch, int step, int steps, double loss, double acc, double ips,
                          double eta) {
    if (r->quiet)
        return;
    if (r->tty)
        fprintf(stderr, "\repoch %d/%d  step %d/%d  loss %.4f  acc %.4f  %.0f img/s  ETA %.0fs   ", epoch,
                r->epochs, step, steps, loss, acc, ips, eta);
    else if (step == steps || step % 50 == 0)
        fprintf(stderr, "epoch %d/%d  step %d/%d  loss %.4f  acc %.4f  %.0f img/s  ETA %.0fs\n", epoch,
                r->epochs, step, steps, loss, acc, ips, eta);
}

/* Seconds left of the run (not the epoch: the ETA had reached 0 s at each epoch's end): its steps
 * to the last epoch's end or --max-steps at the epoch's rate so far, and the evaluations left, at
 * the last one's time where one was timed, else at three times the training rate (a forward
 * pass is about a third of a training step). */
static double run_eta(const train_run *r, int64_t epoch, int step, int steps, int batch, double ips) {
    int64_t left = steps - step + (r->epochs - epoch - 1) * (int64_t)steps;
    const int64_t to_max = r->max_steps > 0 ? r->max_steps - rn_trainer_steps(r->tr) : left;
    left = to_max < left ? to_max : left;
    /* the epochs whose end the run reaches (a --max-steps stop inside one evaluates nothing) */
    const int64_t last = left >= steps - step ? epoch + (left - (steps - step)) / steps : epoch - 1;
    int evals = 0;
    for (int64_t e = epoch; e <= last && e < r->epochs; e++)
        evals += e + 1 == r->epochs || (r->eval_every > 0 && (e + 1) % r->eval_every == 0);
    const double eval_s = r->eval_seconds > 0 ? r->eval_seconds : r->test.count / (3.0 * ips);
    return (double)left * batch / ips + evals * eval_s;
}

static void eval_progress(void *ctx, int64_t done, int64_t total) {
    train_run *r = ctx;
    if (!r->quiet && r->tty)
        fprintf(stderr, "\r  evaluating %lld/%lld   ", (long long)done, (long long)total);
}

/* Trains from (start_epoch, start_position) to the end; returns an exit status. */
int train_loop(train_run *r, int64_t start_epoch, int64_t start_position) {
    int S = r->lcfg.image_size ? r->lcfg.image_size : r->train.height;
    int B = r->lcfg.batch_size, C = r->train.channels;
    int ranks = r->dist.size, local = B / ranks;   /* this rank's share of a batch */
    float *x = malloc((size_t)local * C * S * S * sizeof *x);
    /* the batch's labels, then (--mixup-alpha, --cutmix-alpha) those of the images mixed in */
    int32_t *labels = malloc(2 * (size_t)local * sizeof *labels), *labels2 = labels ? labels + local : NULL;
    const int mixing = r->mix.mixup_alpha > 0.0f || r->mix.cutmix_alpha > 0.0f;
    if (!x || !labels) {
        free(x), free(labels);
        cli_error(r->dist.what, "out of memory for a batch of %d images of %dx%d", local, S, S);
        return EXIT_RUNTIME;
    }
    int steps = rn_loader_steps(r->loader);
    if (r->max_steps > 0 && rn_trainer_steps(r->tr) >= r->max_steps) {
        if (r->lead)
                printf("already at step %lld: nothing to do (--max-steps %d)\n",
                   (long long)rn_trainer_steps(r->tr), r->max_steps);
        free(x), free(labels);
        return 0;
    }
    rn_loader_state ls = {start_epoch, start_position};
    if (rn_loader_set_state(r->loader, &ls) != RN_OK) {
        cli_error(r->dist.what, "%s", rn_last_error());
        free(x), free(labels);
        return EXIT_RUNTIME;
    }
    int status = 0;
    double train_total = 0.0; /* seconds spent training (not evaluating) */
    int64_t run_images = 0;
    int bad_in_a_row = 0;
    for (int64_t epoch = start_epoch; epoch < r->epochs && status == 0; epoch++) {
        const double t0 = train_clock_s();
        /* the epoch's figures, kept where a checkpoint inside it records them (save_checkpoint);
         * an epoch resumed inside (or on its last step) goes on from those its checkpoint
         * recorded, so that its record covers all of it (it had covered the steps after the
         * resume only, or none) */
        epoch_tally *e = &r->tally;
        const epoch_tally *was = &r->plan.tally;
        if (epoch == start_epoch && was->present && was->epoch == epoch)
            *e = *was;
        else
            *e = (epoch_tally){.epoch = epoch};
        e->present = 1;
        const int64_t seen0 = e->images;
        r->tally_t0 = t0;
        int step = (int)(start_position / B);
        start_position = 0;
        int stopped = 0;
        for (;;) {
            int n = 0;
            rn_loader_state at; /* the batch's name, which its mixing draws are a function of */
            rn_loader_get_state(r->loader, &at);
            if (rn_loader_next(r->loader, x, labels, &n) != RN_OK) {
                cli_error(r->dist.what, "%s", rn_last_error());
                status = EXIT_RUNTIME;
                break;
            }
            if (n == 0)
                break;
            rn_mix_info mix = {RN_MIX_NONE, 1.0f, {0, 0, 0, 0}};
            if (mixing && rn_batch_mix(&r->mix, at.epoch, at.position, x, labels, labels2, n, C, S, S, &mix) != RN_OK) {
                cli_error(r->dist.what, "%s", rn_last_error());
                status = EXIT_RUNTIME;
                break;
            }
            rn_step_result res;   /* loss and correct over the global batch */
            if (rn_trainer_step_mixed(r->tr, x, labels, mixing ? labels2 : NULL, mix.lam, n, S, S, &res) != RN_OK) {
                cli_error(r->dist.what, "%s", rn_last_error());
                status = EXIT_RUNTIME;
                break;
            }
            step++;
            if (res.skipped) {
                e->skipped++;
                if ((status = bad_step(r, &res, ++bad_in_a_row)) != 0)
                    break;
                int sig = interrupt_pending();
                if (sig) {
                    status = stop_interrupted(r, sig);
                    break;
                }
                continue;
            }
            bad_in_a_row = 0;
            n *= ranks;           /* images of the global batch */
            e->images += n, run_images += n;
            e->correct += res.correct;
            e->loss_sum += (double)res.loss * n;
            e->lr = res.lr;
            double el = train_clock_s() - t0, ips = (e->images - seen0) / (el > 0 ? el : 1e-9);
            progress_line(r, (int)epoch + 1, step, steps, e->loss_sum / e->images,
                          (double)e->correct / e->images, ips, run_eta(r, epoch, step, steps, B, ips));
            int64_t gstep = rn_trainer_steps(r->tr);
            if (r->lead && r->logf && r->log_every > 0 && gstep % r->log_every == 0) {
                fprintf(r->logf, "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"acc\": %.6f, \"lr\": %.8g",
                        (long long)gstep, (long long)epoch + 1, res.loss, (double)res.correct / n, e->lr);
                if (r->cfg.clip_grad_norm > 0.0) /* the norm before clipping */
                    fprintf(r->logf, ", \"grad_norm\": %.8g", res.grad_norm);
                if (mix.kind == RN_MIX_MIXUP) /* what this rank's batch was mixed by (rank 0's) */
                    fprintf(r->logf, ", \"mix\": \"mixup\", \"mix_lam\": %.9g", mix.lam);
                else if (mix.kind == RN_MIX_CUTMIX)
                    fprintf(r->logf, ", \"mix\": \"cutmix\", \"mix_lam\": %.9g, \"mix_box\": [%d, %d, %d, %d]",
                            mix.lam, mix.box[0], mix.box[1], mix.box[2], mix.box[3]);
                fputs("}\n", r->logf);
                log_flush(r);
            }
            if (r->max_steps > 0 && gstep >= r->max_steps) {
                stopped = 1;
                break;
            }
            int sig = interrupt_pending();
            if (sig) {
                status = stop_interrupted(r, sig);
                break;
            }
            if (r->save[0] && r->save_every > 0 && gstep % r->save_every == 0) {
                rn_loader_state now;
                rn_loader_get_state(r->loader, &now);
                if ((status = save_checkpoint(r, now.epoch, now.position)) != 0)
                    break;
            }
        }
        if (status != 0)
            break;
        double train_secs = train_clock_s() - t0; /* this command's share of the epoch */
        train_total += train_secs;
        train_secs += e->seconds;
        /* --max-steps on the epoch's last step: the epoch ends as any other (evaluated, logged,
         * saved at its end), then the run stops; a checkpoint at the epoch's end would otherwise
         * resume into an epoch with nothing left to train */
        const int at_end = step >= steps;
        if (stopped && !at_end) {
            if (!r->quiet && r->tty)
                fputc('\n', stderr);
            rn_loader_state now;
            rn_loader_get_state(r->loader, &now);
            if (r->lead)
                printf("stopped after %lld steps (--max-steps) in epoch %lld\n",
                       (long long)rn_trainer_steps(r->tr), (long long)epoch + 1);
            train_dist_sync_model(&r->dist);
            if (r->save[0]) /* named once at the end, as after the last epoch */
                status = save_checkpoint(r, now.epoch, now.position);
            /* the curves of the epochs the log has; none in a first epoch cut short */
            if (status == 0 && r->lead && r->logf) {
                log_flush(r);
                write_curves(r, 0);
            }
            break;
        }
        /* the test split after every eval_every-th epoch and the last */
        const int evaluate = epoch + 1 == r->epochs || (r->eval_every > 0 && (epoch + 1) % r->eval_every == 0);
        rn_eval_result ev = {0}, ema = {0};
        if (evaluate) {
            rn_loader_config ecfg = train_eval_loader(r);
            ecfg.batch_size = local; /* as fits_in_memory planned it (the global batch had run on
                                        every rank, ranks times what was checked) */
            train_dist_sync_model(&r->dist);
            const double e0 = train_clock_s();
            if (train_dist_evaluate(&r->dist, r->m, &r->test, &ecfg, eval_progress, r, &ev) != RN_OK) {
                cli_error(r->dist.what, "evaluating: %s", rn_last_error());
                status = EXIT_RUNTIME;
                break;
            }
            if (r->ema_m) { /* the moving average of the weights, rank 0's on every rank */
                rn_status est = rn_trainer_ema_weights(r->tr, r->ema_m);
                if (est == RN_OK) {
                    train_dist_share_model(&r->dist, r->ema_m);
                    est = train_dist_evaluate(&r->dist, r->ema_m, &r->test, &ecfg, eval_progress, r, &ema);
                }
                if (est != RN_OK) {
                    cli_error(r->dist.what, "evaluating the moving average of the weights: %s", rn_last_error());
                    rn_eval_result_free(&ev);
                    status = EXIT_RUNTIME;
                    break;
                }
            }
            r->eval_seconds = train_clock_s() - e0;
        }
        if (!r->quiet && r->tty)
            fprintf(stderr, "\r%*s\r", 100, "");
        /* an epoch resumed at its end (a run stopped on its last step by a signal, or saved there
         * by an older build): its training figures went with the run before */
        const int trained = e->images > 0 || e->skipped > 0;
        char test_text[160] = "", test_json[320];
        if (evaluate) {
            const double test_acc = ev.count ? (double)ev.top1 / ev.count : 0.0;
            snprintf(test_text, sizeof test_text, "  test loss %.4f  test acc %.4f", ev.loss, test_acc);
            /* a model whose logits overflow scores a NaN loss: null in the log, which JSON has,
             * not the -nan printf writes (the log had been unreadable from there on) */
            char loss[32];
            int at = snprintf(test_json, sizeof test_json, "\"test_loss\": %s, \"test_acc\": %.6f, \"test_top5\": %.6f",
                              cli_json_number(loss, sizeof loss, "%.6f", ev.loss), test_acc,
                              ev.count ? (double)ev.top5 / ev.count : 0.0);
            if (r->ema_m) {
                const double ema_acc = ema.count ? (double)ema.top1 / ema.count : 0.0;
                size_t used = strlen(test_text);
                snprintf(test_text + used, sizeof test_text - used, "  EMA test acc %.4f", ema_acc);
                snprintf(test_json + at, sizeof test_json - (size_t)at,
                         ", \"ema_test_loss\": %s, \"ema_test_acc\": %.6f, \"ema_test_top5\": %.6f",
                         cli_json_number(loss, sizeof loss, "%.6f", ema.loss), ema_acc,
                         ema.count ? (double)ema.top5 / ema.count : 0.0);
            }
        } else {
            snprintf(test_json, sizeof test_json, "\"test_loss\": null, \"test_acc\": null, \"test_top5\": null%s",
                     r->ema_m ? ", \"ema_test_loss\": null, \"ema_test_acc\": null, \"ema_test_top5\": null" : "");
        }
        if (r->lead && !trained) {
            printf("epoch %lld/%d  (trained before the resume)%s\n", (long long)epoch + 1, r->epochs,
                   test_text);
        } else if (r->lead) {
            printf("epoch %lld/%d  train loss %.4f  train acc %.4f%s  %.1f s (%.0f img/s)", (long long)epoch + 1,
                   r->epochs, e->loss_sum / (e->images ? e->images : 1),
                   (double)e->correct / (e->images ? e->images : 1), test_text, train_secs,
                   e->images / (train_secs > 0 ? train_secs : 1e-9));
            if (e->skipped)
                printf("  %lld non-finite steps skipped", (long long)e->skipped);
            putchar('\n');
        }
        fflush(stdout);
        if (r->lead && r->logf && !trained) {
            fprintf(r->logf,
                    "{\"epoch\": %lld, \"train_loss\": null, \"train_acc\": null, %s, \"lr\": null, "
                    "\"seconds\": 0, \"images_per_second\": null, \"steps\": %lld, \"skipped_steps\": 0, "
                    "\"elapsed\": %.3f}\n",
                    (long long)epoch + 1, test_json, (long long)rn_trainer_steps(r->tr),
                    r->elapsed_before + train_clock_s() - r->started);
            log_flush(r);
        } else if (r->lead && r->logf) {
            /* an epoch whose every step was skipped has no training figures: null, not 0 */
            char loss_t[32] = "null", acc_t[32] = "null", lr_t[32] = "null", ips_t[32] = "null";
            if (e->images > 0) {
                snprintf(loss_t, sizeof loss_t, "%.6f", e->loss_sum / e->images);
                snprintf(acc_t, sizeof acc_t, "%.6f", (double)e->correct / e->images);
                snprintf(lr_t, sizeof lr_t, "%.8g", e->lr);
                snprintf(ips_t, sizeof ips_t, "%.2f", e->images / (train_secs > 0 ? train_secs : 1e-9));
            }
            fprintf(r->logf,
                    "{\"epoch\": %lld, \"train_loss\": %s, \"train_acc\": %s, %s, \"lr\": %s, "
                    "\"seconds\": %.3f, \"images_per_second\": %s, \"steps\": %lld, \"skipped_steps\": %lld, "
                    "\"elapsed\": %.3f}\n",
                    (long long)epoch + 1, loss_t, acc_t, test_json, lr_t, train_secs, ips_t,
                    (long long)rn_trainer_steps(r->tr), (long long)e->skipped,
                    r->elapsed_before + train_clock_s() - r->started);
            log_flush(r);
        }
        rn_eval_result_free(&ev);
        rn_eval_result_free(&ema);
        if (r->save[0] && (status = save_checkpoint(r, epoch + 1, 0)) != 0)
            break;
        /* after the save: a run --overwrite starts over replaces the old run's curves with its
         * checkpoint, as its log and report (they had been replaced before it) */
        if (r->lead && r->logf)
            write_curves(r, 1);
        if (stopped) {
            if (r->lead)
                printf("stopped after %lld steps (--max-steps) at the end of epoch %lld\n",
                       (long long)rn_trainer_steps(r->tr), (long long)epoch + 1);
            break;
        }
        int sig = interrupt_pending();
        if (sig)
            status = stop_interrupted(r, sig);
    }
    if (status == 0 && run_images && r->lead)
        printf("trained on %lld images in %.1f s of training (%.0f img/s)\n", (long long)run_images, train_total,
               run_images / (train_total > 0 ? train_total : 1e-9));
    free(x), free(labels);
    return status;
}
