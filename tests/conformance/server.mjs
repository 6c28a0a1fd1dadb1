// The upstream MCP server for scripts/conformance: implements the test tools, resources and
// prompts that the official conformance suite's server scenarios call (test_simple_text,
// test://static-text, test_prompt_with_arguments, ... — the contract the scenarios document),
// on the v2 SDK (`@modelcontextprotocol/server`), serving both protocol generations at /mcp:
//
// - 2026-07-28 traffic (per-request `_meta` envelope, no sessions) goes to `createMcpHandler`
//   (legacy: 'reject'), which also serves `server/discover` and `subscriptions/listen`;
// - 2025-era traffic (initialize, then requests keyed by mcp-session-id, GET streams, DELETE)
//   goes to a sessionful `WebStandardStreamableHTTPServerTransport` per session, with an
//   in-memory event store so SSE streams can be resumed (Last-Event-ID).
//
// Like any local server it guards against DNS rebinding: a Host or Origin that is not
// localhost, 127.0.0.1 or [::1] is refused with 403 before anything else.
//
// Usage: node server.mjs [port]   (or PORT=...; listens on 127.0.0.1, default 3000)
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import {
  CLIENT_CAPABILITIES_META_KEY,
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate,
  WebStandardStreamableHTTPServerTransport,
  acceptedContent,
  createMcpHandler,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  isLegacyRequest,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  validateHostHeader,
  validateOriginHeader,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import { sendWebResponse, webRequest } from "../node/web_http.mjs";

const port = Number(process.argv[2] ?? process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port <= 0) {
  console.error("conformance server: usage: node server.mjs [port]");
  process.exit(2);
}
const quiet = process.env.QUIET === "1";
const log = (...a) => quiet || console.error("conformance server:", ...a);

// 1x1 PNG and a minimal WAV, base64.
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

const text = (t) => ({ content: [{ type: "text", text: t }] });
const noArgs = z.object({});
const objectSchema = (props) => ({ type: "object", properties: props, required: Object.keys(props) });
const askName = (message = "What is your name?") =>
  inputRequired.elicit({ message, requestedSchema: objectSchema({ name: { type: "string" } }) });
const askConfirm = () =>
  inputRequired.elicit({ message: "Please confirm", requestedSchema: objectSchema({ ok: { type: "boolean" } }) });
const ask = (prompt, maxTokens) =>
  inputRequired.createMessage({ messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens });

// requestState (multi-round-trip, 2026-07-28) comes back from the client: seal it, and let
// the SDK refuse (-32602) any that fails verification before a handler runs.
const stateCodec = createRequestStateCodec({ key: crypto.getRandomValues(new Uint8Array(32)) });
const sealed = (payload) => stateCodec.mint({ ...payload, nonce: randomUUID() });

// Resumable SSE for 2025-era sessions: events per stream, in order.
function eventStore() {
  const streams = new Map(); // streamId -> [{ id, message }]
  const streamOf = new Map(); // eventId -> streamId
  let seq = 0;
  return {
    async storeEvent(streamId, message) {
      const id = `${streamId}_${String(++seq).padStart(10, "0")}`;
      if (!streams.has(streamId)) streams.set(streamId, []);
      streams.get(streamId).push({ id, message });
      streamOf.set(id, streamId);
      return id;
    },
    async replayEventsAfter(lastEventId, { send }) {
      const streamId = streamOf.get(lastEventId);
      if (streamId === undefined) throw new Error(`unknown event id ${lastEventId}`);
      const events = streams.get(streamId);
      for (const e of events.slice(events.findIndex((e) => e.id === lastEventId) + 1)) {
        await send(e.id, e.message);
      }
      return streamId;
    },
  };
}

const subscriptions = new Set();
/** 2025-era session transports, by mcp-session-id. */
const sessions = new Map();
let modern; // the 2026-07-28 handler, whose `notify` the trigger tools publish on

function elicitationTool(server, name, description, message, properties) {
  server.registerTool(name, { description, inputSchema: noArgs }, async (_args, ctx) => {
    try {
      const r = await ctx.mcpReq.send({
        method: "elicitation/create",
        params: { message, requestedSchema: { type: "object", properties, required: [] } },
      });
      return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
    } catch (e) {
      return text(`Elicitation failed: ${e?.message ?? e}`);
    }
  });
}

/** One definition for both eras: a fresh instance per modern request, one per legacy session. */
function conformanceServer() {
  const server = new McpServer(
    { name: "mcpgate-conformance-upstream", version: "1.0.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {}, // 2025-era logging/setLevel; ignored on 2026-07-28
        completions: {},
      },
      requestState: { verify: stateCodec.verify },
    },
  );
  const notifyLog = (data) =>
    server.server.notification({ method: "notifications/message", params: { level: "info", data } }).catch(() => {});

  // --- content tools
  server.registerTool("test_simple_text", { description: "Returns simple text content" }, async () =>
    text("This is a simple text response for testing."),
  );
  server.registerTool("test_image_content", { description: "Returns image content" }, async () => ({
    content: [{ type: "image", data: PNG, mimeType: "image/png" }],
  }));
  server.registerTool("test_audio_content", { description: "Returns audio content" }, async () => ({
    content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }],
  }));
  server.registerTool("test_embedded_resource", { description: "Returns an embedded resource" }, async () => ({
    content: [
      {
        type: "resource",
        resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." },
      },
    ],
  }));
  server.registerTool("test_multiple_content_types", { description: "Returns text, image and resource content" }, async () => ({
    content: [
      { type: "text", text: "Multiple content types test:" },
      { type: "image", data: PNG, mimeType: "image/png" },
      {
        type: "resource",
        resource: {
          uri: "test://mixed-content-resource",
          mimeType: "application/json",
          text: JSON.stringify({ test: "data", value: 123 }),
        },
      },
    ],
  }));
  server.registerTool("test_error_handling", { description: "Always fails" }, async () => {
    throw new Error("This tool intentionally returns an error for testing");
  });

  // --- notifications during a call
  server.registerTool(
    "test_tool_with_logging",
    { description: "Emits log messages while it runs", inputSchema: noArgs },
    async (_args, ctx) => {
      for (const data of ["Tool execution started", "Tool processing data", "Tool execution completed"]) {
        await ctx.mcpReq.notify({ method: "notifications/message", params: { level: "info", data } });
        await new Promise((r) => setTimeout(r, 50));
      }
      return text("Tool with logging executed successfully");
    },
  );
  server.registerTool(
    "test_tool_with_progress",
    { description: "Reports progress when the request has a progressToken", inputSchema: noArgs },
    async (_args, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      if (progressToken !== undefined) {
        for (const progress of [0, 50, 100]) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken, progress, total: 100, message: `step ${progress}/100` },
          });
          if (progress < 100) await new Promise((r) => setTimeout(r, 50));
        }
      }
      return text(String(progressToken ?? "no-progress-token"));
    },
  );
  server.registerTool(
    "test_reconnection",
    { description: "Closes its SSE stream mid-call; the result arrives after the client reconnects", inputSchema: noArgs },
    async (_args, ctx) => {
      const transport = ctx.sessionId && sessions.get(ctx.sessionId);
      if (transport) transport.closeSSEStream(ctx.mcpReq.id);
      await new Promise((r) => setTimeout(r, 100));
      return text("Reconnection test completed successfully.");
    },
  );

  // --- 2025-era server-to-client requests
  server.registerTool(
    "test_sampling",
    { description: "Asks the client for an LLM completion", inputSchema: z.object({ prompt: z.string() }) },
    async ({ prompt }, ctx) => {
      try {
        const r = await ctx.mcpReq.send({
          method: "sampling/createMessage",
          params: { messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens: 100 },
        });
        return text(`LLM response: ${r.content?.text ?? "No response"}`);
      } catch (e) {
        return text(`Sampling failed: ${e?.message ?? e}`);
      }
    },
  );
  server.registerTool(
    "test_elicitation",
    { description: "Asks the user for input", inputSchema: z.object({ message: z.string() }) },
    async ({ message }, ctx) => {
      try {
        const r = await ctx.mcpReq.send({
          method: "elicitation/create",
          params: {
            message,
            requestedSchema: {
              type: "object",
              properties: { response: { type: "string", description: "User's response" } },
              required: ["response"],
            },
          },
        });
        return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
      } catch (e) {
        return text(`Elicitation failed: ${e?.message ?? e}`);
      }
    },
  );
  elicitationTool(server, "test_elicitation_sep1034_defaults", "Elicitation with defaults (SEP-1034)", "Please review the defaults", {
    name: { type: "string", description: "User name", default: "John Doe" },
    age: { type: "integer", description: "User age", default: 30 },
    score: { type: "number", description: "User score", default: 95.5 },
    status: { type: "string", description: "User status", enum: ["active", "inactive", "pending"], default: "active" },
    verified: { type: "boolean", description: "Verification status", default: true },
  });
  const titled = (prefix, label) =>
    ["1", "2", "3"].map((n, i) => ({ const: `${prefix}${n}`, title: `${label[i]}` }));
  elicitationTool(server, "test_elicitation_sep1330_enums", "Elicitation with the enum schema forms (SEP-1330)", "Pick options", {
    untitledSingle: { type: "string", description: "One option", enum: ["option1", "option2", "option3"] },
    titledSingle: { type: "string", description: "One titled option", oneOf: titled("value", ["First", "Second", "Third"]) },
    legacyEnum: {
      type: "string",
      description: "One option (legacy enumNames)",
      enum: ["opt1", "opt2", "opt3"],
      enumNames: ["Option One", "Option Two", "Option Three"],
    },
    untitledMulti: {
      type: "array",
      description: "Several options",
      minItems: 1,
      maxItems: 3,
      items: { type: "string", enum: ["option1", "option2", "option3"] },
    },
    titledMulti: {
      type: "array",
      description: "Several titled options",
      minItems: 1,
      maxItems: 3,
      items: { anyOf: titled("value", ["First", "Second", "Third"]) },
    },
  });

  // --- schemas advertised verbatim
  server.registerTool(
    "json_schema_2020_12_tool",
    {
      description: "Input schema using JSON Schema 2020-12 keywords",
      inputSchema: fromJsonSchema({
        $schema: "https://json-schema.org/draft/2020-12/schema",
        type: "object",
        $defs: {
          address: {
            $anchor: "addressDef",
            type: "object",
            properties: { street: { type: "string" }, city: { type: "string" } },
          },
        },
        properties: {
          name: { type: "string" },
          address: { $ref: "#/$defs/address" },
          contactMethod: { type: "string", enum: ["phone", "email"] },
          phone: { type: "string" },
          email: { type: "string" },
        },
        allOf: [{ anyOf: [{ required: ["phone"] }, { required: ["email"] }] }],
        if: { properties: { contactMethod: { const: "phone" } }, required: ["contactMethod"] },
        then: { required: ["phone"] },
        else: { required: ["email"] },
        additionalProperties: false,
      }),
    },
    async (args) => text(`called with ${JSON.stringify(args)}`),
  );
  server.registerTool(
    "test_x_mcp_header",
    {
      description: "An argument mirrored into the Mcp-Param-Region header (SEP-2243)",
      inputSchema: fromJsonSchema({
        type: "object",
        properties: {
          region: { type: "string", description: "mirrored into Mcp-Param-Region", "x-mcp-header": "Region" },
          level: { type: "integer", description: "not mirrored" },
        },
      }),
    },
    async (args) => text(`region=${args.region ?? "<none>"}`),
  );

  // --- 2026-07-28 stateless diagnostics (server-stateless scenario)
  server.registerTool("test_missing_capability", { description: "Needs the sampling capability", inputSchema: noArgs }, async (_a, ctx) =>
    ctx.mcpReq.inputResponses?.llm_answer === undefined
      ? inputRequired({ inputRequests: { llm_answer: ask("Reply with the single word: pong", 16) } })
      : text("sampling round-trip complete"),
  );
  server.registerTool("test_streaming_elicitation", { description: "A plain answer, no server requests", inputSchema: noArgs }, async () =>
    text("result frames only"),
  );
  server.registerTool("test_logging_tool", { description: "Logs through the request's logLevel gate", inputSchema: noArgs }, async (_a, ctx) => {
    await ctx.mcpReq.log("info", "test_logging_tool ran");
    return text("logged");
  });
  server.registerTool("test_trigger_tool_change", { description: "Publishes tools/list_changed", inputSchema: noArgs }, async () => {
    modern.notify.toolsChanged();
    return text("tools list_changed published");
  });
  server.registerTool("test_trigger_prompt_change", { description: "Publishes prompts/list_changed", inputSchema: noArgs }, async () => {
    modern.notify.promptsChanged();
    return text("prompts list_changed published");
  });

  // --- 2026-07-28 multi-round-trip (input_required) tools
  server.registerTool(
    "test_input_required_result_elicitation",
    { description: "Asks for the caller's name in-band", inputSchema: noArgs },
    async (_a, ctx) => {
      const name = acceptedContent(ctx.mcpReq.inputResponses, "user_name")?.name;
      return typeof name === "string"
        ? text(`Hello, ${name}!`)
        : inputRequired({ inputRequests: { user_name: askName() } });
    },
  );
  server.registerTool(
    "test_input_required_result_sampling",
    { description: "Asks for an LLM completion in-band", inputSchema: noArgs },
    async (_a, ctx) => {
      const r = ctx.mcpReq.inputResponses?.capital_question;
      if (r === undefined) return inputRequired({ inputRequests: { capital_question: ask("What is the capital of France?", 100) } });
      return text(`Sampling response: ${typeof r.content?.text === "string" ? r.content.text : JSON.stringify(r)}`);
    },
  );
  server.registerTool(
    "test_input_required_result_list_roots",
    { description: "Asks for the client's roots in-band", inputSchema: noArgs },
    async (_a, ctx) => {
      const roots = ctx.mcpReq.inputResponses?.client_roots?.roots;
      if (!Array.isArray(roots)) return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
      return text(`Client exposed ${roots.length} root(s): ${roots.map((r) => r.uri).join(", ")}`);
    },
  );
  server.registerTool(
    "test_input_required_result_request_state",
    { description: "Round-trips sealed requestState with an elicitation", inputSchema: noArgs },
    async (_a, ctx) => {
      if (acceptedContent(ctx.mcpReq.inputResponses, "confirm") === undefined) {
        return inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await sealed({ tool: "request_state" }) });
      }
      if (ctx.mcpReq.requestState() === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, "missing requestState");
      }
      return text("state-ok: requestState verified and confirmation received");
    },
  );
  server.registerTool(
    "test_input_required_result_multiple_inputs",
    { description: "Asks for elicitation, sampling and roots in one round", inputSchema: noArgs },
    async (_a, ctx) => {
      const responses = ctx.mcpReq.inputResponses;
      const name = acceptedContent(responses, "user_name")?.name;
      const greeting = responses?.greeting?.content?.text;
      const roots = responses?.client_roots?.roots;
      if (typeof name === "string" && typeof greeting === "string" && Array.isArray(roots)) {
        return text(`${greeting} ${name}, ${roots.length} root(s)`);
      }
      return inputRequired({
        inputRequests: { user_name: askName(), greeting: ask("Generate a greeting", 50), client_roots: inputRequired.listRoots() },
        requestState: await sealed({ tool: "multiple_inputs" }),
      });
    },
  );
  server.registerTool(
    "test_input_required_result_multi_round",
    { description: "Two elicitation rounds, the round kept in sealed requestState", inputSchema: noArgs },
    async (_a, ctx) => {
      const state = ctx.mcpReq.requestState();
      const round = state?.tool === "multi_round" ? state.round : 0;
      if (round === 0) {
        return inputRequired({
          inputRequests: { step1: askName("Step 1: What is your name?") },
          requestState: await sealed({ tool: "multi_round", round: 1 }),
        });
      }
      if (round === 1) {
        const name = acceptedContent(ctx.mcpReq.inputResponses, "step1")?.name ?? "unknown";
        return inputRequired({
          inputRequests: {
            step2: inputRequired.elicit({
              message: "Step 2: What is your favorite color?",
              requestedSchema: objectSchema({ color: { type: "string" } }),
            }),
          },
          requestState: await sealed({ tool: "multi_round", round: 2, name }),
        });
      }
      const color = acceptedContent(ctx.mcpReq.inputResponses, "step2")?.color ?? "unknown";
      return text(`Multi-round complete: ${state.name} likes ${color}`);
    },
  );
  server.registerTool(
    "test_input_required_result_tampered_state",
    { description: "Refuses retries whose requestState fails verification", inputSchema: noArgs },
    async (_a, ctx) =>
      ctx.mcpReq.requestState() !== undefined && acceptedContent(ctx.mcpReq.inputResponses, "confirm") !== undefined
        ? text("integrity-ok: requestState verified")
        : inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await sealed({ tool: "tampered_state" }) }),
  );
  server.registerTool(
    "test_input_required_result_capabilities",
    { description: "Only asks for input kinds the request's client capabilities cover", inputSchema: noArgs },
    async (_a, ctx) => {
      if (ctx.mcpReq.inputResponses !== undefined) return text("Capability-aware input requests fulfilled");
      const declared = ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {};
      const inputRequests = {};
      if (declared.elicitation !== undefined) inputRequests.user_name = askName();
      if (declared.sampling !== undefined) inputRequests.greeting = ask("Generate a short greeting", 50);
      if (declared.roots !== undefined) inputRequests.client_roots = inputRequired.listRoots();
      return Object.keys(inputRequests).length === 0
        ? text("No declared client capability supports an in-band input request")
        : inputRequired({ inputRequests });
    },
  );

  // --- resources
  const fixed = (name, uri, mimeType, body) =>
    server.registerResource(name, uri, { title: name, description: `${name} test resource`, mimeType }, async () => ({
      contents: [{ uri, mimeType, ...body }],
    }));
  fixed("static-text", "test://static-text", "text/plain", { text: "This is the content of the static text resource." });
  fixed("static-binary", "test://static-binary", "image/png", { blob: PNG });
  fixed("watched-resource", "test://watched-resource", "text/plain", { text: "Watched resource content" });
  server.registerResource(
    "template",
    new ResourceTemplate("test://template/{id}/data", { list: undefined }),
    { title: "template", description: "A resource template with an id parameter", mimeType: "application/json" },
    async (uri, { id }) => ({
      contents: [
        { uri: uri.toString(), mimeType: "application/json", text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) },
      ],
    }),
  );
  server.server.setRequestHandler("resources/subscribe", async ({ params }) => {
    subscriptions.add(params.uri);
    notifyLog(`Subscribed to resource: ${params.uri}`);
    return {};
  });
  server.server.setRequestHandler("resources/unsubscribe", async ({ params }) => {
    subscriptions.delete(params.uri);
    notifyLog(`Unsubscribed from resource: ${params.uri}`);
    return {};
  });

  // --- prompts
  const userText = (t) => ({ role: "user", content: { type: "text", text: t } });
  server.registerPrompt("test_simple_prompt", { title: "Simple prompt", description: "No arguments" }, async () => ({
    messages: [userText("This is a simple prompt for testing.")],
  }));
  server.registerPrompt(
    "test_prompt_with_arguments",
    {
      title: "Prompt with arguments",
      description: "Two required arguments",
      argsSchema: z.object({ arg1: z.string().describe("First argument"), arg2: z.string().describe("Second argument") }),
    },
    async ({ arg1, arg2 }) => ({ messages: [userText(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`)] }),
  );
  server.registerPrompt(
    "test_prompt_with_embedded_resource",
    {
      title: "Prompt with embedded resource",
      description: "Embeds the resource it is given",
      argsSchema: z.object({ resourceUri: z.string().describe("URI of the resource to embed") }),
    },
    async ({ resourceUri }) => ({
      messages: [
        { role: "user", content: { type: "resource", resource: { uri: resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } } },
        userText("Please process the embedded resource above."),
      ],
    }),
  );
  server.registerPrompt("test_prompt_with_image", { title: "Prompt with image", description: "Image content" }, async () => ({
    messages: [{ role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } }, userText("Please analyze the image above.")],
  }));
  server.registerPrompt(
    "test_input_required_result_prompt",
    { title: "Prompt needing input", description: "Asks for context in-band before rendering" },
    async (ctx) => {
      const context = acceptedContent(ctx.mcpReq.inputResponses, "user_context")?.context;
      if (typeof context !== "string") {
        return inputRequired({
          inputRequests: {
            user_context: inputRequired.elicit({
              message: "What context should the prompt use?",
              requestedSchema: objectSchema({ context: { type: "string" } }),
            }),
          },
        });
      }
      return { messages: [userText(`Use the following context: ${context}`)] };
    },
  );

  // --- logging level, completion
  server.server.setRequestHandler("logging/setLevel", async ({ params }) => {
    notifyLog(`Log level set to: ${params.level}`);
    return {};
  });
  server.server.setRequestHandler("completion/complete", async () => ({ completion: { values: [], total: 0, hasMore: false } }));

  return server;
}

const onerror = (e) => log(e?.message ?? e);
modern = createMcpHandler(conformanceServer, { legacy: "reject", onerror });

const rpcError = (status, code, message) => Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, { status });

async function legacy(request, body) {
  const id = request.headers.get("mcp-session-id");
  let transport = id === null ? undefined : sessions.get(id);
  if (id !== null && !transport) return rpcError(404, -32001, "Session not found");
  if (!transport) {
    if (request.method !== "POST") return rpcError(400, -32000, "Bad Request: no session");
    // A new session: the transport refuses anything but an initialize request.
    transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: eventStore(),
      retryInterval: 1000,
      onsessioninitialized: (sid) => sessions.set(sid, transport),
      onsessionclosed: (sid) => sessions.delete(sid),
    });
    transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
    await conformanceServer().connect(transport);
  }
  return transport.handleRequest(request, body === undefined ? undefined : { parsedBody: body });
}

const allowedHosts = localhostAllowedHostnames();
const allowedOrigins = localhostAllowedOrigins();

async function mcp(req, res) {
  const raw = req.method === "POST" ? Buffer.concat(await req.toArray()) : undefined;
  const request = webRequest(req, res, raw, `http://127.0.0.1:${port}`);

  let response;
  const host = validateHostHeader(req.headers.host, allowedHosts);
  const origin = req.headers.origin === undefined ? { ok: true } : validateOriginHeader(req.headers.origin, allowedOrigins);
  if (!host.ok || !origin.ok) {
    response = rpcError(403, -32000, `Forbidden: ${host.ok ? origin.message : host.message}`);
  } else if (await isLegacyRequest(request.clone())) {
    let body;
    try {
      body = raw?.length ? JSON.parse(raw.toString("utf8")) : undefined;
    } catch {
      body = undefined;
    }
    response = await legacy(request, body);
  } else {
    response = await modern.fetch(request);
  }

  await sendWebResponse(res, response);
}

const http = createServer(async (req, res) => {
  try {
    if (new URL(req.url, "http://localhost").pathname !== "/mcp") {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}');
      return;
    }
    await mcp(req, res);
  } catch (e) {
    log(e);
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":null}');
    else res.end();
  }
});
http.listen(port, "127.0.0.1", () => console.log(`conformance upstream listening on http://127.0.0.1:${port}/mcp`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
