"""Drives an MCP server with the official Python SDK (`mcp`) client, as an agent would:
`python client.py URL TOKEN STEPS_JSON` over Streamable HTTP with `Authorization: Bearer
TOKEN` (or, when TOKEN is a JSON object, with those headers), or `python client.py --stdio COMMAND_JSON STEPS_JSON` over a child's stdio.

STEPS_JSON is a list of {"op": "list"} or {"op": "call", "tool": ..., "arguments": {...}}.
Prints one JSON line per step as it completes: the tool names, or the call's result
(`is_error`, texts, the first text parsed as JSON, structured content, the progress
messages seen), or the JSON-RPC
error (`code`, `message`).

With CS_MCP_MODE=auto the client speaks MCP 2026-07-28 when the server does (`server/discover`,
no session): an `input_required` result's URL elicitation is printed as {"elicited": {...}} and
answered with CS_MCP_ELICIT_ACTION (default accept), then the SDK retries the call with the
request state. Two more ops drive those rounds by hand: {"op": "call_once", ...} prints the
first round's {"input_required": {"request_state", "input_requests"}} (or the result), and
{"op": "call", ..., "request_state": S, "input_responses": {...}} resumes with S.
"""

import asyncio
import json
import os
import sys

import mcp_types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def parsed(texts):
    """The first text content as JSON, if it is JSON (how MCPServer returns a dict)."""
    try:
        return json.loads(texts[0])
    except (IndexError, ValueError):
        return None


def emit(value):
    print(json.dumps(value), flush=True)


async def run_steps(client, steps):
    for step in steps:
        if step["op"] == "list":
            tools = (await client.list_tools()).tools
            emit({"tools": sorted(t.name for t in tools)})
            continue
        progress = []

        async def on_progress(value, total, message):
            progress.append(message)

        timeout = float(step.get("timeout", 60))
        try:
            if step["op"] == "call_once":
                result = await client.session.call_tool(step["tool"], step.get("arguments", {}),
                                                        read_timeout_seconds=timeout,
                                                        progress_callback=on_progress,
                                                        request_state=step.get("request_state"),
                                                        input_responses=step.get("input_responses"),
                                                        allow_input_required=True)
                if isinstance(result, mcp_types.InputRequiredResult):
                    emit({"input_required": result.model_dump(by_alias=True, mode="json",
                                                              exclude_none=True)})
                    continue
            else:
                result = await client.call_tool(step["tool"], step.get("arguments", {}),
                                                read_timeout_seconds=timeout,
                                                progress_callback=on_progress,
                                                request_state=step.get("request_state"),
                                                input_responses=step.get("input_responses"))
        except MCPError as e:
            emit({"error": {"code": e.code, "message": e.message}, "progress": progress})
            continue
        texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
        emit({
            "is_error": bool(result.is_error),
            "texts": texts,
            "json": parsed(texts),
            "structured": result.structured_content,
            "progress": progress,
        })


async def on_elicitation(context, params):
    """Shows the user the page a held call links to (here: prints it) and answers."""
    emit({"elicited": params.model_dump(by_alias=True, mode="json", exclude_none=True)})
    return mcp_types.ElicitResult(action=os.environ.get("CS_MCP_ELICIT_ACTION", "accept"))


async def main():
    mode = os.environ.get("CS_MCP_MODE", "legacy")
    options = {"mode": mode}
    if mode != "legacy":
        options["elicitation_callback"] = on_elicitation
    if sys.argv[1] == "--stdio":
        command = json.loads(sys.argv[2])
        params = StdioServerParameters(command=command[0], args=command[1:])
        async with Client(params, **options) as client:
            await run_steps(client, json.loads(sys.argv[3]))
        return
    url, token, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    headers = json.loads(token) if token.startswith("{") else {"Authorization": f"Bearer {token}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http), **options) as client:
            await run_steps(client, steps)


asyncio.run(main())
