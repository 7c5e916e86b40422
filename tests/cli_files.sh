#!/usr/bin/env bash
# cli_files.sh BUILD - the files a user hands `resnet` and the files it writes:
#   - a PyTorch checkpoint in the legacy format (_use_new_zipfile_serialization=False)
#     works in convert, forward, eval, predict and train --init, with results
#     identical to the zip format's and to the converted safetensors file's;
#   - a file that is no weights file is refused in one line saying what it is;
#   - --output, --save and --log create missing folders, saying so once;
#   - --resume alone continues the checkpoint's plan bit for bit; with other
#     flags it prints what changes, and the learning rates it prints are the
#     ones the trainer logs.
# Prints "cli_files: N passed, M failed"; exits non-zero if M > 0.
set -u
BUILD=${1:-build}
R="$(cd "$(dirname "$BUILD/resnet")" && pwd)/resnet"
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/cli_lib.sh"

# has FILE TEXT DESCRIPTION: FILE contains TEXT (fixed string)
has() { grep -qF -- "$2" "$1" && ok || bad "$3: no '$2' in: $(head -c 600 "$1")"; }
hasnt() { grep -qF -- "$2" "$1" && bad "$3: unexpected '$2' in: $(head -c 600 "$1")" || ok; }

# ---- fixtures: a tiny dataset, a model in three formats, an image ---------------------------------

"$PY" - "$HERE" "$T" <<'EOF' || { echo "cli_files: fixtures failed"; exit 1; }
import gzip, io, os, struct, sys
here, t = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(here, "tools"))
import torch
from PIL import Image
from rn_models import build_model
torch.set_num_threads(1)

# 48 training and 16 test images of the bundled Fashion-MNIST subset
os.makedirs(os.path.join(t, "tiny"))
for split, n in (("train", 48), ("t10k", 16)):
    for kind, head, size in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
        name = "%s-%s-ubyte.gz" % (split, kind)
        data = gzip.open(os.path.join(here, "data", "fmnist-small", name)).read()
        out = data[:4] + struct.pack(">I", n) + data[8:head] + data[head:head + n * size]
        with gzip.open(os.path.join(t, "tiny", name), "wb") as f:
            f.write(out)
# 300 training images (--ra-sampler takes (images / 256) * 256 an epoch) and the same 16 test images
os.makedirs(os.path.join(t, "tiny300"))
for split, n in (("train", 300), ("t10k", 16)):
    for kind, head, size in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
        name = "%s-%s-ubyte.gz" % (split, kind)
        data = gzip.open(os.path.join(here, "data", "fmnist-small", name)).read()
        out = data[:4] + struct.pack(">I", n) + data[8:head] + data[head:head + n * size]
        with gzip.open(os.path.join(t, "tiny300", name), "wb") as f:
            f.write(out)
# the same, its test images 20x20 (their top-left corners)
os.makedirs(os.path.join(t, "mixed"))
for name in os.listdir(os.path.join(t, "tiny")):
    data = gzip.open(os.path.join(t, "tiny", name)).read()
    if name.startswith("t10k-images"):
        n = struct.unpack(">I", data[4:8])[0]
        px = [data[16 + i * 784 + r * 28:16 + i * 784 + r * 28 + 20] for i in range(n) for r in range(20)]
        data = data[:8] + struct.pack(">II", 20, 20) + b"".join(px)
    with gzip.open(os.path.join(t, "mixed", name), "wb") as f:
        f.write(data)

torch.manual_seed(0)
m = build_model("d2l_resnet18", 1, 10)
for name, buf in m.named_buffers():
    if name.endswith("running_mean"):
        buf.normal_(0, 0.1)
    elif name.endswith("running_var"):
        buf.uniform_(0.5, 2.0)
sd = m.state_dict()
torch.save(sd, os.path.join(t, "model_zip.pth"))
# the same model saved inside nn.DataParallel: every name "module.NAME"
torch.save({"module." + k: v for k, v in sd.items()}, os.path.join(t, "model_dp.pth"))
torch.save({"state_dict": sd, "epoch": 3}, os.path.join(t, "model_legacy.pth"),
           _use_new_zipfile_serialization=False)
# a Lightning-style module's state_dict: every name "model.NAME"
torch.save({"model." + k: v for k, v in sd.items()}, os.path.join(t, "model_lit.pth"))
# as PyTorch before 0.4.1 saved it: no num_batches_tracked (load_state_dict takes them as 0)
torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")},
           os.path.join(t, "model_nonbt.pth"), _use_new_zipfile_serialization=False)
Image.fromarray((torch.rand(40, 30) * 255).byte().numpy(), "L").save(os.path.join(t, "img.png"))
# an image folder: DIR/train/CLASS/*.png and DIR/val/CLASS/*.png, 2 classes
for split, n in (("train", 4), ("val", 2)):
    for c in ("a", "b"):
        os.makedirs(os.path.join(t, "folder", split, c))
        for i in range(n):
            Image.fromarray((torch.rand(28, 28) * 255).byte().numpy(), "L").save(
                os.path.join(t, "folder", split, c, "%d.png" % i))
# 300 training images for --ra-sampler's (images / 256) * 256 an epoch
for split, n in (("train", 150), ("val", 2)):
    for c in ("a", "b"):
        os.makedirs(os.path.join(t, "folder300", split, c))
        for i in range(n):
            Image.fromarray((torch.rand(24, 24) * 255).byte().numpy(), "L").save(
                os.path.join(t, "folder300", split, c, "%d.png" % i))
EOF

# ---- a legacy checkpoint in every command ------------------------------------------------------------

cd "$T" || exit 1
expect 0 "convert a legacy checkpoint" "$R" convert model_legacy.pth model.safetensors
has out "d2l_resnet18, width 64, in_channels 1, num_classes 10" "convert reads the architecture"
for f in model_legacy.pth model_zip.pth model_dp.pth model_nonbt.pth model.safetensors; do
    expect 0 "forward --weights $f" "$R" forward --weights "$f" --input "$HERE/data/sample/fmnist_batch.npy" \
        --output "y_$f.npy"
done
cmp -s y_model_legacy.pth.npy y_model.safetensors.npy && cmp -s y_model_zip.pth.npy y_model.safetensors.npy &&
    ok || bad "forward: legacy, zip and safetensors logits differ"
cmp -s y_model_dp.pth.npy y_model.safetensors.npy && ok || bad "forward: a DataParallel (module.) file differs"
cmp -s y_model_nonbt.pth.npy y_model.safetensors.npy && ok || bad "forward: a file without num_batches_tracked differs"
expect 1 "forward --weights a file whose names all start with model." "$R" forward --weights model_lit.pth \
    --input "$HERE/data/sample/fmnist_batch.npy" --output y_lit.npy
has err "every name starts with 'model.', a wrapper's prefix" "the shared prefix is named"
expect 1 "the same with --arch" "$R" forward --weights model_lit.pth --arch d2l_resnet18 \
    --input "$HERE/data/sample/fmnist_batch.npy" --output y_lit.npy
has err "every name of the file starts with 'model.', a wrapper's prefix" "the shared prefix is named with --arch"
for f in model_legacy.pth model.safetensors; do
    expect 0 "eval --weights $f" "$R" eval --weights "$f" --data tiny --json --batch-size 8 && cp out "eval_$f"
    expect 0 "predict --weights $f" "$R" predict --weights "$f" --json img.png && cp out "predict_$f"
done
cmp -s eval_model_legacy.pth eval_model.safetensors && ok || bad "eval: legacy and safetensors differ"
cmp -s predict_model_legacy.pth predict_model.safetensors && ok || bad "predict: legacy and safetensors differ"
# - reads one image from standard input, with the same result as its file; given twice, or not an
# image, it is refused naming standard input
"$R" predict --weights model.safetensors --json - img.png <img.png >out 2>err && [ "$(sed -n 1p out | sed 's/"image": "-"/"image": "img.png"/')" = "$(sed -n 2p out)" ] &&
    ok || bad "predict - (standard input) differs from its file: $(cat out err)"
expect 2 "predict - twice" "$R" predict --weights model.safetensors - -
has err "(standard input) is given 2 times" "the twice-given - is named"
echo hello | "$R" predict --weights model.safetensors - >out 2>err; [ $? -eq 1 ] && grep -q "standard input: not a JPEG or PNG file" err &&
    ok || bad "predict - of text: $(cat err)"
# an image too elongated to resize (its shorter side to 256: 256000 wide) is named, its size as
# width x height
"$PY" -c "from PIL import Image; Image.new('L', (3000, 3)).save('wide.png')"
expect 1 "predict an image too wide to resize" "$R" predict --weights model.safetensors img.png wide.png
has err "wide.png: resize: a 3000x3 image (width x height) would become 256000x256" "the image and its size are named"
# a crop whose network needs more memory than there is is refused before it is allocated (4 of them: some
# 100 GiB; one had taken 18 GB before the kernel's killer came)
expect 1 "predict --crop-size 16384" "$R" predict --weights model.safetensors --crop-size 16384 --batch-size 4 \
    img.png img.png img.png img.png
has err "too big to fit: inference of" "the memory plan refuses it"
has err "try a smaller --crop-size" "the flag to change is named"
expect 0 "train --init a legacy checkpoint" "$R" train --data tiny --init model_legacy.pth --epochs 1 \
    --batch-size 8 --max-steps 1 --quiet

# ---- files that are not weights ----------------------------------------------------------------------

: > empty.pth
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 5\n' > lfs.pth
for case in "empty.pth:empty file" "lfs.pth:Git LFS pointer" "$HERE/data/sample/fmnist_batch.npy:NumPy .npy"; do
    f=${case%%:*}
    expect 1 "forward --weights ${f##*/}" "$R" forward --weights "$f" --input "$HERE/data/sample/fmnist_batch.npy" \
        --output y.npy && has err "${case#*:}" "${f##*/} is named" && has err "resnet reads safetensors" "${f##*/}: what is read"
done

# ---- output folders ----------------------------------------------------------------------------------

expect 0 "init into a new folder" "$R" init --arch resnet18 --in-channels 1 --num-classes 10 --output new/a/w.safetensors
has err "created the folder new/a for new/a/w.safetensors" "init says it created the folder"
[ "$(wc -l <err)" -eq 1 ] && ok || bad "init: one line on stderr, got $(cat err)"
expect 0 "init into the same folder" "$R" init --arch resnet18 --in-channels 1 --num-classes 10 --output new/a/w2.safetensors
[ ! -s err ] && ok || bad "the second init says nothing on stderr: $(cat err)"
expect 0 "forward into a new folder" "$R" forward --weights model.safetensors \
    --input "$HERE/data/sample/fmnist_batch.npy" --output fwd/y.npy
[ -s fwd/y.npy ] && ok || bad "forward wrote fwd/y.npy"
expect 0 "convert into a new folder" "$R" convert model_legacy.pth conv/m.safetensors
expect 3 "forward with a file in the way" "$R" forward --weights model.safetensors \
    --input "$HERE/data/sample/fmnist_batch.npy" --output model.safetensors/y.npy
has err "exists and is not a folder" "the file in the way is named"
expect 3 "export with a file in the way" "$R" export model.safetensors model.safetensors/m.onnx
has err "exists and is not a folder" "export names the file in the way"
expect 0 "train --save and --log into new folders" "$R" train --data tiny --epochs 1 --batch-size 8 \
    --quiet --save runs/exp1/model.safetensors --log logs/exp1.jsonl
[ "$(grep -c 'created the folder' err)" -eq 2 ] && ok || bad "train: one message per new folder: $(cat err)"
[ -s runs/exp1/model.safetensors ] && [ -s runs/exp1/model.optim.safetensors ] && [ -s logs/exp1.jsonl ] &&
    ok || bad "train wrote its checkpoint and log"
expect 0 "plot into a new folder" "$R" plot --log logs/exp1.jsonl --output plots/exp1.svg
# --eval-every 2 over 3 epochs: the test split after epochs 2 and 3 (the last), epoch 1's test metrics null
expect 0 "train --eval-every 2" "$R" train --data tiny --epochs 3 --eval-every 2 --batch-size 8 --quiet \
    --log logs/every2.jsonl --no-report
"$PY" - logs/every2.jsonl <<'PY' && ok || bad "--eval-every 2: the epochs tested are not 2 and 3: $(cat logs/every2.jsonl)"
import json, sys
recs = [r for r in map(json.loads, open(sys.argv[1])) if "epoch" in r and "train_loss" in r]
assert [r["epoch"] for r in recs] == [1, 2, 3], recs
assert recs[0]["test_acc"] is None and recs[0]["test_loss"] is None, recs[0]
assert all(isinstance(r["test_acc"], float) for r in recs[1:]), recs
PY
grep -q "^epoch 1/3 .*test acc" out && bad "an epoch not tested prints a test accuracy: $(cat out)" || ok
grep -q "^epoch 3/3 .*test acc" out && ok || bad "the last epoch prints its test accuracy: $(cat out)"
expect 0 "plot a log with untested epochs" "$R" plot --log logs/every2.jsonl --output plots/every2.svg
# a log of an earlier run is not emptied by a new one without --overwrite (refused before any data is read)
cp logs/every2.jsonl logs/kept.jsonl
expect 2 "train --log naming an existing log" "$R" train --data tiny --epochs 1 --quiet \
    --log logs/every2.jsonl --no-report
has err "logs/every2.jsonl already holds a training log: pass --overwrite" "the log and the way out are named"
cmp -s logs/every2.jsonl logs/kept.jsonl && ok || bad "the refused run changed the existing log"
expect 0 "train --log an existing log with --overwrite" "$R" train --data tiny --epochs 1 --batch-size 8 \
    --quiet --log logs/every2.jsonl --no-report --overwrite
[ "$(grep -c '"epoch"' logs/every2.jsonl)" -ge 1 ] && ! cmp -s logs/every2.jsonl logs/kept.jsonl && ok ||
    bad "--overwrite replaced the log"
# a file of another kind is not called a checkpoint or a log (the refusal's --overwrite would have
# replaced a model with a log, or notes with a checkpoint), the --log auto one included
echo "notes" > logs/notes.txt
expect 2 "train --save naming a text file" "$R" train --data tiny --epochs 1 --quiet --save logs/notes.txt
has err "--save logs/notes.txt already exists and is a text file, not a checkpoint" "the file is said to be text"
expect 2 "train --log naming a weights file" "$R" train --data tiny --epochs 1 --quiet --log model.safetensors
has err "--log model.safetensors already exists and is a safetensors file, not a training log" "the file is said to be weights"
mkdir -p other && echo "notes" > other/m.log.jsonl
expect 2 "train --save beside a text file at its log's path" "$R" train --data tiny --epochs 1 --quiet \
    --save other/m.safetensors --no-report
has err "other/m.log.jsonl (the log beside the checkpoint) already exists and is a text file" "the auto log's file is kept"
[ "$(cat other/m.log.jsonl)" = notes ] && ok || bad "the text file at the log's path was replaced"
# --overwrite takes the old run's report away, even where the new run writes none
expect 0 "a run with its report" "$R" train --data tiny --epochs 1 --batch-size 8 --quiet --save rep/m.safetensors
[ -s rep/m_report/report.html ] && ok || bad "no report to replace"
expect 0 "train --overwrite --no-report" "$R" train --data tiny --epochs 1 --batch-size 8 --quiet \
    --save rep/m.safetensors --overwrite --no-report
[ ! -e rep/m_report ] && ok || bad "the old run's report stayed beside the new checkpoint: $(ls rep/m_report)"
# the checkpoint's own log (--log auto) of a run stopped before its first save: no checkpoint to
# protect, so the same command starts over
mkdir -p stopped && echo '{"run": "stopped before its first save"}' > stopped/m.log.jsonl
expect 0 "train --save beside a log without its checkpoint" "$R" train --data tiny --epochs 1 --batch-size 8 \
    --quiet --save stopped/m.safetensors --no-report
[ -s stopped/m.safetensors ] && ! grep -q "stopped before" stopped/m.log.jsonl && ok ||
    bad "the stopped run's log was not started over"

# ---- resuming -----------------------------------------------------------------------------------------

common=(train --data tiny --batch-size 8 --quiet --log-every 1)
# 6 steps straight, and 3 + 3 resumed without flags: the same files, bit for bit
expect 0 "6 steps straight" "$R" "${common[@]}" --epochs 2 --lr 0.1 --schedule cosine --momentum 0.9 \
    --max-steps 6 --save r/straight.safetensors
expect 0 "3 steps" "$R" "${common[@]}" --epochs 2 --lr 0.1 --schedule cosine --momentum 0.9 \
    --max-steps 3 --save r/a.safetensors
expect 0 "resume with no flags" "$R" train --data tiny --quiet --resume r/a.safetensors --max-steps 6 \
    --save r/b.safetensors
hasnt out "other settings" "resume with no flags changes nothing"
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/b.safetensors r/straight.safetensors && ok || bad "resume with no flags: the checkpoint differs from the straight run's"
# a flag turned on at resume: --nesterov on the checkpoint's momentum (it had been checked against
# --momentum's default, 0, and refused); on a checkpoint without momentum, refused naming whose
expect 0 "resume with --nesterov" "$R" train --data tiny --quiet --resume r/a.safetensors --max-steps 4 \
    --nesterov --save r/n.safetensors --log none
has out "--nesterov: off -> on" "the flag turned on is listed"
expect 0 "3 steps without momentum" "$R" "${common[@]}" --epochs 2 --lr 0.1 --max-steps 3 --save r/nm.safetensors
expect 2 "resume with --nesterov, no momentum" "$R" train --data tiny --quiet --resume r/nm.safetensors \
    --max-steps 4 --nesterov --save r/nm2.safetensors --log none
has err "got '0' (the --resume checkpoint's)" "the checkpoint's momentum is named"
# flags whose combination is checked against the checkpoint's plan: a frozen run resumed with
# --lr-backbone (accepted, the rate ignored), --recipe fmnist-fast (--nesterov) with --momentum 0 on
# a run whose plan has no Nesterov (refused), --nesterov on an AdamW run (told to give a momentum);
# the recipe's flags the plan overrides are not listed as the recipe's (--precision bf16 had been)
expect 0 "3 frozen steps" "$R" "${common[@]}" --epochs 2 --freeze-backbone --max-steps 3 --save r/fz.safetensors
expect 2 "... resumed with --lr-backbone" "$R" train --data tiny --quiet --resume r/fz.safetensors --max-steps 4 \
    --lr-backbone 0.01 --save r/fz.safetensors --log none
has err "--freeze-backbone (the --resume checkpoint's) keeps the backbone as loaded" "the checkpoint's flag is named"
expect 0 "... resumed with --recipe fmnist-fast --momentum 0" "$R" train --data tiny --quiet --resume r/a.safetensors \
    --max-steps 4 --recipe fmnist-fast-bf16 --momentum 0 --save r/rc.safetensors --log none
hasnt out "recipe fmnist-fast-bf16:" "the recipe's flags the plan overrides are not listed as applied"
has out "--momentum: 0.9 -> 0" "the flag given is a change"
expect 0 "3 AdamW steps" "$R" "${common[@]}" --epochs 2 --optimizer adamw --max-steps 3 --save r/aw.safetensors
expect 2 "... resumed with --nesterov" "$R" train --data tiny --quiet --resume r/aw.safetensors --max-steps 4 \
    --nesterov --save r/aw.safetensors --log none
has err "--momentum and --nesterov are SGD's" "AdamW's refusal, not a call for a momentum"
# --log FILE is part of the plan: a resume without --log goes on in that log (it had started
# CKPT.log.jsonl beside the checkpoint, the run's steps split between the two)
expect 0 "3 steps with --log FILE" "$R" train --data tiny --batch-size 8 --quiet --log-every 1 --epochs 2 \
    --max-steps 3 --save r/lf.safetensors --log r/custom.jsonl
expect 0 "... resumed without --log" "$R" train --data tiny --quiet --resume r/lf.safetensors --max-steps 5 \
    --save r/lf.safetensors
[ ! -e r/lf.log.jsonl ] && [ "$(grep -c '"step": ' r/custom.jsonl)" -eq 5 ] && ok ||
    bad "the resumed run's steps are not in its --log FILE: $(ls r) $(grep -c '"step": ' r/custom.jsonl)"
# the recorded path is written to only where it holds a training log: one that is now another
# file is left alone, the run logging beside its checkpoint
expect 0 "3 steps with --log FILE" "$R" train --data tiny --batch-size 8 --quiet --log-every 1 --epochs 2 \
    --max-steps 3 --save r/lg2.safetensors --log r/other.txt
echo "not a log" > r/other.txt
expect 0 "... resumed after its log became another file" "$R" train --data tiny --quiet --resume r/lg2.safetensors \
    --max-steps 4 --save r/lg2.safetensors
[ "$(cat r/other.txt)" = "not a log" ] && [ -s r/lg2.log.jsonl ] && ok ||
    bad "a checkpoint's recorded log path was written over: $(head -c 100 r/other.txt)"
has out "is not there as a training log" "the switch to --log auto is said"
# ... but a resume saved elsewhere (a fork of the run) starts its own log beside its --save, the
# run's log left whole; from another folder, the run's log is found (recorded absolute)
cp r/custom.jsonl r/custom.before
expect 0 "a fork of it resumed from step 5" "$R" train --data tiny --quiet --resume r/lf.safetensors --max-steps 6 \
    --save r/fork.safetensors
cmp -s r/custom.jsonl r/custom.before && [ -s r/fork.log.jsonl ] && ok ||
    bad "the fork took the run's log over: $(ls r)"
(mkdir -p elsewhere && cd elsewhere && "$R" train --data ../tiny --quiet --resume ../r/lf.safetensors --max-steps 6 \
    --save ../r/lf.safetensors >/dev/null 2>&1)
[ "$(grep -c '"step": ' r/custom.jsonl)" -eq 6 ] && [ ! -e elsewhere/r ] && ok ||
    bad "resumed from another folder, the run's log was not found: $(grep -c '"step": ' r/custom.jsonl) $(ls elsewhere)"
# the values in effect, given: no change (--augment none, --normalize none and --image-size 28 had
# been listed as changes from auto and 0 on this IDX dataset)
expect 0 "resume given the values in effect" "$R" train --data tiny --quiet --resume r/a.safetensors --max-steps 4 \
    --augment none --normalize none --image-size 28 --save r/same.safetensors --log none
hasnt out "--augment" "the augmentation in effect is no change"
hasnt out "--image-size" "the image size in effect is no change"
# the BatchNorm parameters' own weight decay is part of the plan: kept by a resume without it
expect 0 "3 steps with --norm-weight-decay 0" "$R" "${common[@]}" --epochs 2 --lr 0.1 --weight-decay 0.01 \
    --norm-weight-decay 0 --max-steps 3 --save r/nwd.safetensors
expect 0 "... resumed without it" "$R" train --data tiny --quiet --resume r/nwd.safetensors --max-steps 6 \
    --save r/nwd.safetensors
hasnt out "other settings" "the resumed run keeps --norm-weight-decay"
expect 0 "6 steps with --norm-weight-decay 0" "$R" "${common[@]}" --epochs 2 --lr 0.1 --weight-decay 0.01 \
    --norm-weight-decay 0 --max-steps 6 --save r/nwd6.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/nwd.safetensors r/nwd6.safetensors && ok ||
    bad "--norm-weight-decay resumed: not the straight run's checkpoint"
# so is gradient clipping: a resume without --clip-grad-norm clips as the run did, and logs the norms
expect 0 "3 steps with --clip-grad-norm 0.5" "$R" "${common[@]}" --epochs 2 --lr 0.1 --clip-grad-norm 0.5 \
    --max-steps 3 --save r/clip.safetensors
expect 0 "... resumed without it" "$R" train --data tiny --quiet --resume r/clip.safetensors --max-steps 6 \
    --save r/clip.safetensors
hasnt out "other settings" "the resumed run keeps --clip-grad-norm"
[ "$(grep -c '"grad_norm": ' r/clip.log.jsonl)" = 6 ] && ok || bad "6 step lines with the gradient norm"
expect 0 "6 steps with --clip-grad-norm 0.5" "$R" "${common[@]}" --epochs 2 --lr 0.1 --clip-grad-norm 0.5 \
    --max-steps 6 --save r/clip6.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/clip.safetensors r/clip6.safetensors && ok ||
    bad "--clip-grad-norm resumed: not the straight run's checkpoint"
expect 0 "6 steps unclipped" "$R" "${common[@]}" --epochs 2 --lr 0.1 --max-steps 6 --save r/noclip6.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/clip6.safetensors r/noclip6.safetensors >/dev/null 2>&1 &&
    bad "clipping at 0.5 changed nothing" || ok
# random erasing is part of the plan: a resume without --random-erase erases as the run did
expect 0 "3 steps with --random-erase 0.5" "$R" "${common[@]}" --epochs 2 --lr 0.1 --random-erase 0.5 --max-steps 3 \
    --save r/erase.safetensors
expect 0 "... resumed without it" "$R" train --data tiny --quiet --resume r/erase.safetensors --max-steps 6 \
    --save r/erase.safetensors
hasnt out "other settings" "the resumed run keeps --random-erase"
expect 0 "6 steps with --random-erase 0.5" "$R" "${common[@]}" --epochs 2 --lr 0.1 --random-erase 0.5 \
    --max-steps 6 --save r/erase6.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/erase.safetensors r/erase6.safetensors && ok ||
    bad "--random-erase resumed: not the straight run's checkpoint"
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/erase6.safetensors r/noclip6.safetensors >/dev/null 2>&1 &&
    bad "random erasing at 0.5 changed nothing" || ok
# mixup and CutMix are part of the plan: a resume without them mixes as the run did (the mixing
# drawn from the batch's place), and the log's step lines say how each batch was mixed
expect 0 "3 steps with --mixup-alpha and --cutmix-alpha" "$R" "${common[@]}" --epochs 2 --lr 0.1 --mixup-alpha 0.2 \
    --cutmix-alpha 1 --max-steps 3 --save r/mix.safetensors
expect 0 "... resumed without them" "$R" train --data tiny --quiet --resume r/mix.safetensors --max-steps 6 \
    --save r/mix.safetensors
hasnt out "other settings" "the resumed run keeps --mixup-alpha and --cutmix-alpha"
expect 0 "6 steps with --mixup-alpha and --cutmix-alpha" "$R" "${common[@]}" --epochs 2 --lr 0.1 --mixup-alpha 0.2 \
    --cutmix-alpha 1 --max-steps 6 --save r/mix6.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/mix.safetensors r/mix6.safetensors && ok ||
    bad "mixing resumed: not the straight run's checkpoint"
[ "$(grep -c '"mix": "\(mixup\|cutmix\)", "mix_lam": ' r/mix.log.jsonl)" = 6 ] && ok ||
    bad "6 step lines saying how their batch was mixed: $(grep -c '"mix"' r/mix.log.jsonl)"
# the moving average of the weights (--ema): saved beside the checkpoint, resumed exactly (the
# average in the optimizer state), evaluated beside the model; added at a resume, it starts there
expect 0 "3 steps with --ema" "$R" "${common[@]}" --epochs 2 --lr 0.1 --ema 0.9 --ema-every 2 --max-steps 3 \
    --save r/ema.safetensors
has out "moving average of the weights (--ema): r/ema.ema.safetensors" "the average's file is named"
"$PY" - r/ema.safetensors r/ema.ema.safetensors "$HERE/tools" <<'PY' && ok || bad "the average's file lacks the checkpoint's run id and step"
import sys
sys.path.insert(0, sys.argv[3])
from st_io import load_safetensors
c, e = load_safetensors(sys.argv[1])[1], load_safetensors(sys.argv[2])[1]
sys.exit(not (e["run_id"] == c["run_id"] and e["step"] == c["step"] == "3"))
PY
expect 0 "... resumed without it" "$R" train --data tiny --quiet --resume r/ema.safetensors --max-steps 7 \
    --save r/ema.safetensors
hasnt out "other settings" "the resumed run keeps --ema and --ema-every"
expect 0 "7 steps with --ema" "$R" "${common[@]}" --epochs 2 --lr 0.1 --ema 0.9 --ema-every 2 --max-steps 7 \
    --save r/ema7.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/ema.safetensors r/ema7.safetensors && ok ||
    bad "--ema resumed: not the straight run's checkpoint and average"
expect 0 "2 epochs with --ema" "$R" "${common[@]}" --epochs 2 --lr 0.1 --ema 0.9 --save r/emae.safetensors
"$PY" - r/emae.log.jsonl <<'PY' && ok || bad "the epochs' lines lack the average's test figures: $(tail -2 r/emae.log.jsonl)"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')]
sys.exit(not (len(lines) == 2 and all(0 <= l["ema_test_acc"] <= 1 and l["ema_test_loss"] > 0 for l in lines)))
PY
expect 0 "eval the average's file" "$R" eval --weights r/emae.ema.safetensors --data tiny --json
"$PY" - r/emae.log.jsonl out <<'PY' && ok || bad "eval of CKPT.ema.safetensors is not the last epoch's EMA figures"
import json, sys
last = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')][-1]
ev = json.load(open(sys.argv[2]))
sys.exit(not abs(ev["top1"] - last["ema_test_acc"]) < 1e-6)
PY
expect 0 "--ema added at a resume" "$R" train --data tiny --quiet --resume r/clip6.safetensors --max-steps 8 \
    --ema 0.5 --ema-every 1 --save r/clip6.safetensors
has out "--ema: 0 -> 0.5" "the change is reported"
[ -s r/clip6.ema.safetensors ] && ok || bad "no average file after --ema was added"
# --ema-every alone at a resume: the checkpoint's --ema is the one it paces (it had been refused as
# without an average, checked before the plan was read)
expect 0 "--ema-every alone at a resume" "$R" train --data tiny --quiet --resume r/clip6.safetensors --max-steps 9 \
    --ema-every 2 --save r/clip6.safetensors
has out "--ema-every: 1 -> 2" "the change is reported"
expect 0 "--ema 0 at a resume" "$R" train --data tiny --quiet --resume r/clip6.safetensors --max-steps 10 \
    --ema 0 --save r/clip6.safetensors
has out "removed r/clip6.ema.safetensors" "the stale average's removal is said"
[ ! -e r/clip6.ema.safetensors ] && ok || bad "the average of the run before is left beside a checkpoint without one"
# resumes_as_straight NAME DATA STOP END WHAT ARGS...: the run ARGS stopped after STOP steps (r/NAME)
# and resumed with --data DATA alone to END steps keeps WHAT (nothing listed as changed) and equals the
# run ARGS of END steps (r/NAME$END): WHAT is part of the plan
resumes_as_straight() {
    local name=$1 data=$2 stop=$3 end=$4 what=$5
    shift 5
    expect 0 "$stop steps with $what" "$R" "$@" --max-steps "$stop" --save "r/$name.safetensors"
    expect 0 "... resumed without it" "$R" train --data "$data" --quiet --resume "r/$name.safetensors" \
        --max-steps "$end" --save "r/$name.safetensors"
    hasnt out "other settings" "the resumed run keeps $what"
    expect 0 "$end steps with $what" "$R" "$@" --max-steps "$end" --save "r/$name$end.safetensors"
    /usr/bin/python3 "$HERE/tests/same_checkpoint.py" "r/$name.safetensors" "r/$name$end.safetensors" && ok ||
        bad "$what resumed: not the straight run's checkpoint"
}
# TrivialAugmentWide is part of the plan: a resume without --auto-augment augments as the run did
resumes_as_straight ta tiny 3 6 "--auto-augment ta_wide" "${common[@]}" --epochs 2 --lr 0.1 \
    --auto-augment ta_wide --augment crop+flip
# so is RandAugment with its magnitude and interpolation
resumes_as_straight ra tiny 3 6 "--auto-augment ra, --ra-magnitude and --aa-interpolation" "${common[@]}" \
    --epochs 2 --lr 0.1 --auto-augment ra --ra-magnitude 12 --aa-interpolation nearest
# repeated augmentation (--ra-sampler): 300 images give 256 positions an epoch, 86 images three times in a row
# (the last once); part of the plan, so a resume without it samples as the run did
resumes_as_straight ras tiny300 3 12 "--ra-sampler" train --data tiny300 --batch-size 32 --width 8 --quiet \
    --log-every 1 --epochs 2 --lr 0.1 --augment crop+flip --ra-sampler
has out "8 steps per epoch (--ra-sampler: each image 3 times in a row)" "the epoch is cut to 256 positions"
# resumed with another batch, the schedule stepped per epoch changes at the cut epoch's end (it had counted
# 300 images an epoch: epoch 2's first step at epoch 1's rate)
expect 0 "4 steps of 32 with --ra-sampler, cosine per epoch" "$R" train --data tiny300 --width 8 --quiet --log-every 1 \
    --ra-sampler --schedule cosine --schedule-by epoch --epochs 3 --lr 0.1 --no-report --batch-size 32 --max-steps 4 \
    --save r/rsb.safetensors
expect 0 "... resumed at batch 64" "$R" train --data tiny300 --quiet --resume r/rsb.safetensors --batch-size 64 \
    --no-report --save r/rsb.safetensors
"$PY" - r/rsb.log.jsonl <<'PY' && ok || bad "resumed at another batch, the rate does not change at the epochs' ends"
import json, sys
first = {}
for line in open(sys.argv[1]):
    if line.startswith('{"step"'):
        d = json.loads(line)
        first.setdefault(d["epoch"], (d["step"], d["lr"]))
sys.exit(0 if first[2] == (7, 0.075) and first[3][1] == 0.025 else 1)
PY
# --ra-sampler given at a resume standing past the cut epoch's end: refused before anything is written
expect 0 "9 steps of 32 without --ra-sampler" "$R" train --data tiny300 --width 8 --quiet --batch-size 32 --epochs 2 \
    --max-steps 9 --no-report --save r/rsc.safetensors
expect 2 "... resumed with --ra-sampler" "$R" train --data tiny300 --quiet --resume r/rsc.safetensors --ra-sampler \
    --no-report --save r/rsc.safetensors
has err "stands 288 images into epoch 1, past the 256 this run's epochs hold" "the refusal says why"
expect 1 "--ra-sampler on 48 images" "$R" "${common[@]}" --epochs 1 --ra-sampler --save r/ras48.safetensors
has err "RASampler" "the refusal names the sampler's cut"
# and AutoAugment's policy; another policy trains otherwise
resumes_as_straight aa tiny 3 6 "--auto-augment svhn" "${common[@]}" --epochs 2 --lr 0.1 --auto-augment svhn \
    --augment crop+flip
expect 0 "6 steps with --auto-augment cifar10" "$R" "${common[@]}" --epochs 2 --lr 0.1 --auto-augment cifar10 \
    --augment crop+flip --max-steps 6 --save r/aac6.safetensors
/usr/bin/python3 - r/aa6.safetensors r/aac6.safetensors <<'PY' && ok || bad "--auto-augment cifar10 trained as svhn did"
import struct, sys
def weights(path):  # the tensors' bytes, after the header (whose metadata names the policy)
    data = open(path, "rb").read()
    return data[8 + struct.unpack("<Q", data[:8])[0]:]
sys.exit(0 if weights(sys.argv[1]) != weights(sys.argv[2]) else 1)
PY
expect 0 "a resume changing the policy" "$R" train --data tiny --quiet --resume r/aa.safetensors --max-steps 7 \
    --auto-augment imagenet --save r/aa.safetensors
has out "--auto-augment: svhn -> imagenet" "the policy's change is listed"
expect 0 "an epoch with --auto-augment ta_wide" "$R" "${common[@]}" --epochs 1 --lr 0.1 --auto-augment ta_wide \
    --save r/tae.safetensors
expect 0 "eval of its checkpoint" "$R" eval --weights r/tae.safetensors --data tiny --json
"$PY" - r/tae.log.jsonl out <<'PY' && ok || bad "the epoch's test figures are not eval's: the evaluation augmented"
import json, sys
last = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')][-1]
ev = json.load(open(sys.argv[2]))
sys.exit(not (abs(ev["top1"] - last["test_acc"]) < 1e-6 and abs(ev["loss"] - last["test_loss"]) < 1e-5))
PY
expect 0 "6 steps with crop+flip alone" "$R" "${common[@]}" --epochs 2 --lr 0.1 --augment crop+flip --max-steps 6 \
    --save r/crop6.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/ta6.safetensors r/crop6.safetensors >/dev/null 2>&1 &&
    bad "TrivialAugment changed nothing" || ok

# torchvision's reference schedule (a warm-up of whole epochs, then the schedule over the epochs left, the
# rate changed once an epoch) is part of the plan: a resume without its flags runs it as the run did
tv=(--epochs 3 --lr 0.1 --warmup-epochs 1 --warmup-factor 0.1 --schedule cosine --schedule-by epoch)
expect 0 "9 steps of a torchvision-style schedule" "$R" "${common[@]}" "${tv[@]}" --max-steps 9 --save r/tv.safetensors
expect 0 "... resumed without it" "$R" train --data tiny --quiet --resume r/tv.safetensors --max-steps 18 \
    --save r/tv.safetensors
hasnt out "other settings" "the resumed run keeps the warm-up and the schedule's stepping"
expect 0 "18 steps straight" "$R" "${common[@]}" "${tv[@]}" --max-steps 18 --save r/tv18.safetensors
/usr/bin/python3 "$HERE/tests/same_checkpoint.py" r/tv.safetensors r/tv18.safetensors && ok ||
    bad "the torchvision-style schedule resumed: not the straight run's checkpoint"
# 6 steps an epoch: the warm-up's epoch at 0.1 x 0.1, then cosine over the 2 epochs left, held within each
"$PY" - r/tv.log.jsonl <<'PY' && ok || bad "the logged rates are not the schedule's: $(grep -o '"lr": [0-9.e-]*' r/tv.log.jsonl | tr '\n' ' ')"
import json, sys
lrs = [json.loads(l)["lr"] for l in open(sys.argv[1]) if l.startswith('{"step"')]
want = [0.01] * 6 + [0.1] * 6 + [0.05] * 6
sys.exit(not (len(lrs) == 18 and all(abs(a - b) < 1e-9 for a, b in zip(lrs, want))))
PY
expect 0 "... resumed within the warm-up with another factor" "$R" train --data tiny --quiet \
    --resume r/tv18.safetensors --max-steps 19 --epochs 4 --warmup-epochs 4 --warmup-factor 0.5 --save r/tv18.safetensors
has out "--warmup-factor: 0.1 -> 0.5" "the factor's change is listed"
has out "learning rate of the next step (18): 0 -> 0.0875" "the next step's rate before and after is shown"
expect 0 "... resumed given the factor in effect" "$R" train --data tiny --quiet --resume r/tv18.safetensors \
    --max-steps 20 --save r/tv18.safetensors --warmup-factor 0.5
hasnt out "--warmup-factor" "the factor in effect is no change"
expect 0 "a warm-up of an epoch, factor auto" "$R" "${common[@]}" --epochs 3 --warmup-epochs 1 --max-steps 2 \
    --save r/tva.safetensors
expect 0 "... resumed given 0.01, auto's value" "$R" train --data tiny --quiet --resume r/tva.safetensors --max-steps 3 \
    --save r/tva.safetensors --warmup-factor 0.01
hasnt out "--warmup-factor" "auto's 0.01 is no change"
# a checkpoint older than a flag ran with its default: a resume giving the flag lists the change
"$PY" -c "
import sys
sys.path.insert(0, '$HERE/tools')
from st_io import load_safetensors, save_safetensors
t, meta = load_safetensors('r/tva.optim.safetensors')
save_safetensors('r/tva.optim.safetensors', t, {k: v for k, v in meta.items() if k != 'plan.auto-augment'})
" || bad "stripping a flag from the plan"
expect 0 "... resumed with a flag its plan lacks" "$R" train --data tiny --quiet --resume r/tva.safetensors --max-steps 4 \
    --save r/tva.safetensors --auto-augment ta_wide
has out "--auto-augment: none -> ta_wide (the checkpoint predates the flag" "the flag newer than the checkpoint is listed"
expect 2 "... resumed with --warmup-epochs while it has --warmup" "$R" train --data tiny --quiet --resume \
    r/tv18.safetensors --max-steps 21 --save r/tv18.safetensors --warmup 3
has err "--warmup 3 and --warmup-epochs 4" "both warm-ups refused"

# within the warm-up every update copies the weights (torchvision resets the average there)
expect 0 "--ema within the warm-up" "$R" "${common[@]}" --epochs 2 --lr 0.1 --ema 0.5 --ema-every 1 --warmup 100 \
    --max-steps 3 --save r/emaw.safetensors
"$PY" - r/emaw.safetensors r/emaw.ema.safetensors "$HERE/tools" <<'PY' && ok || bad "the average within the warm-up is not the weights"
import sys
sys.path.insert(0, sys.argv[3])
from st_io import load_safetensors
w, e = load_safetensors(sys.argv[1], as_numpy=True)[0], load_safetensors(sys.argv[2], as_numpy=True)[0]
sys.exit(not (w.keys() == e.keys() and all(w[k].tobytes() == e[k].tobytes() for k in w)))
PY
# a longer horizon: what changes is printed, with the learning rates the trainer uses
expect 0 "resume with --epochs 4" "$R" train --data tiny --quiet --resume r/a.safetensors --max-steps 4 \
    --epochs 4 --save r/c.safetensors --log none
cp out resume_epochs.txt
expect 0 "4 steps of 4 epochs" "$R" "${common[@]}" --epochs 4 --lr 0.1 --schedule cosine --momentum 0.9 \
    --max-steps 4 --save r/four.safetensors
has resume_epochs.txt "--epochs: 2 -> 4" "the changed flag is shown"
has resume_epochs.txt "total steps: 12 -> 24" "the total steps are shown"
before=$("$PY" -c "import json; print('%.6g' % [d for d in map(json.loads, open('r/straight.log.jsonl')) if 'step' in d][3]['lr'])")
after=$("$PY" -c "import json; print('%.6g' % [d for d in map(json.loads, open('r/four.log.jsonl')) if 'step' in d][3]['lr'])")
has resume_epochs.txt "learning rate of the next step (3): $before -> $after" "the learning rates are the trainer's"
# another batch size: the schedule goes on from where the images are in the new plan (24 images
# in: step 6 of batch 4, as a straight run of batch 4 has it), here and after a second resume;
# it had gone on from the old step count (3 of 24), a cosine never finishing
expect 0 "8 steps of batch 4" "$R" "${common[@]}" --epochs 2 --lr 0.1 --schedule cosine --momentum 0.9 \
    --max-steps 8 --batch-size 4 --save r/four_b.safetensors
expect 0 "resume with --batch-size 4" "$R" train --data tiny --quiet --resume r/a.safetensors --batch-size 4 \
    --max-steps 4 --save r/e.safetensors --log r/e.log.jsonl --log-every 1
cp out resume_batch.txt
# a checkpoint at an epoch's end (48 images of batch 8, as --save-every or Ctrl-C on its last step
# record it: epoch 0, position 48) resumed at batch 10: the next epoch starts on its own first step (a
# step schedule turning there), 48 / 10 rounded down had put it a step short
expect 0 "an epoch of batch 8" "$R" "${common[@]}" --epochs 3 --schedule step:1:0.5 --max-steps 6 \
    --save r/end.safetensors
"$PY" -c "
import sys
sys.path.insert(0, '$HERE/tools')
from st_io import load_safetensors, save_safetensors
t, meta = load_safetensors('r/end.optim.safetensors')
assert (meta['epoch'], meta['position']) in (('1', '0'), ('0', '48')), meta
meta.update(epoch='0', position='48')
save_safetensors('r/end.optim.safetensors', t, meta)
" || bad "placing the checkpoint at its epoch's last image"
expect 0 "resume it at batch 10" "$R" train --data tiny --quiet --resume r/end.safetensors --batch-size 10 \
    --max-steps 7 --save r/end.safetensors
expect 0 "the same at batch 10 straight" "$R" "${common[@]}" --epochs 3 --schedule step:1:0.5 --max-steps 6 \
    --batch-size 10 --save r/end10.safetensors
"$PY" - r/end.log.jsonl r/end10.log.jsonl <<'PY' && ok || bad "the schedule after an epoch's end at another batch is a step off"
import json, sys
lr = lambda p: {d["step"]: d["lr"] for d in map(json.loads, open(p)) if "step" in d and "lr" in d}
resumed, straight = lr(sys.argv[1]), lr(sys.argv[2])
assert resumed[7] == straight[6] == 0.025, (resumed, straight)
PY
expect 0 "resume that again" "$R" train --data tiny --quiet --resume r/e.safetensors --max-steps 5 \
    --save r/e.safetensors
"$PY" - r/four_b.log.jsonl r/e.log.jsonl resume_batch.txt <<'PY' && ok || bad "the schedule after another batch size is not the new plan's"
import json, sys
lr = lambda p: {d["step"]: d["lr"] for d in map(json.loads, open(p)) if "step" in d and "lr" in d}
straight, resumed = lr(sys.argv[1]), lr(sys.argv[2])
# optimizer steps 4 and 5 of the resumed run are the schedule's 7 and 8 of the straight run
assert [resumed[s] for s in (4, 5)] == [straight[s] for s in (7, 8)], (resumed, straight)
assert "learning rate of the next step (3): " in open(sys.argv[3]).read()
assert ("-> %.6g" % straight[7]) in open(sys.argv[3]).read(), open(sys.argv[3]).read()
PY
# a checkpoint from before plans were recorded
"$PY" -c "
import sys
sys.path.insert(0, '$HERE/tools')
from st_io import load_safetensors, save_safetensors
t, meta = load_safetensors('r/a.optim.safetensors')
save_safetensors('r/a.optim.safetensors', t, {k: v for k, v in meta.items() if not k.startswith('plan.')})
" || bad "stripping the plan"
expect 0 "resume an old checkpoint" "$R" train --data tiny --quiet --resume r/a.safetensors --epochs 2 \
    --batch-size 8 --max-steps 4 --save r/d.safetensors --log none
has out "records no training plan" "an old checkpoint is noted"
# nothing left to train
"$PY" -c "
import sys
sys.path.insert(0, '$HERE/tools')
from st_io import load_safetensors, save_safetensors
t, meta = load_safetensors('r/b.optim.safetensors')
meta.update(epoch='2', position='0')
save_safetensors('r/b.optim.safetensors', t, meta)
" || bad "moving the checkpoint to its last epoch"
expect 0 "resume a finished run" "$R" train --data tiny --quiet --resume r/b.safetensors --save r/b.safetensors \
    --log none
has out "nothing left to train" "a finished run says so"
# past the new horizon inside an epoch: where it is, and its log and files left alone (the message had
# put it at the end of the epoch before, and a run record had been added to the log)
expect 0 "8 steps (2 into the second epoch)" "$R" "${common[@]}" --epochs 2 --max-steps 8 --save r/f.safetensors
cp r/f.log.jsonl r/f.log.before
[ "$(grep -c '^checkpoint:' out)" -eq 1 ] && ok || bad "a run stopped by --max-steps names its checkpoint more than once: $(cat out)"
expect 0 "resume it with --epochs 1" "$R" train --data tiny --quiet --resume r/f.safetensors --save r/f.safetensors \
    --epochs 1
has out "nothing left to train: the checkpoint is 16 images into epoch 2 and --epochs is 1" "the position is said"
cmp -s r/f.log.jsonl r/f.log.before && ok || bad "a run with nothing to train wrote to its log"
# another seed is shown with the other changes (it had changed the run without a word)
expect 0 "resume with --seed 5" "$R" train --data tiny --quiet --resume r/e.safetensors --seed 5 --max-steps 5 \
    --save r/g.safetensors --log none
has out "--seed: 0 -> 5 (the data order and augmentation from here on)" "the seed's change is shown"
expect 2 "resume with another --optimizer" "$R" train --data tiny --quiet --resume r/e.safetensors \
    --optimizer adamw --save r/h.safetensors --log none
has err "--optimizer adamw: r/e.optim.safetensors holds sgd's state" "the refusal names the state and its optimizer"

# ---- a recipe, and a narrower model through train, resume, eval and info -----------------------------------

expect 0 "train --recipe list" "$R" train --recipe list
has out "fmnist-fast:" "the recipe is listed"
has out "--width 16" "with its flags"
has out "--label-smoothing 0.1 --augment flip --tta flip --seed 0 --precision bf16" \
    "a recipe built on another lists the base's flags, then its own"
# a recipe on a base: the base's flags, its own on top, those given over both
RN_ISA=portable expect 0 "train --recipe fmnist-fast-bf16" "$R" train --recipe fmnist-fast-bf16 --data tiny \
    --width 8 --epochs 1 --batch-size 8 --max-steps 2 --no-report
has out "--nesterov --weight-decay 5e-4" "the base recipe's flags apply"
has out "mixed precision: the convolutions' and classifier's GEMM products on bf16 operands" "its own flag applies (bf16)"
# torchvision's ResNet-50 V2 recipe, shrunk by the flags given (its sizes, model, batch, epochs), runs an epoch:
# 256 positions of the repeated order, 8 steps, evaluated at its own size with the average beside
expect 0 "train --recipe torchvision-resnet50-v2 (shrunk)" "$R" train --recipe torchvision-resnet50-v2 \
    --data folder300 --dataset folder-gray --arch d2l_resnet18 --width 8 --epochs 1 --batch-size 32 --image-size 16 \
    --val-image-size 20 --val-resize-size 22 --ema-every 2 --no-report --save w/v2.safetensors
has out "recipe torchvision-resnet50-v2: --optimizer sgd --lr 0.5 --momentum 0.9 --weight-decay 2e-5 \
--norm-weight-decay 0 --schedule cosine --schedule-by epoch --warmup-epochs 5 --warmup-method linear --warmup-factor 0.01 \
--label-smoothing 0.1 --auto-augment ta_wide --aa-interpolation bilinear --random-erase 0.1 --mixup-alpha 0.2 \
--cutmix-alpha 1.0 --ema 0.9989077333333323 --ra-sampler --ra-reps 4" "the recipe's flags but those given"
has out "8 steps per epoch (--ra-sampler: each image 4 times in a row)" "its repeated augmentation"
has out "evaluated at 20x20 after resizing to 22" "its evaluation's sizes"
[ -s w/v2.ema.safetensors ] && ok || bad "the recipe's moving average was not saved"
expect 2 "an unknown recipe" "$R" train --data tiny --recipe frob
has err "fmnist-fast" "the known recipes are named"
# the recipe's flags, but for those given: width 8, 1 epoch, 3 steps
expect 0 "train --recipe fmnist-fast" "$R" train --recipe fmnist-fast --data tiny --width 8 --epochs 2 \
    --batch-size 8 --max-steps 3 --save w/a.safetensors --log w/a.jsonl --no-report
has out "training resnet18 width 8 " "the width is shown"
has out "recipe fmnist-fast: --dataset fashion-mnist --arch resnet18 --stem cifar --eval-every 3 --optimizer sgd --lr 0.1 \
--momentum 0.9 --nesterov --weight-decay 5e-4 --schedule onecycle --label-smoothing 0.1 --augment flip --tta flip --seed 0" \
    "the flags the recipe set, not those given"
has w/a.jsonl '"nesterov": true' "the log's run record holds the recipe's values"
expect 0 "resume the narrow model" "$R" train --data tiny --quiet --resume w/a.safetensors --save w/a.safetensors \
    --no-report --log w/a.jsonl
has w/a.jsonl '"elapsed": ' "epoch records say the wall time since the start"
expect 0 "eval the narrow model" "$R" eval --weights w/a.safetensors --data tiny
# --tta flip: the mean of the logits of each image and its mirror, as PyTorch computes them
expect 0 "eval --tta flip" "$R" eval --weights w/a.safetensors --data tiny --tta flip --json
"$PY" - "$HERE" <<'PY' && ok || bad "eval --tta flip differs from PyTorch's flip-averaged logits: $(cat out)"
import gzip, json, os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tools"))
import numpy as np, torch
from rn_models import build_model
from st_io import load_safetensors
torch.set_num_threads(1)
got = json.load(open("out"))
sd, _ = load_safetensors("w/a.safetensors")
m = build_model("resnet18", 1, 10, stem="cifar", width=8)
m.load_state_dict(sd)
m.eval()
x = np.frombuffer(gzip.open("tiny/t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
y = torch.from_numpy(np.frombuffer(gzip.open("tiny/t10k-labels-idx1-ubyte.gz").read(), np.uint8,
                                   offset=8).astype(np.int64))
x = torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.float32) / 255)
with torch.no_grad():
    logits = (m(x) + m(x.flip(3))) / 2
loss = float(torch.nn.functional.cross_entropy(logits, y))
top1 = float((logits.argmax(1) == y).float().mean())
sys.exit(0 if got["count"] == len(y) and abs(got["loss"] - loss) < 1e-4 and abs(got["top1"] - top1) < 1e-9 else 1)
PY
expect 2 "eval --tta with a bad value" "$R" eval --weights w/a.safetensors --data tiny --tta mirror
expect 0 "info at width 8" "$R" info --arch d2l_resnet18 --width 8 --in-channels 1 --num-classes 10 --image-size 28
has out "d2l_resnet18: width 8" "info names the width"
expect 2 "a width out of range" "$R" info --arch d2l_resnet18 --width 0
expect 2 "a ResNeXt width that splits no group" "$R" init --arch resnext50_32x4d --width 8 --output w/x.safetensors
has err "multiple of 64" "why the width is refused"
expect 1 "train with test images of another size" "$R" train --data mixed --width 8 --batch-size 16 --max-steps 1 \
    --no-report
has err "mixed: the test split's images are 1x20x20, the training split's 1x28x28 (--image-size resizes both" \
    "the two shapes are named"
expect 0 "the same with --image-size 28" "$R" train --data mixed --width 8 --batch-size 16 --max-steps 1 --no-report \
    --image-size 28
expect 0 "plot --time" "$R" plot --log w/a.jsonl --compare w/a.jsonl --labels one,two --output w/t.svg
[ "$(grep -c '<polyline' w/t.svg)" -eq 2 ] && ok || bad "plot --time: a line per log"
expect 2 "plot --time with too few labels" "$R" plot --log w/a.jsonl --compare w/a.jsonl --labels one
expect 2 "plot --compare of 9 logs" "$R" plot --log w/a.jsonl --output w/t9.svg \
    --compare w/a.jsonl,w/a.jsonl,w/a.jsonl,w/a.jsonl,w/a.jsonl,w/a.jsonl,w/a.jsonl,w/a.jsonl,w/a.jsonl
has err "at most 8 logs; it names 9" "the 9th log is refused, not dropped"
printf '{"epoch": 1, "test_acc": 0.5, "seconds": 2.0}\n' >w/old.jsonl
expect 1 "plot --time of a log without elapsed" "$R" plot --log w/old.jsonl --time --output w/u.svg
has err 'w/old.jsonl: no per-epoch record has "elapsed"' "the log without it is named"

# ---- --save onto an existing checkpoint: refused unless --resume or --overwrite ---------------------

T1=(train --data tiny --width 8 --batch-size 8 --max-steps 1 --quiet --no-report)
expect 0 "train once" "$R" "${T1[@]}" --save o/m.safetensors
# a learning rate that sends the logits past float: the test loss is NaN, logged as null (JSON)
expect 0 "train with a test loss of NaN" "$R" train --data tiny --width 8 --batch-size 8 --epochs 1 --lr 1000 --quiet \
    --no-report --save nl/m.safetensors
has nl/m.log.jsonl '"test_loss": null' "the NaN test loss logged as null"
hasnt nl/m.log.jsonl 'nan' "no nan in the JSON log"
expect 0 "plot the log with the NaN test loss" "$R" plot --log nl/m.log.jsonl --output nl/c.svg
expect 0 "train --freeze-backbone on a fresh backbone" "$R" "${T1[@]}" --freeze-backbone
has err "warning: --freeze-backbone keeps the backbone as initialised (--init default)" "a random backbone frozen is warned about"
expect 0 "train --freeze-backbone from trained weights" "$R" "${T1[@]}" --freeze-backbone --init o/m.safetensors
hasnt err "warning: --freeze-backbone" "no warning with --init FILE"
sum_before=$(cat o/m.safetensors o/m.optim.safetensors o/m.log.jsonl | md5sum)
expect 2 "train again onto the same --save" "$R" "${T1[@]}" --save o/m.safetensors
has err "o/m.safetensors already holds a checkpoint" "the refusal names the file"
has err "--resume o/m.safetensors" "the refusal says how to continue"
has err "--overwrite" "the refusal says how to start over"
[ "$(cat o/m.safetensors o/m.optim.safetensors o/m.log.jsonl | md5sum)" = "$sum_before" ] && ok ||
    bad "the refused run changed the checkpoint or its log"
expect 0 "train again with --overwrite" "$R" "${T1[@]}" --save o/m.safetensors --overwrite
expect 0 "train again with --resume" "$R" "${T1[@]}" --save o/m.safetensors --resume o/m.safetensors --max-steps 2
expect 2 "--resume of another checkpoint onto an existing one" "$R" "${T1[@]}" --save o/m.safetensors \
    --resume r/a.safetensors --max-steps 5

# ---- files a run must not overwrite, and names with dots of their own -------------------------------

sum_a=$(cat o/m.safetensors o/m.optim.safetensors | md5sum)
expect 2 "--log onto the --save checkpoint" "$R" "${T1[@]}" --save g/b.safetensors --log g/b.safetensors
has err "is the checkpoint --save writes" "the clash is named"
# the same files to be, named another way (neither there yet)
mkdir -p g
expect 2 "--log onto the --save checkpoint by another path" "$R" "${T1[@]}" --save g/b.safetensors \
    --log g/../g/b.safetensors
expect 2 "--log onto the optimizer state to be, in a folder to be" "$R" "${T1[@]}" --save ng/b.safetensors \
    --log ./ng/b.optim.safetensors
has err "is the checkpoint's optimizer state" "the clash is named"
[ ! -e ng ] && ok || bad "a refused run left the folder ng"
expect 2 "--log onto the checkpoint to be, with a doubled slash" "$R" "${T1[@]}" --save ng//b.safetensors \
    --log ng/./b.safetensors
expect 2 "--log onto the --resume checkpoint" "$R" "${T1[@]}" --resume o/m.safetensors --save g/c.safetensors \
    --log o/m.safetensors --max-steps 3
expect 2 "--log onto --resume's optimizer state" "$R" "${T1[@]}" --resume o/m.safetensors --save g/c.safetensors \
    --log o/m.optim.safetensors --max-steps 3
expect 2 "--log onto the --init weights" "$R" "${T1[@]}" --init o/m.safetensors --save g/d.safetensors \
    --log o/m.safetensors
[ "$(cat o/m.safetensors o/m.optim.safetensors | md5sum)" = "$sum_a" ] && ok || bad "a refused --log changed o/m"
mkdir -p g/folder
expect 2 "--log a folder" "$R" "${T1[@]}" --log g/folder
expect 3 "--log that cannot be written" "$R" "${T1[@]}" --log /proc/self/no-such.jsonl
has err "cannot write the log" "the unwritable log is named"
expect 2 "--save a folder" "$R" "${T1[@]}" --save g/folder
has err "is a folder" "--save a folder says so"
[ ! -e g/folder.log.jsonl ] && ok || bad "--save a folder left g/folder.log.jsonl"
expect 0 "--save runs/lr0.1" "$R" "${T1[@]}" --save g/lr0.1
expect 0 "--save runs/lr0.05" "$R" "${T1[@]}" --save g/lr0.05
[ -s g/lr0.1.optim.safetensors ] && [ -s g/lr0.05.optim.safetensors ] && [ -s g/lr0.1.log.jsonl ] &&
    [ ! -e g/lr0.optim.safetensors ] && ok || bad "dotted run names share files: $(ls g)"
expect 0 "resume g/lr0.1" "$R" "${T1[@]}" --save g/lr0.1 --resume g/lr0.1 --max-steps 2
# a run an earlier build saved as g/v1.2 kept its files as g/v1.*: still resumed, still reported
expect 0 "--save g/v1.2" "$R" "${T1[@]}" --save g/v1.2
mv g/v1.2.optim.safetensors g/v1.optim.safetensors && mv g/v1.2.log.jsonl g/v1.log.jsonl
expect 0 "resume a run named as earlier builds named its files" "$R" "${T1[@]}" --save g/v1.2 --resume g/v1.2 \
    --max-steps 2
for c in "export o/m.safetensors o/m.safetensors" "convert o/m.safetensors ./o/m.safetensors" \
    "quantize --weights o/m.safetensors --data tiny --output o/m.safetensors" \
    "plot --log o/m.log.jsonl --output o/m.log.jsonl" \
    "plot --log o/m.log.jsonl --compare g/lr0.1.log.jsonl --output g/lr0.1.log.jsonl"; do
    # shellcheck disable=SC2086
    expect 2 "$c" "$R" $c && has err "is the same file as" "$c: the clash is named"
done
[ "$(cat o/m.safetensors o/m.optim.safetensors | md5sum)" = "$sum_a" ] && ok || bad "a refused output changed o/m"

# ---- --max-steps on an epoch's last step: the epoch ends (evaluated, logged), and a resume goes on ----------

expect 0 "train --max-steps 6 (one epoch of 6 steps)" "$R" "${T1[@]}" --epochs 2 --save ep/m.safetensors --max-steps 6
has out "at the end of epoch 1" "the stop at the epoch's end is said"
expect 0 "resume after it" "$R" "${T1[@]}" --epochs 2 --save ep/m.safetensors --resume ep/m.safetensors --max-steps 0
has out "epoch 2/2  train loss" "the resumed run trains epoch 2"
hasnt out "epoch 1/2" "the resumed run does not redo epoch 1"
[ "$(grep -c '"epoch": 1,' ep/m.log.jsonl)" -eq 1 ] && ! grep -q '"train_loss": null' ep/m.log.jsonl && ok ||
    bad "the log's epoch records: $(grep epoch ep/m.log.jsonl)"

# ---- flags checked before training: classes, normalisation -----------------------------------------------

"$R" init --arch d2l_resnet18 --width 8 --in-channels 1 --num-classes 2 --output c2.safetensors >/dev/null 2>&1
expect 1 "train --init a 2-class model on 10 classes" "$R" "${T1[@]}" --init c2.safetensors
has err "pass --num-classes N" "the fix is suggested"
expect 1 "report of a 2-class model on 10 classes" "$R" report --weights c2.safetensors --data tiny --output c2r --quiet
[ ! -e c2r ] && ok || bad "a refused report left the folder c2r"
expect 2 "eval --normalize with 2 values on 1 channel" "$R" eval --weights o/m.safetensors --data tiny \
    --normalize 0.2,0.3:0.4,0.5
expect 2 "train --normalize with 2 values on 1 channel" "$R" "${T1[@]}" --normalize 0.2,0.3:0.4,0.5
expect 2 "train --init with another --width" "$R" "${T1[@]}" --init o/m.safetensors --width 16 \
    --save gw/new/m.safetensors
has err "--width 16 describes another model" "the flag that would be dropped is named"
[ ! -e gw ] && ok || bad "a run refused after its --save folder was made left gw behind"
expect 0 "train --init with its own --width" "$R" "${T1[@]}" --init o/m.safetensors --save g/w8.safetensors
expect 2 "--freeze-backbone with --lr-backbone" "$R" "${T1[@]}" --freeze-backbone --lr-backbone 0.1
expect 2 "adamw with --momentum" "$R" "${T1[@]}" --optimizer adamw --momentum 0.9
expect 2 "bench --train --mode eval" "$R" bench --train --mode eval --arch d2l_resnet18 --in-channels 1 \
    --num-classes 10 --image-size 28 --repeats 1 --warmup 0
printf '1 2.5\n' >labels_frac.txt
expect 1 "forward --true-labels with a fraction" "$R" forward --weights o/m.safetensors --print \
    --input "$HERE/data/sample/fmnist_batch.npy" --output y.npy --true-labels labels_frac.txt
has err "'2.5'" "the bad label is named"

# ---- the curves that train says it wrote exist ----------------------------------------------------------

# 2 steps of the first epoch: no finished epoch to draw, so no curves are claimed
expect 0 "train --max-steps 2" "$R" "${T1[@]}" --save c/m.safetensors --max-steps 2
if grep -q '^curves: ' out; then
    f=$(sed -n 's/^curves: //p' out)
    [ -s "$f" ] && ok || bad "train --max-steps claims curves $f that it did not write"
else
    ok
fi
# 8 steps of 6 per epoch: epoch 1 finished, the curves written, and again when --max-steps stops the run
expect 0 "train --max-steps 8 (an epoch and a bit)" "$R" "${T1[@]}" --epochs 3 --save c/e.safetensors --max-steps 8 \
    --log-every 1
has out "curves: c/e.svg" "the curves are named"
[ -s c/e.svg ] && ok || bad "train --max-steps 8 wrote no c/e.svg"
rm -f c/e.svg
expect 0 "resume, stopped by --max-steps" "$R" "${T1[@]}" --epochs 3 --save c/e.safetensors --resume c/e.safetensors \
    --max-steps 10 --log-every 1
has out "curves: c/e.svg" "the resumed run names its curves"
[ -s c/e.svg ] && ok || bad "a run stopped by --max-steps does not write the curves it names"

# ---- convert and quantize keep the checkpoint's metadata ------------------------------------------------

expect 0 "train with metadata" "$R" "${T1[@]}" --image-size 32 --normalize 0.3:0.4 --save md/m.safetensors
expect 0 "convert keeps the metadata" "$R" convert md/m.safetensors md/c.safetensors
expect 0 "quantize keeps the metadata" "$R" quantize --weights md/m.safetensors --data tiny --calib-images 8 \
    --output md/q.safetensors --quiet
"$PY" - md/m.safetensors md/c.safetensors md/q.safetensors <<'PY' && ok || bad "metadata lost by convert or quantize"
import json, struct, sys
def meta(p):
    raw = open(p, "rb").read()
    return json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
m, c, q = (meta(p) for p in sys.argv[1:])
keys = ("image_size", "normalize", "dataset", "stem", "class_names")
assert all(k in m for k in keys), m
assert all(c.get(k) == m[k] for k in m if k != "format"), (m, c)
assert all(q.get(k) == m[k] for k in keys), (m, q)
assert m["image_size"] == "32" and m["normalize"] == "0.3:0.4", m
PY
# export: a checkpoint's bad metadata named as its (exit 1), not as a flag
"$PY" - md/m.safetensors <<'PY' || bad "could not write the checkpoints with bad metadata"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
for key, value, out in (("normalize", "abc", "md/badnorm.safetensors"), ("image_size", "100000", "md/bigsize.safetensors")):
    h = dict(head, __metadata__=dict(head["__metadata__"], **{key: value}))
    text = json.dumps(h).encode()
    text += b" " * (-len(text) % 8)
    open(out, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY
expect 1 "export a checkpoint whose normalize metadata is bad" "$R" export md/badnorm.safetensors md/bn.onnx
has err "md/badnorm.safetensors: its metadata normalize 'abc'" "the file and its key are named"
expect 1 "export a checkpoint whose image_size metadata is too large" "$R" export md/bigsize.safetensors md/bs.onnx
has err "md/bigsize.safetensors: its metadata image_size '100000'" "the file and its key are named"
expect 0 "export it with --image-size" "$R" export md/bigsize.safetensors md/bs.onnx --image-size 32
# --normalize imagenet, as predict takes it: ImageNet's mean and std in the metadata
# (a 1-channel model: their averages, as predict and train take them)
expect 0 "export --normalize imagenet" "$R" export md/bigsize.safetensors md/in.onnx --image-size 32 --normalize imagenet
"$PY" -c "import onnx, sys; m = {p.key: p.value for p in onnx.load(sys.argv[1]).metadata_props}; \
sys.exit(m.get('mean') != ('0.449' if sys.argv[2] == '1' else '0.485,0.456,0.406'))" md/in.onnx \
    "$("$R" info --weights md/bigsize.safetensors | grep -o 'in_channels [0-9]*' | cut -d' ' -f2)" &&
    ok || bad "export --normalize imagenet did not record ImageNet's mean and std"
# NaN logits (a classifier bias of NaN): --json still JSON, the numbers null
"$PY" - md/m.safetensors md/nan.safetensors <<'PY' || bad "could not write md/nan.safetensors"
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
b = json.loads(raw[8:8 + n])["fc.bias"]
lo, hi = (8 + n + o for o in b["data_offsets"])
raw[lo:hi] = struct.pack("<%df" % ((hi - lo) // 4), *[float("nan")] * ((hi - lo) // 4))
open(sys.argv[2], "wb").write(raw)
PY
expect 0 "eval --json of a model with NaN logits" "$R" eval --weights md/nan.safetensors --data tiny --json
"$PY" -c 'import json, sys; d = json.loads(open(sys.argv[1]).read(), parse_constant=lambda c: 1 / 0); assert d["loss"] is None' out \
    && ok || bad "eval --json with NaN logits is not JSON with a null loss: $(cat out)"
expect 0 "predict --json with NaN logits" "$R" predict --weights md/nan.safetensors --json img.png
"$PY" -c 'import json, sys; d = json.loads(open(sys.argv[1]).read(), parse_constant=lambda c: 1 / 0); assert d["top"][0]["prob"] is None, d' out \
    && ok || bad "predict --json with NaN logits is not JSON with null probabilities: $(cat out)"
expect 1 "convert an int8 model" "$R" convert md/q.safetensors md/qc.safetensors
has err "md/q.safetensors is an int8 model" "convert says the int8 model is not converted"
[ ! -e md/qc.safetensors ] && ok || bad "convert wrote an int8 model as if PyTorch could load it"
expect 0 "eval the checkpoint" "$R" eval --weights md/m.safetensors --data tiny --json && cp out md/eval_m.json
expect 0 "eval the converted checkpoint" "$R" eval --weights md/c.safetensors --data tiny --json
cmp -s out md/eval_m.json && ok || bad "the converted checkpoint evaluates otherwise: $(cat out) vs $(cat md/eval_m.json)"

# ---- --split: val for image folders, a clear error for the other datasets -------------------------------

"$R" init --arch d2l_resnet18 --width 8 --in-channels 1 --num-classes 2 --output fo/w.safetensors >/dev/null 2>&1
E=(--weights fo/w.safetensors --data folder --dataset folder-gray --image-size 28)
expect 0 "eval --split val (a folder)" "$R" eval "${E[@]}" --split val --json
has out '"count": 4' "eval --split val: the 4 images of folder/val"
expect 0 "quantize --split val (a folder)" "$R" quantize "${E[@]}" --split val --calib-images 4 \
    --output fo/q.safetensors --quiet
expect 0 "report --split val (a folder)" "$R" report "${E[@]}" --split val --no-png --quiet --output fo/rep
has fo/rep/report.html "Validation accuracy" "the page names the split it evaluated"
hasnt fo/rep/report.html "Test accuracy" "no test accuracy on a page of the val split"
expect 2 "report --split val on fashion-mnist" "$R" report --weights md/m.safetensors --data tiny --split val \
    --output rv --quiet
has err "no val split" "report --split val says why"
expect 2 "eval --split val on fashion-mnist" "$R" eval --weights md/m.safetensors --data tiny --split val
has err "no val split" "eval --split val says why"
expect 2 "quantize --split val on fashion-mnist" "$R" quantize --weights md/m.safetensors --data tiny --split val \
    --output rv/q.safetensors
has err "no val split" "quantize --split val says why"
[ ! -e rv ] && ok || bad "a refused report or quantize left the folder rv"

# ---- evaluated at a size of its own (--val-image-size, --val-resize-size) ---------------------------------
# torchvision's --train-crop-size / --val-crop-size / --val-resize-size: the epoch's evaluation at
# Resize(26) + CenterCrop(24) while training at 20; the checkpoint records them, so eval of it
# reproduces the epoch's figures, and eval at --resize-size 0 (int(24 / 0.875) = 27) does not
expect 0 "train at 20, evaluate at 26 -> 24" "$R" train --data folder --dataset folder-gray --image-size 20 \
    --val-image-size 24 --val-resize-size 26 --width 8 --batch-size 4 --epochs 1 --quiet --no-report \
    --save fv/m.safetensors
"$PY" - fv/m.safetensors <<'PY' && ok || bad "the checkpoint does not record the evaluation's sizes"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
meta = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])["__metadata__"]
sys.exit(0 if meta.get("image_size") == "24" and meta.get("resize_size") == "26" else 1)
PY
expect 0 "eval of it (its sizes)" "$R" eval --weights fv/m.safetensors --dataset folder-gray --data folder --json
cp out fv/eval.json
expect 0 "eval of it at --resize-size 0" "$R" eval --weights fv/m.safetensors --dataset folder-gray --data folder \
    --json --resize-size 0
cp out fv/eval27.json
"$PY" - fv/m.log.jsonl fv/eval.json out <<'PY' && ok || bad "eval of the checkpoint is not the epoch's evaluation"
import json, sys
last = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')][-1]
ev, other = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
same = abs(ev["top1"] - last["test_acc"]) < 1e-6 and abs(ev["loss"] - last["test_loss"]) < 1e-5
sys.exit(0 if same and abs(other["loss"] - ev["loss"]) > 1e-6 else 1)
PY
# --resize-size gives eval the resize: 27 is --resize-size 0's; the checkpoint's 26 stays with its own
# --image-size 24 given
expect 0 "eval of it at --resize-size 27" "$R" eval --weights fv/m.safetensors --dataset folder-gray --data folder \
    --json --resize-size 27
cmp -s out fv/eval27.json && ok || bad "eval --resize-size 27 is not eval --resize-size 0: $(cat out)"
expect 0 "eval of it at its own --image-size 24" "$R" eval --weights fv/m.safetensors --dataset folder-gray \
    --data folder --json --image-size 24
cmp -s out fv/eval.json && ok || bad "eval --image-size 24 dropped the checkpoint's resize 26: $(cat out)"
expect 2 "eval --resize-size on images in memory" "$R" eval --weights fv/m.safetensors --data tiny --dataset fashion-mnist \
    --resize-size 30
has err "--resize-size is for image folders" "the refusal says why"
expect 0 "quantize it" "$R" quantize --weights fv/m.safetensors --dataset folder-gray --data folder --calib-images 8 \
    --output fv/m.int8.safetensors
"$PY" - fv/m.int8.safetensors <<'PY' && ok || bad "the int8 file does not record the resize calibration used"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
meta = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])["__metadata__"]
sys.exit(0 if meta.get("image_size") == "24" and meta.get("resize_size") == "26" else 1)
PY
# predict takes them from the checkpoint, and from its ONNX export (which records resize_size)
img=$(ls folder/val/a/* | head -n 1)
expect 0 "predict with it" "$R" predict --weights fv/m.safetensors --json "$img" && cp out fv/p.json
expect 0 "predict with it at --resize-size 26" "$R" predict --weights fv/m.safetensors --json --resize-size 26 "$img"
cmp -s out fv/p.json && ok || bad "predict did not resize to the checkpoint's 26: $(cat fv/p.json) vs $(cat out)"
expect 0 "predict with it at --resize-size 27" "$R" predict --weights fv/m.safetensors --json --resize-size 27 "$img"
cmp -s out fv/p.json && bad "another resize predicted alike (the check has no teeth)" || ok
expect 0 "predict with it at its own --crop-size 24" "$R" predict --weights fv/m.safetensors --json --crop-size 24 "$img"
cmp -s out fv/p.json && ok || bad "predict --crop-size 24 dropped the checkpoint's resize 26: $(cat out)"
expect 0 "export it" "$R" export fv/m.safetensors fv/m.onnx
expect 0 "predict with the export" "$R" predict --weights fv/m.onnx --json "$img"
cmp -s out fv/p.json && ok || bad "predict with the ONNX export differs: $(cat fv/p.json) vs $(cat out)"
expect 0 "a resume changing --val-resize-size (the dataset the plan's)" "$R" train --data folder --resume fv/m.safetensors \
    --epochs 2 --val-resize-size 28 --quiet --no-report --save fv/m2.safetensors
has out "--val-resize-size: 26 -> 28" "the change is listed"
# images in memory: --val-image-size resizes the test split (bilinear); no resize-then-crop there
expect 0 "train at 28, evaluate at 32" "$R" train --data tiny --val-image-size 32 --width 8 --batch-size 8 \
    --epochs 1 --quiet --no-report --save fv/t.safetensors
expect 0 "eval of it" "$R" eval --weights fv/t.safetensors --data tiny --json
cp out fv/teval.json
expect 0 "eval of it at the images' own size" "$R" eval --weights fv/t.safetensors --data tiny --json --image-size 0
"$PY" - fv/t.log.jsonl fv/teval.json out fv/t.safetensors <<'PY' && ok || bad "in memory: not evaluated at 32"
import json, struct, sys
last = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')][-1]
ev, other = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
data = open(sys.argv[4], "rb").read()
meta = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])["__metadata__"]
sys.exit(0 if meta["image_size"] == "32" and abs(ev["loss"] - last["test_loss"]) < 1e-5 and
         abs(other["loss"] - ev["loss"]) > 1e-6 else 1)
PY
expect 2 "--val-resize-size on images in memory" "$R" train --data tiny --val-resize-size 30 --epochs 1 \
    --save fv/x.safetensors
has err "--val-resize-size is for image folders" "the refusal says why"

# ---- a folder's classes matched to the checkpoint's by name -------------------------------------------

expect 0 "train on a folder (classes a, b)" "$R" train --data folder --dataset folder-gray --image-size 28 --width 8 \
    --batch-size 4 --max-steps 1 --quiet --no-report --save fm/m.safetensors
mkdir -p vb/val vc/val/z vz/val && cp -r folder/val/b vb/val/ && cp -r folder/val/b vc/val/ && cp folder/val/a/* vc/val/z/ \
    && cp -r folder/val/a vz/val/x && cp -r folder/val/b vz/val/y
EM=(--weights fm/m.safetensors --dataset folder-gray --split val --json)
expect 0 "eval a folder of class b only" "$R" eval "${EM[@]}" --data vb && cp out fm/eval_vb.json
"$PY" - out <<'PY' && ok || bad "val/b alone was not labelled as the model's class b (1): $(cat out)"
import json, sys
conf = json.load(open(sys.argv[1]))["confusion"]
assert len(conf) == 2 and sum(conf[0]) == 0 and sum(conf[1]) == 2, conf
PY
expect 0 "report on a folder of class b only" "$R" report --weights fm/m.safetensors --dataset folder-gray --split val \
    --data vb --no-png --quiet --output fm/rep
# again into the same folder with --no-png: the first one's PNG figures go (they would not match the page)
expect 0 "report with PNGs" "$R" report --weights fm/m.safetensors --dataset folder-gray --split val --data vb \
    --quiet --output fm/rep3
ls fm/rep3/*.png >/dev/null 2>&1 && ok || bad "report wrote no PNG figures"
expect 0 "report again with --no-png" "$R" report --weights fm/m.safetensors --dataset folder-gray --split val \
    --data vb --quiet --no-png --output fm/rep3
ls fm/rep3/*.png >/dev/null 2>&1 && bad "stale PNG figures left: $(ls fm/rep3)" || ok
# class a, without images in vb, is no failure: out of the per-class figure unless predicted (as in
# the page's table), "no images" in the correct grid (where some image is right: top-1 > 0)
"$PY" - fm/eval_vb.json fm/rep <<'PY' && ok || bad "class a, without images, is shown as a failure in fm/rep"
import json, os, sys
ev = json.load(open(sys.argv[1]))
predicted_a = sum(row[0] for row in ev["confusion"])
per_class = open(os.path.join(sys.argv[2], "per_class.svg")).read()
assert (">a<" in per_class) == (predicted_a > 0), (predicted_a, ">a<" in per_class)
correct = os.path.join(sys.argv[2], "correct.svg")
assert os.path.exists(correct) == (ev["top1"] > 0), (ev["top1"], os.path.exists(correct))
if ev["top1"] > 0:
    svg = open(correct).read()
    assert "none right" not in svg and "no images" in svg
PY
expect 1 "eval a folder of a class the model lacks" "$R" eval "${EM[@]}" --data vc
has err "class 'z' of the dataset is not one of the model's 2" "the class the model lacks is named"
has err "--classes position" "the way to label by position is named"
has err "fm/m.safetensors" "the checkpoint whose classes they are is named"
expect 0 "eval that folder with --classes position" "$R" eval "${EM[@]}" --data vc --classes position
expect 2 "eval --classes bogus" "$R" eval "${EM[@]}" --data vc --classes bogus
# a class of DIR/train that DIR/val lacks and the model does not have: val is evaluated, by the
# names (train/{a,b,w} beside a model of a, b had been refused for w, which no val image is)
mkdir -p vw/train/w vw/val && cp -r folder/val/a folder/val/b vw/val/ && cp -r folder/val/a folder/val/b vw/train/ &&
    cp folder/val/a/* vw/train/w/
expect 0 "eval val beside a train of a class the model lacks" "$R" eval "${EM[@]}" --data vw
cmp -s out <("$R" eval "${EM[@]}" --data folder 2>/dev/null) && ok || bad "val beside train/w: not folder/val's result: $(cat out)"
expect 0 "eval a folder whose classes are named otherwise" "$R" eval "${EM[@]}" --data vz
has err "none of the dataset's 2 class folders is named as a class of fm/m.safetensors" "by position, with a warning"
# a model of more classes than its dataset (--num-classes 4 on classes a, b): the checkpoint names
# a and b; predict shows the rest by index, eval matches the folders by those names, and the
# confusion matrix keeps every prediction (columns: the model's classes)
expect 0 "train on a folder with --num-classes 4" "$R" train --data folder --dataset folder-gray --image-size 28 \
    --width 8 --num-classes 4 --batch-size 4 --max-steps 1 --quiet --no-report --save f4/m.safetensors
expect 0 "predict with a model of more classes than names" "$R" predict --weights f4/m.safetensors --topk 4 \
    "$(ls folder/val/b/* | head -n 1)"
[ "$(grep -cE '^ +[0-9]\. ' out)" -eq 4 ] && ok || bad "predict --top 4 shows 4 classes: $(cat out)"
# fewer class_names than classes beside a dataset whose built-in names number them: those names, as
# eval and report take them (rn_checkpoint_class_names)
"$R" init --arch d2l_resnet18 --width 8 --in-channels 1 --num-classes 10 --output f4/i10.safetensors >/dev/null
"$PY" - f4/i10.safetensors f4/c10.safetensors <<'PY' || bad "could not write f4/c10.safetensors"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
h.setdefault("__metadata__", {}).update(class_names="a\nb", dataset="cifar10", image_size="28", normalize="none")
text = json.dumps(h).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY
expect 0 "predict with 2 class names, a 10-class model of cifar10" "$R" predict --weights f4/c10.safetensors --topk 10 \
    "$(ls folder/val/b/* | head -n 1)"
grep -q "truck" out && ! grep -qE "  a$" out && ok || bad "predict did not take cifar10's names: $(cat out)"
expect 0 "eval a folder of class b only with that model" "$R" eval --weights f4/m.safetensors --dataset folder-gray \
    --split val --json --data vb
"$PY" - out <<'PY' && ok || bad "val/b was not labelled as the model's class b (1) of 4, or predictions dropped: $(cat out)"
import json, sys
ev = json.load(open(sys.argv[1]))
conf = ev["confusion"]
assert len(conf) == 4 and all(len(r) == 4 for r in conf), conf
assert sum(conf[1]) == ev["count"] == 2 and sum(map(sum, conf)) == 2, conf
PY
expect 0 "eval with --classes position, text" "$R" eval --weights f4/m.safetensors --dataset folder-gray --split val \
    --data vb --classes position
has out "other" "the predictions past the dataset's classes have a column"

# ---- report: a named log must exist; a refused report leaves no folder ----------------------------------

expect 1 "report --log missing" "$R" report --weights md/m.safetensors --data tiny --log typo.jsonl --output rl --quiet
has err "typo.jsonl" "the missing log is named"
"$R" init --arch resnet18 --width 8 --num-classes 10 --output rgb.safetensors >/dev/null
expect 1 "report of a 3-channel model on 1-channel images" "$R" report --weights rgb.safetensors --data tiny \
    --output rl/x --quiet
[ ! -e rl ] && ok || bad "a failed report left the folder rl"

# ---- eval shows its progress on a terminal, as train and report do --------------------------------------

if command -v script >/dev/null; then
    script -qec "'$R' eval --weights md/m.safetensors --data tiny --batch-size 4" /dev/null >tty.txt 2>&1
    grep -q "evaluating 16/16" tty.txt && ok || bad "eval shows no progress on a terminal: $(head -c 300 tty.txt)"
    expect 0 "eval, stderr not a terminal" "$R" eval --weights md/m.safetensors --data tiny --batch-size 4
    [ ! -s err ] && ok || bad "eval prints progress when stderr is no terminal: $(cat err)"
else
    echo "SKIP  eval progress on a terminal: no script(1)"
fi

echo "cli_files: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
