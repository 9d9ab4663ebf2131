// The enterprise IdP for admin single sign-on tests: panva's oidc-provider, configured
// with one confidential client (client_secret_basic, PKCE required) and a few accounts.
//
// Usage: node op.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI ACCOUNTS_JSON
// ACCOUNTS_JSON maps sub to claims, e.g. {"u1":{"email":"ada@example.com","email_verified":true}};
// a `groups` array is released with the `groups` scope.
// Prints "listening http://127.0.0.1:PORT" once it serves.
//
// There is no login form: the account that signs in is the one the authorization
// request's login_hint names (by sub or email), standing in for a person typing a
// password. Everything else (discovery, JWKS, authorization, the code and PKCE checks at
// the token endpoint, the RS256 ID token) is the provider's own.
import http from 'node:http';
import Provider from 'oidc-provider';

const [clientId, clientSecret, redirectUri, accountsJson] = process.argv.slice(2);
const accounts = JSON.parse(accountsJson);
const findSub = (hint) =>
  Object.keys(accounts).find((sub) => sub === hint || accounts[sub].email === hint);

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    // The relying party reads e-mail from the ID token, as Okta and Entra ID issue it.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['countersign-test-op'] },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      if (!accounts[sub]) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...accounts[sub] }) };
    },
  });
  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/[^/]+$/.exec(ctx.path);
    if (!match) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const sub = findSub(details.params.login_hint);
    if (!sub) {
      const to = await provider.interactionResult(ctx.req, ctx.res, {
        error: 'access_denied',
        error_description: 'unknown account',
      }, { mergeWithLastSubmission: false });
      ctx.status = 303;
      return ctx.redirect(to);
    }
    const grant = new provider.Grant({ accountId: sub, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: sub },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    return ctx.redirect(to);
  });
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});
