// Node side of `make bench-hl7`: the corpus that `gobench prepare` wrote,
// parsed by an independent HL7 v2 parser from npm (@medplum/core's
// Hl7Message), in the same two modes and over the same time window as
// bench/hl7/gobench, on the one JS thread. Prints the same JSON.
//
//   node bench.mjs --corpus corpus.json --mode parse|typed [--duration 3] [--warmup 2] [--dump-values FILE]
//
// Mode "typed" reads the same fields as gobench's adtPaths with the same
// terser (leaf) semantics — first repetition, first component, first
// subcomponent unless the path names another — and parses PID-7 with
// medplum's parseHl7DateTime. Medplum does not decode escape sequences;
// the Go side does (Message.Get unescapes), so values holding \X\ escapes
// differ between the two dumps, and the Go side does that extra work.

import { readFileSync, writeFileSync } from 'node:fs';
import { Hl7Message, parseHl7DateTime } from '@medplum/core';

const args = parseArgs(process.argv.slice(2));
const corpusPath = args.corpus;
const mode = args.mode ?? 'parse';
const duration = Number(args.duration ?? 3) * 1000;
const warmup = Number(args.warmup ?? 2) * 1000;
if (!corpusPath || !['parse', 'typed'].includes(mode)) {
  console.error('usage: node bench.mjs --corpus corpus.json --mode parse|typed [--duration s] [--warmup s] [--dump-values FILE]');
  process.exit(2);
}

// [segment, field, component, subcomponent, repetition], 1-based like the Go
// paths: "PID-3(1).4.1" is ['PID', 3, 4, 1, 1]. Keep in step with
// adtPaths in ../gobench/main.go.
const ADT_FIELDS = [
  ['MSH', 9, 1, 1, 1], // MSH-9
  ['MSH', 9, 2, 1, 1], // MSH-9.2
  ['MSH', 10, 1, 1, 1], // MSH-10
  ['MSH', 7, 1, 1, 1], // MSH-7
  ['EVN', 2, 1, 1, 1], // EVN-2
  ['PID', 3, 1, 1, 1], // PID-3(1).1
  ['PID', 3, 4, 1, 1], // PID-3(1).4.1
  ['PID', 5, 1, 1, 1], // PID-5.1
  ['PID', 5, 2, 1, 1], // PID-5.2
  ['PID', 7, 1, 1, 1], // PID-7
  ['PID', 8, 1, 1, 1], // PID-8
  ['PID', 11, 1, 1, 1], // PID-11.1
  ['PID', 11, 3, 1, 1], // PID-11.3
  ['PID', 11, 5, 1, 1], // PID-11.5
  ['PID', 13, 1, 1, 1], // PID-13
  ['PID', 18, 1, 1, 1], // PID-18
  ['PV1', 2, 1, 1, 1], // PV1-2
  ['PV1', 3, 1, 1, 1], // PV1-3.1
  ['PV1', 7, 1, 1, 1], // PV1-7.1
  ['PV1', 19, 1, 1, 1], // PV1-19
  ['PV1', 44, 1, 1, 1], // PV1-44
];
const PID7 = 9;

const corpus = JSON.parse(readFileSync(corpusPath, 'utf8'));
// Bytes as a Node consumer gets them off the wire, decoded as UTF-8.
const set = corpus.messages
  .filter((m) => mode === 'parse' || m.adt)
  .map((m) => {
    const buf = Buffer.from(m.data, 'base64');
    return { bytes: buf.length, text: buf.toString('utf8') };
  });
if (set.length === 0) {
  console.error(`mode ${mode}: no message to measure`);
  process.exit(1);
}
const texts = set.map((m) => m.text);
const totalBytes = set.reduce((n, m) => n + m.bytes, 0);

// One leaf value, medplum API only: segment by name, field (1-based, MSH
// numbering handled by medplum), component (1-based), subcomponent and
// repetition (0-based in medplum's getComponent).
function leaf(msg, [seg, field, comp, sub, rep]) {
  const s = msg.getSegment(seg);
  if (!s) return '';
  const f = s.getField(field);
  if (!f || rep > f.components.length) return '';
  return f.getComponent(comp, sub - 1, rep - 1) ?? '';
}

function parseOnly(text) {
  const m = Hl7Message.parse(text);
  return m.segments.length;
}

function parseTyped(text) {
  const m = Hl7Message.parse(text);
  let n = 0;
  for (let i = 0; i < ADT_FIELDS.length; i++) {
    const v = leaf(m, ADT_FIELDS[i]);
    n += v.length;
    if (i === PID7 && v !== '') {
      const iso = parseHl7DateTime(v);
      if (iso) n += iso.length;
    }
  }
  return n;
}

const work = mode === 'parse' ? parseOnly : parseTyped;

if (mode === 'typed' && args['dump-values']) {
  const esc = (v) => v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
  const lines = texts.map((t) => {
    const m = Hl7Message.parse(t);
    return ADT_FIELDS.map((f) => esc(leaf(m, f))).join('\t') + '\n';
  });
  writeFileSync(args['dump-values'], lines.join(''));
}

// Every message must parse (medplum throws on input it refuses).
let failures = 0;
for (const t of texts) {
  try {
    work(t);
  } catch {
    failures++;
  }
}
if (failures > 0) {
  console.error(`${failures} corpus messages fail to parse`);
  process.exit(1);
}

let sink = 0;
function pass() {
  for (let i = 0; i < texts.length; i++) sink += work(texts[i]);
}

for (const t0 = performance.now(); performance.now() - t0 < warmup; ) pass();
globalThis.gc?.();

let n = 0;
const start = performance.now();
let elapsed;
for (;;) {
  pass();
  n += texts.length;
  if ((elapsed = performance.now() - start) >= duration) break;
}
const secs = elapsed / 1000;
const passes = n / texts.length;
const medplumVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@medplum/core/package.json', import.meta.url), 'utf8'),
).version;
const result = {
  impl: 'node',
  parser: `@medplum/core@${medplumVersion} Hl7Message`,
  runtime: `node ${process.version}`,
  mode,
  messages: texts.length,
  bytes: totalBytes,
  ...(mode === 'typed' ? { fields_per_message: ADT_FIELDS.length } : {}),
  parsed: n,
  seconds: secs,
  msgs_per_s: n / secs,
  mb_per_s: (passes * totalBytes) / secs / 1e6,
  sink,
};
console.log(JSON.stringify(result));

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const [k, v] = a.slice(2).split('=', 2);
    out[k] = v ?? argv[++i];
  }
  return out;
}
