"""Check an MCP Streamable HTTP server with the Python SDK client (mcp==2.3.0).

Usage:
    peers/.venv/bin/python peers/python/client_check.py URL MODE [MESSAGE]

MODE is one of:
    legacy      initialize handshake (the SDK offers its latest handshake version)
    auto        probe server/discover, fall back to initialize
    2026-07-28  adopt the stateless 2026-07-28 revision directly (no handshake),
                then send an explicit server/discover as part of the check

Lists the tools, calls `echo` with MESSAGE (default "hello"), prints one JSON
summary line on stdout and exits 0 if the echo result is not an error and its
text contains MESSAGE, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import Client
from mcp_types import TextContent


async def check(url: str, mode: str, message: str) -> int:
    async with Client(url, mode=mode, cache=None) as client:  # type: ignore[arg-type]
        session = client.session
        discovered = None
        if mode not in ("legacy", "auto"):
            # A pinned modern mode adopts a synthesized DiscoverResult without asking the
            # server; send a real server/discover so the check covers it too.
            raw = await session.send_discover(mode)
            discovered = {
                "supportedVersions": raw.get("supportedVersions"),
                "serverInfo": (raw.get("_meta") or {}).get("io.modelcontextprotocol/serverInfo"),
            }
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        result = await client.call_tool("echo", {"message": message})
        texts = [c.text for c in result.content if isinstance(c, TextContent)]
        info = session.server_info
        summary = {
            "mode": mode,
            "protocolVersion": session.protocol_version,
            "serverInfo": info.model_dump(exclude_none=True) if info is not None else None,
            "discover": discovered,
            "tools": names,
            "echo": texts,
            "structuredContent": result.structured_content,
            "isError": bool(result.is_error),
        }
        print(json.dumps(summary))
        # server-everything answers "Echo: <message>", the Python fixture "<message>".
        ok = not result.is_error and any(message in t for t in texts)
        return 0 if ok else 1


def main() -> None:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url, mode = sys.argv[1], sys.argv[2]
    message = sys.argv[3] if len(sys.argv) == 4 else "hello"
    try:
        code = asyncio.run(check(url, mode, message))
    except Exception as exc:  # report the root cause on one line, not an exception-group dump
        print(json.dumps({"mode": mode, "error": "; ".join(_leaves(exc))}))
        code = 1
    sys.exit(code)


def _leaves(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [m for e in exc.exceptions for m in _leaves(e)]
    return [f"{type(exc).__name__}: {exc}"]


if __name__ == "__main__":
    main()
