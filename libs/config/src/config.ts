import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bool, cleanEnv, makeValidator, num, port, str, url } from 'envalid';

/**
 * The one place that reads the environment. Everything else receives an {@link AppConfig}
 * (through Nest DI as {@link APP_CONFIG}, or from {@link loadConfig} in scripts and tests).
 */

const REGION_RE = /^[a-z][a-z0-9-]{1,15}$/;

const regionList = makeValidator<string[]>((input) => {
  const list = String(input)
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  if (list.length === 0) throw new Error('at least one region is required');
  for (const r of list) {
    if (!REGION_RE.test(r)) throw new Error(`"${r}" is not a region code (lower-case letters and digits)`);
  }
  return [...new Set(list)];
});

function parseMasterKey(input: string): Buffer {
  const buf = Buffer.from(input.trim(), 'base64');
  if (buf.length !== 32) throw new Error('must be 32 bytes, base64-encoded (openssl rand -base64 32)');
  return buf;
}

const masterKey = makeValidator<Buffer>((input) => parseMasterKey(String(input)));

const positiveInt = makeValidator<number>((input) => {
  const n = Number(input);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error('must be a positive integer');
  return n;
});

const nonNegativeInt = makeValidator<number>((input) => {
  const n = Number(input);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('must be a non-negative integer');
  return n;
});

const prefix = makeValidator<string>((input) => {
  const s = String(input);
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(s)) throw new Error('must be 1-64 characters of [A-Za-z0-9_.:-]');
  return s;
});

const timeZone = makeValidator<string>((input) => {
  const tz = String(input);
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new Error(`"${tz}" is not an IANA time zone such as Asia/Shanghai`);
  }
  return tz;
});

export const DEV_SECRETS_DIR = '.cmq-dev';

/** `gz=Guangzhou, China (data center GZ-3);sh=Shanghai, China`: where each region keeps its data. */
const locationMap = makeValidator<Record<string, string>>((input) => {
  const out: Record<string, string> = {};
  for (const part of String(input).split(';').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const region = part.slice(0, eq).trim();
    const place = part.slice(eq + 1).trim();
    if (eq <= 0 || !REGION_RE.test(region) || place === '' || place.length > 200) {
      throw new Error(`"${part}" is not region=location (e.g. gz=Guangzhou, China)`);
    }
    out[region] = place;
  }
  return out;
});

export const API_ROLES = ['admin', 'ops', 'finance'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** A bearer token of the internal API: who it is (recorded in the audit trail) and its role. */
export interface ApiToken {
  name: string;
  role: ApiRole;
  token: string;
}

/** `finance-bot:finance:<token>,ops-alice:ops:<token>`: the internal API's further tokens. */
const tokenList = makeValidator<ApiToken[]>((input) => {
  const out: ApiToken[] = [];
  for (const part of String(input).split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, role, ...rest] = part.split(':');
    const token = rest.join(':');
    if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name ?? '')) throw new Error(`"${name}" is not a token name (1-64 of A-Z a-z 0-9 _ . @ -)`);
    if (!(API_ROLES as readonly string[]).includes(role ?? '')) throw new Error(`token ${name}: role must be one of ${API_ROLES.join(', ')}`);
    if (!/^[\x21-\x7e]{16,256}$/.test(token)) throw new Error(`token ${name}: the token must be 16-256 printable ASCII characters`);
    if (out.some((t) => t.name === name)) throw new Error(`token name ${name} is given twice`);
    out.push({ name, role: role as ApiRole, token });
  }
  return out;
});

const specs = {
  NODE_ENV: str({ choices: ['development', 'test', 'production'], default: 'development' }),
  HOST: str({ default: '0.0.0.0', desc: 'interface every app listens on' }),
  PUBLIC_HOST: str({ default: '127.0.0.1', desc: 'host printed in endpoint URLs' }),
  CMQ_PORT: port({ default: 8080, desc: 'CMQ endpoint (queue-api)' }),
  BILLING_PORT: port({ default: 3000, desc: 'internal billing API' }),
  WORKER_PORT: port({ default: 3001, desc: 'worker health endpoint' }),
  DATABASE_URL: url({ default: 'postgres://postgres@127.0.0.1:5432/cmq' }),
  DATABASE_CREATE: bool({ default: true, desc: 'create the database at start if it does not exist' }),
  DATABASE_POOL_SIZE: positiveInt({ default: 16 }),
  MIGRATIONS_RUN: bool({ default: true, desc: 'apply pending migrations at start (under an advisory lock)' }),
  REDIS_URL: url({ default: 'redis://127.0.0.1:6379' }),
  REDIS_PREFIX: prefix({ default: 'cmq', desc: 'prefix of every Redis key and channel, BullMQ included' }),
  ADMIN_TOKEN: str({ default: undefined, desc: 'bearer token of the internal API with the admin role, named "admin" (generated in development)' }),
  API_TOKENS: tokenList({ default: [], desc: 'further tokens of the internal API, name:role:token, comma-separated (roles: admin, ops, finance)' }),
  MASTER_KEY: masterKey({ default: undefined, desc: '32-byte base64 key that encrypts SecretKeys at rest' }),
  REGIONS: regionList({ default: ['gz'], desc: 'regions this deployment serves; the first is the default' }),
  SIGNATURE_WINDOW_SECONDS: positiveInt({ default: 300, desc: 'accepted Timestamp skew; replays are refused inside it' }),
  CREDENTIAL_CACHE_MS: nonNegativeInt({ default: 5000 }),
  QUEUE_CACHE_MS: nonNegativeInt({ default: 5000 }),
  CMQ_MAX_REQUEST_BYTES: positiveInt({ default: 3 * 1024 * 1024 + 64 * 1024 }),
  GROUP_COMMIT_MAX_BATCH: positiveInt({ default: 512 }),
  GROUP_COMMIT_CONCURRENCY: positiveInt({ default: 2 }),
  LONG_POLL_RECHECK_MS: positiveInt({ default: 1000 }),
  QUEUE_QPS_LIMIT: positiveInt({ default: 5000, desc: 'requests/s one queue accepts across all processes, unless set per queue' }),
  MAX_QUEUES_PER_ACCOUNT: nonNegativeInt({ default: 0, desc: 'live queues per account; 0 means no limit' }),
  QUEUE_NAME_COOLDOWN_SECONDS: nonNegativeInt({ default: 10, desc: 'a deleted queue name can be created again after this' }),
  TOPIC_QPS_LIMIT: positiveInt({ default: 5000, desc: 'publish requests/s one topic accepts across all processes' }),
  MAX_TOPICS_PER_ACCOUNT: nonNegativeInt({ default: 0, desc: 'live topics per account; 0 means no limit' }),
  MAX_SUBSCRIPTIONS_PER_TOPIC: positiveInt({ default: 500, desc: 'subscriptions one topic may have (4500 beyond)' }),
  PUBLISH_UNMATCHED: str({ choices: ['error', 'accept'], default: 'error', desc: "a publish that no subscription's filter matches: 'error' answers 6030 (10730), 'accept' stores nothing and answers a msgId" }),
  PUSH_TIMEOUT_MS: positiveInt({ default: 15000, desc: 'worker: an HTTP push not answered within this is a failed attempt' }),
  PUSH_BACKOFF_RETRY_MIN_MS: positiveInt({ default: 19000, desc: 'worker: BACKOFF_RETRY waits a random time between this and PUSH_BACKOFF_RETRY_MAX_MS before each retry' }),
  PUSH_BACKOFF_RETRY_MAX_MS: positiveInt({ default: 29000, desc: 'worker: see PUSH_BACKOFF_RETRY_MIN_MS' }),
  PUSH_BACKOFF_RETRIES: nonNegativeInt({ default: 3, desc: 'worker: retries of a BACKOFF_RETRY push before it is dropped' }),
  PUSH_EXPONENTIAL_BASE_MS: positiveInt({ default: 1000, desc: "worker: EXPONENTIAL_DECAY_RETRY's first retry delay, doubled at each retry until the topic's retention runs out" }),
  PUSH_CONCURRENCY: positiveInt({ default: 32, desc: 'worker: pushes in flight at once per process' }),
  PUSH_RESEND_AFTER_MS: positiveInt({ default: 10000, desc: 'worker: a push due this long without being attempted is queued again (a lost job heals)' }),
  BILLING_TIME_ZONE: timeZone({ default: 'Asia/Shanghai', desc: 'the time zone of billing months' }),
  BILL_CLOSE_DELAY_SECONDS: nonNegativeInt({ default: 300, desc: 'monthly bills are closed this long after the month ends in the billing time zone' }),
  RECONCILE_INTERVAL_MS: positiveInt({ default: 60000, desc: 'worker: how often balances are checked against the ledger' }),
  METERING: bool({ default: true, desc: 'queue-api: record usage of every authenticated CMQ request (off only for benchmarks)' }),
  USAGE_RELAY_INTERVAL_MS: positiveInt({ default: 200, desc: 'queue-api: how long committed usage is gathered into one job for the workers (fewer, larger apply transactions)' }),
  USAGE_RESEND_AFTER_MS: positiveInt({ default: 10000, desc: 'worker: usage not applied this long after its commit is sent again' }),
  USAGE_WORKER_CONCURRENCY: positiveInt({ default: 4, desc: 'worker: usage jobs applied at once per process' }),
  SWEEP_INTERVAL_MS: positiveInt({ default: 10000 }),
  SWEEP_BATCH: positiveInt({ default: 5000 }),
  ARREARS_INTERVAL_MS: positiveInt({ default: 10000, desc: 'worker: how often the arrears ladder (suspension, run-out alerts, release) is run' }),
  ARREARS_GRACE_SECONDS: nonNegativeInt({ default: 86400, desc: 'how long an overdue account keeps being served (and billed) before it is suspended' }),
  RUNOUT_WINDOW_SECONDS: positiveInt({ default: 3 * 86400, desc: 'run-out alerts: the spend of this many past seconds gives the average rate' }),
  RUNOUT_HORIZON_SECONDS: nonNegativeInt({ default: 86400, desc: 'run-out alerts: alert when the balance lasts less than this at that rate; 0 turns them off' }),
  RELEASE_AFTER_SECONDS: nonNegativeInt({ default: 15 * 86400, desc: "a suspended account's queues and messages are deleted after this; 0 never" }),
  RELEASE_NOTICE_SECONDS: nonNegativeInt({ default: 86400, desc: 'the release notice goes out at least this long before the release' }),
  LOW_BALANCE_HYSTERESIS_PERCENT: nonNegativeInt({ default: 10, desc: "low-balance alerts re-arm once the balance is back above the threshold plus this share of it" }),
  STANDING_REFRESH_MS: positiveInt({ default: 250, desc: 'queue-api: how often the suspended accounts are read again' }),
  WEBHOOK_ATTEMPTS: positiveInt({ default: 8, desc: 'worker: delivery attempts of a notification webhook' }),
  WEBHOOK_BACKOFF_MS: positiveInt({ default: 1000, desc: 'worker: first retry delay of a webhook, doubled at each attempt' }),
  WEBHOOK_TIMEOUT_MS: positiveInt({ default: 5000, desc: 'worker: how long one webhook request may take' }),
  NOTIFICATION_RESEND_AFTER_MS: positiveInt({ default: 5000, desc: 'worker: undelivered notifications this old are queued again (a lost job heals)' }),
  PROBE_INTERVAL_MS: positiveInt({ default: 15000, desc: 'worker: the SLA prober runs a canary round trip per region this often' }),
  PROBE_ENDPOINT: str({ default: '', desc: "the public CMQ endpoint the prober calls (e.g. http://cmq.example.com); empty: this deployment's own queue-api on CMQ_PORT" }),
  PROBE_TIMEOUT_MS: positiveInt({ default: 5000, desc: 'worker: one probe step failing to answer within this is a failure' }),
  SLA_CLOSE_CHECK_MS: positiveInt({ default: 60000, desc: 'worker: how often it checks for an ended month to close' }),
  SLA_CLOSE_DELAY_SECONDS: nonNegativeInt({ default: 900, desc: 'a month is closed this long after it ends, so late probe and usage data are in' }),
  SLA_BURN_RATE_INTERVAL_MS: positiveInt({ default: 60000, desc: 'worker: how often burn-rate alerts are evaluated' }),
  CONSOLE_SESSION_TTL_SECONDS: positiveInt({ default: 43200, desc: "billing-api: how long a web console sign-in with an access key lasts" }),
  CONSOLE_CMQ_ENDPOINT: str({ default: '', desc: "billing-api: the CMQ endpoint the web console's queue and topic pages call with the signed-in key; empty: this deployment's queue-api on 127.0.0.1:CMQ_PORT" }),
  CLUSTER_QUEUE_APIS: positiveInt({ default: 2, desc: 'launcher --cluster: queue-api processes behind the balancer on CMQ_PORT (they listen on CMQ_PORT+1, +2, ...)' }),
  CLUSTER_WORKERS: positiveInt({ default: 2, desc: 'launcher --cluster: worker processes (health and /metrics on WORKER_PORT, +1, ...)' }),
  EXPORT_DIR: str({ default: '.cmq-exports', desc: 'where export jobs write their CSV files (relative to the working directory; created if missing)' }),
  DATA_LOCATIONS: locationMap({ default: {}, desc: 'where each region stores its data, told to accounts (region=location;…); a region left out is reported as not configured' }),
  DATA_REPLICAS: positiveInt({ default: 1, desc: 'copies of the data kept live (the database and its synchronous replicas), told to accounts' }),
  DATA_BACKUP_COPIES: nonNegativeInt({ default: 0, desc: 'backup copies of the data retained, told to accounts' }),
  DATA_BACKUP_RETENTION_DAYS: nonNegativeInt({ default: 0, desc: 'how long backups are kept, told to accounts' }),
  LOG_LEVEL: str({ choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' }),
  LOG_PRETTY: bool({ default: false }),
  LOG_REQUESTS: bool({ default: false, desc: 'log every HTTP request (off by default: the CMQ path is hot)' }),
  METRICS_TOKEN: str({ default: '', desc: 'if set, GET /metrics of every app answers only with Authorization: Bearer <this token> (401 otherwise); empty: open' }),
};

export interface AppConfig {
  env: 'development' | 'test' | 'production';
  host: string;
  publicHost: string;
  ports: { cmq: number; billing: number; worker: number };
  database: { url: string; create: boolean; poolSize: number; migrationsRun: boolean };
  redis: { url: string; prefix: string };
  adminToken: string;
  /** true when no ADMIN_TOKEN was configured and one was generated for this process */
  adminTokenGenerated: boolean;
  /** every bearer token of the internal API: ADMIN_TOKEN as `admin` first, then API_TOKENS */
  apiTokens: ApiToken[];
  masterKey: Buffer;
  regions: string[];
  defaultRegion: string;
  /** what accounts are told of where their data lives and how many copies exist */
  dataResidency: { locations: Record<string, string>; replicas: number; backupCopies: number; backupRetentionDays: number };
  cmq: {
    signatureWindowSeconds: number;
    credentialCacheMs: number;
    queueCacheMs: number;
    maxRequestBytes: number;
    groupCommitMaxBatch: number;
    groupCommitConcurrency: number;
    longPollRecheckMs: number;
    queueQpsLimit: number;
    maxQueuesPerAccount: number;
    queueNameCooldownSeconds: number;
    topicQpsLimit: number;
    maxTopicsPerAccount: number;
    maxSubscriptionsPerTopic: number;
    /** whether a publish no subscription matches is refused (6030) or accepted and dropped */
    publishUnmatched: 'error' | 'accept';
  };
  push: {
    timeoutMs: number;
    backoffMinMs: number;
    backoffMaxMs: number;
    backoffRetries: number;
    exponentialBaseMs: number;
    concurrency: number;
    resendAfterMs: number;
  };
  sweep: { intervalMs: number; batch: number };
  billing: { reconcileIntervalMs: number; timeZone: string; closeDelaySeconds: number };
  usage: { metering: boolean; relayIntervalMs: number; resendAfterMs: number; workerConcurrency: number };
  log: { level: string; pretty: boolean; requests: boolean };
  /** Prometheus metrics on `/metrics` of every app; '' : no token needed */
  metrics: { token: string };
  arrears: {
    intervalMs: number;
    graceSeconds: number;
    runoutWindowSeconds: number;
    /** 0: no run-out alerts */
    runoutHorizonSeconds: number;
    /** 0: never released */
    releaseAfterSeconds: number;
    releaseNoticeSeconds: number;
    lowBalanceHysteresisPercent: number;
    standingRefreshMs: number;
  };
  webhooks: { attempts: number; backoffMs: number; timeoutMs: number; resendAfterMs: number };
  sla: {
    probeIntervalMs: number;
    /** '' : the deployment's own queue-api */
    probeEndpoint: string;
    probeTimeoutMs: number;
    closeCheckMs: number;
    closeDelaySeconds: number;
    burnRateIntervalMs: number;
  };
  /** the web console: sign-ins with access keys, and the CMQ endpoint its pages call */
  console: { sessionTtlSeconds: number; cmqEndpoint: string };
  /** finance CSV export jobs: the absolute directory of their files */
  exports: { dir: string };
  /** `npm run start:cluster`: how many processes of the scaled-out apps the launcher runs */
  cluster: { queueApis: number; workers: number };
}

export class ConfigError extends Error {}

function loadDevMasterKey(cwd: string): Buffer {
  const file = resolve(cwd, DEV_SECRETS_DIR, 'master.key');
  if (existsSync(file)) return parseMasterKey(readFileSync(file, 'utf8'));
  const key = randomBytes(32);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600 });
  return key;
}

/**
 * Reads and validates the environment. Throws {@link ConfigError} naming every bad variable.
 * In development, a missing MASTER_KEY is kept in .cmq-dev/master.key (so stored keys stay
 * readable across restarts) and a missing ADMIN_TOKEN is generated; production refuses both.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AppConfig {
  const e = cleanEnv(env, specs, {
    reporter: ({ errors }) => {
      const names = Object.keys(errors);
      if (names.length) {
        throw new ConfigError(
          'Invalid configuration: ' + names.map((n) => `${n} ${(errors as Record<string, Error>)[n].message}`).join('; '),
        );
      }
    },
  });
  const production = e.NODE_ENV === 'production';
  if (production && !e.ADMIN_TOKEN) throw new ConfigError('Invalid configuration: ADMIN_TOKEN is required when NODE_ENV=production');
  if (production && !e.MASTER_KEY) throw new ConfigError('Invalid configuration: MASTER_KEY is required when NODE_ENV=production');
  if (e.ADMIN_TOKEN !== undefined && e.ADMIN_TOKEN.length < 16) {
    throw new ConfigError('Invalid configuration: ADMIN_TOKEN must be at least 16 characters');
  }
  const adminToken = e.ADMIN_TOKEN ?? randomBytes(24).toString('base64url');
  const apiTokens: ApiToken[] = [{ name: 'admin', role: 'admin', token: adminToken }, ...e.API_TOKENS];
  const names = apiTokens.map((t) => t.name);
  const tokens = apiTokens.map((t) => t.token);
  if (new Set(names).size !== names.length) throw new ConfigError('Invalid configuration: API_TOKENS must not name a token "admin" (that is ADMIN_TOKEN)');
  if (new Set(tokens).size !== tokens.length) throw new ConfigError('Invalid configuration: every token of ADMIN_TOKEN and API_TOKENS must differ');
  return {
    env: e.NODE_ENV as AppConfig['env'],
    host: e.HOST,
    publicHost: e.PUBLIC_HOST,
    ports: { cmq: e.CMQ_PORT, billing: e.BILLING_PORT, worker: e.WORKER_PORT },
    database: {
      url: e.DATABASE_URL,
      create: e.DATABASE_CREATE,
      poolSize: e.DATABASE_POOL_SIZE,
      migrationsRun: e.MIGRATIONS_RUN,
    },
    redis: { url: e.REDIS_URL, prefix: e.REDIS_PREFIX },
    adminToken,
    adminTokenGenerated: e.ADMIN_TOKEN === undefined,
    apiTokens,
    masterKey: e.MASTER_KEY ?? loadDevMasterKey(cwd),
    regions: e.REGIONS,
    defaultRegion: e.REGIONS[0],
    dataResidency: {
      locations: e.DATA_LOCATIONS,
      replicas: e.DATA_REPLICAS,
      backupCopies: e.DATA_BACKUP_COPIES,
      backupRetentionDays: e.DATA_BACKUP_RETENTION_DAYS,
    },
    cmq: {
      signatureWindowSeconds: e.SIGNATURE_WINDOW_SECONDS,
      credentialCacheMs: e.CREDENTIAL_CACHE_MS,
      queueCacheMs: e.QUEUE_CACHE_MS,
      maxRequestBytes: e.CMQ_MAX_REQUEST_BYTES,
      groupCommitMaxBatch: e.GROUP_COMMIT_MAX_BATCH,
      groupCommitConcurrency: e.GROUP_COMMIT_CONCURRENCY,
      longPollRecheckMs: e.LONG_POLL_RECHECK_MS,
      queueQpsLimit: e.QUEUE_QPS_LIMIT,
      maxQueuesPerAccount: e.MAX_QUEUES_PER_ACCOUNT,
      queueNameCooldownSeconds: e.QUEUE_NAME_COOLDOWN_SECONDS,
      topicQpsLimit: e.TOPIC_QPS_LIMIT,
      maxTopicsPerAccount: e.MAX_TOPICS_PER_ACCOUNT,
      maxSubscriptionsPerTopic: e.MAX_SUBSCRIPTIONS_PER_TOPIC,
      publishUnmatched: e.PUBLISH_UNMATCHED as 'error' | 'accept',
    },
    push: {
      timeoutMs: e.PUSH_TIMEOUT_MS,
      backoffMinMs: e.PUSH_BACKOFF_RETRY_MIN_MS,
      backoffMaxMs: Math.max(e.PUSH_BACKOFF_RETRY_MIN_MS, e.PUSH_BACKOFF_RETRY_MAX_MS),
      backoffRetries: e.PUSH_BACKOFF_RETRIES,
      exponentialBaseMs: e.PUSH_EXPONENTIAL_BASE_MS,
      concurrency: e.PUSH_CONCURRENCY,
      resendAfterMs: e.PUSH_RESEND_AFTER_MS,
    },
    sweep: { intervalMs: e.SWEEP_INTERVAL_MS, batch: e.SWEEP_BATCH },
    billing: { reconcileIntervalMs: e.RECONCILE_INTERVAL_MS, timeZone: e.BILLING_TIME_ZONE, closeDelaySeconds: e.BILL_CLOSE_DELAY_SECONDS },
    usage: {
      metering: e.METERING,
      relayIntervalMs: e.USAGE_RELAY_INTERVAL_MS,
      resendAfterMs: e.USAGE_RESEND_AFTER_MS,
      workerConcurrency: e.USAGE_WORKER_CONCURRENCY,
    },
    log: { level: e.LOG_LEVEL, pretty: e.LOG_PRETTY, requests: e.LOG_REQUESTS },
    metrics: { token: e.METRICS_TOKEN },
    arrears: {
      intervalMs: e.ARREARS_INTERVAL_MS,
      graceSeconds: e.ARREARS_GRACE_SECONDS,
      runoutWindowSeconds: e.RUNOUT_WINDOW_SECONDS,
      runoutHorizonSeconds: e.RUNOUT_HORIZON_SECONDS,
      releaseAfterSeconds: e.RELEASE_AFTER_SECONDS,
      releaseNoticeSeconds: e.RELEASE_NOTICE_SECONDS,
      lowBalanceHysteresisPercent: e.LOW_BALANCE_HYSTERESIS_PERCENT,
      standingRefreshMs: e.STANDING_REFRESH_MS,
    },
    sla: {
      probeIntervalMs: e.PROBE_INTERVAL_MS,
      probeEndpoint: e.PROBE_ENDPOINT,
      probeTimeoutMs: e.PROBE_TIMEOUT_MS,
      closeCheckMs: e.SLA_CLOSE_CHECK_MS,
      closeDelaySeconds: e.SLA_CLOSE_DELAY_SECONDS,
      burnRateIntervalMs: e.SLA_BURN_RATE_INTERVAL_MS,
    },
    webhooks: {
      attempts: e.WEBHOOK_ATTEMPTS,
      backoffMs: e.WEBHOOK_BACKOFF_MS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      resendAfterMs: e.NOTIFICATION_RESEND_AFTER_MS,
    },
    console: {
      sessionTtlSeconds: e.CONSOLE_SESSION_TTL_SECONDS,
      cmqEndpoint: e.CONSOLE_CMQ_ENDPOINT || `http://127.0.0.1:${e.CMQ_PORT}`,
    },
    exports: { dir: resolve(cwd, e.EXPORT_DIR) },
    cluster: { queueApis: e.CLUSTER_QUEUE_APIS, workers: e.CLUSTER_WORKERS },
  };
}

/** The environment with some variables replaced (tests and tools that start apps). */
export function loadConfigWith(overrides: Record<string, string | undefined>, cwd = process.cwd()): AppConfig {
  return loadConfig(childEnv(overrides), cwd);
}

/** The environment to hand a child process, with some variables replaced. */
export function childEnv(overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return { ...process.env, ...overrides };
}

/** The variables a parent process hands to the apps it starts, so they share generated secrets. */
export function sharedSecretsEnv(config: AppConfig): Record<string, string> {
  return { ADMIN_TOKEN: config.adminToken, MASTER_KEY: config.masterKey.toString('base64') };
}

/** Documentation of every variable, for the README table and `--help`. */
export const CONFIG_VARIABLES = Object.entries(specs).map(([name, spec]) => ({
  name,
  default: (spec as { default?: unknown }).default,
  desc: (spec as { desc?: string }).desc,
}));
