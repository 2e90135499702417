// An independent FHIR client (fhir-kit-client, from npm) exercising the gateway:
// create, read, update, search with paging, conditional create, a batch, and an error.
// Usage: node run.mjs  (FHIR_BASE_URL and FHIR_TOKEN in the environment)
// Prints one line per step; exits 1 on the first failure.
import { Client } from 'fhir-kit-client';

const baseUrl = process.env.FHIR_BASE_URL;
const token = process.env.FHIR_TOKEN;
if (!baseUrl || !token) {
  console.error('FHIR_BASE_URL and FHIR_TOKEN are required');
  process.exit(2);
}
const client = new Client({ baseUrl, bearerToken: token });
const system = 'urn:oid:2.16.840.1.113883.3.9999';
const run = Date.now().toString(36);

function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg);
}

const steps = [];
async function step(name, fn) {
  try {
    const detail = await fn();
    steps.push(name);
    console.log(`ok   ${name}${detail ? ' ' + detail : ''}`);
  } catch (err) {
    const status = err?.response?.status;
    const body = err?.response?.data ? JSON.stringify(err.response.data) : '';
    console.error(`FAIL ${name}: ${err?.message ?? err} ${status ?? ''} ${body}`);
    process.exit(1);
  }
}

function observation(category, code) {
  return {
    resourceType: 'Observation', status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: 'Patient/example' },
  };
}

let patient;
await step('metadata', async () => {
  const cs = await client.capabilityStatement();
  check(cs.resourceType === 'CapabilityStatement', 'resourceType');
  check(cs.fhirVersion === '4.0.1', 'fhirVersion');
});
await step('create', async () => {
  patient = await client.create({
    resourceType: 'Patient',
    body: { resourceType: 'Patient', identifier: [{ system, value: 'fk-' + run }], name: [{ family: 'Kit', given: ['Fhir'] }] },
  });
  check(patient.id && patient.meta?.versionId === '1', 'id and version 1');
  return patient.id;
});
await step('read', async () => {
  const p = await client.read({ resourceType: 'Patient', id: patient.id });
  check(p.id === patient.id && p.name[0].family === 'Kit', 'same patient');
});
await step('update', async () => {
  const body = { ...patient, name: [{ family: 'Kitt', given: ['Fhir'] }] };
  const p = await client.update({ resourceType: 'Patient', id: patient.id, body });
  check(p.meta?.versionId === '2' && p.name[0].family === 'Kitt', 'version 2 with the new name');
});
await step('search', async () => {
  const b = await client.search({ resourceType: 'Patient', searchParams: { identifier: `${system}|fk-${run}` } });
  check(b.resourceType === 'Bundle' && b.type === 'searchset', 'a searchset');
  check(b.total === 1 && b.entry[0].resource.id === patient.id, 'one match, the patient');
});
await step('conditional create', async () => {
  const again = await client.create({
    resourceType: 'Patient',
    body: { resourceType: 'Patient', identifier: [{ system, value: 'fk-' + run }] },
    options: { headers: { 'If-None-Exist': `identifier=${system}|fk-${run}` } },
  });
  check(again.id === patient.id, 'the existing patient, not a new one');
});
await step('batch', async () => {
  const body = {
    resourceType: 'Bundle', type: 'batch',
    entry: [
      { resource: observation('vital-signs', '8867-4'), request: { method: 'POST', url: 'Observation' } },
      { resource: observation('laboratory', '2345-7'), request: { method: 'POST', url: 'Observation' } },
      { resource: observation('vital-signs', '8310-5'), request: { method: 'POST', url: 'Observation' } },
      { request: { method: 'GET', url: `Patient/${patient.id}` } },
    ],
  };
  const r = await client.batch({ body });
  check(r.type === 'batch-response', 'a batch-response');
  const statuses = r.entry.map((e) => e.response.status);
  check(statuses.join() === '201 Created,201 Created,201 Created,200 OK', 'statuses ' + statuses.join());
  return statuses.join('; ');
});
await step('search across owners with paging', async () => {
  let b = await client.search({ resourceType: 'Observation', searchParams: { _count: 1 } });
  const total = b.total;
  const ids = [];
  for (let pages = 0; b && pages < 20; pages++) {
    for (const e of b.entry ?? []) if (e.search?.mode === 'match') ids.push(e.resource.id);
    b = await client.nextPage({ bundle: b });
  }
  check(total === 3, 'total 3, got ' + total);
  check(ids.length === 3 && new Set(ids).size === 3, 'three distinct matches, got ' + ids.join());
  return `${ids.length} over ${ids.length} pages`;
});
await step('errors are OperationOutcomes', async () => {
  try {
    await client.read({ resourceType: 'Patient', id: 'does-not-exist' });
  } catch (err) {
    check(err.response?.status === 404, 'status 404, got ' + err.response?.status);
    check(err.response?.data?.resourceType === 'OperationOutcome', 'an OperationOutcome');
    return;
  }
  throw new Error('reading a missing patient succeeded');
});
console.log(JSON.stringify({ ok: true, steps }));
