/**
 * Polls `url` until it answers 2xx; resolves false if it has not by `timeoutMs`. Free of Nest,
 * so the launcher, the tests and the benchmarks can all use it.
 */
export async function waitForHttp(url: string, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}
