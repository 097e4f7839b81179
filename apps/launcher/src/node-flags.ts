/** The apps the launcher, docker-compose and the benches start. */
export type AppName = 'queue-api' | 'billing-api' | 'worker';

/**
 * Node flags of the queue-api processes (the launcher's children, the docker-compose services,
 * the benches' apps).
 *
 * A young generation of 64 MB semi-spaces: a busy queue-api keeps a thousand requests in flight,
 * each holding its objects for the few milliseconds until its commit, and with the default 16 MB
 * the scavenger ran several times a second and copied all of them each time (a fifth of the
 * queue-api's CPU at 5,000 requests/s, measured with perf). Four times larger, it runs a quarter as
 * often and copies about as much per run; the cost is up to 192 MB more address space per process.
 */
export const QUEUE_API_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/**
 * The flags `app` runs with. The worker and the billing API keep V8's defaults: they allocate
 * little, and with 64 MB semi-spaces the worker's young generation grew in steps of 25–50 MB over
 * half an hour of load (its RSS 143 → 237 MB in the 30-minute soak), memory it did not need.
 */
export function nodeFlagsOf(app: AppName): string[] {
  return app === 'queue-api' ? [...QUEUE_API_NODE_FLAGS] : [];
}
