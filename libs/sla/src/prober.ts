import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomInt, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { sign, signatureAlgorithm, sourceString } from '@app/cmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';
import { SLA_CLOCK, SlaClock, systemClock } from './clock';
import { MINUTE_MS } from './month';
import { CANARY_QUEUE, ProbeAccount, ProbeIdentity } from './probe-account';

export type ProbeStep = 'send' | 'receive' | 'delete';

/** One canary round trip as stored in `sla_probes`. Instants are Unix ms. */
export interface ProbeResult {
  region: string;
  prober: string;
  /** when the round trip began, on the database's clock as last seen (a drill's clock if set) */
  startedAt: number;
  /** when the result was stored, by the database's clock (the ingest clock; a drill's clock if set) */
  receivedAt: number;
  /** receivedAt truncated to its UTC minute */
  minute: number;
  ok: boolean;
  failedStep: ProbeStep | null;
  /** the CMQ code of the failed step; null when no CMQ reply came (refused, timed out, not HTTP 200) */
  code: number | null;
  message: string | null;
  latencyMs: number;
  /** the send was acknowledged, but the message could not be received in the round trip */
  lost: boolean;
}

/** A step's answer: the CMQ reply, or code null when none came. */
type StepReply = { code: number; message: string; [field: string]: unknown } | { code: null; message: string };

type Outcome = Pick<ProbeResult, 'ok' | 'failedStep' | 'code' | 'message' | 'lost'>;

/** The body of a canary message: who sent it, where and when, so any later round can tell. */
const BODY_RE = /^sla-probe (\S+) ([a-z][a-z0-9-]*) (\d{1,15}) [0-9a-f-]{36}$/;

/** Receives of earlier rounds' messages one round trip clears from the queue at most. */
const MAX_LEFTOVERS = 32;

const NO_MESSAGE = 7000;

/** Results that could not be stored (the database was away) kept to be stored later, at most. */
const MAX_UNSTORED = 240;
/** How long the offset of a store with a short round trip is kept against later, slower ones. */
const OFFSET_SAMPLE_MAX_AGE_MS = 60_000;

function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'no answer within the probe timeout';
  const cause = e?.cause?.message ?? e?.cause?.code;
  return cause ? `${e.message}: ${cause}` : String(e?.message ?? err);
}

/**
 * The SLA prober (sla.md §1): for every region at once, a canary round trip through the public
 * CMQ endpoint, exactly as a customer makes one: SendMessage of a unique body, ReceiveMessage,
 * DeleteMessage of the receipt handle, each signed, each within PROBE_TIMEOUT_MS. One row of
 * `sla_probes` per round trip. A failure of the service (refused, timed out, a 6000-family code,
 * the message not delivered) is a failed probe, stored, never an exception.
 */
@Injectable()
export class SlaProber {
  private readonly logger = new Logger(SlaProber.name);
  /** this worker process, stable for its life */
  readonly id = `${hostname()}:${process.pid}`;
  /**
   * The database's clock minus this process's, as measured by the stores of results. Results
   * are stamped by the database (the ingest clock), so a worker whose clock is off or jumps
   * neither moves results into other minutes nor, signing with the corrected time, fails its
   * own probes on the signature window.
   */
  private offsetMs = 0;
  /**
   * The offset's sample: the round trip of the store it came from (its error is at most half of
   * that) and when it was taken. A later sample replaces it when its round trip is no longer,
   * when the two disagree by more than both errors together (a clock moved), or after
   * {@link OFFSET_SAMPLE_MAX_AGE_MS}: a slow store under load does not spoil a good estimate.
   */
  private offsetSample = { rttMs: Infinity, takenAt: 0 };
  /** results whose store failed, with their instant on the database's clock; stored by the next store that works */
  private readonly unstored: Array<{ r: Omit<ProbeResult, 'receivedAt' | 'minute'>; at: number }> = [];
  private draining = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(SLA_CLOCK) private readonly clock: SlaClock,
    private readonly pool: PgPool,
    private readonly account: ProbeAccount,
  ) {}

  /**
   * One round trip per region, concurrently, each stored as it ends. Without the system account
   * (e.g. the database is unreachable) nothing is probed and nothing stored: those minutes are
   * unknown, not down.
   */
  async probeAll(): Promise<ProbeResult[]> {
    let identity: ProbeIdentity;
    try {
      identity = await this.account.identity();
    } catch (err) {
      this.logger.error({ err }, `no probes: the prober's system account could not be ensured: ${(err as Error).message}`);
      return [];
    }
    const settled = await Promise.allSettled(this.config.regions.map((region) => this.probe(region, identity)));
    const results: ProbeResult[] = [];
    for (const s of settled) {
      if (s.status === 'fulfilled') results.push(s.value);
      else this.logger.error({ err: s.reason }, `a probe result could not be stored: ${(s.reason as Error).message}`);
    }
    return results;
  }

  /** One round trip in `region`, stored. */
  async probe(region: string, identity: ProbeIdentity): Promise<ProbeResult> {
    const startedAt = this.now();
    const t0 = performance.now();
    const outcome = await this.roundTrip(region, identity, startedAt);
    const latencyMs = Math.max(0, Math.round(performance.now() - t0));
    if (!outcome.ok) this.report(region, outcome);
    return this.store({ region, prober: this.id, startedAt, latencyMs, ...outcome });
  }

  /** The endpoint of a region: PROBE_ENDPOINT (with `{region}` replaced), else this deployment's queue-api. */
  endpointOf(region: string): URL {
    const given = this.config.sla.probeEndpoint;
    const url = new URL(given ? given.replace(/\{region\}/g, region) : `http://127.0.0.1:${this.config.ports.cmq}`);
    if (url.pathname === '/') url.pathname = '/v2/index.php';
    return url;
  }

  private async roundTrip(region: string, identity: ProbeIdentity, startedAt: number): Promise<Outcome> {
    const url = this.endpointOf(region);
    const call = (action: string, params: Record<string, string>) => this.call(url, identity, action, { Region: region, queueName: CANARY_QUEUE, ...params });
    const body = `sla-probe ${this.id} ${region} ${startedAt} ${randomUUID()}`;

    const sent = await call('SendMessage', { msgBody: body });
    if (sent.code !== 0) return this.failed('send', sent);

    // a long poll shorter than the step's timeout, so an empty queue answers 7000 in time
    const wait = String(Math.max(0, Math.min(1, Math.floor((this.config.sla.probeTimeoutMs - 500) / 1000))));
    for (let i = 0; i <= MAX_LEFTOVERS; i++) {
      const got = await call('ReceiveMessage', { pollingWaitSeconds: wait });
      if (got.code === NO_MESSAGE) return { ...this.failed('receive', got), lost: true };
      if (got.code !== 0) return this.failed('receive', got);
      const handle = String(got.receiptHandle);
      if (got.msgBody !== body) {
        await this.leftover(String(got.msgBody), () => call('DeleteMessage', { receiptHandle: handle }), startedAt);
        continue;
      }
      const deleted = await call('DeleteMessage', { receiptHandle: handle });
      if (deleted.code !== 0) return this.failed('delete', deleted);
      return { ok: true, failedStep: null, code: 0, message: null, lost: false };
    }
    return {
      ok: false,
      failedStep: 'receive',
      code: null,
      message: `only earlier rounds' messages were received (${MAX_LEFTOVERS})`,
      lost: false,
    };
  }

  /**
   * A message of an earlier round trip (this prober's or another's): it was delivered after all,
   * so a round that marked it lost is corrected, and it is deleted. A message of a round that
   * may still be running is left for its owner.
   */
  private async leftover(msgBody: string, remove: () => Promise<StepReply>, now: number): Promise<void> {
    const m = BODY_RE.exec(msgBody);
    const sentAt = m ? Number(m[3]) : 0;
    const longestRound = 3 * this.config.sla.probeTimeoutMs + 1000;
    if (m && now - sentAt < longestRound) return;
    const deleted = await remove();
    if (deleted.code !== 0 || !m) return;
    const { rowCount } = await this.pool.query(
      `UPDATE sla_probes SET lost = false WHERE prober = $1 AND region = $2 AND started_at = $3 AND lost`,
      [m[1], m[2], new Date(sentAt).toISOString()],
    );
    if (rowCount) this.logger.log(`probe of ${m[2]} by ${m[1]} at ${new Date(sentAt).toISOString()}: its message, marked lost, was received later`);
  }

  private failed(step: ProbeStep, reply: StepReply): Outcome {
    return { ok: false, failedStep: step, code: reply.code, message: reply.message.slice(0, 500), lost: false };
  }

  /** Failures of the service are warnings; a 4xxx code is a mistake of the prober's own, an error. */
  private report(region: string, o: Outcome): void {
    const line = `probe of ${region} failed at ${o.failedStep}: ${o.code ?? 'no reply'} ${o.message ?? ''}${o.lost ? ' (message lost)' : ''}`;
    if (o.code !== null && o.code >= 4000 && o.code < 5000) {
      this.logger.error(line);
      // e.g. the canary queue or the key was removed: ensured again before the next round
      this.account.forget();
    } else {
      this.logger.warn(line);
    }
  }

  /** Now on the database's clock as last seen (the app's own clock when a drill or test set one). */
  private now(): number {
    return this.clock === systemClock ? Date.now() + this.offsetMs : this.clock.now();
  }

  /**
   * Stores a result stamped with the database's clock (with a drill's or test's clock: that
   * clock). A result that cannot be stored is kept, with its instant on the database's clock as
   * last seen, and stored by the next store that works, so an outage of the database shows as
   * the failed probes it caused rather than as minutes without data.
   */
  private async store(r: Omit<ProbeResult, 'receivedAt' | 'minute'>): Promise<ProbeResult> {
    const at = this.clock === systemClock ? null : this.clock.now();
    const before = Date.now();
    let stored: ProbeResult;
    try {
      stored = await this.insert(r, at);
    } catch (err) {
      if (this.unstored.length < MAX_UNSTORED) this.unstored.push({ r, at: at ?? before + this.offsetMs });
      throw err;
    }
    if (at === null) this.sampleOffset(stored.receivedAt, before, Date.now());
    await this.storeKept();
    return stored;
  }

  private sampleOffset(receivedAt: number, before: number, after: number): void {
    const offset = receivedAt - Math.round((before + after) / 2);
    const rtt = after - before;
    const current = this.offsetSample;
    if (
      rtt <= current.rttMs ||
      Math.abs(offset - this.offsetMs) > (rtt + current.rttMs) / 2 ||
      after - current.takenAt > OFFSET_SAMPLE_MAX_AGE_MS
    ) {
      this.offsetMs = offset;
      this.offsetSample = { rttMs: rtt, takenAt: after };
    }
  }

  /** Stores the kept results, oldest first, one drain at a time (the regions' rounds end together). */
  private async storeKept(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.unstored.length) {
        const kept = this.unstored.shift()!;
        try {
          await this.insert(kept.r, kept.at);
        } catch {
          this.unstored.unshift(kept);
          break;
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async insert(r: Omit<ProbeResult, 'receivedAt' | 'minute'>, at: number | null): Promise<ProbeResult> {
    const { rows } = await this.pool.query<{ received_ms: string }>(
      `WITH t AS (SELECT coalesce($4::timestamptz, clock_timestamp()) AS at)
       INSERT INTO sla_probes (region, prober, started_at, received_at, minute, ok, failed_step, code, message, latency_ms, lost)
       SELECT $1, $2, $3, t.at, to_timestamp(floor(extract(epoch FROM t.at) / 60) * 60), $5, $6, $7, $8, $9, $10 FROM t
       RETURNING (extract(epoch FROM received_at) * 1000)::bigint AS received_ms`,
      [
        r.region,
        r.prober,
        new Date(r.startedAt).toISOString(),
        at === null ? null : new Date(at).toISOString(),
        r.ok,
        r.failedStep,
        r.code,
        r.message,
        r.latencyMs,
        r.lost,
      ],
    );
    const receivedAt = Number(rows[0].received_ms);
    return { ...r, receivedAt, minute: Math.floor(receivedAt / MINUTE_MS) * MINUTE_MS };
  }

  /** One signed POST, as the CMQ SDKs send it (HmacSHA256), answered within the probe timeout. */
  private async call(url: URL, identity: ProbeIdentity, action: string, params: Record<string, string>): Promise<StepReply> {
    const pairs: Array<[string, string]> = [
      ['Action', action],
      ['SecretId', identity.secretId],
      // the server checks Timestamp against real time, whatever the SLA clock says: the
      // database's, as last seen, so a worker whose own clock is off still signs in time
      ['Timestamp', String(Math.floor((Date.now() + this.offsetMs) / 1000))],
      ['Nonce', String(randomInt(0, 2 ** 31 - 1))],
      ['SignatureMethod', 'HmacSHA256'],
      ['RequestClient', 'cmq-sla-prober'],
      ...Object.entries(params),
    ];
    const source = sourceString('POST', url.host, url.pathname, pairs);
    pairs.push(['Signature', sign(source, identity.secretKey, signatureAlgorithm('HmacSHA256'))]);
    const form = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
        signal: AbortSignal.timeout(this.config.sla.probeTimeoutMs),
      });
      const text = await res.text();
      if (res.status !== 200) return { code: null, message: `HTTP ${res.status} ${text.slice(0, 200)}` };
      const reply = JSON.parse(text) as { code?: unknown; message?: unknown };
      if (typeof reply.code !== 'number') return { code: null, message: `a reply without a code: ${text.slice(0, 200)}` };
      return { ...reply, code: reply.code, message: String(reply.message ?? '') };
    } catch (err) {
      return { code: null, message: describe(err) };
    }
  }
}
