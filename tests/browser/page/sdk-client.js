// Drives the TypeScript SDK's browser client (window.McpSdk, from sdk-bundle.js). Its
// WebSocketClientTransport offers exactly ["mcp"] and has no way to add mcp.auth.<token>, so
// this page connects without a token. The outcome is window.mcpResult and the page's text;
// the test reads the selected subprotocol from DevTools.
"use strict";

async function run() {
  const params = new URLSearchParams(location.search);
  const { Client, WebSocketClientTransport } = window.McpSdk;
  const client = new Client({ name: "trio-mcp-ws-browser-sdk-test", version: "0.0.0" });
  const transport = new WebSocketClientTransport(new URL(params.get("ws")));
  await client.connect(transport);
  const listed = await client.listTools();
  const called = await client.callTool({ name: "add", arguments: { a: 2, b: 40 } });
  const server = client.getServerVersion();
  await client.close();
  return {
    ok: true, server: server && server.name,
    tools: listed.tools.map((tool) => tool.name).sort(),
    content: called.content, structuredContent: called.structuredContent,
    isError: called.isError === true,
  };
}

window.mcpResult = run()
  .catch((failure) => ({ ok: false, stage: "sdk", error: String(failure && (failure.stack || failure)) }))
  .then((outcome) => {
    document.getElementById("result").textContent = JSON.stringify(outcome);
    return outcome;
  });
