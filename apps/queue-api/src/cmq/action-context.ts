import type { Credential } from '@app/accounts';
import type { ParamReader } from '@app/cmq';
import type { TenantScope } from '@app/queues';

export interface ActionContext {
  params: ParamReader;
  credential: Credential;
  /** the account and region every queue lookup of this request is confined to */
  scope: TenantScope;
  requestId: string;
}

export type ActionResult = Record<string, unknown> | void;
export type ActionHandler = (ctx: ActionContext) => Promise<ActionResult>;
