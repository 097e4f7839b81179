import { createConnection, createServer, Server, Socket } from 'node:net';

export interface Backend {
  host: string;
  port: number;
}

/**
 * A TCP round-robin balancer for the queue-api processes of one machine: each client
 * connection is piped to the next backend that accepts it. A backend that refuses a connection
 * is skipped for `downForMs` and the connection tries the next one, so a process that died
 * (and is being restarted) costs only the requests that were in flight on it. Keep-alive
 * connections stay on their backend for their lifetime, as with any L4 balancer.
 */
export class TcpBalancer {
  private readonly server: Server;
  private readonly downUntil: number[];
  private readonly sockets = new Set<Socket>();
  private next = 0;

  constructor(
    private readonly backends: Backend[],
    private readonly opts: { downForMs?: number; connectTimeoutMs?: number } = {},
  ) {
    if (backends.length === 0) throw new Error('a balancer needs at least one backend');
    this.downUntil = backends.map(() => 0);
    this.server = createServer({ noDelay: true }, (client) => this.accept(client));
  }

  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops accepting and closes every proxied connection. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private accept(client: Socket): void {
    this.track(client);
    client.pause();
    client.on('error', () => client.destroy());
    this.connect(client, 0);
  }

  /** The next backend in turn that is not marked down (all of them, in turn, if every one is). */
  private pick(): number {
    const now = Date.now();
    for (let i = 0; i < this.backends.length; i++) {
      const idx = (this.next + i) % this.backends.length;
      if (this.downUntil[idx] <= now) {
        this.next = idx + 1;
        return idx;
      }
    }
    return this.next++ % this.backends.length;
  }

  private connect(client: Socket, attempt: number): void {
    if (client.destroyed) return;
    const idx = this.pick();
    const upstream = createConnection({ ...this.backends[idx], noDelay: true });
    this.track(upstream);
    upstream.setTimeout(this.opts.connectTimeoutMs ?? 2000);
    let connected = false;
    upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')));
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    upstream.on('error', () => {
      if (connected) return upstream.destroy();
      this.downUntil[idx] = Date.now() + (this.opts.downForMs ?? 1000);
      upstream.destroy();
      if (attempt + 1 < this.backends.length * 2) this.connect(client, attempt + 1);
      else client.destroy();
    });
  }
}
