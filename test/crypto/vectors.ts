/**
 * Reads the test vectors out of docs/PROTOCOL.md, so the spec and the tests cannot drift apart.
 * A vector is a fenced block opened with "```text vector:<name>" holding "field = value" lines.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PROTOCOL = fileURLToPath(new URL('../../docs/PROTOCOL.md', import.meta.url));

export function vector(name: string): Record<string, string> {
  const text = readFileSync(PROTOCOL, 'utf8');
  const start = text.indexOf('```text vector:' + name + '\n');
  if (start < 0) throw new Error(`docs/PROTOCOL.md has no vector ${name}`);
  const body = text.slice(text.indexOf('\n', start) + 1, text.indexOf('\n```', start));
  const fields: Record<string, string> = {};
  let last = '';
  for (const line of body.split('\n')) {
    const m = /^([a-z0-9_]+)\s*=\s?(.*)$/.exec(line);
    if (m) {
      last = m[1]!;
      fields[last] = m[2]!;
    } else if (line.startsWith('  ') && last) {
      fields[last] += '\n' + line.slice(2); // continuation: one more item of a list field
    } else if (line.trim() !== '') {
      throw new Error(`vector ${name}: cannot read line ${JSON.stringify(line)}`);
    }
  }
  return fields;
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
