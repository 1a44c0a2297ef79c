/**
 * Small pieces every test world uses: the room-name pattern, a sleep, and polling with a deadline.
 */

/** A sealchat room name as keybot makes them. */
export const ROOM_RE = /#sc-[a-z2-7]{10}/;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every `every` ms until it returns something truthy; throws `what` after `ms`. */
export async function until<T>(
  check: () => T | undefined | false | null,
  what: string | (() => string),
  ms = 10_000,
  every = 20,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(every);
  }
}

/**
 * Wait until `sent` (the lines a client sent, growing) holds one at index `from` or later that
 * matches `re`; resolves with its index.
 */
export function waitSentLine(sent: readonly string[], re: RegExp, what: string, from = 0, ms = 10_000): Promise<number> {
  return until(
    () => {
      const i = sent.findIndex((l, j) => j >= from && re.test(l));
      return i >= 0 ? i + 1 : undefined;
    },
    () => `the client to send ${what}; it sent:\n${sent.slice(from).join('\n')}`,
    ms,
  ).then((i) => i - 1);
}
