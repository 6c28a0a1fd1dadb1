"""An upstream that decodes request paths the way Starlette-based MCP servers (FastMCP) do.

uvicorn percent-decodes the request path into the ASGI scope's `path`; the app routes on
that decoded path, as Starlette's router does. `/api/admin/...` is the "protected" part: it
answers `admin` and the identity headers it was sent. Anything else answers `public`.

Usage: python3 decoding_upstream.py PORT
"""

import json
import sys

import uvicorn


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]  # decoded, as the application sees it
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    part = "admin" if path.startswith("/api/admin") else "public"
    body = json.dumps(
        {
            "part": part,
            "path": path,
            "raw_path": scope.get("raw_path", b"").decode("latin-1"),
            "headers": headers,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
