-- wrk: an MCP tools/call as a client sends it: with a session id (2025-11-25), or with
-- MODERN=1 as 2026-07-28 sends it (no session; MCP-Protocol-Version, Mcp-Method, Mcp-Name,
-- and the version in the body's _meta). The runner chooses the bearer token by environment:
--   TOKEN=<jwt>                      the same token on every request (the cache's case);
--   TOKENS=<file>                    a different token on every request, cycling the file;
--   TOKEN=<a> TOKEN_AFTER=<b> SWITCH_AFTER=<s>   token a, then b after s seconds (rotation).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = "load-test-session"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{}}}'
if os.getenv("MODERN") == "1" then
  wrk.headers["Mcp-Session-Id"] = nil
  wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
  wrk.headers["Mcp-Method"] = "tools/call"
  wrk.headers["Mcp-Name"] = "ping"
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{},'
    .. '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}'
end

local token = os.getenv("TOKEN")
local after = os.getenv("TOKEN_AFTER")
local switch_at = os.time() + tonumber(os.getenv("SWITCH_AFTER") or "0")
local tokens = {}
local tokens_file = os.getenv("TOKENS")
if tokens_file and tokens_file ~= "" then
  for line in io.lines(tokens_file) do
    tokens[#tokens + 1] = line
  end
end
local next_token = 0

if #tokens > 0 then
  request = function()
    next_token = next_token % #tokens + 1
    wrk.headers["Authorization"] = "Bearer " .. tokens[next_token]
    return wrk.format()
  end
elseif after and after ~= "" then
  request = function()
    wrk.headers["Authorization"] = "Bearer " .. (os.time() < switch_at and token or after)
    return wrk.format()
  end
elseif token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
