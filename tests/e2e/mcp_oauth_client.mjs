// The official SDK client through a brokered route, the whole OAuth way: discovery,
// dynamic registration, authorize with PKCE (the user's browser is played here: the
// gateway's consent page, then the IdP's login and consent forms, by plain HTTP posts),
// token, an MCP session with a tool call and a streamed tool, then a refresh. Prints one
// JSON line of what it saw. Usage: node mcp_oauth_client.mjs <url> [v1|v2]: v1 is
// `@modelcontextprotocol/sdk` 1.x, v2 is `@modelcontextprotocol/client` 2.x (the 2026-07-28
// revision: it checks the authorization response's `iss`).
//
// The same script drives the gateway's other strategies. A passthrough route's authorize
// page asks for the upstream's API key: it is typed from MCP_KEY, and with
// MCP_WRONG_KEY_FIRST that wrong key goes first, to see the gateway's probe refuse it
// (`wrongKeyRefused`). A chained route's pages are the gateway's consent and the downstream
// service's login and consent, as for a brokered one. With MCP_SEEN_TOOL=1 the server's
// `seen` tool (tests/e2e/keyed_server.mjs) is called last and its answer reported as
// `upstreamSaw`; `clientAccessTokens` and `clientRefreshTokens` are every token the client
// held, to compare with what reached the upstream.
const v2 = process.argv[3] === "v2";
const { Client, StreamableHTTPClientTransport, UnauthorizedError } = v2
  ? await import("@modelcontextprotocol/client")
  : {
      ...(await import("@modelcontextprotocol/sdk/client/index.js")),
      ...(await import("@modelcontextprotocol/sdk/client/streamableHttp.js")),
      ...(await import("@modelcontextprotocol/sdk/client/auth.js")),
    };
// v1 takes a result schema before the options.
const callTool = (client, params, options) =>
  v2 ? client.callTool(params, options) : client.callTool(params, undefined, options);

const url = new URL(process.argv[2]);
const redirectUrl = "http://127.0.0.1:1/callback"; // never reached: the code is read off the redirect
const seen = { pages: [], registrations: 0, tokensSaved: 0, clientAccessTokens: [], clientRefreshTokens: [] };

/// A cookie jar per host, enough for login sessions.
const jar = new Map();
function cookies(u) {
  return [...(jar.get(u.host) ?? new Map())].map(([k, v]) => `${k}=${v}`).join("; ");
}
function keep(u, res) {
  const host = jar.get(u.host) ?? new Map();
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const i = pair.indexOf("=");
    host.set(pair.slice(0, i).trim(), pair.slice(i + 1));
  }
  jar.set(u.host, host);
}

/// Plays the browser from the authorization URL to the client's redirect; returns the code.
async function browse(start) {
  let next = { url: new URL(start), method: "GET", body: undefined };
  let wrongKey = process.env.MCP_WRONG_KEY_FIRST;
  let awaitingRefusal = false; // a wrong key was posted: the next page should refuse it
  for (let step = 0; step < 20; step++) {
    const res = await fetch(next.url, {
      method: next.method,
      body: next.body,
      redirect: "manual",
      headers: {
        cookie: cookies(next.url),
        ...(next.body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
    });
    keep(next.url, res);
    if (res.status >= 300 && res.status < 400) {
      const to = new URL(res.headers.get("location"), next.url);
      if (to.href.startsWith(redirectUrl)) {
        if (awaitingRefusal) seen.wrongKeyRefused = false;
        if (to.searchParams.get("error")) throw new Error(`authorization failed: ${to.search}`);
        seen.iss = to.searchParams.get("iss");
        return to.searchParams;
      }
      next = { url: to, method: "GET" };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${next.url} answered ${res.status}: ${html.slice(0, 300)}`);
    if (awaitingRefusal) {
      seen.wrongKeyRefused = html.includes("was refused");
      awaitingRefusal = false;
    }
    const form = html.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
    if (!form) throw new Error(`no form at ${next.url}: ${html.slice(0, 300)}`);
    const fields = new URLSearchParams();
    for (const input of form[2].matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
      const name = input[0].match(/name="([^"]*)"/)?.[1];
      const value = input[0].match(/value="([^"]*)"/)?.[1] ?? "";
      if (name) fields.set(name, value.replaceAll("&amp;", "&"));
    }
    if (/<input[^>]*name="key"[^>]*>/i.test(form[2])) {
      // A passthrough route's page: the user types the upstream's API key.
      seen.pages.push("gateway key");
      if (wrongKey) {
        fields.set("key", wrongKey);
        wrongKey = undefined;
        awaitingRefusal = true;
      } else {
        if (!process.env.MCP_KEY) throw new Error(`${next.url} asks for a key: set MCP_KEY`);
        fields.set("key", process.env.MCP_KEY);
      }
      fields.set("decision", "approve");
    } else if (fields.has("consent")) {
      seen.pages.push("gateway consent");
      fields.set("decision", "approve");
    } else if (fields.get("prompt") === "login") {
      seen.pages.push("idp login");
      fields.set("login", "alice");
      fields.set("password", "any");
    } else {
      seen.pages.push(`idp ${fields.get("prompt") ?? "form"}`);
    }
    next = { url: new URL(form[1].replaceAll("&amp;", "&"), next.url), method: "POST", body: fields.toString() };
  }
  throw new Error("too many steps");
}

class HeadlessProvider {
  _client; _tokens; _verifier; callback;
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return { client_name: "mcpgate e2e", redirect_uris: [redirectUrl], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  clientInformation() { return this._client; }
  saveClientInformation(info) { seen.registrations++; this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) {
    seen.tokensSaved++;
    this._tokens = tokens;
    seen.clientAccessTokens.push(tokens.access_token);
    if (tokens.refresh_token) seen.clientRefreshTokens.push(tokens.refresh_token);
  }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  async redirectToAuthorization(authorizationUrl) { this.callback = await browse(authorizationUrl); }
}

const provider = new HeadlessProvider();
const connect = async () => {
  const client = new Client({ name: "mcpgate-e2e-oauth", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
};

try {
  await connect();
  throw new Error("connected without authorization");
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
{
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await transport.finishAuth(v2 ? provider.callback : provider.callback.get("code"));
}
const { client, transport } = await connect();
const echo = await callTool(client, { name: "echo", arguments: { message: "authorized" } });
const progress = [];
await callTool(
  client,
  { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 3 } },
  { onprogress: (p) => progress.push(p.progress) },
);
// Spoil the access token: the next call gets 401, and the SDK refreshes through the gateway.
const firstAccess = provider._tokens.access_token;
provider._tokens = { ...provider._tokens, access_token: "spoiled" };
const again = await callTool(client, { name: "echo", arguments: { message: "refreshed" } });
if (process.env.MCP_SEEN_TOOL === "1") {
  const saw = await callTool(client, { name: "seen", arguments: {} });
  seen.upstreamSaw = JSON.parse(saw.content[0].text);
}
await transport.terminateSession();
await client.close();

// Introspection and revocation through the gateway, for the (sealed) refresh token.
const meta = await (await fetch(new URL(`/.well-known/oauth-authorization-server${url.pathname}`, url))).json();
const post = async (endpoint, fields) => {
  const res = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: provider._client.client_id, ...fields }).toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
};
const refreshToken = provider._tokens.refresh_token;
const before = await post(meta.introspection_endpoint, { token: refreshToken });
const revoked = await post(meta.revocation_endpoint, { token: refreshToken });
const after = await post(meta.introspection_endpoint, { token: refreshToken });
const reuse = await post(meta.token_endpoint, { grant_type: "refresh_token", refresh_token: refreshToken });
seen.revocation = {
  activeBefore: before.body?.active ?? null,
  revokeStatus: revoked.status,
  activeAfter: after.body?.active ?? null,
  refreshAfter: reuse.body?.error ?? reuse.status,
};

console.log(JSON.stringify({
  ...seen,
  echo: echo.content[0].text,
  again: again.content[0].text,
  progress,
  refreshedToken: provider._tokens.access_token !== firstAccess && provider._tokens.access_token !== "spoiled",
}));
