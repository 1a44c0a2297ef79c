/**
 * Test helper: make keys with the real GnuPG in a throw-away GNUPGHOME.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

  private gpg(args: string[]): string {
    return execFileSync('gpg', ['--homedir', this.dir, '--batch', '--quiet', '--no-tty', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** `gpg --quick-gen-key` without passphrase; `algo` as gpg spells it ('default', 'rsa3072', 'future-default'...). */
  generate(userId: string, algo: string, usage = 'default', expire = 'never'): GpgKey {
    this.gpg(['--passphrase', '', '--pinentry-mode', 'loopback', '--quick-gen-key', userId, algo, usage, expire]);
    return {
      publicArmored: this.gpg(['--export', '--armor', userId]),
      privateArmored: this.gpg(['--pinentry-mode', 'loopback', '--passphrase', '', '--export-secret-keys', '--armor', userId]),
    };
  }

  close(): void {
    spawnSync('gpgconf', ['--homedir', this.dir, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
