import { actionClass, billableCalls, METERING_RULES, Outcome } from './metering';
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
  messageBytes: number[] = [];
  /** receipt handles that deleted a message */
  handlesDeleted = 0;
  outcome: Outcome = 'ok';
  committed = false;
  readonly at = Date.now();

  constructor(
    readonly accountId: string,
    public region: string,
    /** the canonical action name */
    readonly action: string,
  ) {}

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
    const moved = this.outcome === 'ok' || this.outcome === 'no_message';
    const bytes = moved ? this.messageBytes.reduce((a, b) => a + b, 0) : 0;
    const sends = actionClass(this.action) === 'send';
    const req = { action: this.action, outcome: this.outcome, messageBytes: this.messageBytes, handles: this.handlesDeleted };
    return {
      accountId: this.accountId,
      region: this.region,
      resource: this.resource,
      action: this.action,
      outcome: this.outcome,
      calls: 1,
      messages: !moved ? 0 : this.handlesDeleted > 0 ? this.handlesDeleted : this.messageBytes.length,
      bytesIn: sends ? bytes : 0,
      bytesOut: sends ? 0 : bytes,
      billable: Object.fromEntries(METERING_RULES.map((r) => [r, billableCalls(r, req)])) as UsageRecord['billable'],
      at: this.at,
    };
  }
}
