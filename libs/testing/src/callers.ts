import type { CmqReply, CmqValue } from '@app/cmq';
import type { TestStack, TestTenant } from './test-stack';

/** One way to call the CMQ endpoint; the specs run the same scenarios through each. */
export type Caller = (action: string, params?: Record<string, CmqValue | undefined>) => Promise<CmqReply>;

export interface ClientMode {
  client: 'ours' | 'qcloudapi-sdk';
  method: 'POST' | 'GET';
  signatureMethod: 'HmacSHA1' | 'HmacSHA256';
  path: '/' | '/v2/index.php';
}

/** Our client, and the third-party qcloudapi-sdk, in each method, hash and path. */
export const CLIENT_MODES: ClientMode[] = [
  { client: 'ours', method: 'POST', signatureMethod: 'HmacSHA1', path: '/v2/index.php' },
  { client: 'ours', method: 'GET', signatureMethod: 'HmacSHA256', path: '/' },
  { client: 'qcloudapi-sdk', method: 'POST', signatureMethod: 'HmacSHA256', path: '/' },
  { client: 'qcloudapi-sdk', method: 'GET', signatureMethod: 'HmacSHA1', path: '/v2/index.php' },
];

export function describeMode(m: ClientMode): string {
  return `${m.client} ${m.method} ${m.signatureMethod} ${m.path}`;
}

export function caller(stack: TestStack, tenant: TestTenant, mode: ClientMode): Caller {
  if (mode.client === 'ours') {
    const c = stack.client(tenant, { method: mode.method, signatureMethod: mode.signatureMethod, path: mode.path, arrayBase: 1 });
    return (action, params) => c.call(action, params);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const QcloudApi = require('qcloudapi-sdk');
  const opts = {
    protocol: 'http',
    host: `127.0.0.1:${stack.cmqPort}`,
    path: mode.path,
    method: mode.method,
    signatureMethod: mode.signatureMethod === 'HmacSHA256' ? 'sha256' : 'sha1',
    SecretId: tenant.secretId,
    SecretKey: tenant.secretKey,
  };
  const api = new QcloudApi(opts);
  return (action, params = {}) => {
    const data: Record<string, unknown> = { Action: action };
    for (const [k, v] of Object.entries(params)) if (v !== undefined) data[k] = v;
    return new Promise<CmqReply>((resolve, reject) =>
      api.request(data, opts, (err: Error | null, body: CmqReply) => (err ? reject(err) : resolve(body))),
    );
  };
}
