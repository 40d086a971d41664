// Interop peer: the TypeScript MCP SDK's WebSocketClientTransport with its Client, under Node.
//
// Installed by `python -m tests.interop.setup_peers` (npm ci into ./node_modules, next to this
// file). Two WebSocket implementations, chosen with --impl:
//
//   builtin  Node's own WebSocket (undici); Node 20 needs `node --experimental-websocket`
//   ws       the `ws` package, installed as globalThis.WebSocket before the transport runs
//
// Usage:
//
//   node [--experimental-websocket] ts_client.mjs --impl builtin|ws --url URL --scenario NAME
//        [--big-size BYTES]
//
// Scenarios:
//
//   calls  connect (initialize), list tools, call echo, add, fail (a tool error), big (a large
//          result), length (a 3 MiB request) and progress (progress and log notifications), then close
//   hang   call the tool `slow`, which never answers; then wait until either the server closes
//          the connection, or a line "close" arrives on stdin (then the client closes it), or
//          "exit" arrives on stdin (then the process exits at once, no close frame)
//
// Output: one JSON object per line on stdout, e.g. {"event": "connected", "subprotocol": "mcp"},
// {"event": "close", "code": 1000}, ending with {"event": "done"}. Exit status 0 when the
// scenario ran to its end, 1 when a step failed (the failure is printed as {"event": "error"}).

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    impl: { type: "string" },
    url: { type: "string" },
    scenario: { type: "string", default: "calls" },
    "big-size": { type: "string", default: String(3 * 1024 * 1024) },
  },
});

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function fail(message) {
  emit({ event: "error", message });
  process.exitCode = 1;
}

if (args.impl === "ws") {
  const { default: WebSocketImpl } = await import("ws");
  globalThis.WebSocket = WebSocketImpl;
} else if (args.impl === "builtin") {
  if (typeof globalThis.WebSocket !== "function") {
    fail("no built-in WebSocket: run node with --experimental-websocket (Node 20) or use Node >= 22");
    process.exit(2);
  }
} else {
  fail(`--impl must be builtin or ws, not ${args.impl}`);
  process.exit(2);
}

const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
const { WebSocketClientTransport } = await import("@modelcontextprotocol/sdk/client/websocket.js");
const { LoggingMessageNotificationSchema } = await import("@modelcontextprotocol/sdk/types.js");
// The SDK's package.json is not in its exports map; read it from node_modules directly.
const sdkVersion = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8"),
).version;

function summarize(result) {
  const texts = (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text);
  return {
    isError: result.isError ?? false,
    text: texts.map((t) => (t.length > 200 ? t.slice(0, 200) + "..." : t)),
    textLength: texts.reduce((n, t) => n + t.length, 0),
    structuredContent: result.structuredContent ?? null,
  };
}

const transport = new WebSocketClientTransport(new URL(args.url));
let negotiated = null;
transport.setProtocolVersion = (version) => {
  negotiated = version;
};
const closed = new Promise((resolve) => {
  const originalStart = transport.start.bind(transport);
  transport.start = async () => {
    const started = originalStart();
    // The transport keeps its socket private and ignores the close event's code; listen to it here.
    transport._socket.addEventListener("close", (event) => {
      emit({ event: "close", code: event.code, reason: event.reason, wasClean: event.wasClean });
      resolve(event.code);
    });
    return started;
  };
});

const client = new Client({ name: "ts-interop-client", version: "1.0.0" }, { capabilities: {} });
const logs = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
  logs.push(notification.params.data);
  emit({ event: "log", level: notification.params.level, data: notification.params.data });
});
client.onerror = (error) => emit({ event: "transport_error", message: String(error?.message ?? error) });

// What reached the transport, in order, before the SDK's own dispatch: the SDK handles
// notifications on a later microtask but responses at once, so its onprogress callbacks can
// miss notifications that arrived on the wire before the response (see docs/interop.md).
const wire = [];
function recordWire() {
  const sdkOnMessage = transport.onmessage;
  transport.onmessage = (message, extra) => {
    if ("method" in message) {
      const progress = message.method === "notifications/progress" ? message.params.progress : undefined;
      wire.push(progress === undefined ? message.method : `${message.method} ${progress}`);
    } else {
      wire.push(`response ${message.id}`);
    }
    sdkOnMessage?.(message, extra);
  };
}

async function calls() {
  const tools = await client.listTools();
  emit({ event: "tools", names: tools.tools.map((t) => t.name).sort() });
  emit({ event: "call", tool: "echo", ...summarize(await client.callTool({ name: "echo", arguments: { text: "héllo ✓" } })) });
  emit({ event: "call", tool: "add", ...summarize(await client.callTool({ name: "add", arguments: { a: 2, b: 40 } })) });
  emit({ event: "call", tool: "fail", ...summarize(await client.callTool({ name: "fail", arguments: { message: "nope" } })) });
  const size = Number(args["big-size"]);
  emit({ event: "call", tool: "big", ...summarize(await client.callTool({ name: "big", arguments: { size } })) });
  const text = "y".repeat(3 * 1024 * 1024);
  emit({ event: "call", tool: "length", ...summarize(await client.callTool({ name: "length", arguments: { text } })) });
  const progress = [];
  wire.length = 0;
  const result = await client.callTool({ name: "progress", arguments: { steps: 3 } }, undefined, {
    onprogress: (p) => progress.push([p.progress, p.total ?? null, p.message ?? null]),
  });
  // Let the SDK run the notification handlers it queued before the response overtook them.
  await new Promise((resolve) => setImmediate(resolve));
  emit({ event: "call", tool: "progress", progress, logs: [...logs], wire: [...wire], ...summarize(result) });
  await client.close();
}

async function hang() {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", async (line) => {
    if (line.trim() === "close") {
      emit({ event: "closing" });
      await client.close();
    } else if (line.trim() === "exit") {
      process.exit(4);
    }
  });
  emit({ event: "calling", tool: "slow" });
  try {
    const result = await client.callTool({ name: "slow", arguments: {} });
    emit({ event: "call", tool: "slow", ...summarize(result) });
  } catch (error) {
    emit({ event: "call_failed", tool: "slow", code: error?.code ?? null, message: String(error?.message ?? error) });
  }
  lines.close();
}

try {
  await client.connect(transport);
  recordWire();
  emit({
    event: "connected",
    impl: args.impl,
    sdk: sdkVersion,
    node: process.version,
    subprotocol: transport._socket.protocol,
    protocolVersion: negotiated,
    server: client.getServerVersion() ?? null,
  });
  if (args.scenario === "calls") {
    await calls();
  } else if (args.scenario === "hang") {
    await hang();
  } else {
    throw new Error(`unknown scenario ${args.scenario}`);
  }
  await closed;
  emit({ event: "done" });
} catch (error) {
  fail(String(error?.stack ?? error));
  await client.close().catch(() => {});
}
process.exit(process.exitCode ?? 0);
