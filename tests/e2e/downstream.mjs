// The downstream OAuth service of a chained route, played by `oidc-provider` (panva) the way
// GitHub's OAuth apps behave: one static confidential client (the gateway's) that
// authenticates with client_secret_post, no PKCE required, opaque access tokens (no
// resource indicators) that its userinfo endpoint `/me` accepts, and refresh tokens that
// rotate on every use. Its development login and consent pages are the user's. What the
// gateway asked of it is kept and shown at GET /_seen, so a test can check that the
// gateway sent no code_challenge, asked for the configured scopes and refreshed here.
// Env: PORT, GATEWAY_CALLBACK.
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: "mcpgate-gh",
    client_secret: "gh-secret",
    redirect_uris: [process.env.GATEWAY_CALLBACK],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_post",
  }],
  scopes: ["openid", "offline_access", "repo"],
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
  },
  // offline_access only survives an authorization request with prompt=consent; like
  // GitHub, hand the client a refresh token whenever it may use one.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed("refresh_token"),
  rotateRefreshToken: true,
  ttl: { AccessToken: 120 },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, login: sub }),
  }),
});

// What reached the endpoints, for the test: authorization requests (was there a
// code_challenge?), token requests (grant type, status, error) and userinfo answers.
const seen = { authorize: [], token: [], userinfo: [] };
provider.use(async (ctx, next) => {
  if (ctx.method === "GET" && ctx.path === "/_seen") {
    ctx.body = seen;
    return;
  }
  // The scope as asked: oidc-provider drops offline_access from its parsed params.
  const asked = { ...ctx.query };
  await next();
  const params = ctx.oidc?.params ?? {};
  switch (ctx.oidc?.route) {
    case "authorization":
      seen.authorize.push({
        client_id: params.client_id ?? null,
        redirect_uri: params.redirect_uri ?? null,
        scope: asked.scope ?? params.scope ?? null,
        code_challenge: params.code_challenge ?? asked.code_challenge ?? null,
        state: Boolean(params.state),
      });
      break;
    case "token":
      seen.token.push({
        grant_type: params.grant_type ?? null,
        status: ctx.status,
        error: ctx.body?.error ?? null,
        code_verifier: Boolean(params.code_verifier),
      });
      break;
    case "userinfo":
      seen.userinfo.push(ctx.status);
      break;
  }
});

provider.listen(port, "127.0.0.1", () => console.log(`downstream listening on ${port}`));
