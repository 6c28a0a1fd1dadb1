// k6: MCP tools/call at a fixed rate (constant arrival), for latency percentiles.
// Env: URL, RATE (default 2000 per second), DURATION (default 10s), TOKEN (optional).
import http from "k6/http";

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ["p(50)", "p(99)", "p(99.9)", "max"],
  scenarios: {
    steady: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 2000),
      timeUnit: "1s",
      duration: __ENV.DURATION || "10s",
      preAllocatedVUs: 64,
      maxVUs: 512,
    },
  },
};

const headers = {
  "Content-Type": "application/json",
  Accept: "application/json, text/event-stream",
  "Mcp-Session-Id": "load-test-session",
  "MCP-Protocol-Version": "2025-11-25",
};
if (__ENV.TOKEN) headers.Authorization = `Bearer ${__ENV.TOKEN}`;
const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{}}}';

export default function () {
  http.post(__ENV.URL, body, { headers });
}
