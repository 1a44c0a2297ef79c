/**
 * Test helper: make keys with the real GnuPG in a throw-away GNUPGHOME.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function gpgAvailable(): boolean {
  return spawnSync('gpg', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface GpgKey {
  publicArmored: string;
  privateArmored: string;
}

/** A temporary GnuPG home; call `close()` to stop its agent and delete it. */
export class GpgHome {
  readonly dir = mkdtempSync(join(tmpdir(), 'sealchat-gpg-'));

  constructor() {
    // gpg-agent calibrates its S2K to ~100 ms of native hashing, which is seconds in openpgp.js
    // (JavaScript SHA-1); exported test keys use the RFC 4880 minimum count to keep tests quick.
    writeFileSync(join(this.dir, 'gpg-agent.conf'), 's2k-count 65536\n');
  }

  private gpg(args: string[]): string {
    return execFileSync('gpg', ['--homedir', this.dir, '--batch', '--quiet', '--no-tty', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** `gpg --quick-gen-key` without passphrase; `algo` as gpg spells it ('default', 'rsa3072', 'future-default'...). */
  generate(userId: string, algo: string, usage = 'default', expire = 'never', passphrase = ''): GpgKey {
    const pass = ['--pinentry-mode', 'loopback', '--passphrase', passphrase];
    this.gpg([...pass, '--quick-gen-key', userId, algo, usage, expire]);
    return {
      publicArmored: this.gpg(['--export', '--armor', userId]),
      privateArmored: this.gpg([...pass, '--export-secret-keys', '--armor', userId]),
    };
  }

  close(): void {
    spawnSync('gpgconf', ['--homedir', this.dir, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
