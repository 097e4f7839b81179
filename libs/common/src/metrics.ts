import {
  Controller,
  DynamicModule,
  Get,
  Global,
  Header,
  Headers,
  Inject,
  Module,
  OnApplicationShutdown,
  UnauthorizedException,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { createHash, timingSafeEqual } from 'node:crypto';
import { collectDefaultMetrics, Counter, CounterConfiguration, Gauge, GaugeConfiguration, Histogram, HistogramConfiguration, Registry } from 'prom-client';
import { APP_CONFIG, AppConfig } from '@app/config';
import { Public } from './public';
import { HotCounter, HotHistogram } from './hot-metrics';

/** The apps, as the `app` label of every series they export. */
export type MetricsApp = 'queue-api' | 'billing-api' | 'worker';

let processDefaults: Registry | undefined;

/**
 * prom-client's default metrics of this process (memory, CPU, event loop lag, GC, handles),
 * collected once however many apps the process runs: each collection starts an event loop
 * monitor and a GC observer that are never stopped.
 */
function processMetrics(): Registry {
  if (!processDefaults) {
    processDefaults = new Registry();
    collectDefaultMetrics({ register: processDefaults });
  }
  return processDefaults;
}

/**
 * The Prometheus registry of one app: its own series, served together with the process
 * defaults, all carrying `app`. One registry per app rather than prom-client's global one, so
 * apps sharing a process (the test stack runs queue-api and billing-api together) keep their
 * own series and label, and an app made again in the same process starts afresh.
 */
export class Metrics implements OnApplicationShutdown {
  readonly registry = new Registry();

  constructor(readonly app: MetricsApp) {
    this.registry.setDefaultLabels({ app });
    processMetrics();
  }

  counter<L extends string>(config: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
    return new Counter({ ...config, registers: [this.registry] });
  }

  gauge<L extends string>(config: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
    return new Gauge({ ...config, registers: [this.registry] });
  }

  histogram<L extends string>(config: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
    return new Histogram({ ...config, registers: [this.registry] });
  }

  /** A counter for the request path: children are plain numbers (see {@link HotCounter}). */
  hotCounter(config: ConstructorParameters<typeof HotCounter>[0]): HotCounter {
    return new HotCounter(config, this.registry);
  }

  /** A histogram for the request path: children record without allocating (see {@link HotHistogram}). */
  hotHistogram(config: ConstructorParameters<typeof HotHistogram>[0]): HotHistogram {
    return new HotHistogram(config, this.registry);
  }

  /** The exposition: the process defaults and every series of the app, in Prometheus text format (scrape-time collectors run now). */
  scrape(): Promise<string> {
    const all = Registry.merge([processMetrics(), this.registry]);
    all.setDefaultLabels({ app: this.app });
    return all.metrics();
  }

  onApplicationShutdown(): void {
    this.registry.clear();
  }
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * `GET /metrics`, in Prometheus text format. Without METRICS_TOKEN anyone who reaches the port
 * may scrape; with it, only `Authorization: Bearer <token>` (compared as SHA-256 digests in
 * constant time), else 401. Not part of the OpenAPI document; needs no API token.
 */
@ApiExcludeController()
@Public()
@Controller('metrics')
export class MetricsController {
  private readonly token: Buffer | null;

  constructor(
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.token = config.metrics.token ? digest(config.metrics.token) : null;
  }

  @Get()
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  scrape(@Headers('authorization') authorization?: string): Promise<string> {
    if (this.token) {
      const given = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
      if (!given || !timingSafeEqual(digest(given), this.token)) throw new UnauthorizedException('a bearer token is needed for /metrics');
    }
    return this.metrics.scrape();
  }
}

/** The app's {@link Metrics} (global: any provider may add series) and `GET /metrics`. */
@Global()
@Module({})
export class MetricsModule {
  static forRoot(app: MetricsApp): DynamicModule {
    return {
      module: MetricsModule,
      providers: [{ provide: Metrics, useFactory: () => new Metrics(app) }],
      controllers: [MetricsController],
      exports: [Metrics],
    };
  }
}
