import { CmqError } from './errors';
import { parseDeadLetterPolicy } from './dead-letter';

function moduleOf(raw: string): number | undefined {
  try {
    parseDeadLetterPolicy(raw);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(CmqError);
    expect((err as CmqError).code).toBe(4000);
    return (err as CmqError).module;
  }
}

describe('parseDeadLetterPolicy', () => {
  it('decodes both policies, numbers given as JSON numbers or digit strings', () => {
    expect(parseDeadLetterPolicy('{"deadLetterQueue":"dlq","policy":0,"maxReceiveCount":3}')).toEqual({
      deadLetterQueue: 'dlq',
      policy: 0,
      maxReceiveCount: 3,
    });
    expect(parseDeadLetterPolicy('{"deadLetterQueue":"dlq","policy":"1","maxTimeToLive":"300"}')).toEqual({
      deadLetterQueue: 'dlq',
      policy: 1,
      maxTimeToLive: 300,
    });
  });

  it.each([
    ['not JSON', 'dlq', 10710],
    ['a JSON array', '["dlq"]', 10710],
    ['a JSON string', '"dlq"', 10710],
    ['no deadLetterQueue', '{"policy":0,"maxReceiveCount":3}', 10760],
    ['a numeric deadLetterQueue', '{"deadLetterQueue":5,"policy":0,"maxReceiveCount":3}', 10760],
    ['a deadLetterQueue that is no queue name', '{"deadLetterQueue":"9x","policy":0,"maxReceiveCount":3}', 10730],
    ['no policy', '{"deadLetterQueue":"dlq","maxReceiveCount":3}', 10770],
    ['policy 2', '{"deadLetterQueue":"dlq","policy":2,"maxReceiveCount":3}', 10770],
    ['policy 0 without maxReceiveCount', '{"deadLetterQueue":"dlq","policy":0}', 10720],
    ['maxReceiveCount 0', '{"deadLetterQueue":"dlq","policy":0,"maxReceiveCount":0}', 10720],
    ['maxReceiveCount 1001', '{"deadLetterQueue":"dlq","policy":0,"maxReceiveCount":1001}', 10720],
    ['maxReceiveCount 2.5', '{"deadLetterQueue":"dlq","policy":0,"maxReceiveCount":2.5}', 10720],
    ['policy 1 without maxTimeToLive', '{"deadLetterQueue":"dlq","policy":1,"maxReceiveCount":3}', 10720],
    ['maxTimeToLive 299', '{"deadLetterQueue":"dlq","policy":1,"maxTimeToLive":299}', 10720],
    ['maxTimeToLive 43201', '{"deadLetterQueue":"dlq","policy":1,"maxTimeToLive":43201}', 10720],
  ])('refuses %s with its module code', (_, raw, module) => {
    expect(moduleOf(raw)).toBe(module);
  });

  it('accepts the bounds of both ranges', () => {
    for (const n of [1, 1000]) expect(moduleOf(`{"deadLetterQueue":"d","policy":0,"maxReceiveCount":${n}}`)).toBeUndefined();
    for (const n of [300, 43200]) expect(moduleOf(`{"deadLetterQueue":"d","policy":1,"maxTimeToLive":${n}}`)).toBeUndefined();
  });
});
