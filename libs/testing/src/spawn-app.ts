import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv } from '@app/config';
import { waitForHttp as pollHttp } from '@app/common/wait-for-http';

const ROOT = join(__dirname, '..', '..', '..');

export interface SpawnedApp {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** The compiled entry point of an app (`npm test` builds first). */
export function appEntry(app: 'queue-api' | 'billing-api' | 'worker' | 'launcher'): string {
  const file = join(ROOT, 'dist', 'apps', app, 'src', 'main.js');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (npm test does)`);
  return file;
}

/** Runs an app as its own process, as production does, with some variables replaced. */
export function spawnApp(app: Parameters<typeof appEntry>[0], env: Record<string, string>, args: string[] = []): SpawnedApp {
  const child = spawn(process.execPath, [appEntry(app), ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until `url` answers 200, or fails the test. */
export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  if (!(await pollHttp(url, timeoutMs))) throw new Error(`${url} did not come up within ${timeoutMs} ms`);
}
