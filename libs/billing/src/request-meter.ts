import { ActionClass, actionClass, billableCallsOf, Outcome } from './metering';
import type { UsageRecord } from './usage-applier';

/**
 * The usage of one authenticated CMQ request while it is being served: the handler fills in
 * what it touched and carried, the outcome comes from its reply (or from the result of its
 * write, when the usage commits with that write), and `committed` says whether the usage is
 * already durable.
 */
export class RequestMeter {
  /** queue or topic name; '' for account-level actions */
  resource = '';
  /** payload sizes of the messages sent or returned */
  messageBytes: readonly number[] = [];
  /** receipt handles that deleted a message */
  handlesDeleted = 0;
  outcome: Outcome = 'ok';
  committed = false;
  /** the action's class, looked up once: every request of the hot path is metered */
  private readonly cls: ActionClass;

  constructor(
    readonly accountId: string,
    public region: string,
    /** the canonical action name */
    readonly action: string,
    /** when it was served (Unix ms): the minute it is metered in */
    readonly at: number,
  ) {
    this.cls = actionClass(action);
  }

  /** Sets the outcome and hands itself over as the entry of a commit. */
  settle(outcome: Outcome): this {
    this.outcome = outcome;
    return this;
  }

  /**
   * Messages and bytes count what the request moved: stored by a send, returned by a receive,
   * deleted by a delete; a request that failed moved nothing.
   */
  record(): UsageRecord {
    const outcome = this.outcome;
    const moved = outcome === 'ok' || outcome === 'no_message';
    let bytes = 0;
    if (moved) for (const b of this.messageBytes) bytes += b;
    const sends = this.cls === 'send';
    const handles = this.handlesDeleted;
    return {
      accountId: this.accountId,
      region: this.region,
      resource: this.resource,
      action: this.action,
      outcome,
      calls: 1,
      messages: !moved ? 0 : handles > 0 ? handles : this.messageBytes.length,
      bytesIn: sends ? bytes : 0,
      bytesOut: sends ? 0 : bytes,
      billable: {
        size_bands: billableCallsOf('size_bands', this.cls, outcome, this.messageBytes, handles, bytes),
        per_64k: billableCallsOf('per_64k', this.cls, outcome, this.messageBytes, handles, bytes),
      },
      at: this.at,
    };
  }
}
