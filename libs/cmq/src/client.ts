import { randomInt } from 'node:crypto';
import { Agent, request } from 'node:http';
import { sign, signatureAlgorithm, sourceString } from './signature';

export interface CmqClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  endpoint: string;
  secretId: string;
  secretKey: string;
  path?: string;
  method?: 'POST' | 'GET';
  signatureMethod?: 'HmacSHA1' | 'HmacSHA256';
  /** first index of array parameters (`msgBody.1`…); official SDKs differ */
  arrayBase?: 0 | 1;
  agent?: Agent;
}

export type CmqReply = { code: number; message: string; requestId: string; [field: string]: unknown };
export type CmqValue = string | number | Array<string | number>;

/**
 * A minimal CMQ API 2.0 client: signs like the official SDKs and returns the parsed reply
 * (errors are replies with code ≠ 0, not exceptions). Used by the tests, the benchmarks and the
 * prober, which must speak to the service exactly as a customer does.
 */
export class CmqClient {
  private readonly url: URL;
  private readonly agent: Agent;

  constructor(readonly options: CmqClientOptions) {
    this.url = new URL(options.endpoint);
    this.agent = options.agent ?? new Agent({ keepAlive: true, maxSockets: 64 });
  }

  /** The form parameters of one signed call. */
  signedParams(action: string, params: Record<string, CmqValue | undefined> = {}): Array<[string, string]> {
    const o = this.options;
    const base = o.arrayBase ?? 1;
    const pairs: Array<[string, string]> = [
      ['Action', action],
      ['SecretId', o.secretId],
      ['Timestamp', String(Math.floor(Date.now() / 1000))],
      ['Nonce', String(randomInt(0, 2 ** 31 - 1))],
      ['RequestClient', 'cmq-cloud-test'],
    ];
    if (o.signatureMethod) pairs.push(['SignatureMethod', o.signatureMethod]);
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined) continue;
      if (Array.isArray(v)) v.forEach((item, i) => pairs.push([`${k}.${i + base}`, String(item)]));
      else pairs.push([k, String(v)]);
    }
    const method = o.method ?? 'POST';
    const src = sourceString(method, this.url.host, o.path ?? '/v2/index.php', pairs);
    pairs.push(['Signature', sign(src, o.secretKey, signatureAlgorithm(o.signatureMethod))]);
    return pairs;
  }

  async call(action: string, params: Record<string, CmqValue | undefined> = {}): Promise<CmqReply> {
    const pairs = this.signedParams(action, params);
    const body = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const res = await this.raw(body);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body}`);
    return JSON.parse(res.body) as CmqReply;
  }

  /** Sends an already encoded form body (POST) or query (GET) and returns status and text. */
  raw(form: string, extra: { method?: string; path?: string; headers?: Record<string, string> } = {}) {
    const method = extra.method ?? this.options.method ?? 'POST';
    const path = extra.path ?? this.options.path ?? '/v2/index.php';
    const isGet = method === 'GET';
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: this.url.hostname,
          port: this.url.port,
          method,
          path: isGet ? `${path}?${form}` : path,
          agent: this.agent,
          headers: isGet
            ? extra.headers
            : {
                'content-type': 'application/x-www-form-urlencoded',
                'content-length': String(Buffer.byteLength(form)),
                ...extra.headers,
              },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (!isGet) req.end(form);
      else req.end();
    });
  }

  close(): void {
    if (!this.options.agent) this.agent.destroy();
  }
}
