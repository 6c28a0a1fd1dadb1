"""The Python MCP SDK's client against a route with a tool/prompt/resource policy.

The same steps and the same one-line JSON as policy_client.mjs, for the policy end-to-end
tests (the upstream is tests/e2e/tools_server.mjs): list tools, prompts and resources, call
`echo`, `slow_count` with a progress callback, `delete_repository`, get the `secret_plan`
prompt and read file:///secret/keys.txt. No OAuth flow: a given token goes as a static
`Authorization: Bearer` header on every request.

Usage: python3 policy_client.py <mcp-url> [bearer-token]. Needs `mcp==2.3.0` (pip). The SDK's
default negotiation is `auto`: it probes `server/discover` and speaks 2026-07-28 when the
server offers it, else falls back to the 2025-11-25 initialize handshake with a session.
PY_MCP_MODE=legacy forces the handshake; PY_MCP_MODE=2026-07-28 adopts that revision without
a probe.

Each step is caught on its own: a failure becomes {"error": str(e), "name", "code"?, ...} and
the rest still run; exits 0 once the line is printed (2 on bad usage).
"""

import asyncio
import json
import os
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def failure(e: BaseException) -> dict:
    # anyio task groups wrap errors: report the first leaf.
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    out = {"error": str(e) or repr(e), "name": type(e).__name__}
    error = getattr(e, "error", None)  # McpError / MCPError carry the JSON-RPC ErrorData
    code = getattr(e, "code", None)
    if code is None and error is not None:
        code = getattr(error, "code", None)
    if code is not None:
        out["code"] = code
    data = getattr(error, "data", None) if error is not None else getattr(e, "data", None)
    if data is not None:
        out["data"] = data if isinstance(data, (str, int, float, bool, list, dict)) else str(data)
    response = getattr(e, "response", None)  # httpx errors
    if response is not None and getattr(response, "status_code", None) is not None:
        out["status"] = response.status_code
    return out


async def step(f):
    try:
        return await f()
    except Exception as e:  # noqa: BLE001 - every failure is data here
        return failure(e)


def text_of(result):
    texts = "\n".join(getattr(c, "text", "") for c in result.content)
    return {"isError": True, "text": texts} if result.is_error else texts


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main(url: str, token: str | None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    http = create_mcp_http_client(headers=headers)
    mode = os.environ.get("PY_MCP_MODE", "auto")
    out: dict = {"client": "python", "protocol": None, "mode": mode}
    client = Client(streamable_http_client(url, http_client=http), mode=mode)
    try:
        async with http:
            async with client:
                out["protocol"] = client.protocol_version

                async def tools():
                    return [t.name for t in (await client.list_tools()).tools]

                async def prompts():
                    return [p.name for p in (await client.list_prompts()).prompts]

                async def resources():
                    return [str(r.uri) for r in (await client.list_resources()).resources]

                out["tools"] = await step(tools)
                out["prompts"] = await step(prompts)
                out["resources"] = await step(resources)

                async def echo():
                    return text_of(await client.call_tool("echo", {"message": "audit-canary-7f3a"}))

                out["echo"] = await step(echo)

                progress = 0

                async def on_progress(p, total, message):
                    nonlocal progress
                    progress += 1

                async def slow():
                    return text_of(await client.call_tool("slow_count", {"steps": 3}, progress_callback=on_progress))

                got = await step(slow)
                out["slow"] = {**got, "progress": progress} if isinstance(got, dict) else {"text": got, "progress": progress}

                async def denied():
                    return {"result": text_of(await client.call_tool("delete_repository", {"repo": "acme/widgets"}))}

                out["denied"] = {"tool": "delete_repository", **(await step(denied))}

                async def secret_prompt():
                    return dump(await client.get_prompt("secret_plan"))

                async def secret_resource():
                    return dump(await client.read_resource("file:///secret/keys.txt"))

                out["secret_prompt"] = await step(secret_prompt)
                out["secret_resource"] = await step(secret_resource)
    except BaseException as e:  # noqa: BLE001 - a failed connect (or teardown) is data too
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        key = "connect" if "tools" not in out else "close"
        out[key] = failure(e)
    return out


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print("usage: python3 policy_client.py <mcp-url> [bearer-token]", file=sys.stderr)
        sys.exit(2)
    result = asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None))
    print(json.dumps(result), flush=True)
    sys.exit(0)
