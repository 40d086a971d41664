// A hand-written MCP client over the browser's WebSocket API: no library, so what goes on the
// wire is exactly what is written here. The outcome is written into <pre id="result"> as JSON
// and is also the value of the promise window.mcpResult (the test awaits it, then reads the page).
"use strict";

const LEGACY_VERSION = "2025-11-25";
const STATELESS_VERSION = "2026-07-28";
const CLIENT_INFO = { name: "trio-mcp-ws-browser-test", version: "0.0.0" };

function subprotocols(params) {
  // What a browser must do to authenticate: it cannot set an Authorization header.
  const offer = ["mcp"];
  if (params.get("token") !== null) offer.push("mcp.auth." + params.get("token"));
  if (params.get("version") !== null) offer.push("mcp.version." + params.get("version"));
  return offer;
}

// Opens the socket; resolves once open, rejects with what the browser saw if it never opens.
function connect(url, offer) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, offer);
    let errored = false;
    ws.onopen = () => resolve(ws);
    ws.onerror = () => { errored = true; };
    ws.onclose = (event) => reject({ stage: "connect", errorEvent: errored, closeCode: event.code,
                                     closeReason: event.reason, wasClean: event.wasClean });
  });
}

// One JSON-RPC conversation: one message per text frame, ids matched to answers.
class Rpc {
  constructor(ws, binary) {
    this.ws = ws;
    this.binary = binary;  // send requests as binary frames of UTF-8 JSON (a receiver's option)
    this.nextId = 1;
    this.pending = new Map();
    this.frames = { text: 0, binary: 0 };
    ws.onmessage = (event) => this.onMessage(event);
    ws.onclose = (event) => {
      for (const { reject } of this.pending.values()) {
        reject({ stage: "call", closeCode: event.code, closeReason: event.reason });
      }
      this.pending.clear();
    };
  }

  onMessage(event) {
    if (typeof event.data !== "string") {
      this.frames.binary += 1;  // our binding always sends text frames
      return;
    }
    this.frames.text += 1;
    const message = JSON.parse(event.data);
    if (message.id === undefined || !this.pending.has(message.id)) return;  // a notification
    const { resolve, reject } = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (message.error !== undefined) reject({ stage: "call", error: message.error });
    else resolve(message.result);
  }

  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const text = JSON.stringify({ jsonrpc: "2.0", id, method, params });
      this.ws.send(this.binary ? new TextEncoder().encode(text) : text);
    });
  }

  notify(method, params) {
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
  }
}

async function run() {
  const params = new URLSearchParams(location.search);
  const era = params.get("era") || "legacy";
  const ws = await connect(params.get("ws"), subprotocols(params));
  const rpc = new Rpc(ws, params.get("binary") === "1");
  let meta = {};
  let protocolVersion;
  if (era === "stateless") {
    // 2026-07-28: no handshake; every request carries the version, client info and capabilities.
    meta = {
      "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
      "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
      "io.modelcontextprotocol/clientCapabilities": {},
    };
    const discovered = await rpc.request("server/discover", { _meta: meta });
    protocolVersion = STATELESS_VERSION;
    if (!(discovered.supportedVersions || []).includes(STATELESS_VERSION)) {
      throw { stage: "discover", discovered };
    }
  } else {
    const init = await rpc.request("initialize", {
      protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: CLIENT_INFO,
    });
    protocolVersion = init.protocolVersion;
    rpc.notify("notifications/initialized", {});
  }
  const listed = await rpc.request("tools/list", { _meta: meta });
  const called = await rpc.request("tools/call", {
    name: "add", arguments: { a: 2, b: 40 }, _meta: meta,
  });
  ws.close(1000, "done");
  return {
    ok: true, era, protocolVersion, subprotocol: ws.protocol,
    tools: listed.tools.map((tool) => tool.name).sort(),
    content: called.content, structuredContent: called.structuredContent,
    isError: called.isError === true, frames: rpc.frames,
  };
}

window.mcpResult = run()
  .catch((failure) => ({ ok: false, ...(failure instanceof Error ? { stage: "script", error: String(failure) } : failure) }))
  .then((outcome) => {
    document.getElementById("result").textContent = JSON.stringify(outcome);
    return outcome;
  });
