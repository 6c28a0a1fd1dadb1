// A real OpenID provider for the end-to-end test: `oidc-provider` (panva), certified, with
// its development login and consent pages. One static confidential client, the gateway's.
// Access tokens are JWTs for the resource given (RFC 8707 resource indicators).
// Env: IDP_PORT, GATEWAY_CALLBACK (comma-separated), RESOURCE.
import Provider from "oidc-provider";

const port = Number(process.env.IDP_PORT);
const resource = process.env.RESOURCE;
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: "mcpgate",
    client_secret: "gw-secret",
    redirect_uris: process.env.GATEWAY_CALLBACK.split(","),
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  scopes: ["openid", "offline_access", "mcp:tools"],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "mcp:tools",
        audience: resource,
        accessTokenFormat: "jwt",
        accessTokenTTL: 300,
      }),
    },
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed("refresh_token"),
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@example.test`, email_verified: true }),
  }),
});
provider.listen(port, "127.0.0.1", () => console.log(`idp listening on ${port}`));
