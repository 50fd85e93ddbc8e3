"""Fixture MCP server for the gateway's tests (Python SDK mcp==2.3.0).

Serves Streamable HTTP on http://127.0.0.1:<PORT>/mcp. The SDK is dual-era:
requests carrying the 2026-07-28 `_meta` (`io.modelcontextprotocol/protocolVersion`)
are served statelessly (`server/discover`, no session), while a legacy `initialize`
opens an `Mcp-Session-Id` session (2025-11-25 and earlier).

Usage:
    peers/.venv/bin/python peers/python/modern_server.py PORT

Exposes:
    tools     echo(message: str) -> str, add(a: int, b: int) -> int
    prompt    greet(name)
    resource  py://hello (text/plain)

Set MCP_FIXTURE_LOG_LEVEL=INFO to see uvicorn's request log (default WARNING).
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer(
    name="py-modern-fixture",
    version="0.1.0",
    instructions="Fixture server for the MCP gateway tests.",
    log_level=os.environ.get("MCP_FIXTURE_LOG_LEVEL", "WARNING"),  # type: ignore[arg-type]
)


@server.tool()
def echo(message: str) -> str:
    """Echo the message back unchanged."""
    return message


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.prompt()
def greet(name: str) -> str:
    """A greeting prompt for NAME."""
    return f"Please greet {name} warmly."


@server.resource("py://hello", name="hello", mime_type="text/plain")
def hello() -> str:
    """A static text resource."""
    return "Hello from the Python fixture server!"


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print(f"usage: {sys.argv[0]} PORT", file=sys.stderr)
        sys.exit(2)
    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        streamable_http_path="/mcp",
    )


if __name__ == "__main__":
    main()
