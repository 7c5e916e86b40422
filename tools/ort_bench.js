#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node, CPU) inference timing for the resnet.c comparison.
//
//   node tools/ort_bench.js MODEL.onnx [BATCH=1] [SIZE=224] [CHANNELS=3] [THREADS=2] [WARMUP=3] [REPEATS=10]
//   node tools/ort_bench.js MODEL.onnx ... --dump-output OUT.json   (also writes the logits of a fixed input)
//
// Session: intraOpNumThreads=THREADS, interOpNumThreads=1, sequential,
// graphOptimizationLevel "all", CPU execution provider. Input: the model's
// first input, N(0,1)-ish values (fixed seed), float32 BATCH x CHANNELS x SIZE x SIZE.
// Prints one JSON object: images_per_second (BATCH / median), ms_per_batch_median, ...
//
// Install (once): cd tools && npm install --ignore-scripts onnxruntime-node
// (the CPU binaries ship in the package; the install script only fetches CUDA ones).
'use strict';

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error('ort_bench: cannot load onnxruntime-node (' + e.message.split('\n')[0] + ')');
  console.error('ort_bench: install it with: cd tools && npm install --ignore-scripts onnxruntime-node');
  process.exit(2);
}

function usage() {
  console.error('usage: node ort_bench.js MODEL.onnx [BATCH] [SIZE] [CHANNELS] [THREADS] [WARMUP] [REPEATS] [--dump-output FILE]');
  process.exit(2);
}

async function main() {
  const argv = process.argv.slice(2);
  let dump = null;
  const di = argv.indexOf('--dump-output');
  if (di >= 0) { dump = argv[di + 1]; argv.splice(di, 2); }
  if (argv.length < 1 || argv[0] === '-h' || argv[0] === '--help') usage();
  const num = (i, d) => {
    if (argv[i] === undefined) return d;
    const v = parseInt(argv[i], 10);
    if (!(v >= 0)) usage();
    return v;
  };
  const model = argv[0];
  const batch = num(1, 1), size = num(2, 224), channels = num(3, 3);
  const threads = num(4, 2), warmup = num(5, 3), repeats = Math.max(1, num(6, 10));

  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  const n = batch * channels * size * size;
  const data = new Float32Array(n);
  let s = 12345 >>> 0;
  for (let i = 0; i < n; i++) {   // xorshift32, sum of 3 uniforms ~ N(0,1)-ish
    let u = 0;
    for (let k = 0; k < 3; k++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      u += s / 4294967296;
    }
    data[i] = (u - 1.5) * 2;
  }
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', data, [batch, channels, size, size]);

  let out;
  for (let i = 0; i < warmup; i++) out = await session.run(feeds);
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const a = process.hrtime.bigint();
    out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  const sorted = times.slice().sort((x, y) => x - y);
  const m = sorted.length;
  const median = m % 2 ? sorted[(m - 1) / 2] : (sorted[m / 2 - 1] + sorted[m / 2]) / 2;
  const mean = times.reduce((x, y) => x + y, 0) / m;
  const res = {
    runtime: 'onnxruntime-node',
    version: ort.env.versions ? ort.env.versions.common : undefined,
    model, batch, size, channels, threads, warmup, repeats,
    images_per_second: batch / (median / 1000),
    ms_per_batch_median: median,
    ms_per_batch_min: sorted[0],
    ms_per_batch_mean: mean,
    load_ms: loadMs,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    times_ms: times.map((t) => Math.round(t * 1000) / 1000),
  };
  if (dump) {
    const o = out[session.outputNames[0]];
    require('fs').writeFileSync(dump, JSON.stringify({ dims: o.dims, data: Array.from(o.data) }));
  }
  console.log(JSON.stringify(res));
}

main().catch((e) => {
  console.error('ort_bench: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
