// Reads the status of Countersign credentials with implementations nobody at Countersign
// wrote: @sd-jwt/jwt-status-list finds each credential's status reference and decodes the
// published list; jose verifies the list's signature with the issuer's JWKS.
//
// env: ISSUER; CREDENTIALS: JSON array of vc+jwt strings. Prints one JSON line:
// [{ idx, uri, status }] in the same order.
import { getListFromStatusListJWT, getStatusListFromJWT } from '@sd-jwt/jwt-status-list';
import * as jose from 'jose';

const { ISSUER, CREDENTIALS } = process.env;
const jwks = jose.createRemoteJWKSet(new URL(`${ISSUER}/jwks.json`));
const out = [];
for (const credential of JSON.parse(CREDENTIALS)) {
  const { idx, uri } = getStatusListFromJWT(credential);
  const response = await fetch(uri);
  if (!response.ok) throw new Error(`GET ${uri}: ${response.status}`);
  const listJwt = await response.text();
  const verified = await jose.jwtVerify(listJwt, jwks, { typ: 'statuslist+jwt', algorithms: ['ES256'], subject: uri });
  if (typeof verified.payload.ttl !== 'number') throw new Error('status list has no ttl');
  out.push({ idx, uri, status: getListFromStatusListJWT(listJwt).getStatus(idx) });
}
console.log(JSON.stringify(out));
