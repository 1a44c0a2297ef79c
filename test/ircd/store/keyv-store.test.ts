/** The store's keyv serialiser writes exactly what keyv's own would, so stores stay readable either way. */
import { expect } from 'chai';
import Keyv from 'keyv';
import { fastSerializer } from '../../../src/ircd/store/keyv-store.js';

describe('src/ircd/store/keyv-store.ts', () => {
  const keyvSerialize = new Keyv().serialize!;
  const fast = fastSerializer(keyvSerialize);
  const line = (text: string, extra: object = {}): object => ({ s: 7, t: 1_800_000_000_000, id: 'm-7', src: 'alice!alice@h', cmd: 'PRIVMSG', params: ['#Room', text], a: null, ...extra });
  const cases: Record<string, unknown> = {
    'a history chunk': { value: [line('SC1M abc'), line('x', { tags: [['+typing', 'active']] })] },
    'a string starting with a colon': { value: [line(':starts with a colon'), line('::two')] },
    'a colon after a comma or bracket inside text': { value: [line('a ,": b [": c :":')] },
    'a room record': { value: { name: '#Room', members: { alice: { account: 'Alice', state: 'member', intervals: [[1, null]] } } } },
    'an account name starting with a colon': { value: { name: ':x', n: 3, e: undefined } },
    'unicode and escapes': { value: ['é\u2028"\\\n', ''] },
    'a number': { value: 1, expires: 5 },
  };
  for (const [what, data] of Object.entries(cases)) {
    it(`serialises ${what} byte for byte as keyv does`, async () => {
      expect(await fast(data)).to.equal(await keyvSerialize(data as never));
    });
  }
});
