// An MCP server with tools, prompts and resources worth filtering, for the gateway's policy
// end-to-end tests: the v2 SDK (`@modelcontextprotocol/server`) at /mcp on plain node:http,
// serving both protocol generations from one McpServer factory:
//
// - 2026-07-28 traffic (a per-request `_meta` envelope, MCP-Protocol-Version / Mcp-Method /
//   Mcp-Name headers, no sessions) goes to the SDK's `createMcpHandler` with `legacy: 'reject'`;
// - 2025-era traffic (initialize, then requests keyed by mcp-session-id, GET streams, DELETE)
//   goes to the v2 SDK's own sessionful `WebStandardStreamableHTTPServerTransport`, one per
//   session — the SDK's documented `isLegacyRequest` routing. (`createMcpHandler`'s built-in
//   legacy fallback is stateless, which would not exercise the gateway with sessions.)
//
// Env: PORT. JSON_RESPONSE=1: answer plain JSON bodies where the SDK allows — legacy
// sessions get `enableJsonResponse` and modern requests `responseMode: 'json'`; both then drop
// mid-call notifications, so `slow_count` reports no progress in that mode. Otherwise every
// answer streams as server-sent events (`responseMode: 'sse'`, the legacy transport's default).
// MODERN_RESPONSE_MODE (auto | sse | json) overrides the modern mode alone; `auto` answers JSON
// unless a handler emits something before its result (then SSE). LOG_HEADERS=1 prints one
// line per /mcp request to stderr.
//
// Tools: `echo` {message} → `Echo: <message>`; `list_issues` → `no issues`; `delete_repository`
// {repo} → `deleted <repo>`; `admin_reset` → `reset done`; `slow_count` {steps} → a progress
// notification per step, ~50 ms apart, when the request has a progressToken, then
// `counted <steps>`. Prompts: `greeting`, `secret_plan`. Resources: file:///public/readme.txt
// (`public`), file:///secret/keys.txt (`secret`).
//
// GET /seen answers {"calls": [...], "requests": [...]}: `calls` are the tools/call tool
// names, prompts/get names and resources/read URIs the server executed, in order — so a test
// can prove a refused call never got here; `requests` are what each /mcp request carried
// (HTTP and JSON-RPC method, the MCP headers, Accept, Authorization) and how it was answered
// (status, content-type). POST /seen/reset clears both.
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import {
  McpServer,
  WebStandardStreamableHTTPServerTransport,
  createMcpHandler,
  isLegacyRequest,
} from "@modelcontextprotocol/server";
import { z } from "zod"; // the SDK's own schema library (its dependency, pinned by the lockfile)
import { sendWebResponse, webRequest } from "../node/web_http.mjs";

const port = Number(process.env.PORT);
if (!port) {
  console.error("tools_server: set PORT");
  process.exit(2);
}
const jsonResponse = process.env.JSON_RESPONSE === "1";
const modernMode = process.env.MODERN_RESPONSE_MODE ?? (jsonResponse ? "json" : "sse");
if (!["auto", "sse", "json"].includes(modernMode)) {
  console.error("tools_server: MODERN_RESPONSE_MODE must be auto, sse or json");
  process.exit(2);
}
const logHeaders = process.env.LOG_HEADERS === "1";

/// What the server executed, and what reached /mcp.
let calls = [];
let requests = [];

const text = (t) => ({ content: [{ type: "text", text: t }] });
const userMessage = (t) => ({ messages: [{ role: "user", content: { type: "text", text: t } }] });

/// One definition for both eras: a fresh instance per modern request, one per legacy session.
function mcpServer() {
  const server = new McpServer({ name: "tools-server", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echoes back the input string", inputSchema: z.object({ message: z.string() }) },
    async ({ message }) => {
      calls.push("echo");
      return text(`Echo: ${message}`);
    },
  );
  server.registerTool("list_issues", { description: "Lists the open issues" }, async () => {
    calls.push("list_issues");
    return text("no issues");
  });
  server.registerTool(
    "delete_repository",
    { description: "Deletes a repository", inputSchema: z.object({ repo: z.string() }) },
    async ({ repo }) => {
      calls.push("delete_repository");
      return text(`deleted ${repo}`);
    },
  );
  server.registerTool("admin_reset", { description: "Resets everything" }, async () => {
    calls.push("admin_reset");
    return text("reset done");
  });
  server.registerTool(
    "slow_count",
    {
      description: "Counts to steps, a progress notification per step",
      inputSchema: z.object({ steps: z.number() }),
    },
    async ({ steps }, ctx) => {
      calls.push("slow_count");
      const progressToken = ctx.mcpReq._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (progressToken !== undefined) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken, progress: i, total: steps },
          });
        }
      }
      return text(`counted ${steps}`);
    },
  );
  server.registerPrompt("greeting", { description: "A greeting" }, async () => {
    calls.push("greeting");
    return userMessage("Say hello");
  });
  server.registerPrompt("secret_plan", { description: "The secret plan" }, async () => {
    calls.push("secret_plan");
    return userMessage("The plan is secret");
  });
  server.registerResource(
    "readme",
    "file:///public/readme.txt",
    { description: "A public file", mimeType: "text/plain" },
    async (uri) => {
      calls.push(uri.href);
      return { contents: [{ uri: uri.href, mimeType: "text/plain", text: "public" }] };
    },
  );
  server.registerResource(
    "keys",
    "file:///secret/keys.txt",
    { description: "A secret file", mimeType: "text/plain" },
    async (uri) => {
      calls.push(uri.href);
      return { contents: [{ uri: uri.href, mimeType: "text/plain", text: "secret" }] };
    },
  );
  return server;
}

const onerror = (e) => console.error("tools_server:", e);
const modern = createMcpHandler(mcpServer, { legacy: "reject", responseMode: modernMode, onerror });

/// Legacy transports of live sessions, by mcp-session-id.
const sessions = new Map();

async function legacy(request) {
  const id = request.headers.get("mcp-session-id");
  let transport = id === null ? undefined : sessions.get(id);
  if (id !== null && !transport) {
    return Response.json({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }, { status: 404 });
  }
  if (!transport) {
    if (request.method !== "POST") {
      return Response.json({ jsonrpc: "2.0", error: { code: -32000, message: "No session" }, id: null }, { status: 400 });
    }
    // A new session: the transport refuses anything but an initialize request.
    transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => sessions.set(sid, transport),
      enableJsonResponse: jsonResponse,
    });
    transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
    await mcpServer().connect(transport);
  }
  return transport.handleRequest(request);
}

function json(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/// The JSON-RPC method(s) of a body, for the request log.
function rpcMethods(body) {
  try {
    const msg = JSON.parse(body.toString("utf8"));
    return (Array.isArray(msg) ? msg : [msg]).map((m) => m.method ?? (m.result !== undefined ? "(result)" : "(error)"));
  } catch {
    return [];
  }
}

async function mcp(req, res) {
  const body = req.method === "POST" ? await readBody(req) : undefined;
  const request = webRequest(req, res, body, `http://${req.headers.host ?? "127.0.0.1"}`);
  const entry = {
    http: req.method,
    rpc: body ? rpcMethods(body) : [],
    headers: Object.fromEntries(
      ["accept", "content-type", "mcp-protocol-version", "mcp-method", "mcp-name", "mcp-session-id", "authorization"]
        .filter((h) => req.headers[h] !== undefined)
        .map((h) => [h, req.headers[h]]),
    ),
  };
  requests.push(entry);
  const legacyLeg = await isLegacyRequest(request);
  entry.era = legacyLeg ? "legacy" : "modern";
  const response = legacyLeg ? await legacy(request) : await modern.fetch(request);
  entry.status = response.status;
  entry.contentType = response.headers.get("content-type");
  if (logHeaders) console.error(`tools_server: ${JSON.stringify(entry)}`);

  await sendWebResponse(res, response);
}

createServer(async (req, res) => {
  const path = new URL(req.url, "http://localhost").pathname;
  try {
    if (path === "/seen" && req.method === "GET") return json(res, 200, { calls, requests });
    if (path === "/seen/reset" && req.method === "POST") {
      req.resume();
      calls = [];
      requests = [];
      return json(res, 200, { ok: true });
    }
    if (path !== "/mcp") return json(res, 404, { error: "not_found" });
    await mcp(req, res);
  } catch (e) {
    console.error("tools_server:", e);
    if (!res.headersSent) json(res, 500, { jsonrpc: "2.0", error: { code: -32603, message: String(e) }, id: null });
    else res.end();
  }
}).listen(port, "127.0.0.1", () => console.log(`tools_server listening on ${port}`));
