// Signs Security Event Tokens with RS256 the way identity providers' transmitters do
// (Okta, Google RISC), using panva's jose: an independent JOSE implementation.
//
// Input (env SETS): a JSON array of claim sets. Output: {"jwks": {...}, "sets": [...],
// "other_key_set": "..."}: the transmitter's public JWK Set, each claim set signed with
// {alg: RS256, typ: secevent+jwt, kid}, and the first claim set signed by another RSA key
// under the same kid (a forgery).
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const claims = JSON.parse(process.env.SETS);
const kid = 'transmitter-rsa-1';
const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
const forger = await generateKeyPair('RS256', { modulusLength: 2048 });
const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
const sign = (c, key) =>
  new SignJWT(c).setProtectedHeader({ alg: 'RS256', typ: 'secevent+jwt', kid }).sign(key);
const sets = [];
for (const c of claims) sets.push(await sign(c, privateKey));
const other_key_set = await sign(claims[0], forger.privateKey);
console.log(JSON.stringify({ jwks: { keys: [jwk] }, sets, other_key_set }));
