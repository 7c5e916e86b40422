"""Kills a real training run with SIGKILL at random moments and checks that
nothing is lost: after every kill the checkpoint on disk is whole, is the last
one committed, and --resume carries the run to the same final weights as a run
that was never interrupted.

    /usr/bin/python3 tests/kill_harness.py --resnet build/resnet [--kills 50] [--seed 1]

The run: d2l_resnet18 on 32 training and 16 test images of data/fmnist-small (an IDX
subset the harness writes), batch 4, one thread, 16 steps (2 epochs of 8), a checkpoint
every 2 steps and a log line every step, with a moving average of the weights,
TrivialAugment, mixup / CutMix, random erasing, gradient clipping, a warm-up of the first
epoch and a cosine schedule over the second: the kills and resumes cross the epoch's end
(its evaluation, the new epoch's order) and the warm-up's hand-over to the schedule. The test hook
RESNET_TEST_SAVE_PAUSE_MS (cli/train_ckpt.h) makes every save print its phases
on stderr ("rn-test-hook: checkpoint step S PHASE") and pause a little after
each, so the harness knows which checkpoints were committed and can aim kills
inside saves: at least a third of the kills must land inside one.

1. A reference run is stopped (SIGSTOP) at each committed save and the
   checkpoint's contents are recorded: weights, optimizer state and their
   metadata but for the run id, which every run draws anew, and the wall-clock
   times (the run's elapsed seconds and those of the epoch in progress). A step
   may be saved twice, each version recorded: the --save-every save of an
   epoch's last step, then the epoch's own after its evaluation.
2. Chains of runs: start (or --resume the last checkpoint), kill at a random
   moment (half the time while a save is under way), check the files, repeat
   until a run finishes; its final checkpoint must equal the reference's, its
   log must hold each step once, and no temporary file may be left.
After a kill the checkpoint must be a consistent pair (the optimizer state, or
the backup of an interrupted save, with the run id and step of the weights),
its step must be the last one committed (or the save under way, if the kill
came after its final rename), and its contents must equal the reference at
that step.

Prints one line per kill and a summary; exits non-zero on any failure.
Files go to /dev/shm when it exists (SIGKILL leaves the page cache as it is,
so tmpfs behaves as a disk here), else $TMPDIR.
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

STEPS, EVERY, PAUSE_MS = 16, 2, 20
TRAIN_IMAGES, TEST_IMAGES = 32, 16   # 8 steps an epoch at batch 4
DATA = None                          # the subset's folder (main)
PHASES = ["begin", "weights written", "state written", "state backed up", "state replaced", "weights replaced"]
MARKER = re.compile(r"^rn-test-hook: checkpoint step (\d+) (.+)$")


def train_command(resnet, save, resume):
    cmd = [resnet, "train", "--data", DATA, "--dataset", "fashion-mnist", "--epochs", "2", "--max-steps", str(STEPS),
           "--batch-size", "4", "--threads", "1", "--quiet", "--seed", "5", "--save-every", str(EVERY),
           "--log-every", "1", "--save", save,
           # the state of the training features that draw or keep something across steps: the
           # moving average of the weights (in the optimizer state), mixup / CutMix and random
           # erasing and TrivialAugment (drawn from each batch's place), gradient clipping, the
           # warm-up and schedule of torchvision's reference
           "--ema", "0.9", "--ema-every", "3", "--mixup-alpha", "0.2", "--cutmix-alpha", "1",
           "--random-erase", "0.25", "--clip-grad-norm", "5", "--auto-augment", "ta_wide",
           "--warmup-epochs", "1", "--warmup-factor", "0.1", "--schedule", "cosine"]
    return cmd + (["--resume", save] if resume else [])


class Run:
    """A training process whose checkpoint phases are followed as they come."""

    def __init__(self, cmd):
        env = dict(os.environ, RESNET_TEST_SAVE_PAUSE_MS=str(PAUSE_MS), OMP_NUM_THREADS="1")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        self.events, self.other = [], []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            m = MARKER.match(line.rstrip("\n"))
            with self.cond:
                if m:
                    self.events.append((int(m.group(1)), m.group(2), time.monotonic()))
                else:
                    self.other.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pred, timeout=120):
        """Waits for an event satisfying pred; returns it, or None if the process ended first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                if self.proc.poll() is not None and not self.reader.is_alive():
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.05))

    def wait_phase(self, n, phase):
        """Waits for `phase` of this run's n-th save (or its end, when the save has no such
        phase: the first one of a run has no state to back up); False if the process ended first."""
        def nth_begin(e):
            return e[1] == "begin" and sum(1 for x in self.events if x[1] == "begin") >= n
        begin = self.wait_for(nth_begin)
        if begin is None:
            return False
        begins = [x for x in self.events if x[1] == "begin"]
        step = begins[n - 1][0]
        return self.wait_for(lambda e: e[0] == step and e[1] in (phase, "done")) is not None

    def finish(self):
        rc = self.proc.wait()
        self.reader.join()
        return rc

    def committed(self):
        return [s for s, p, _ in self.events if p == "weights replaced"]


# ---- checkpoint files --------------------------------------------------------------


def read_st(path):
    """(run id, step, digest of header and data) of a safetensors file, the metadata's run id and
    wall-clock times ("elapsed", "tally.seconds") left out of the digest."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    if n <= 0 or 8 + n > len(raw):
        raise ValueError("%s: bad header length" % path)
    header = json.loads(raw[8:8 + n])
    meta = header.get("__metadata__", {})
    run_id, step = meta.pop("run_id", None), meta.get("step")
    for key in ("elapsed", "tally.seconds"):
        meta.pop(key, None)
    end = max([v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"] + [0])
    if 8 + n + end != len(raw):
        raise ValueError("%s: %d bytes, the header describes %d" % (path, len(raw), 8 + n + end))
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode() + raw[8 + n:]).hexdigest()
    return run_id, int(step) if step is not None else None, digest


def state_paths(save):
    stem = save[:-len(".safetensors")]
    return stem + ".optim.safetensors", stem + ".optim.prev.safetensors"


def checkpoint_on_disk(save):
    """(step, digest, which state file) of the committed checkpoint, None when there is none;
    raises ValueError when the files do not make a checkpoint."""
    if not os.path.exists(save):
        return None
    w_run, w_step, w_digest = read_st(save)
    if w_run is None or w_step is None:
        raise ValueError("%s has no run id or step" % save)
    for state in state_paths(save):
        if os.path.exists(state):
            s_run, s_step, s_digest = read_st(state)
            if (s_run, s_step) == (w_run, w_step):
                return w_step, w_digest + s_digest, os.path.basename(state)
    raise ValueError("no optimizer state with run %s, step %d beside %s" % (w_run, w_step, save))


def leftovers(folder):
    return sorted(f for f in os.listdir(folder) if re.match(r"^\..*\.tmp-\d+-[a-z0-9]{6}$", f) or
                  f.endswith(".prev.safetensors") or f.endswith(".lock"))


# ---- the harness ---------------------------------------------------------------------


def write_subset(folder):
    """The first TRAIN_IMAGES / TEST_IMAGES images of data/fmnist-small as IDX files in folder."""
    import gzip
    os.makedirs(folder)
    for split, n in (("train", TRAIN_IMAGES), ("t10k", TEST_IMAGES)):
        for kind, head, size in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
            name = "%s-%s-ubyte.gz" % (split, kind)
            with gzip.open(os.path.join("data", "fmnist-small", name)) as f:
                data = f.read()
            header = bytearray(data[:head])
            header[4:8] = n.to_bytes(4, "big")
            with gzip.open(os.path.join(folder, name), "wb") as f:
                f.write(bytes(header) + data[head:head + n * size])


def reference(resnet, folder):
    """Checkpoint digests at every committed step of an uninterrupted run, and its timings."""
    save = os.path.join(folder, "ref.safetensors")
    run = Run(train_command(resnet, save, False))
    snaps, save_time, handled = {}, [], []
    while True:
        e = run.wait_for(lambda ev: ev[1] == "done" and ev not in handled)
        if e is None:
            break
        os.kill(run.proc.pid, signal.SIGSTOP)
        step, digest, _ = checkpoint_on_disk(save)
        if step != e[0]:
            raise RuntimeError("reference: the checkpoint moved on before it was read")
        snaps.setdefault(step, []).append(digest)
        begin = max(t for s, p, t in run.events if s == step and p == "begin" and t <= e[2])
        save_time.append(e[2] - begin)
        handled.append(e)
        os.kill(run.proc.pid, signal.SIGCONT)
    rc = run.finish()
    if rc != 0 or sorted(snaps) != list(range(EVERY, STEPS + 1, EVERY)):
        raise RuntimeError("reference run: exit %d, checkpoints at %s: %s" % (rc, sorted(snaps), run.other[-3:]))
    return snaps, sum(save_time) / len(save_time), time.monotonic() - run.start


def check_log(save):
    log = save[:-len(".safetensors")] + ".log.jsonl"
    steps = [json.loads(line)["step"] for line in open(log) if line.startswith('{"step"')]
    return steps == list(range(1, STEPS + 1)), steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resnet", default="build/resnet")
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    resnet = os.path.abspath(args.resnet)
    rng = random.Random(args.seed)
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    top = tempfile.mkdtemp(prefix="rn_kill_", dir=base)
    failures, kills, in_save, completed, phases = [], 0, 0, 0, {}
    t0 = time.monotonic()
    global DATA
    DATA = os.path.join(top, "fmnist32")
    try:
        write_subset(DATA)
        snaps, save_secs, run_secs = reference(resnet, top)
        print("reference: %d checkpoints, a save takes %.2f s, the run %.1f s" % (len(snaps), save_secs, run_secs),
              flush=True)
        chain = 0
        while kills < args.kills or 3 * in_save < kills:
            chain += 1
            folder = os.path.join(top, "chain%d" % chain)
            os.mkdir(folder)
            save = os.path.join(folder, "ck.safetensors")
            committed = None
            while True:
                run = Run(train_command(resnet, save, committed is not None))
                if rng.random() < 0.5 or 3 * in_save < kills:
                    # right after a phase of a save, within the pause that follows it
                    if run.wait_phase(rng.randint(1, 2), rng.choice(PHASES)):
                        time.sleep(rng.uniform(0, PAUSE_MS / 1000))
                else:
                    time.sleep(rng.uniform(0.05, 0.5 * run_secs))
                if run.proc.poll() is None:
                    run.proc.kill()
                rc = run.finish()
                done = run.committed()
                if rc == 0:
                    ok, steps = check_log(save)
                    got = checkpoint_on_disk(save)
                    left = leftovers(folder)
                    if not got or got[1] not in snaps[STEPS] or not ok or left:
                        failures.append("chain %d: the finished run differs from the reference (checkpoint %s, "
                                        "log steps %s, left over %s)" % (chain, got and got[0], steps, left))
                    else:
                        completed += 1
                        print("chain %d: finished, final checkpoint equal to the uninterrupted run's, "
                              "log steps 1..%d once each" % (chain, STEPS), flush=True)
                    break
                if rc != -signal.SIGKILL:
                    failures.append("chain %d: exit %d: %s" % (chain, rc, run.other[-3:]))
                    break
                kills += 1
                last = run.events[-1] if run.events else None
                inside = last is not None and last[1] != "done"
                in_save += inside
                if inside:
                    phases[last[1]] = phases.get(last[1], 0) + 1
                last_committed = max([s for s in [committed] + done if s is not None], default=None)
                allowed = {last_committed} | ({last[0]} if inside else set())
                where = "inside the save of step %d (after '%s')" % (last[0], last[1]) if inside else "between saves"
                try:
                    got = checkpoint_on_disk(save)
                except (ValueError, OSError) as e:
                    failures.append("kill %d (%s): corrupt checkpoint: %s" % (kills, where, e))
                    break
                if got is None:
                    ok = last_committed is None
                    said = "no checkpoint yet"
                else:
                    ok = got[0] in allowed and got[1] in snaps.get(got[0], ())
                    said = "step %d (state from %s)%s" % (got[0], got[2], ", equal to the reference" if ok else "")
                print("kill %d: %.2f s into the run, %s; on disk: %s" % (
                    kills, time.monotonic() - run.start, where, said), flush=True)
                if not ok:
                    failures.append("kill %d: on disk %s, expected step %s" % (
                        kills, said, " or ".join(str(s) for s in allowed)))
                    break
                committed = got[0] if got else None
    finally:
        shutil.rmtree(top, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print("kills inside a save, by the last phase reached: %s" % ", ".join(
        "%s %d" % (p, phases.get(p, 0)) for p in PHASES))
    print("kill_harness: %d kills (%d inside a save), %d runs resumed to the end equal to the uninterrupted run, "
          "%d failures (%.0f s)" % (kills, in_save, completed, len(failures), time.monotonic() - t0))
    return 1 if failures or completed == 0 or 3 * in_save < kills else 0


if __name__ == "__main__":
    sys.exit(main())
