#!/usr/bin/env node
// ONNX Runtime's own time per node, to set beside `build/dev/profile_layers` (resnet.c's per
// layer) and see layer by layer where one runtime is ahead of the other.
//
//   node tools/ort_profile.js MODEL.onnx [BATCH=1] [SIZE=224] [THREADS=2] [RUNS=30] [SKIP=5]
//
// The session is tools/ort_bench.js's (CPU, intra-op THREADS, sequential, graph optimization
// "all", so ORT's fused NCHWc convolutions), with ORT's profiler on. After RUNS runs it prints,
// per node in execution order, the median of its kernel time over the runs after the first SKIP,
// then the median run. The profiler's JSON goes to a temporary folder and is removed. Export a
// model with `/usr/bin/python3 tools/export_onnx.py resnet50 r50.onnx --batch 1`.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error('ort_profile: cannot load onnxruntime-node (' + e.message.split('\n')[0] + ')');
  console.error('ort_profile: install it with: cd tools && npm install --ignore-scripts onnxruntime-node');
  process.exit(2);
}

function median(v) {
  const s = v.slice().sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length < 1 || argv[0] === '-h' || argv[0] === '--help') {
    console.error('usage: node ort_profile.js MODEL.onnx [BATCH] [SIZE] [THREADS] [RUNS] [SKIP]');
    process.exit(2);
  }
  const num = (i, d) => {
    if (argv[i] === undefined) return d;
    const v = parseInt(argv[i], 10);
    if (!(v >= 0)) { console.error('ort_profile: not a count: ' + argv[i]); process.exit(2); }
    return v;
  };
  const model = argv[0];
  const batch = num(1, 1), size = num(2, 224), threads = num(3, 2);
  const runs = Math.max(1, num(4, 30)), skip = Math.min(num(5, 5), runs - 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort_profile-'));
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
      executionMode: 'sequential', graphOptimizationLevel: 'all',
      enableProfiling: true, profileFilePrefix: path.join(dir, 'profile'),
    });
    const n = batch * 3 * size * size;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i);
    const feeds = {};
    feeds[session.inputNames[0]] = new ort.Tensor('float32', data, [batch, 3, size, size]);
    for (let r = 0; r < runs; r++) await session.run(feeds);
    session.endProfiling();
    const file = fs.readdirSync(dir).filter((f) => f.endsWith('.json'))[0];
    if (!file) throw new Error('ONNX Runtime wrote no profile');
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    const per = new Map(), op = new Map(), run = [];
    for (const e of events) {
      if (e.name === 'model_run') run.push(e.dur);
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const node = e.name.slice(0, -'_kernel_time'.length);
      if (!per.has(node)) per.set(node, []);
      per.get(node).push(e.dur);
      op.set(node, (e.args && e.args.op_name) || '?');
    }
    console.log(`${path.basename(model)}, batch ${batch}, ${size}x${size}, ${threads} threads, ` +
                `median of runs ${skip + 1}..${runs}, ms`);
    let sum = 0;
    for (const [node, d] of per) {
      const ms = median(d.slice(skip)) / 1000;
      sum += ms;
      console.log(`${ms.toFixed(3).padStart(8)}  ${op.get(node).padEnd(20)} ${node}`);
    }
    console.log(`nodes ${sum.toFixed(2)} ms, run ${(median(run.slice(skip)) / 1000).toFixed(2)} ms`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error('ort_profile: ' + e.message); process.exit(1); });
