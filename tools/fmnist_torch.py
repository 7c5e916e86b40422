#!/usr/bin/python3
"""The D2L book's ResNet-18 training on Fashion-MNIST, in PyTorch: the baseline
that `resnet train` is compared with (accuracy and speed).

    /usr/bin/python3 tools/fmnist_torch.py --data DIR [--epochs 10] [--batch-size 256]
        [--lr 0.05] [--image-size 96] [--threads 2] [--max-steps K] [--seed 0]
        [--log LOG.jsonl]
        [--arch d2l_resnet18] [--width 64] [--stem imagenet|cifar] [--init xavier|default]
        [--momentum 0] [--nesterov] [--weight-decay 0] [--schedule constant|onecycle]
        [--label-smoothing 0] [--augment none|flip|crop[:N][+flip]] [--tta none|flip]

As d2l.ai chapter 8.6 (ResNet), with d2l.train_ch6:
  - model: rn_models.build_model("d2l_resnet18", 1, 10), Conv2d and Linear
    weights re-initialised with nn.init.xavier_uniform_ (biases and BatchNorm
    keep PyTorch's defaults), seeded with --seed;
  - data: DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz read with gzip +
    numpy; transforms Resize(96) (PIL, bilinear, only when --image-size 96)
    then ToTensor (uint8 / 255); training batches reshuffled every epoch
    (torch.randperm, seeded), the last partial batch kept; test in order;
  - SGD(lr), no momentum, no weight decay; CrossEntropyLoss (mean);
  - per epoch: train loss and accuracy averaged over the epoch's images (the
    model in train mode, as the book's Accumulator does), then test loss and
    accuracy in eval mode.

Prints one line per epoch and, last, one JSON line:
  {"epochs": E, "steps": S, "train_loss": .., "train_acc": .., "test_acc": ..,
   "seconds_per_epoch": [..], "images_per_second": .., ...}
seconds_per_epoch counts training only (not the test pass). images_per_second
is training images / training seconds, excluding the first step of the run
(one-off allocation and thread start-up). --max-steps K stops after K training
steps in all (a throughput measurement): the epoch in progress is reported
over the images it saw, and the test pass is skipped (test_acc null), as it is
after the epochs --eval-every N passes over (each N-th and the last are tested).
--log writes the epoch records as JSON lines in resnet.c's training-log
format ("epoch" 1-based, "train_loss", "train_acc", "test_loss", "test_acc",
"lr", "seconds", and "elapsed": wall seconds since main() started, data
loading and evaluation included), which `resnet plot` draws.

The other flags give `resnet train`'s recipes (its flags of the same names):
  - --arch / --width / --stem: rn_models.build_model(arch, 1, 10, stem, width);
    --init default keeps PyTorch's own initialisation instead of Xavier's;
  - SGD(lr, momentum, weight_decay, nesterov, dampening 0);
  - --schedule onecycle: OneCycleLR(max_lr=lr, total_steps=epochs x steps per
    epoch, cycle_momentum=False), stepped after every step (resnet.c's
    onecycle); --label-smoothing: CrossEntropyLoss(label_smoothing);
  - --augment crop+flip: each training image (after the resize) zero-padded by
    4 pixels (crop:N+flip: by N) and cropped back at a random offset, then
    flipped left-right with probability 0.5 (resnet.c's crop+flip), drawn from
    the seeded generator; flip, crop and crop:N do one of the two;
  - --tta flip: test logits are the mean of the image's and its mirror's.
"""
import argparse
import gzip
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import torch.nn.functional as F  # noqa: E402

from rn_models import build_model  # noqa: E402

CROP_PADDING = 4   # resnet.c's --augment crop


def read_idx(path, kind):
    """uint8 images (N, 28, 28) or int64 labels (N) from an IDX .gz file."""
    with gzip.open(path, "rb") as f:
        buf = f.read()
    magic = int.from_bytes(buf[:4], "big")
    if kind == "images":
        if magic != 2051 or len(buf) < 16:
            raise ValueError("%s: not an IDX image file (magic %d)" % (path, magic))
        n, h, w = (int.from_bytes(buf[i:i + 4], "big") for i in (4, 8, 12))
        if len(buf) != 16 + n * h * w:
            raise ValueError("%s: %d bytes for %d images of %dx%d" % (path, len(buf), n, h, w))
        return np.frombuffer(buf, np.uint8, offset=16).reshape(n, h, w)
    if magic != 2049 or len(buf) < 8:
        raise ValueError("%s: not an IDX label file (magic %d)" % (path, magic))
    n = int.from_bytes(buf[4:8], "big")
    if len(buf) != 8 + n:
        raise ValueError("%s: %d bytes for %d labels" % (path, len(buf), n))
    return np.frombuffer(buf, np.uint8, offset=8).astype(np.int64)


def load_split(d, prefix):
    x = read_idx(os.path.join(d, "%s-images-idx3-ubyte.gz" % prefix), "images")
    y = read_idx(os.path.join(d, "%s-labels-idx1-ubyte.gz" % prefix), "labels")
    if len(x) != len(y):
        raise ValueError("%s: %d images, %d labels" % (prefix, len(x), len(y)))
    return torch.from_numpy(x.copy()), torch.from_numpy(y)


def to_batch(images, size):
    """uint8 (B, 28, 28) -> float (B, 1, S, S) exactly as Resize(S) + ToTensor."""
    if size == images.shape[-1]:
        return images.unsqueeze(1).float().div(255)
    from PIL import Image
    import torchvision.transforms as T
    tf = T.Compose([T.Resize(size), T.ToTensor()])
    return torch.stack([tf(Image.fromarray(im.numpy(), mode="L")) for im in images])


def parse_augment(value):
    """(crop padding, flip) of an --augment value, resnet.c's: none, flip, crop, crop+flip,
    crop:N, crop:N+flip (crop: padding 4); None if not one."""
    m = re.fullmatch(r"(none|flip)|crop(?::([1-9][0-9]?))?(\+flip)?", value)
    if not m or (m.group(2) and int(m.group(2)) > 64):
        return None
    if m.group(1):
        return 0, m.group(1) == "flip"
    return (int(m.group(2)) if m.group(2) else CROP_PADDING), m.group(3) is not None


def augment(x, gen, p, flip):
    """Random crops after padding by p (if p > 0), and flips (if flip), of a batch (B, C, S, S)."""
    b, _, h, w = x.shape
    if p > 0:
        xp = F.pad(x, (p, p, p, p))
        off = torch.randint(0, 2 * p + 1, (b, 2), generator=gen)
        x = torch.stack([xp[i, :, off[i, 0]:off[i, 0] + h, off[i, 1]:off[i, 1] + w]
                         for i in range(b)])
    if flip:
        f = torch.rand(b, generator=gen) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x


def init_weights(m):
    if type(m) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(m.weight)


def evaluate(net, x_all, y_all, size, batch, tta_flip=False):
    net.eval()
    crit = nn.CrossEntropyLoss(reduction="sum")
    loss = correct = 0.0
    with torch.no_grad():
        for i in range(0, len(x_all), batch):
            x = to_batch(x_all[i:i + batch], size)
            out = net(x)
            if tta_flip:
                out = (out + net(x.flip(3))) / 2
            y = y_all[i:i + batch]
            loss += float(crit(out, y))
            correct += float((out.argmax(1) == y).sum())
    return loss / len(x_all), correct / len(x_all)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="directory with the Fashion-MNIST .gz files")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--image-size", type=int, default=96, help="28 or more (PIL bilinear resize)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after K steps (0: no limit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", help="write epoch records as JSON lines")
    ap.add_argument("--arch", default="d2l_resnet18")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--stem", default="imagenet", choices=("imagenet", "cifar"))
    ap.add_argument("--init", default="xavier", choices=("xavier", "default"))
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--nesterov", action="store_true")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--schedule", default="constant", choices=("constant", "onecycle"))
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--augment", default="none",
                    help="none, flip, crop, crop+flip, crop:N or crop:N+flip (padding N, 1 to 64)")
    ap.add_argument("--tta", default="none", choices=("none", "flip"))
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="bf16: the training step's forward pass (and so its backward) under "
                         "torch.autocast('cpu', dtype=torch.bfloat16); evaluation in fp32")
    ap.add_argument("--eval-every", type=int, default=1,
                    help="test after every N-th epoch and after the last (0: the last only)")
    a = ap.parse_args(argv)
    started = time.perf_counter()
    if a.epochs < 1 or a.batch_size < 1 or a.max_steps < 0 or a.eval_every < 0:
        ap.error("--epochs and --batch-size must be positive, --max-steps and --eval-every >= 0")
    if a.image_size < 28:
        ap.error("--image-size must be 28 or more")
    aug = parse_augment(a.augment)
    if aug is None:
        ap.error("--augment must be none, flip, crop, crop+flip, crop:N or crop:N+flip, got '%s'"
                 % a.augment)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x_train, y_train = load_split(a.data, "train")
    x_test, y_test = load_split(a.data, "t10k")
    net = build_model(a.arch, 1, 10, stem=a.stem, width=a.width)
    if a.init == "xavier":
        net.apply(init_weights)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.nesterov,
                          weight_decay=a.weight_decay, dampening=0)
    steps_per_epoch = (len(x_train) + a.batch_size - 1) // a.batch_size
    sched = None
    if a.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * steps_per_epoch,
                                                    cycle_momentum=False)
    crit = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    gen = torch.Generator().manual_seed(a.seed)
    logf = open(a.log, "w") if a.log else None

    print("%s width %d on Fashion-MNIST: %d train / %d test images at %dx%d, batch %d, "
          "lr %g (%s), %d threads, torch %s" % (a.arch, a.width, len(x_train), len(x_test), a.image_size,
                                                a.image_size, a.batch_size, a.lr, a.schedule, a.threads,
                                                torch.__version__), flush=True)
    steps = 0
    timed_images, timed_seconds = 0, 0.0
    seconds_per_epoch = []
    train_loss = train_acc = test_acc = None
    epochs_run = 0
    for epoch in range(a.epochs):
        net.train()
        perm = torch.randperm(len(x_train), generator=gen)
        loss_sum = correct = seen = 0.0
        epoch_seconds = 0.0
        for i in range(0, len(x_train), a.batch_size):
            idx = perm[i:i + a.batch_size]
            x = to_batch(x_train[idx], a.image_size)
            if aug != (0, False):
                x = augment(x, gen, *aug)
            y = y_train[idx]
            t0 = time.perf_counter()
            lr = opt.param_groups[0]["lr"]
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                out = net(x)
                loss = crit(out, y)
            loss.backward()
            opt.step()
            if sched:
                sched.step()
            dt = time.perf_counter() - t0
            epoch_seconds += dt
            if steps > 0:
                timed_images += len(y)
                timed_seconds += dt
            steps += 1
            loss_sum += float(loss) * len(y)
            correct += float((out.argmax(1) == y).sum())
            seen += len(y)
            if a.max_steps and steps % 10 == 0:
                print("  step %d: loss %.4f, %.1f images/s" % (
                    steps, float(loss), timed_images / timed_seconds), flush=True)
            if a.max_steps and steps >= a.max_steps:
                break
        epochs_run += 1
        seconds_per_epoch.append(epoch_seconds)
        train_loss, train_acc = loss_sum / seen, correct / seen
        stopped = bool(a.max_steps) and steps >= a.max_steps
        test_loss = test_acc = None
        due = epoch + 1 == a.epochs or (a.eval_every > 0 and (epoch + 1) % a.eval_every == 0)
        if not stopped and due:
            test_loss, test_acc = evaluate(net, x_test, y_test, a.image_size, a.batch_size, a.tta == "flip")
        print("epoch %d: train loss %.4f, train acc %.4f, test acc %s, %.1f s (%d images)" % (
            epoch + 1, train_loss, train_acc, "%.4f" % test_acc if test_acc is not None else "-",
            epoch_seconds, seen), flush=True)
        if logf:
            logf.write(json.dumps({"epoch": epoch + 1, "train_loss": train_loss,
                                   "train_acc": train_acc, "test_loss": test_loss,
                                   "test_acc": test_acc, "lr": lr,
                                   "seconds": epoch_seconds,
                                   "elapsed": time.perf_counter() - started}) + "\n")
            logf.flush()
        if stopped:
            break
    if logf:
        logf.close()
    ips = timed_images / timed_seconds if timed_seconds > 0 else None
    print(json.dumps({"epochs": epochs_run, "steps": steps, "train_loss": train_loss,
                      "train_acc": train_acc, "test_acc": test_acc,
                      "seconds_per_epoch": [round(s, 3) for s in seconds_per_epoch],
                      "images_per_second": round(ips, 2) if ips else None,
                      "image_size": a.image_size, "batch_size": a.batch_size,
                      "threads": a.threads, "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
