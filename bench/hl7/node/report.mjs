// Prints the table for bench/hl7/run.sh from the four result files
// (gobench and bench.mjs, modes parse and typed), the corpus and the two
// typed-mode value dumps. A measurement, not a test: it always exits 0 once
// it could read its inputs.
//
//   node report.mjs DIR   (DIR holds corpus.json, {go,node}-{parse,typed}.N.json, {go,node}-values.tsv)

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';

const TARGET_RATIO = 5; // Go at least 5x the Node parser on the corpus
const TARGET_ADT = 100_000; // ADT messages/s, parse + typed access, one core

const dir = process.argv[2];
const read = (f) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
const corpus = read('corpus.json');
// One file per round ({side}-{mode}.{round}.json); each side and mode is
// represented by its median round, and the range is shown when there are several.
const rounds = readdirSync(dir).filter((f) => /^go-parse\.\d+\.json$/.test(f)).length;
if (rounds === 0) throw new Error(`no results in ${dir}`);
const range = {};
function median(side, mode) {
  const runs = [];
  for (let i = 1; i <= rounds; i++) runs.push(read(`${side}-${mode}.${i}.json`));
  runs.sort((a, b) => a.msgs_per_s - b.msgs_per_s);
  range[`${side}-${mode}`] = [runs[0].msgs_per_s, runs[runs.length - 1].msgs_per_s];
  return runs[(runs.length - 1) >> 1];
}
const r = {
  go: { parse: median('go', 'parse'), typed: median('go', 'typed') },
  node: { parse: median('node', 'parse'), typed: median('node', 'typed') },
};

const n0 = (x) => Math.round(x).toLocaleString('en-US');
const n1 = (x) => x.toFixed(1);
const pad = (s, w) => String(s).padStart(w);
const padEnd = (s, w) => String(s).padEnd(w);

const all = corpus.messages;
const adt = all.filter((m) => m.adt);
const bytesOf = (ms) => ms.reduce((n, m) => n + Buffer.from(m.data, 'base64').length, 0);
const skipped = Object.entries(corpus.skipped ?? {})
  .map(([k, v]) => `${v} ${k}`)
  .join(', ');

console.log(`Corpus: ${corpus.source}`);
console.log(`  ${all.length} messages, ${n0(bytesOf(all))} bytes (all modes: parse)`);
console.log(`  ${adt.length} ADT messages with PID, ${n0(bytesOf(adt))} bytes (mode typed: parse + ${r.go.typed.fields_per_message} fields via Get, PID-7 parsed as a time)`);
if (skipped) console.log(`  skipped files: ${skipped}`);
console.log(`Go:   ${r.go.parse.parser} (${r.go.parse.runtime}, GOMAXPROCS=${r.go.parse.gomaxprocs})`);
console.log(`Node: ${r.node.parse.parser} (${r.node.parse.runtime})`);
console.log(`Window: ${n1(r.go.parse.seconds)} s per measurement after warm-up, ${rounds} round(s)${process.env.BENCH_PIN_NOTE ? `; ${process.env.BENCH_PIN_NOTE}` : ''}`);
console.log(`Load average now (1/5/15 min): ${loadavg().map((x) => x.toFixed(2)).join(' / ')} — the machine is shared; compare ratios within one run`);
console.log('');

const head = `${padEnd('mode', 8)} ${pad('msgs', 5)} | ${pad('Go msgs/s', 11)} ${pad('Go MB/s', 8)} | ${pad('Node msgs/s', 11)} ${pad('Node MB/s', 9)} | ${pad('Go/Node', 7)} | ${pad('Go allocs/msg', 13)}`;
console.log(head);
console.log('-'.repeat(head.length));
const ratio = {};
for (const mode of ['parse', 'typed']) {
  const g = r.go[mode];
  const n = r.node[mode];
  ratio[mode] = g.msgs_per_s / n.msgs_per_s;
  console.log(
    `${padEnd(mode, 8)} ${pad(g.messages, 5)} | ${pad(n0(g.msgs_per_s), 11)} ${pad(n1(g.mb_per_s), 8)} | ${pad(n0(n.msgs_per_s), 11)} ${pad(n1(n.mb_per_s), 9)} | ${pad(ratio[mode].toFixed(2) + 'x', 7)} | ${pad(n1(g.allocs_per_msg), 13)}`,
  );
}
if (rounds > 1) {
  console.log('');
  console.log(`${rounds} rounds; each figure is that side's median round. Range of msgs/s over the rounds:`);
  for (const mode of ['parse', 'typed']) {
    const [gl, gh] = range[`go-${mode}`];
    const [nl, nh] = range[`node-${mode}`];
    console.log(`  ${padEnd(mode, 6)} Go ${n0(gl)}–${n0(gh)}   Node ${n0(nl)}–${n0(nh)}`);
  }
}
console.log('');

const met = (ok) => (ok ? 'MET' : 'NOT MET');
console.log('Targets:');
const rows = [
  [`Go >= ${TARGET_RATIO}x Node on the corpus (parse)`, `${ratio.parse.toFixed(2)}x`, ratio.parse >= TARGET_RATIO],
  [`Go >= ${TARGET_RATIO}x Node on the ADT subset (parse + typed)`, `${ratio.typed.toFixed(2)}x`, ratio.typed >= TARGET_RATIO],
  [`Go >= ${n0(TARGET_ADT)} ADT msgs/s, parse + typed, one core`, n0(r.go.typed.msgs_per_s), r.go.typed.msgs_per_s >= TARGET_ADT],
];
for (const [what, value, ok] of rows) console.log(`  ${padEnd(what + ':', 56)} ${pad(value, 9)}  ${met(ok)}`);

// Both sides dumped the values they read; show that they read the same data.
const gv = join(dir, 'go-values.tsv');
const nv = join(dir, 'node-values.tsv');
if (existsSync(gv) && existsSync(nv)) {
  const a = readFileSync(gv, 'utf8').split('\n');
  const b = readFileSync(nv, 'utf8').split('\n');
  let diff = 0;
  let escOnly = 0;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    diff++;
    // Medplum keeps escape sequences; our Get decodes them.
    if ((b[i] ?? '').includes('\\\\')) escOnly++;
  }
  console.log('');
  console.log(
    `Typed values: Go and Node agree on ${adt.length - diff} of ${adt.length} ADT messages` +
      (diff ? `; ${diff} differ (${escOnly} of them hold HL7 escape sequences, which Go decodes and medplum keeps as written)` : ''),
  );
}
