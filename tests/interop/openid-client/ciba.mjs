// An agent written with openid-client (an OpenID client library nobody at Countersign
// wrote) runs the CIBA poll flow against a Countersign server, and jose verifies the
// tokens against the server's published JWKS. Prints one JSON line with what it saw.
//
// env: ISSUER, CLIENT_ID, and either CLIENT_SECRET (client_secret_basic) or PRIVATE_JWK
// (private_key_jwt). The token request carries DPoP proofs (RFC 9449), unless BEARER=1
// (an agent registered bearer-only).
import * as client from 'openid-client';
import * as jose from 'jose';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, PRIVATE_JWK, BEARER } = process.env;

let auth;
if (PRIVATE_JWK) {
  const jwk = JSON.parse(PRIVATE_JWK);
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  auth = client.PrivateKeyJwt({ key, kid: jwk.kid });
} else {
  auth = client.ClientSecretBasic(CLIENT_SECRET);
}

const config = await client.discovery(new URL(ISSUER), CLIENT_ID, undefined, auth, {
  execute: [client.allowInsecureRequests],
});
// Also check ID token signatures on token responses (off by default over TLS).
client.enableNonRepudiationChecks(config);

const details = [{ type: 'purchase_order', vendor: 'Acme', amount: 1200, currency: 'USD' }];
const started = await client.initiateBackchannelAuthentication(config, {
  scope: 'openid email',
  login_hint: 'alice',
  binding_message: 'W4SCT',
  authorization_details: JSON.stringify(details),
});

// The human approves a little later, so the client sees authorization_pending first.
setTimeout(async () => {
  const r = await fetch(`${ISSUER}/dev/approvals/${started.auth_req_id}/approve`, { method: 'POST' });
  if (r.status !== 204) {
    console.error('approval failed', r.status);
    process.exit(3);
  }
}, 1500);

const options = {};
if (BEARER !== '1') {
  options.DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
}
const tokens = await client.pollBackchannelAuthenticationGrant(config, started, undefined, options);

const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
const idToken = await jose.jwtVerify(tokens.id_token, jwks, { issuer: ISSUER, audience: CLIENT_ID, algorithms: ['ES256'] });
const accessToken = await jose.jwtVerify(tokens.access_token, jwks, { issuer: ISSUER, algorithms: ['ES256'], typ: 'vc+jwt' });

console.log(JSON.stringify({
  token_type: tokens.token_type,
  claims: tokens.claims(),
  id_token_verified: idToken.payload,
  access_token_verified: accessToken.payload,
  authorization_details: tokens.authorization_details,
}));
