// An MCP server that wants a credential of its own, for the passthrough and chained routes'
// end-to-end tests: the official SDK's McpServer over its Streamable HTTP transport
// (stateful sessions keyed by mcp-session-id) at /mcp, on plain node:http. Every /mcp
// request must carry the credential, else 401 with a JSON body; so a tool answer proves
// the gateway put the right credential upstream. It keeps every `authorization` and
// `x-api-key` value it received, per path, and the `seen` tool tells them, so a test can
// check that the gateway's own tokens never got here.
//
// Env: PORT; EXPECT_HEADER (a header name, e.g. `x-api-key` or `authorization`); then
// either EXPECT_VALUE (the exact value, e.g. `sk-test-123` or `Bearer sk-test-123`) or
// EXPECT_USERINFO (a URL: the value must be `Bearer <token>` and a GET of that URL with
// it must answer 200, i.e. a live token of the downstream OAuth service).
//
// Tools: `echo` (`Echo: <message>`), `trigger-long-running-operation` (`duration`, `steps`:
// a progress notification per step, so the answer streams as server-sent events) — the
// names of the reference server's, so one client script drives both — and `seen`.
// GET /probe answers 200 for a valid credential and 401 otherwise: a passthrough route's
// probe target.
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod"; // the SDK's own schema library (its dependency, pinned by the lockfile)

const port = Number(process.env.PORT);
const header = process.env.EXPECT_HEADER?.toLowerCase();
const value = process.env.EXPECT_VALUE;
const userinfo = process.env.EXPECT_USERINFO;
if (!port || !header || (value === undefined) === (userinfo === undefined)) {
  console.error("keyed_server: set PORT, EXPECT_HEADER and one of EXPECT_VALUE, EXPECT_USERINFO");
  process.exit(2);
}

/// Distinct values of the credential headers, in the order they first arrived, per path.
const seen = {
  mcp: { authorization: [], "x-api-key": [] },
  probe: { authorization: [], "x-api-key": [] },
};
function record(where, req) {
  for (const name of ["authorization", "x-api-key"]) {
    const v = req.headers[name];
    if (v !== undefined && !where[name].includes(v)) where[name].push(v);
  }
}

async function valid(req) {
  const got = req.headers[header];
  if (typeof got !== "string") return false;
  if (value !== undefined) return got === value;
  if (!/^Bearer \S+$/.test(got)) return false;
  try {
    const res = await fetch(userinfo, { headers: { authorization: got } });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

function json(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function mcpServer() {
  const server = new McpServer({ name: "keyed-server", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echoes back the input string", inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: "text", text: `Echo: ${message}` }] }),
  );
  server.registerTool(
    "trigger-long-running-operation",
    {
      description: "A long running operation with a progress notification per step",
      inputSchema: { duration: z.number().default(1), steps: z.number().default(3) },
    },
    async ({ duration, steps }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        await new Promise((resolve) => setTimeout(resolve, (duration * 1000) / steps));
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progress: i, total: steps, progressToken },
          });
        }
      }
      return { content: [{ type: "text", text: `Long running operation completed. Duration: ${duration} seconds, Steps: ${steps}.` }] };
    },
  );
  server.registerTool(
    "seen",
    { description: "The authorization and x-api-key values this server received, per path" },
    async () => ({ content: [{ type: "text", text: JSON.stringify(seen) }] }),
  );
  return server;
}

/// Transports of live sessions, by mcp-session-id.
const sessions = new Map();

async function mcp(req, res) {
  const id = req.headers["mcp-session-id"];
  let transport = id === undefined ? undefined : sessions.get(id);
  if (id !== undefined && !transport) {
    return json(res, 404, { jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null });
  }
  if (!transport) {
    if (req.method !== "POST") {
      return json(res, 400, { jsonrpc: "2.0", error: { code: -32000, message: "No session" }, id: null });
    }
    // A new session: the transport refuses anything but an initialize request.
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => sessions.set(sid, transport),
    });
    transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
    await mcpServer().connect(transport);
  }
  await transport.handleRequest(req, res);
}

createServer(async (req, res) => {
  const path = new URL(req.url, "http://localhost").pathname;
  try {
    if (path === "/probe" && req.method === "GET") {
      record(seen.probe, req);
      return (await valid(req))
        ? json(res, 200, { ok: true })
        : json(res, 401, { error: "unauthorized", error_description: `bad or missing ${header}` });
    }
    if (path !== "/mcp") return json(res, 404, { error: "not_found" });
    record(seen.mcp, req);
    if (!(await valid(req))) {
      req.resume();
      return json(res, 401, { error: "unauthorized", error_description: `bad or missing ${header}` });
    }
    await mcp(req, res);
  } catch (e) {
    console.error("keyed_server:", e);
    if (!res.headersSent) json(res, 500, { jsonrpc: "2.0", error: { code: -32603, message: String(e) }, id: null });
  }
}).listen(port, "127.0.0.1", () => console.log(`keyed server listening on ${port}, wants ${header}`));
