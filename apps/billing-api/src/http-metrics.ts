import { Injectable } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import type { Counter, Histogram } from 'prom-client';
import { Metrics } from '@app/common';

/** The `route` of a request that matched no route (404s of unknown paths). */
export const UNMATCHED_ROUTE = 'unmatched';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * `http_requests_total{method,route,status_class}` and `http_request_duration_seconds{method,route}`
 * of the internal API: by route template (`/v1/accounts/:id`, never the concrete path, whose ids
 * are unbounded), method and status class (2xx … 5xx). Recorded when Fastify has sent the reply,
 * so refusals by the guard, validation and not-found answers count too.
 */
@Injectable()
export class HttpMetrics {
  private readonly requests: Counter<'method' | 'route' | 'status_class'>;
  private readonly duration: Histogram<'method' | 'route'>;
  /** the children of each method and route, made once */
  private readonly series = new Map<string, { duration: Histogram.Internal<'method' | 'route'>; byClass: Map<string, Counter.Internal> }>();

  constructor(metrics: Metrics) {
    this.requests = metrics.counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route template and status class',
      labelNames: ['method', 'route', 'status_class'],
    });
    this.duration = metrics.histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request time until the reply was sent, by method and route template',
      labelNames: ['method', 'route'],
      buckets: BUCKETS,
    });
  }

  /** Records every reply of `fastify` (install before the app listens). */
  install(fastify: FastifyInstance): void {
    fastify.addHook('onResponse', (req, reply, done) => {
      this.record(req.method, req.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }

  record(method: string, route: string | undefined, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : 'OTHER';
    const r = route ?? UNMATCHED_ROUTE;
    const key = `${m} ${r}`;
    let s = this.series.get(key);
    if (!s) {
      s = { duration: this.duration.labels(m, r), byClass: new Map() };
      this.series.set(key, s);
    }
    const statusClass = `${Math.floor(status / 100)}xx`;
    let c = s.byClass.get(statusClass);
    if (!c) {
      c = this.requests.labels(m, r, statusClass);
      s.byClass.set(statusClass, c);
    }
    c.inc();
    s.duration.observe(seconds);
  }
}
