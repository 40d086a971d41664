// The TypeScript MCP SDK's browser client, bundled by esbuild for the browser tests: the
// page gets window.McpSdk = { Client, WebSocketClientTransport } and nothing else.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";

globalThis.McpSdk = { Client, WebSocketClientTransport };
