#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (onnxruntime-node, CPU) on float32 .npy inputs and
// compares each output with a reference .npy (resnet.c's logits), for tools/onnx_check.py.
//
//   node tools/onnx_run.js MODEL.onnx INPUT.npy EXPECTED.npy [INPUT2.npy EXPECTED2.npy ...]
//                          [--tol 1e-4] [--output OUT.npy]
//
// One session runs every pair (a batch of 1 and a batch of 3 test the dynamic batch axis).
// rel = max|y - y_ref| / max|y_ref| over the whole output (the measure tools/parity.py uses);
// prints one line per pair and exits 0 when every rel <= tol and the shapes agree, 1 otherwise,
// 2 on a usage error or when onnxruntime-node cannot be loaded (install: tools/install_deps.sh).
// --output writes the first pair's output.
'use strict';

const fs = require('fs');
const path = require('path');

let ort;
try {
  ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
} catch (e) {
  console.error('onnx_run: cannot load onnxruntime-node (' + e.message.split('\n')[0] + '); ' +
                'install it with tools/install_deps.sh');
  process.exit(2);
}

// Reads a little-endian float32 C-order .npy file: {shape, data}.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(file + ': not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    throw new Error(file + ': expected little-endian float32 in C order, header ' + header.trim());
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  if (buf.length - off !== 4 * n) throw new Error(file + ': ' + (buf.length - off) + ' data bytes, shape needs ' + 4 * n);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(off + 4 * i);
  return { shape, data };
}

function writeNpy(file, shape, data) {
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape.join(', ') +
               (shape.length === 1 ? ',' : '') + '), }';
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

async function main() {
  const argv = process.argv.slice(2);
  let tol = 1e-4, out = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--tol') { tol = Number(argv[i + 1]); argv.splice(i--, 2); }
    else if (argv[i] === '--output') { out = argv[i + 1]; argv.splice(i--, 2); }
  }
  if (argv.length < 3 || argv.length % 2 !== 1 || !(tol > 0)) {
    console.error('usage: node onnx_run.js MODEL.onnx INPUT.npy EXPECTED.npy [INPUT2.npy EXPECTED2.npy ...] ' +
                  '[--tol 1e-4] [--output OUT.npy]');
    process.exit(2);
  }
  const model = argv[0];
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  let allOk = true;
  for (let p = 1; p < argv.length; p += 2) {
    const ok = await runPair(session, model, argv[p], argv[p + 1], tol, p === 1 ? out : null);
    allOk = allOk && ok;
  }
  process.exit(allOk ? 0 : 1);
}

// Runs one input through the session; prints and returns whether it matches the reference.
async function runPair(session, model, input, expected, tol, out) {
  const x = readNpy(input), ref = readNpy(expected);
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', x.data, x.shape);
  const result = await session.run(feeds);
  const y = result[session.outputNames[0]];
  if (out) writeNpy(out, y.dims, y.data);
  const shapeOk = y.dims.length === ref.shape.length && y.dims.every((d, i) => d === ref.shape[i]);
  let maxRef = 0, maxDiff = 0;
  for (let i = 0; shapeOk && i < ref.data.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
    const d = Math.abs(y.data[i] - ref.data[i]);
    maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
  }
  const rel = maxRef > 0 ? maxDiff / maxRef : maxDiff;
  const ok = shapeOk && rel <= tol;
  console.log(path.basename(model) + ': input [' + x.shape.join(', ') + '] output [' + y.dims.join(', ') +
              ']' + (shapeOk ? '' : ' expected [' + ref.shape.join(', ') + ']') +
              ' rel ' + rel.toExponential(2) + ' (tol ' + tol + ') ' + (ok ? 'ok' : 'MISMATCH'));
  return ok;
}

main().catch((e) => { console.error('onnx_run: ' + e.message); process.exit(1); });
