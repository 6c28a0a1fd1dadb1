// Node's http server and the Web-standard Request/Response the MCP SDK 2.x handlers speak,
// bridged both ways; shared by the test MCP servers (tests/e2e/tools_server.mjs,
// tests/conformance/server.mjs). Plain Node: no packages, so either npm project can import it.

/// The web Request of a node request whose body (a Buffer, or undefined) was read already;
/// aborted when the client goes away, so a dropped SSE stream ends on the SDK side too.
export function webRequest(req, res, body, base) {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
    else if (v !== undefined) headers.set(k, v);
  }
  const aborter = new AbortController();
  res.on("close", () => aborter.abort());
  return new Request(new URL(req.url, base), {
    method: req.method,
    headers,
    body: body?.length ? body : undefined,
    signal: aborter.signal,
  });
}

/// Writes a web Response to a node response, streaming its body as it comes.
export async function sendWebResponse(res, response) {
  const out = {};
  response.headers.forEach((v, k) => (out[k] = v));
  res.writeHead(response.status, out);
  if (!response.body) return res.end();
  res.flushHeaders();
  const reader = response.body.getReader();
  res.on("close", () => reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      res.write(value);
    }
  } catch {
    // the client went away mid-stream
  }
  res.end();
}
