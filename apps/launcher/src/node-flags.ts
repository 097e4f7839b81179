/**
 * Node flags every app process runs with (the launcher's children, the docker-compose services,
 * the benches' apps).
 *
 * A young generation of 64 MB semi-spaces: a busy queue-api keeps a thousand requests in flight,
 * each holding its objects for the few milliseconds until its commit, and with the default 16 MB
 * the scavenger ran several times a second and copied all of them each time (a fifth of the
 * queue-api's CPU at 5,000 requests/s, measured with perf). Four times larger, it runs a quarter as
 * often and copies about as much per run; the cost is up to 192 MB more address space per process.
 */
export const APP_NODE_FLAGS = ['--max-semi-space-size=64'];
