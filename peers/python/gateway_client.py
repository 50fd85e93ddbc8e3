"""Drive an MCP server (the gateway) with the Python SDK client (mcp==2.3.0), as the tests need.

Usage:
    peers/.venv/bin/python peers/python/gateway_client.py URL MODE TOOL ARGS_JSON

MODE is `legacy`, `auto` or `2026-07-28`. Lists every tool (following cursors), calls TOOL with
the JSON object ARGS_JSON while collecting its progress notifications, and prints one JSON line:
{"protocolVersion", "tools", "result", "progress", "sampled"}. The client offers sampling: a
`sampling/createMessage` the server sends during the call is answered with the fixed text
"sampled by the python client" and its messages are reported in "sampled". Exits 1 if the call
fails.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import Client
from mcp_types import CreateMessageResult, TextContent


async def run(url: str, mode: str, tool: str, arguments: dict) -> int:
    progress: list[dict] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})

    sampled: list = []

    async def on_sampling(context, params):  # noqa: ANN001 - the SDK's callback shape
        sampled.append(params.model_dump(mode="json", by_alias=True, exclude_none=True))
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text="sampled by the python client"),
            model="fixture-model",
            stop_reason="endTurn",
        )

    async with Client(url, mode=mode, cache=None, sampling_callback=on_sampling) as client:  # type: ignore[arg-type]
        names: list[str] = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
            names.extend(t.name for t in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        result = await client.call_tool(tool, arguments, progress_callback=on_progress)
        print(json.dumps({
            "protocolVersion": client.protocol_version,
            "tools": names,
            "result": result.model_dump(mode="json", by_alias=True, exclude_none=True),
            "progress": progress,
            "sampled": sampled,
        }))
        return 1 if result.is_error else 0


def main() -> None:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url, mode, tool, arguments = sys.argv[1:]
    sys.exit(asyncio.run(run(url, mode, tool, json.loads(arguments))))


if __name__ == "__main__":
    main()
