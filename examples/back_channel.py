"""Progress, logging, sampling and elicitation over WebSocket, in both protocol eras.

Run it from a clone (nothing else is needed: server and client share one process):

    python examples/back_channel.py

An official `MCPServer` is served with `serve_mcp` on a free port of 127.0.0.1, and the
official `mcp.Client` connects with `websocket_client`. One tool, `plan_trip`, uses every
server->client feature mid-call: it reports progress, sends a log message, asks the
client's LLM for a suggestion (sampling) and asks the user a question (elicitation).

- With `mode="legacy"` (the `initialize` handshake era, protocol 2025-11-25) all four work:
  the server's requests travel back over the same WebSocket while the call is running.
- In the 2026-07-28 era (`mode="auto"` against this server) the SDK has no server->client
  back-channel: sampling and elicitation raise `MCPError` ("... no back-channel ...") in
  the tool, and log messages are dropped unless the client opts in with `log_level=`.
  Progress still arrives. This is the SDK's protocol design, not a limit of the transport.

A second tool, `greet`, shows the way that works in both eras: the SDK's resolver markers
(`Resolve`, `Elicit`, `Sample`), which the 2026-07-28 era answers by retrying the call with
the client's answers instead of a mid-call request.

The program prints one line per feature and session, and exits with status 0 when
every feature behaved as described above.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Annotated, Any

import mcp_types as types
import trio
from mcp import Client
from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.resolve import Sample
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from pydantic import BaseModel

if TYPE_CHECKING:
    from mcp.client.session import ClientRequestContext

from trio_mcp_ws import serve_mcp, websocket_client

SUGGESTION = "Take the 28 tram up to the castle."
"""What our stand-in for the client's LLM answers to every sampling request."""


class Nights(BaseModel):
    """The answer the tools elicit from the user."""

    nights: int


def ask_nights() -> Elicit[Nights]:
    """A resolver: the SDK elicits `Nights` from the user and passes the answer to the tool."""
    return Elicit("How many nights?", Nights)


def ask_llm() -> Sample:
    """A resolver: the SDK samples the client's LLM and passes the result to the tool."""
    prompt = types.TextContent(type="text", text="Something to do?")
    return Sample([types.SamplingMessage(role="user", content=prompt)], max_tokens=50)


# Module level: the SDK evaluates the tools' annotations (postponed by the __future__
# import) in the module's namespace, so the resolvers they name must live here.
def build_server() -> MCPServer:
    """An MCP server whose tools call back into the client while they run."""
    server = MCPServer("back-channel-example")

    @server.tool()
    async def plan_trip(city: str, ctx: Context) -> dict[str, str]:
        """Plan a trip, asking the client for help mid-call; report what each request got."""
        seen: dict[str, str] = {}
        await ctx.report_progress(1, 2, f"looking up {city}")
        # Logging and sampling are deprecated as of 2026-07-28 (SEP-2577), hence the SDK's
        # MCPDeprecationWarning: the features this example is about.
        await ctx.info(f"planning a trip to {city}")  # pyright: ignore[reportDeprecated]
        try:
            sampled = await ctx.request_context.session.create_message(  # pyright: ignore[reportDeprecated]
                [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=city))],
                max_tokens=50,
            )
        except MCPError as error:
            seen["sampling"] = f"MCPError: {error}"
        else:
            text = sampled.content.text if isinstance(sampled.content, types.TextContent) else "?"
            seen["sampling"] = f"answered {text!r}"
        try:
            answer = await ctx.elicit(f"How many nights in {city}?", Nights)
        except MCPError as error:
            seen["elicitation"] = f"MCPError: {error}"
        else:
            if isinstance(answer, AcceptedElicitation):
                seen["elicitation"] = f"answered {answer.data.nights} nights"
            else:
                seen["elicitation"] = f"answered {answer.action}"
        await ctx.report_progress(2, 2, "done")
        return seen

    @server.tool()
    def greet(
        stay: Annotated[Nights, Resolve(ask_nights)],
        idea: Annotated[types.CreateMessageResult, Resolve(ask_llm)],
    ) -> str:
        """Elicitation and sampling through resolvers: the SDK asks in whichever way the era allows."""
        text = idea.content.text if isinstance(idea.content, types.TextContent) else "?"
        return f"{stay.nights} nights; {text}"

    return server


class Recorder:
    """The client's side: answers the server's requests and records what arrived."""

    def __init__(self) -> None:
        self.progress: list[str] = []
        self.logs: list[str] = []

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        """Progress notifications for our call."""
        self.progress.append(f"{progress:g}/{total:g} {message}")

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Log notifications (`notifications/message`)."""
        self.logs.append(f"{params.level}: {params.data}")

    async def on_sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        """A stand-in for the client's LLM."""
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=SUGGESTION), model="stand-in"
        )

    async def on_elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        """A stand-in for the user, who always answers three nights."""
        return types.ElicitResult(action="accept", content={"nights": 3})


async def run_session(url: str, mode: str, log_level: types.LoggingLevel | None = None) -> dict[str, str]:
    """Connect in one era, call both tools, and describe what each feature did."""
    recorder = Recorder()
    client = Client(
        websocket_client(url),
        mode=mode,
        log_level=log_level,
        logging_callback=recorder.on_log,
        sampling_callback=recorder.on_sampling,
        elicitation_callback=recorder.on_elicitation,
    )
    async with client:
        result = await client.call_tool(
            "plan_trip", {"city": "Lisbon"}, progress_callback=recorder.on_progress
        )
        seen: dict[str, Any] = result.structured_content or {}
        greeting = await client.call_tool("greet", {})
        protocol = str(client.protocol_version)
    greeted = " ".join(block.text for block in greeting.content if isinstance(block, types.TextContent))
    return {
        "protocol": protocol,
        "progress": f"delivered {recorder.progress}" if recorder.progress else "dropped",
        "logging": f"delivered {recorder.logs}" if recorder.logs else "dropped",
        "sampling": str(seen.get("sampling", result)),
        "elicitation": str(seen.get("elicitation", result)),
        "resolvers": f"error {greeted!r}" if greeting.is_error else f"answered {greeted!r}",
    }


SESSIONS: tuple[tuple[str, str, types.LoggingLevel | None], ...] = (
    ("legacy", "legacy", None),
    ("auto", "auto", None),
    ("auto+log_level", "auto", "info"),
)
"""Each session: its label, the `mcp.Client` mode, and the `log_level` opt-in."""


def _expected(label: str, outcome: dict[str, str]) -> bool:
    """Whether a session behaved as the module docstring says."""
    back_channel = label == "legacy"
    wants = {
        "progress": True,
        "logging": label != "auto",
        "sampling": back_channel,
        "elicitation": back_channel,
    }
    for feature, works in wants.items():
        delivered = outcome[feature].startswith(("delivered", "answered"))
        if delivered != works:
            return False
        if not works and feature in ("sampling", "elicitation") and "back-channel" not in outcome[feature]:
            return False
    return outcome["resolvers"].startswith("answered")


async def main() -> int:
    """Serve on a free loopback port, run each session, print the outcomes."""
    warnings.simplefilter("ignore", MCPDeprecationWarning)
    ok = True
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            info = await nursery.start(serve_mcp, build_server(), "127.0.0.1", 0)
            for label, mode, log_level in SESSIONS:
                outcome = await run_session(info.url, mode, log_level)
                print(f"[{label}] protocol {outcome.pop('protocol')}")
                for feature, what in outcome.items():
                    print(f"  {feature:<12} {what}")
                ok = _expected(label, outcome) and ok
            nursery.cancel_scope.cancel()
    print("as documented" if ok else "NOT as documented")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(trio.run(main))
