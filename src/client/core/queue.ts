/**
 * A companion's one serial queue: what happened on its connection is decided in arrival order,
 * so a key envelope is applied before the message after it and a PART after the messages before
 * it. CompanionSession owns one; the proxy makes it before the login (server lines must keep their
 * order before there is a session) and hands it to the session it makes at 001.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Run `fn` after everything queued before it. Its error is the caller's; the queue goes on. Never call it from inside `fn`. */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
