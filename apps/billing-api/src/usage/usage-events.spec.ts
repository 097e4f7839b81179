import { ValidationPipe } from '@nestjs/common';
import { VALIDATION_PIPE_OPTIONS } from '../validation';
import { plainlyValidUsageEvents, UsageEventsDto, UsageEventsPipe } from './usage-events.controller';

const pipe = new ValidationPipe(VALIDATION_PIPE_OPTIONS);
const fullCheck = async (body: unknown): Promise<{ ok: true; value: unknown } | { ok: false; message: unknown }> => {
  try {
    const value = await pipe.transform(structuredClone(body), { type: 'body', metatype: UsageEventsDto });
    return { ok: true, value: JSON.parse(JSON.stringify(value)) };
  } catch (err) {
    return { ok: false, message: (err as { getResponse(): unknown }).getResponse() };
  }
};

const good = {
  id: 'evt-1',
  accountId: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f',
  region: 'gz',
  resource: 'orders',
  action: 'PushDelivery',
  outcome: 'ok',
  billableCalls: 3,
  messages: 3,
  bytesIn: 0,
  bytesOut: 1024,
  time: '2026-11-25T10:00:00+08:00',
};

/** Each field made wrong, odd or absent in turn, and fields the DTO does not declare. */
const variants: Array<Record<string, unknown>> = [
  { id: '' },
  { id: 'x'.repeat(129) },
  { id: 'has space' },
  { id: 7 },
  { accountId: 'not-a-uuid' },
  { accountId: '6F1C2D3E-4B5A-4C6D-8E7F-9A0B1C2D3E4F' },
  { accountId: '00000000-0000-0000-0000-000000000000' },
  { region: 'GZ' },
  { region: 'g' },
  { region: null },
  { resource: null },
  { resource: undefined },
  { resource: '' },
  { resource: 'r'.repeat(128) },
  { resource: 'r'.repeat(129) },
  { resource: '😀'.repeat(100) },
  { resource: 5 },
  { action: '1bad' },
  { action: 'A'.repeat(64) },
  { action: 'A'.repeat(65) },
  { outcome: 'great' },
  { outcome: null },
  { outcome: 'no_message' },
  { billableCalls: -1 },
  { billableCalls: 1.5 },
  { billableCalls: '1' },
  { billableCalls: 0 },
  { billableCalls: null },
  { billableCalls: 1e21 },
  { messages: -1 },
  { messages: null },
  { bytesIn: 2.5 },
  { bytesOut: '10' },
  { time: '2026-11-25' },
  { time: '2026-11-25T10:00:00Z' },
  { time: '2026-02-30T10:00:00Z' },
  { time: 'yesterday' },
  { time: null },
  { extra: 1 },
  { constructor: 'x' },
];

describe('POST /v1/usage-events body: the fast check agrees with the ValidationPipe', () => {
  it('accepts a plain valid batch as it is, and so does the pipe', async () => {
    const body = { events: [good, { id: 'evt-2', accountId: good.accountId, region: 'hk', action: 'A', billableCalls: 0 }] };
    expect(plainlyValidUsageEvents(body)).toBe(true);
    expect(await fullCheck(body)).toEqual({ ok: true, value: body });
    expect(await new UsageEventsPipe().transform(body)).toBe(body);
  });

  it.each(variants.map((v) => [(JSON.stringify(v) ?? String(v)).replace(/(.)\1{8,}/gu, '$1…'), v]))('%s: accepted only when the pipe accepts it, with the same values', async (_, change) => {
    const event: Record<string, unknown> = { ...good, ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete event[k];
    const body = { events: [good, event] };
    const full = await fullCheck(body);
    if (plainlyValidUsageEvents(body)) {
      expect(full).toEqual({ ok: true, value: JSON.parse(JSON.stringify(body)) });
    }
    // the pipe used by the route answers exactly as the ValidationPipe
    const viaRoute = await Promise.resolve(new UsageEventsPipe().transform(structuredClone(body))).then(
      (value) => ({ ok: true as const, value: JSON.parse(JSON.stringify(value)) }),
      (err: { getResponse(): unknown }) => ({ ok: false as const, message: err.getResponse() }),
    );
    expect(viaRoute).toEqual(full);
  });

  it.each([
    ['no body', undefined],
    ['null', null],
    ['an array', [good]],
    ['no events', {}],
    ['events not an array', { events: good }],
    ['no event', { events: [] }],
    ['1,001 events', { events: Array.from({ length: 1001 }, (_, i) => ({ ...good, id: `e${i}` })) }],
    ['1,000 events', { events: Array.from({ length: 1000 }, (_, i) => ({ ...good, id: `e${i}` })) }],
    ['an event that is not an object', { events: [good, 5] }],
    ['an event that is null', { events: [good, null] }],
    ['a field beside events', { events: [good], more: true }],
  ])('%s: the route answers as the ValidationPipe', async (_, body) => {
    const full = await fullCheck(body);
    if (plainlyValidUsageEvents(body)) expect(full.ok).toBe(true);
    const viaRoute = await Promise.resolve(new UsageEventsPipe().transform(structuredClone(body))).then(
      (value) => ({ ok: true as const, value: JSON.parse(JSON.stringify(value)) }),
      (err: { getResponse(): unknown }) => ({ ok: false as const, message: err.getResponse() }),
    );
    expect(viaRoute).toEqual(full);
  });
});
