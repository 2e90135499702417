#!/usr/bin/env node
// Regenerates us-core-6.1.0-subset.json.gz, the part of the published US Core 6.1.0 package
// that validate.mjs needs, so that a checkout without ../shared still validates against US Core:
//
//   - the StructureDefinitions of every US Core profile the mapping can claim (every US Core
//     profile name, us-core-*, written in internal/**/*.go outside tests, plus EXTRA below), the
//     US Core profiles they derive from and the US Core extensions their elements use;
//   - the ValueSets and CodeSystems of the package that their bindings name.
//
// Narrative, differential and mappings are dropped (the validator reads the snapshot only).
//
// Usage (from the repository root):
//   node tools/fhir-validate/vendor-us-core.mjs [../shared/reference/HL7-US-Core-6.1.0/hl7.fhir.us.core-6.1.0.tgz]
// then record the printed sha256 values in tools/fhir-validate/README.md. With --check first,
// it writes nothing and exits 1 when the committed subset is not what it would write
// (TestVendoredUSCoreIsThePublishedPackage runs that when ../shared is there).

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const US_CORE_BASE = 'http://hl7.org/fhir/us/core/StructureDefinition/';
export const SUBSET_FILE = join(here, 'us-core-6.1.0-subset.json.gz');

// Profiles the mapping does not claim yet but whose resources it is about to write (notes and
// documents from MDM and non-lab reports); cheap to carry, and claiming them then needs no
// regeneration.
const EXTRA = ['us-core-diagnosticreport-note', 'us-core-documentreference', 'us-core-observation-clinical-result'];

// untar returns the regular files of a POSIX/ustar tar archive by name.
function untar(buf) {
  const files = new Map();
  for (let off = 0; off + 512 <= buf.length; ) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start, len) => header.subarray(start, start + len).toString('latin1').replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    if (type === '0' || type === '') files.set(name, buf.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

// claimedByMapping lists the US Core profile names written in the Go sources.
function claimedByMapping() {
  const names = new Set();
  const walk = (dir) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) {
        if (entry !== 'testdata' && entry !== 'node_modules') walk(path);
      } else if (entry.endsWith('.go') && !entry.endsWith('_test.go')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/\b(us-core-[a-z0-9-]*[a-z0-9])\b/g)) {
          names.add(m[1]);
        }
      }
    }
  };
  walk(join(root, 'internal'));
  return names;
}

function strip(resource) {
  const { text, differential, mapping, ...rest } = resource;
  if (rest.snapshot) {
    rest.snapshot = {
      element: rest.snapshot.element.map(({ mapping: _m, definition: _d, comment: _c, requirements: _r, alias: _a, ...e }) => e),
    };
  }
  return rest;
}

function main(tgz, check) {
  const raw = readFileSync(tgz);
  const files = untar(gunzipSync(raw));
  const byUrl = new Map();
  for (const [name, data] of files) {
    if (!/^package\/(StructureDefinition|ValueSet|CodeSystem)-[^/]+\.json$/.test(name)) continue;
    const res = JSON.parse(data.toString('utf8'));
    byUrl.set(res.url, res);
  }
  const pkg = JSON.parse(files.get('package/package.json').toString('utf8'));
  if (pkg.name !== 'hl7.fhir.us.core' || pkg.version !== '6.1.0') throw new Error(`${tgz} is ${pkg.name} ${pkg.version}, not hl7.fhir.us.core 6.1.0`);

  const wanted = new Set();
  // A us-core-* name that is no profile (a value set, an extension written elsewhere) is
  // skipped here; a claimed profile missing from the package fails validation instead.
  const queue = [...claimedByMapping(), ...EXTRA].map((n) => US_CORE_BASE + n).filter((u) => byUrl.has(u));
  const add = (url) => {
    const canonical = url?.split('|')[0];
    if (canonical && byUrl.has(canonical) && !wanted.has(canonical)) queue.push(canonical);
  };
  while (queue.length > 0) {
    const url = queue.pop();
    if (wanted.has(url)) continue;
    const res = byUrl.get(url);
    if (!res) throw new Error(`${url} is not in ${tgz}`);
    wanted.add(url);
    if (res.resourceType === 'ValueSet') {
      for (const inc of [...(res.compose?.include ?? []), ...(res.compose?.exclude ?? [])]) {
        add(inc.system);
        for (const vs of inc.valueSet ?? []) add(vs);
      }
      continue;
    }
    if (res.resourceType !== 'StructureDefinition') continue;
    add(res.baseDefinition);
    for (const e of res.snapshot.element) {
      add(e.binding?.valueSet);
      for (const t of e.type ?? []) for (const p of t.profile ?? []) add(p);
    }
  }

  const resources = [...wanted].sort().map((url) => strip(byUrl.get(url)));
  const json = JSON.stringify({ package: `${pkg.name}#${pkg.version}`, resources });
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  if (check) {
    const committed = gunzipSync(readFileSync(SUBSET_FILE)).toString('utf8');
    if (committed !== json) {
      console.log(`${SUBSET_FILE} is not what ${tgz} and the mapping's profiles give (sha256 ${sha(Buffer.from(committed))}, want ${sha(Buffer.from(json))}): regenerate it with vendor-us-core.mjs`);
      return 1;
    }
    console.log(`${SUBSET_FILE} matches ${tgz} (${resources.length} resources)`);
    return 0;
  }
  writeFileSync(SUBSET_FILE, gzipSync(Buffer.from(json), { level: 9 }));
  console.log(`${resources.length} resources: ${resources.map((r) => r.url.split('/').pop()).join(', ')}`);
  console.log(`source ${tgz} sha256 ${sha(raw)}`);
  console.log(`wrote ${SUBSET_FILE}: decompresses to sha256 ${sha(Buffer.from(json))}`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const check = args[0] === '--check';
  process.exitCode = main((check ? args[1] : args[0]) ?? join(root, '..', 'shared', 'reference', 'HL7-US-Core-6.1.0', 'hl7.fhir.us.core-6.1.0.tgz'), check);
}
