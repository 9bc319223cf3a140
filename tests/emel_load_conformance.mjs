// emel-load --json --verify against an independent reader of the same files.
//
//   node emel_load_conformance.mjs EMEL_LOAD EMEL_GGUF_WRITE WORKDIR [FIXTURES_DIR]
//
// The reader is @huggingface/gguf (npm; someone else's parser), tensor byte
// sizes come from ggml's type table written out below, and hashes from
// `xxhsum -H3` over the file's bytes. Models with alignment 32, 64 and 4096,
// mixed quantized types and a 3-way split are made with emel-gguf-write; the
// llama.cpp fixtures (no tensors) are read when present. Both strategies must
// agree with the reader on every tensor's name, type, dims, offset, size,
// file index and hash. Exit 77 (skipped) when the reader is not installed.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [emelLoad, ggufWrite, workDir, fixturesDir] = process.argv.slice(2);
const require = createRequire(path.join(workDir, "node_modules", "x.js"));
let gguf;
try {
  ({ gguf } = await import(require.resolve("@huggingface/gguf")));
} catch (e) {
  console.log(`skipped: @huggingface/gguf is not installed under ${workDir} (${e.message})`);
  process.exit(77);
}

// ggml type id -> [block size, bytes per block] (ggml.c type_traits).
const GGML = {
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36],
  10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292],
  16: [256, 66], 17: [256, 74], 18: [256, 98], 19: [256, 50], 20: [32, 18], 21: [256, 110], 22: [256, 82],
  23: [256, 136], 24: [1, 1], 25: [1, 2], 26: [1, 4], 27: [1, 8], 28: [1, 8], 29: [256, 56], 30: [1, 2],
  34: [256, 54], 35: [256, 66], 39: [32, 17],
};

function nbytes(type, shape) {
  const [block, size] = GGML[type];
  let rows = 1n;
  for (const d of shape.slice(1)) rows *= BigInt(d);
  return (BigInt(shape[0]) / BigInt(block)) * BigInt(size) * rows;
}

function xxh3(file, offset, size) {
  const fd = fs.openSync(file, "r");
  const buf = Buffer.alloc(Number(size));
  fs.readSync(fd, buf, 0, buf.length, Number(offset));
  fs.closeSync(fd);
  const r = spawnSync("xxhsum", ["-H3"], { input: buf });
  const m = /= ([0-9a-f]{16})/.exec(r.stdout.toString());
  if (!m) throw new Error("xxhsum: " + r.stdout + r.stderr);
  return m[1];
}

async function reference(files) {
  const tensors = [];
  for (const [fileIndex, file] of files.entries()) {
    const { tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
    for (const t of tensorInfos) {
      const offset = BigInt(tensorDataOffset) + BigInt(t.offset);
      const bytes = nbytes(t.dtype, t.shape);
      tensors.push({ name: t.name, type: t.dtype, dims: t.shape.map(String), offset: String(offset),
                     bytes: String(bytes), file_index: fileIndex, xxh3: xxh3(file, offset, bytes) });
    }
  }
  return tensors;
}

const TYPE_IDS = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9, Q2_K: 10, Q3_K: 11,
  Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15, IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20,
  IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23, I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30,
  TQ1_0: 34, TQ2_0: 35, MXFP4: 39 };

function emel(file, strategy) {
  const r = spawnSync(emelLoad, ["--json", "--verify", "--quiet", "--strategy", strategy, file],
                      { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`emel-load ${strategy} ${file}: exit ${r.status}: ${r.stderr}`);
  // 64-bit offsets stay exact: parse numbers of the tensors as strings.
  const text = r.stdout.toString().replace(/"(offset|bytes|total_bytes)":(\d+)/g, '"$1":"$2"')
    .replace(/"dims":\[([\d,]*)\]/g, (_, d) => `"dims":[${d.split(",").filter(Boolean).map((x) => `"${x}"`).join(",")}]`);
  return JSON.parse(text);
}

let passed = 0, failed = 0;
function compare(label, got, want) {
  const problems = [];
  if (got.tensor_count !== want.length) problems.push(`tensor_count ${got.tensor_count} != ${want.length}`);
  want.forEach((w, i) => {
    const g = got.tensors[i] || {};
    for (const k of ["name", "offset", "bytes", "file_index", "xxh3"]) {
      if (String(g[k]) !== String(w[k])) problems.push(`${w.name}: ${k} ${g[k]} != ${w[k]}`);
    }
    if (TYPE_IDS[g.type] !== w.type) problems.push(`${w.name}: type ${g.type} != ${w.type}`);
    if (JSON.stringify(g.dims) !== JSON.stringify(w.dims)) problems.push(`${w.name}: dims ${g.dims} != ${w.dims}`);
  });
  if (problems.length) {
    failed++;
    console.log(`FAIL ${label}\n  ` + problems.slice(0, 10).join("\n  "));
  } else {
    passed++;
    console.log(`ok   ${label}: ${want.length} tensors agree`);
  }
}

fs.mkdirSync(workDir, { recursive: true });
const models = [
  { name: "align32-mixed", args: ["--tensors", "40", "--bytes", "3M", "--type", "mixed", "--alignment", "32"] },
  { name: "align64-mixed", args: ["--tensors", "40", "--bytes", "3M", "--type", "mixed", "--alignment", "64", "--seed", "7"] },
  { name: "align4096-f16", args: ["--tensors", "12", "--bytes", "2M", "--type", "f16", "--alignment", "4096"] },
  { name: "split3-mixed", args: ["--tensors", "30", "--bytes", "2M", "--type", "mixed", "--splits", "3"] },
];
const cases = [];
for (const m of models) {
  const out = path.join(workDir, m.name + ".gguf");
  const r = spawnSync(ggufWrite, [...m.args, out]);
  if (r.status !== 0) throw new Error(`emel-gguf-write ${m.name}: ${r.stderr}`);
  const files = r.stdout.toString().split("\n").filter((l) => l.endsWith(".gguf"));
  cases.push({ label: m.name, files });
}
if (fixturesDir && fs.existsSync(fixturesDir)) {
  for (const f of fs.readdirSync(fixturesDir).filter((f) => f.endsWith(".gguf")).sort()) {
    cases.push({ label: "fixture " + f, files: [path.join(fixturesDir, f)] });
  }
}
for (const c of cases) {
  const want = await reference(c.files);
  for (const strategy of ["mmap", "read"]) compare(`${c.label} (${strategy})`, emel(c.files[0], strategy), want);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
