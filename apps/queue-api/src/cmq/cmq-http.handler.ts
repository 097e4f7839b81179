import type { IncomingMessage, ServerResponse } from 'node:http';
import { CmqErrors } from '@app/cmq';
import type { CmqGateway } from './cmq.gateway';

/** Paths that serve the CMQ API: the classic one and the one newer SDKs default to. */
export const CMQ_PATHS = new Set(['/v2/index.php', '/']);

export function isCmqPath(url: string | undefined): boolean {
  if (!url) return false;
  const q = url.indexOf('?');
  return CMQ_PATHS.has(q === -1 ? url : url.slice(0, q));
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The CMQ hot path on the bare Node HTTP server, ahead of Fastify and Nest: read the body
 * (whatever the Content-Type says, up to the size limit), hand it to the gateway, write the
 * reply. Every other path (health, …) goes on to Fastify as usual.
 */
export class CmqHttpHandler {
  constructor(
    private readonly gateway: CmqGateway,
    private readonly maxRequestBytes: number,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      // a GET's parameters are in the query; a body, if any, is not read
      req.resume();
      void this.answer(req, res, undefined);
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (declared > this.maxRequestBytes) {
      this.tooLarge(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (chunk: Buffer) => {
      if (aborted) return;
      size += chunk.length;
      if (size > this.maxRequestBytes) {
        aborted = true;
        this.tooLarge(req, res);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!aborted) void this.answer(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.on('error', () => {
      aborted = true;
      res.destroy();
    });
  }

  private async answer(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): Promise<void> {
    const out = await this.gateway.handle({ method: req.method ?? 'GET', host: req.headers.host ?? '', url: req.url ?? '/', body });
    this.write(res, out);
  }

  /** The reply to a request that could not be read at all (too large, malformed). */
  transportErrorBody(): string {
    return this.gateway.transportError(CmqErrors.cannotParse('request'));
  }

  /**
   * The rest of the body is read and thrown away, then the reply goes. Replying while the client
   * still writes would let the connection close under it (at once when it asked for
   * `Connection: close`, as Node's own client does without an agent), resetting it before the
   * client read the reply. A body that has not ended within 2 s is not waited for: the reply goes
   * then, and the connection closes after it.
   */
  private tooLarge(req: IncomingMessage, res: ServerResponse): void {
    req.removeAllListeners('data');
    let answered = false;
    const answer = (close: boolean) => {
      if (answered) return;
      answered = true;
      clearTimeout(cut);
      if (close) res.setHeader('connection', 'close');
      this.write(res, this.transportErrorBody());
    };
    const cut = setTimeout(() => answer(true), 2000);
    cut.unref();
    req.once('end', () => answer(false));
    req.once('close', () => clearTimeout(cut));
    req.resume();
  }

  private write(res: ServerResponse, out: string): void {
    if (res.writableEnded || res.destroyed) return;
    // keep-alive connections would hold the closing server open until their timeout
    if (this.gateway.draining) res.setHeader('connection', 'close');
    res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(out) });
    res.end(out);
  }
}
