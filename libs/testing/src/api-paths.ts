import { randomUUID } from 'node:crypto';

/** Values for the path parameters of the internal API that name nothing (a call that reaches no data). */
const PLACEHOLDERS: Record<string, () => string> = {
  id: () => randomUUID(),
  secretId: () => 'AKIDnotissued0000',
  queueName: () => 'no-such-queue',
  region: () => 'gz',
  month: () => '2020-01',
  code: () => 'no-such-plan',
};

/** An OpenAPI path (`/v1/accounts/{id}/bills`) with every `{param}` filled by a placeholder. */
export function placeholderPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = PLACEHOLDERS[name];
    if (!value) throw new Error(`no placeholder for path parameter ${name} of ${path}`);
    return value();
  });
}
