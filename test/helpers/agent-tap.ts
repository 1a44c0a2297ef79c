/**
 * A relay between a plugin and its agent (two unix sockets) that records every reply the agent
 * sends, so a test can read the agent's `events` as the plugin got them (a real client's screen
 * wraps long lines; the agent protocol does not).
 */
import net from 'node:net';

export interface AgentTap {
  /**
   * Every `events` entry of every reply, in order; a line the agent answered `show` (a live
   * message, say) is recorded among them as `{type: 'shown', text, line}`.
   */
  readonly events: Array<Record<string, any>>;
  close(): Promise<void>;
}

/** Listen on `listenPath` (where the plugin looks for its agent) and relay to the agent at `agentPath`. */
export async function startAgentTap(listenPath: string, agentPath: string): Promise<AgentTap> {
  const events: Array<Record<string, any>> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((plugin) => {
    const agent = net.connect(agentPath);
    sockets.add(plugin).add(agent);
    let buf = '';
    agent.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) !== -1) {
        try {
          const reply = JSON.parse(buf.slice(0, i)) as { action?: string; text?: string; line?: string; events?: Array<Record<string, any>> };
          if (reply.action === 'show') events.push({ type: 'shown', text: reply.text, line: reply.line });
          for (const e of reply.events ?? []) events.push(e);
        } catch {
          // not ours to judge: relayed as it came
        }
        buf = buf.slice(i + 1);
      }
      plugin.write(d);
    });
    plugin.on('data', (d: Buffer) => agent.write(d));
    const end = (): void => {
      plugin.destroy();
      agent.destroy();
    };
    for (const s of [plugin, agent]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(listenPath, resolve));
  return {
    events,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
