import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What the audit trail records of the request (or job) an entry is appended in, without each
 * service passing it down: `via`, the channel and credential the change came through (the
 * internal API's token name, the CMQ endpoint, a worker job). An entry given its own `via`
 * keeps it.
 */
export interface AuditScope {
  via?: string;
}

const storage = new AsyncLocalStorage<AuditScope>();

export const auditScope = {
  /** Runs `fn` (and everything it starts) with a scope of its own, to be filled in as it goes. */
  run<T>(fn: () => T, scope: AuditScope = {}): T {
    return storage.run(scope, fn);
  },
  /** The scope of the current request or job, if it has one. */
  current(): AuditScope | undefined {
    return storage.getStore();
  },
};
