import type { Credential } from '@app/accounts';
import type { RequestMeter } from '@app/billing';
import type { ParamReader } from '@app/cmq';
import type { TenantScope } from '@app/queues';

export interface ActionContext {
  params: ParamReader;
  credential: Credential;
  /** the account and region every queue lookup of this request is confined to */
  scope: TenantScope;
  requestId: string;
  /** the request's usage; null when metering is off */
  meter: RequestMeter | null;
}

export type ActionResult = Record<string, unknown> | void;
export type ActionHandler = (ctx: ActionContext) => Promise<ActionResult>;
