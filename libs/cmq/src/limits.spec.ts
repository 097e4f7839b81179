import { cmqErrorOf } from '@app/testing/cmq-error';
import { decodeForm } from './form';
import { ListLimits, MessageLimits, QUEUE_ATTRIBUTE_NAMES, QueueLimits } from './limits';
import { ParamReader, parseIntParam } from './params';


describe('queue attribute limits (spec §7)', () => {
  it('has the protocol ranges and defaults', () => {
    expect(QueueLimits).toEqual({
      maxMsgHeapNum: { min: 1_000_000, max: 1_000_000_000, default: 10_000_000 },
      pollingWaitSeconds: { min: 0, max: 30, default: 0 },
      visibilityTimeout: { min: 1, max: 43_200, default: 30 },
      maxMsgSize: { min: 1024, max: 1_048_576, default: 65_536 },
      msgRetentionSeconds: { min: 60, max: 1_296_000, default: 345_600 },
      rewindSeconds: { min: 0, max: 1_296_000, default: 0 },
    });
  });

  it.each(QUEUE_ATTRIBUTE_NAMES)('%s: accepts its bounds, refuses one past either with 10350', (name) => {
    const { min, max } = QueueLimits[name];
    expect(parseIntParam(name, String(min), QueueLimits[name])).toBe(min);
    expect(parseIntParam(name, String(max), QueueLimits[name])).toBe(max);
    const msg = `4000 (10350)parameter ${name} value or length is out of range`;
    expect(cmqErrorOf(() => parseIntParam(name, String(min - 1), QueueLimits[name]))).toBe(msg);
    expect(cmqErrorOf(() => parseIntParam(name, String(max + 1), QueueLimits[name]))).toBe(msg);
  });
});

describe('message limits (spec §8)', () => {
  it('batches hold at most 16 items', () => {
    expect(MessageLimits.batch).toBe(16);
    const at = (n: number) => new ParamReader(decodeForm(Array.from({ length: n }, (_, i) => `msgBody.${i}=x`).join('&')));
    expect(at(16).array('msgBody', MessageLimits.batch)).toHaveLength(16);
    expect(cmqErrorOf(() => at(17).array('msgBody', MessageLimits.batch))).toBe('4000 (10370)msgBody parameter batch size is out of range');
  });

  it('a batch carries at most 1 MiB of bodies, a delay at most 70 days', () => {
    expect(MessageLimits.maxBatchBytes).toBe(1_048_576);
    expect(MessageLimits.maxDelaySeconds).toBe(6_048_000);
  });

  it('ListQueue pages default to 20 and are at most 50', () => {
    expect(ListLimits.defaultLimit).toBe(20);
    expect(ListLimits.maxLimit).toBe(50);
  });
});
