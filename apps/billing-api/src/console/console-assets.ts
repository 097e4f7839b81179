import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The console's files: apps/billing-api/console, from the sources or from dist/. */
export function consoleRoot(): string {
  const candidates = [resolve(__dirname, '../../console'), resolve(__dirname, '../../../../../apps/billing-api/console')];
  const found = candidates.find((c) => existsSync(resolve(c, 'index.html')));
  if (!found) throw new Error(`the web console's files are missing (looked in ${candidates.join(', ')})`);
  return found;
}

/**
 * Serves the web console at /console/ from the billing-api itself: its own files, and the
 * charting library from the installed package (nothing is loaded from the internet). The pages
 * call the same API as everyone (the bearer token of the sign-in), so the API's checks are the
 * console's.
 */
export async function serveConsole(app: NestFastifyApplication): Promise<void> {
  const fastify = app.getHttpAdapter().getInstance();
  await app.register(fastifyStatic as never, {
    root: consoleRoot(),
    prefix: '/console/',
    index: ['index.html'],
    cacheControl: true,
    maxAge: 0,
  });
  await app.register(fastifyStatic as never, {
    root: dirname(require.resolve('chart.js')),
    prefix: '/console/vendor/',
    decorateReply: false,
    allowedPath: (path: string) => /^\/chart\.umd\.min\.js(\.map)?$/.test(path),
  });
  fastify.get('/console', (_req, reply) => {
    void reply.redirect('/console/', 302);
  });
}
