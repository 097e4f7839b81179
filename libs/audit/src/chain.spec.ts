import { AUDIT_CHAINS, canonicalJson, ChainedFields, chainOf, entryHash, GENESIS_HASH, storableDetails } from './chain';

describe('audit chain', () => {
  const entry: ChainedFields = {
    chain: 14,
    seq: '7',
    at: new Date('2026-11-20T08:00:00.123Z'),
    domain: 'queues',
    action: 'queue.create',
    actorKind: 'user',
    actor: 'AKIDabc',
    via: 'cmq',
    accountId: '9b2f6a56-2f7e-4d0f-9d8a-0f2b7a1c3d4e',
    subject: 'queue:gz/orders',
    reason: null,
    details: { queueId: 'q-1', attributes: { visibilityTimeout: 30, maxMsgSize: 65536 } },
  };

  it('writes objects with their keys sorted at every depth, arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: undefined, b: [undefined] })).toBe('{"b":[null]}');
    expect(canonicalJson('é"\n')).toBe(JSON.stringify('é"\n'));
  });

  it('hashes the same entry the same way whatever the order of its details’ keys', () => {
    const reordered = { ...entry, details: { attributes: { maxMsgSize: 65536, visibilityTimeout: 30 }, queueId: 'q-1' } };
    expect(entryHash(GENESIS_HASH, reordered).equals(entryHash(GENESIS_HASH, entry))).toBe(true);
    expect(entryHash(GENESIS_HASH, entry)).toHaveLength(32);
  });

  it.each([
    ['chain', { chain: 13 }],
    ['seq', { seq: '8' }],
    ['at', { at: new Date('2026-11-20T08:00:00.124Z') }],
    ['domain', { domain: 'accounts' as const }],
    ['action', { action: 'queue.delete' }],
    ['actorKind', { actorKind: 'operator' as const }],
    ['actor', { actor: 'AKIDabd' }],
    ['via', { via: null }],
    ['accountId', { accountId: null }],
    ['subject', { subject: 'queue:gz/orderz' }],
    ['reason', { reason: '' }],
    ['details', { details: { queueId: 'q-1', attributes: { visibilityTimeout: 31, maxMsgSize: 65536 } } }],
  ])('changes the hash when %s changes', (_, change) => {
    expect(entryHash(GENESIS_HASH, { ...entry, ...change }).equals(entryHash(GENESIS_HASH, entry))).toBe(false);
  });

  it('chains: the same entry after another previous hash hashes differently', () => {
    const other = entryHash(GENESIS_HASH, { ...entry, seq: '6' });
    expect(entryHash(other, entry).equals(entryHash(GENESIS_HASH, entry))).toBe(false);
  });

  it('puts an account’s entries in one chain, by its id, and entries of no account in chain 0', () => {
    expect(chainOf(entry.accountId)).toBe(14);
    expect(chainOf('9b2f6a56-2f7e-4d0f-9d8a-0f2b7a1c3d40')).toBe(0);
    expect(chainOf('9B2F6A56-2F7E-4D0F-9D8A-0F2B7A1C3D4F')).toBe(15);
    expect(chainOf(null)).toBe(0);
    const seen = new Set(Array.from({ length: 16 }, (_, i) => chainOf(`00000000-0000-4000-8000-00000000000${i.toString(16)}`)));
    expect(seen.size).toBe(AUDIT_CHAINS);
  });

  it('makes details storable as jsonb and read back identically', () => {
    const d = storableDetails({ big: 12345678901234567890n, at: new Date('2026-01-01T00:00:00Z'), nul: 'a\u0000b', gone: undefined });
    expect(d).toEqual({ big: '12345678901234567890', at: '2026-01-01T00:00:00.000Z', nul: 'a\ufffdb' });
    expect(canonicalJson(JSON.parse(JSON.stringify(d)))).toBe(canonicalJson(d));
  });
});
