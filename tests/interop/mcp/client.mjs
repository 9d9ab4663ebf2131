// Drives an MCP server with the official TypeScript SDK client, as an agent would:
//   node client.mjs URL TOKEN STEPS_JSON
// over Streamable HTTP with `Authorization: Bearer TOKEN`. STEPS_JSON and the output are
// as for client.py: one JSON line per step.
import { Client, StreamableHTTPClientTransport, ProtocolError } from '@modelcontextprotocol/client';

const [url, token, stepsJson] = process.argv.slice(2);
const steps = JSON.parse(stepsJson);
const emit = (value) => process.stdout.write(JSON.stringify(value) + '\n');

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'countersign-interop', version: '1.0.0' }, { capabilities: {} });
await client.connect(transport);
for (const step of steps) {
  if (step.op === 'list') {
    const { tools } = await client.listTools();
    emit({ tools: tools.map((t) => t.name).sort() });
    continue;
  }
  const progress = [];
  try {
    const result = await client.callTool(
      { name: step.tool, arguments: step.arguments ?? {} },
      {
        onprogress: (p) => progress.push(p.message ?? null),
        // A held call keeps the request alive with progress notifications.
        timeout: 10_000,
        resetTimeoutOnProgress: true,
        maxTotalTimeout: (step.timeout ?? 60) * 1000,
      },
    );
    const texts = (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text);
    let json = null;
    try {
      json = JSON.parse(texts[0]);
    } catch {
      // not JSON
    }
    emit({
      is_error: Boolean(result.isError),
      texts,
      json,
      structured: result.structuredContent ?? null,
      progress,
    });
  } catch (e) {
    if (e instanceof ProtocolError) {
      emit({ error: { code: e.code, message: e.message }, progress });
    } else {
      throw e;
    }
  }
}
await client.close();
