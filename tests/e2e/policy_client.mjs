// The official SDK client against a route with a tool/prompt/resource policy: lists what the
// route lets it see, calls an allowed tool, a streamed one, and the ones a policy would refuse,
// and prints ONE JSON line of what it got, for the policy end-to-end tests (the upstream is
// tests/e2e/tools_server.mjs). No OAuth flow: a given token goes as a static
// `Authorization: Bearer` header on every request.
//
// Usage: node policy_client.mjs <mcp-url> <v1|v2> [bearer-token]. v1 is
// `@modelcontextprotocol/sdk` 1.x (initialize, 2025-11-25, an mcp-session-id session); v2 is
// `@modelcontextprotocol/client` 2.x, which by default would also run the legacy handshake, so
// here it pins the 2026-07-28 revision (stateless, MCP-Protocol-Version / Mcp-Method / Mcp-Name
// headers on every POST). V2_NEGOTIATION=auto (probe server/discover, fall back to initialize)
// or =legacy changes that.
//
// Output: {"protocol", "tools", "prompts", "resources", "echo", "slow": {"text", "progress"},
// "denied": {"tool", "error"?, "result"?}, "secret_prompt", "secret_resource"}. Each step is
// caught on its own: a failure becomes {"error": String(e), "name", "status"?, "code"?, ...}
// and the rest still run; the script exits 0 once the line is printed (2 on bad usage).
const [, , target, flavour, token] = process.argv;
if (!target || !["v1", "v2"].includes(flavour)) {
  console.error("usage: node policy_client.mjs <mcp-url> <v1|v2> [bearer-token]");
  process.exit(2);
}
const v2 = flavour === "v2";
const { Client, StreamableHTTPClientTransport } = v2
  ? await import("@modelcontextprotocol/client")
  : {
      ...(await import("@modelcontextprotocol/sdk/client/index.js")),
      ...(await import("@modelcontextprotocol/sdk/client/streamableHttp.js")),
    };
// v1 takes a result schema before the options.
const callTool = (client, params, options) =>
  v2 ? client.callTool(params, options) : client.callTool(params, undefined, options);

/// An error as data: its text, and what the SDK error exposes (v1 StreamableHTTPError.code is
/// the HTTP status; v2 SdkHttpError has .status, InsufficientScopeError .requiredScope, ...).
function failure(e) {
  const out = { error: String(e), name: e?.constructor?.name ?? typeof e };
  const status = e?.status ?? e?.data?.status ?? (e?.name === "StreamableHTTPError" || e?.constructor?.name === "StreamableHTTPError" ? e.code : undefined);
  if (typeof status === "number") out.status = status;
  if (e?.code !== undefined) out.code = e.code;
  if (e?.data !== undefined) out.data = e.data;
  for (const k of ["requiredScope", "errorDescription", "resourceMetadataUrl"]) {
    if (e?.[k] !== undefined) out[k] = String(e[k]);
  }
  if (e?.cause !== undefined) out.cause = String(e.cause);
  return out;
}

async function step(f) {
  try {
    return await f();
  } catch (e) {
    return failure(e);
  }
}

const textOf = (result) =>
  result?.isError
    ? { isError: true, text: result.content?.map((c) => c.text).join("\n") }
    : result?.content?.map((c) => c.text).join("\n");

const url = new URL(target);
const requestInit = token ? { headers: { Authorization: `Bearer ${token}` } } : undefined;
const negotiation = process.env.V2_NEGOTIATION ?? "pin";
const clientOptions = v2
  ? { versionNegotiation: { mode: negotiation === "pin" ? { pin: "2026-07-28" } : negotiation } }
  : {};
const client = new Client({ name: `mcpgate-e2e-policy-${flavour}`, version: "1.0.0" }, clientOptions);
const transport = new StreamableHTTPClientTransport(url, { requestInit });

const out = { client: flavour, protocol: null };
const connected = await step(() => client.connect(transport));
if (connected?.error) {
  out.connect = connected;
} else {
  out.protocol = (v2 ? client.getNegotiatedProtocolVersion?.() : transport.protocolVersion) ?? null;
  if (v2) out.era = client.getProtocolEra?.() ?? null;
  out.tools = await step(async () => (await client.listTools()).tools.map((t) => t.name));
  out.prompts = await step(async () => (await client.listPrompts()).prompts.map((p) => p.name));
  out.resources = await step(async () => (await client.listResources()).resources.map((r) => r.uri));
  out.echo = await step(async () => textOf(await callTool(client, { name: "echo", arguments: { message: "audit-canary-7f3a" } })));
  let progress = 0;
  const slow = await step(async () =>
    textOf(
      await callTool(
        client,
        { name: "slow_count", arguments: { steps: 3 } },
        { onprogress: () => progress++ },
      ),
    ),
  );
  out.slow = slow?.error ? { ...slow, progress } : { text: slow, progress };
  const denied = await step(async () => ({
    result: textOf(await callTool(client, { name: "delete_repository", arguments: { repo: "acme/widgets" } })),
  }));
  out.denied = { tool: "delete_repository", ...denied };
  out.secret_prompt = await step(async () => await client.getPrompt({ name: "secret_plan" }));
  out.secret_resource = await step(async () => await client.readResource({ uri: "file:///secret/keys.txt" }));
  await step(() => transport.terminateSession?.());
  await step(() => client.close());
}
console.log(JSON.stringify(out));
process.exit(0);
