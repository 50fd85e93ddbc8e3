"""Drive the memory server end to end with the Python SDK client (mcp==2.3.0).

Usage:
    peers/.venv/bin/python peers/python/memory_check.py MODE URL
    peers/.venv/bin/python peers/python/memory_check.py MODE -- COMMAND [ARG...]

MODE is `legacy` (initialize handshake, session era) or `2026-07-28` (stateless, no
handshake). The second form starts COMMAND and speaks stdio to it.

The checks, on entities named with a fresh prefix so that runs can share a server:
    tools/list names the nine knowledge-graph tools;
    create_entities, create_relations, then search_nodes (case-insensitive) and open_nodes;
    resources/read of memory://entities/<name>;
    a subscription to that resource (resources/subscribe in the session era,
    subscriptions/listen in the stateless one) reports the next add_observations;
    delete_entities, after which search_nodes finds nothing.

Prints one JSON summary line on stdout; exits 0 when every check passed, 1 otherwise (the
summary then names the failed check).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp_types import TextContent

TOOLS = {
    "create_entities",
    "create_relations",
    "add_observations",
    "delete_entities",
    "delete_observations",
    "delete_relations",
    "read_graph",
    "search_nodes",
    "open_nodes",
}
WAIT_SECONDS = 10


class CheckFailed(Exception):
    pass


def check(condition: bool, what: str, detail: Any = None) -> None:
    if not condition:
        raise CheckFailed(f"{what}: {detail!r}")


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    check(not result.is_error, f"{tool} succeeds", texts)
    check(result.structured_content is not None, f"{tool} has structured content", texts)
    # The text block carries the same JSON as the structured content, as in the reference.
    if tool in ("read_graph", "search_nodes", "open_nodes"):
        check(json.loads(texts[0]) == result.structured_content, f"{tool} text matches", texts)
    return result.structured_content  # type: ignore[return-value]


async def run(target: str | StdioServerParameters, mode: str) -> dict[str, Any]:
    prefix = f"py-{uuid.uuid4().hex[:8]}"
    alice, bob = f"{prefix}-Alice", f"{prefix}-Bob"
    entity_uri = f"memory://entities/{alice}"
    updates: asyncio.Queue[str] = asyncio.Queue()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            await updates.put(message.params.uri)

    async with Client(target, mode=mode, cache=None, message_handler=on_message) as client:  # type: ignore[arg-type]
        summary: dict[str, Any] = {"mode": mode, "protocolVersion": client.session.protocol_version}
        tools = {t.name for t in (await client.list_tools()).tools}
        check(TOOLS <= tools, "nine tools listed", sorted(tools))

        created = await call(
            client,
            "create_entities",
            {
                "entities": [
                    {"name": alice, "entityType": "person", "observations": ["Likes Green Tea"]},
                    {"name": bob, "entityType": "person", "observations": []},
                ]
            },
        )
        check(len(created["entities"]) == 2, "two entities created", created)
        await call(
            client,
            "create_relations",
            {"relations": [{"from": alice, "to": bob, "relationType": "knows"}]},
        )

        found = await call(client, "search_nodes", {"query": "green TEA"})
        names = [e["name"] for e in found["entities"] if e["name"].startswith(prefix)]
        check(names == [alice], "search is case-insensitive over observations", found)
        opened = await call(client, "open_nodes", {"names": [bob]})
        check([e["name"] for e in opened["entities"]] == [bob], "open_nodes finds Bob", opened)
        check(len(opened["relations"]) == 1, "open_nodes brings Alice's relation to Bob", opened)

        read = await client.read_resource(entity_uri)
        text = read.contents[0].text  # type: ignore[union-attr]
        check(json.loads(text)["entities"][0]["name"] == alice, "the entity resource reads", text)

        addition = {"observations": [{"entityName": alice, "contents": ["Moved to Lyon"]}]}
        if mode == "legacy":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await client.subscribe_resource(entity_uri)
            await call(client, "add_observations", addition)
            with anyio.fail_after(WAIT_SECONDS):
                updated = await updates.get()
        else:
            async with client.listen(resource_subscriptions=[entity_uri]) as subscription:
                check(
                    subscription.honored.resource_subscriptions == [entity_uri],
                    "the subscription is honoured",
                    subscription.honored,
                )
                await call(client, "add_observations", addition)
                with anyio.fail_after(WAIT_SECONDS):
                    event = await subscription.__anext__()
                updated = getattr(event, "uri", repr(event))
        check(updated == entity_uri, "the subscriber hears about the change", updated)
        summary["updated"] = updated

        await call(client, "delete_entities", {"entityNames": [alice, bob]})
        gone = await call(client, "search_nodes", {"query": prefix})
        check(gone["entities"] == [] and gone["relations"] == [], "deleted entities are gone", gone)
        return summary


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ("legacy", "2026-07-28"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    mode = args[0]
    target: str | StdioServerParameters
    if args[1] == "--":
        if len(args) < 3:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
        target = StdioServerParameters(command=args[2], args=args[3:])
    else:
        target = args[1]
    try:
        summary = asyncio.run(run(target, mode))
        summary["ok"] = True
        code = 0
    except Exception as exc:  # report the root cause on one line, not an exception-group dump
        summary = {"mode": mode, "ok": False, "error": "; ".join(_leaves(exc))}
        code = 1
    print(json.dumps(summary))
    sys.exit(code)


def _leaves(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [m for e in exc.exceptions for m in _leaves(e)]
    return [f"{type(exc).__name__}: {exc}"]


if __name__ == "__main__":
    main()
