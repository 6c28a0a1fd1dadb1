// An MCP session through the gateway with the official TypeScript SDK client:
// initialize, list tools, call `echo`, then a long-running tool whose progress
// notifications stream back as server-sent events. Prints one JSON line of what it saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.argv[2]);
const client = new Client({ name: "mcpgate-e2e", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(url);
await client.connect(transport);

const tools = await client.listTools();
const echo = await client.callTool({ name: "echo", arguments: { message: "through the gateway" } });
const progress = [];
const long = await client.callTool(
  { name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } },
  undefined,
  { onprogress: (p) => progress.push({ progress: p.progress, at: Date.now() }) },
);
const done = Date.now();
await transport.terminateSession();
await client.close();

console.log(JSON.stringify({
  sessionId: transport.sessionId ?? null,
  tools: tools.tools.map((t) => t.name),
  echo: echo.content[0].text,
  progress: progress.map((p) => p.progress),
  // How long before the tool's final answer the first progress event arrived.
  firstProgressLeadMs: progress.length ? done - progress[0].at : null,
  long: long.content[0].text,
}));
