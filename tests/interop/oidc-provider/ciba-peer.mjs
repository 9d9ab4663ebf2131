// The benchmark peer: panva's oidc-provider (a certified OpenID Provider) as a CIBA
// provider with its in-memory store and no policy, measured by `cargo xtask bench` with
// the same load generator, settings and request shapes as Countersign.
//
// Usage: node ciba-peer.mjs CLIENT_ID CLIENT_SECRET LOGIN_HINT
// Prints "listening http://127.0.0.1:PORT" once it serves.
//
// It offers what the generator calls on Countersign:
// - POST /bc-authorize (client_secret_basic, login_hint, binding_message), the provider's
//   own CIBA endpoint (poll mode);
// - POST /dev/approvals/{auth_req_id}/approve, 204: the human's approval, standing in for
//   Countersign's --dev-approvals route; it grants the request's scope through the
//   provider's own Grant and backchannelResult;
// - POST /token with the CIBA grant and a DPoP proof (the provider binds the token);
// - GET /healthz and GET /readyz, 200.
// Tokens and ID tokens are signed with ES256, as Countersign signs its own.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const [clientId, clientSecret, loginHint] = process.argv.slice(2);
const signingKey = crypto
  .generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .privateKey.export({ format: 'jwk' });

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [],
      response_types: [],
      grant_types: ['urn:openid:params:grant-type:ciba'],
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_token_delivery_mode: 'poll',
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [{ ...signingKey, alg: 'ES256', use: 'sig', kid: 'bench' }] },
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
    cookies: { keys: ['countersign-bench-peer'] },
    routes: { backchannel_authentication: '/bc-authorize' },
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: true },
      ciba: {
        enabled: true,
        deliveryModes: ['poll'],
        processLoginHint: async (ctx, hint) => (hint === loginHint ? hint : undefined),
        validateBindingMessage: async () => {},
        validateRequestContext: async () => {},
        verifyUserCode: async () => {},
        triggerAuthenticationDevice: async () => {},
      },
    },
    async findAccount(ctx, sub) {
      if (sub !== loginHint) return undefined;
      return { accountId: sub, claims: async () => ({ sub }) };
    },
  });
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && (ctx.path === '/healthz' || ctx.path === '/readyz')) {
      ctx.status = 200;
      ctx.body = 'ok';
      return undefined;
    }
    const approve = /^\/dev\/approvals\/([^/]+)\/approve$/.exec(ctx.path);
    if (ctx.method !== 'POST' || !approve) return next();
    const request = await provider.BackchannelAuthenticationRequest.find(approve[1]);
    if (!request) {
      ctx.status = 404;
      return undefined;
    }
    const grant = new provider.Grant({ accountId: request.accountId, clientId: request.clientId });
    grant.addOIDCScope(request.scope);
    await grant.save();
    await provider.backchannelResult(request, grant);
    ctx.status = 204;
    return undefined;
  });
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});
