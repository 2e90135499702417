// An independent SMART Backend Services client, built on the npm `jose` package: it registers
// itself through the admin API, signs its client assertion (ES384 and RS384), obtains an
// access token from the gateway's token endpoint, verifies that token against the published
// JWKS, and calls /fhir with it. Run by gateway/smartapi/jose_test.go with BASE_URL and
// ADMIN_TOKEN; prints one JSON line ending in "ok":true, or exits non-zero.
import { randomUUID } from 'node:crypto';
import { SignJWT, createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';

const base = process.env.BASE_URL;
const adminToken = process.env.ADMIN_TOKEN;
if (!base || !adminToken) throw new Error('BASE_URL and ADMIN_TOKEN are required');

function check(cond, what, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
}

async function json(res) {
  const text = await res.text();
  try { return JSON.parse(text); } catch { return { text }; }
}

const discovery = await (await fetch(`${base}/fhir/.well-known/smart-configuration`)).json();
check(discovery.token_endpoint === `${base}/auth/token`, 'token_endpoint', discovery);
check(discovery.token_endpoint_auth_methods_supported.includes('private_key_jwt'), 'private_key_jwt', discovery);
check(discovery.capabilities.includes('client-confidential-asymmetric'), 'capabilities', discovery);
const serverKeys = createRemoteJWKSet(new URL(discovery.jwks_uri));

const results = [];
for (const alg of ['ES384', 'RS384']) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const kid = `${alg.toLowerCase()}-${randomUUID()}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const reg = await fetch(`${base}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `jose ${alg}`, jwks: { keys: [jwk] }, scopes: ['system/Observation.rs', 'system/Patient.r'] }),
  });
  const client = await json(reg);
  check(reg.status === 201, `register ${alg} client`, client);

  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(client.clientId)
    .setSubject(client.clientId)
    .setAudience(discovery.token_endpoint)
    .setIssuedAt()
    .setExpirationTime('4m')
    .setJti(randomUUID())
    .sign(privateKey);
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
    scope: 'system/Observation.rs system/Patient.rs',
  });
  const tokenRes = await fetch(discovery.token_endpoint, { method: 'POST', body: form });
  const token = await json(tokenRes);
  check(tokenRes.status === 200, `${alg} token`, token);
  check(token.token_type.toLowerCase() === 'bearer' && token.expires_in > 0 && token.expires_in <= 300, `${alg} token shape`, token);
  check(token.scope === 'system/Observation.rs system/Patient.r', `${alg} granted scope`, token);
  check(tokenRes.headers.get('cache-control') === 'no-store', `${alg} Cache-Control`);

  // The access token verifies with the keys the server publishes (jose, not our verifier).
  const { payload, protectedHeader } = await jwtVerify(token.access_token, serverKeys, { issuer: base, audience: `${base}/fhir` });
  check(payload.sub === client.clientId && payload.tenant && payload.scope === token.scope, `${alg} access token claims`, payload);

  const search = await fetch(`${base}/fhir/Observation?_count=1`, { headers: { authorization: `Bearer ${token.access_token}` } });
  const bundle = await json(search);
  check(search.status === 200 && bundle.resourceType === 'Bundle', `${alg} GET /fhir/Observation`, bundle);
  const denied = await fetch(`${base}/fhir/Patient`, { headers: { authorization: `Bearer ${token.access_token}` } });
  check(denied.status === 403, `${alg} Patient search without s`, await json(denied));

  const replay = await fetch(discovery.token_endpoint, { method: 'POST', body: form });
  const replayed = await json(replay);
  check(replay.status === 401 && replayed.error === 'invalid_client', `${alg} replayed assertion`, replayed);

  results.push({ alg, clientId: client.clientId, kid: protectedHeader.kid, scope: token.scope });
}
console.log(JSON.stringify({ results, ok: true }));
