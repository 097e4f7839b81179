import { ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';

/** One supervised process: an app's compiled entry point with its own environment. */
export interface ProcessSpec {
  /** unique: `queue-api-1`, `worker-2`, ... */
  name: string;
  entry: string;
  env: NodeJS.ProcessEnv;
  /** node flags of the process, after the launcher's own */
  execArgv?: string[];
}

export interface SupervisorOptions {
  /** restart a process that exits on its own (else the first such exit stops everything) */
  restart: boolean;
  /** a process that exits this often within a minute is given up on (it cannot start) */
  maxRestartsPerMinute?: number;
  /** first restart delay, doubled for each further exit within the minute, at most 30 s */
  restartDelayMs?: number;
  /** `inherit`: the children write to the supervisor's own output; a number: to that file descriptor */
  stdio?: 'inherit' | 'ignore' | number;
  log?: (line: string) => void;
}

interface Supervised {
  spec: ProcessSpec;
  child: ChildProcess;
  /** exits within the last minute */
  exits: number[];
  restarts: number;
  timer?: NodeJS.Timeout;
}

/**
 * Runs processes and keeps them running: one that exits unexpectedly (a crash, an OOM kill, a
 * SIGKILL) is started again after a short backoff, as systemd or a container runtime with
 * `restart: unless-stopped` would. Events: `exit` (name, code, signal), `started` (name, pid),
 * `gave-up` (name) once a process keeps failing.
 */
export class Supervisor extends EventEmitter {
  private readonly procs = new Map<string, Supervised>();
  private stopping = false;
  private readonly maxRestarts: number;
  private readonly delayMs: number;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.maxRestarts = opts.maxRestartsPerMinute ?? 10;
    this.delayMs = opts.restartDelayMs ?? 250;
    this.log = opts.log ?? ((line) => console.error(line));
  }

  start(spec: ProcessSpec): void {
    if (this.procs.has(spec.name)) throw new Error(`${spec.name} is already supervised`);
    const p: Supervised = { spec, child: this.spawn(spec), exits: [], restarts: 0 };
    this.procs.set(spec.name, p);
    this.watch(p);
  }

  names(): string[] {
    return [...this.procs.keys()];
  }

  /** The pid of the process now running under `name` (a restart gives a new one). */
  pid(name: string): number | undefined {
    const p = this.procs.get(name);
    return p && p.child.exitCode === null && p.child.signalCode === null ? p.child.pid : undefined;
  }

  /** How many times `name` has been started again. */
  restarts(name: string): number {
    return this.procs.get(name)?.restarts ?? 0;
  }

  /** Sends `signal` to every process and resolves once all have exited (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    const running = [...this.procs.values()];
    for (const p of running) clearTimeout(p.timer);
    const exited = running.map((p) => this.exited(p.child));
    for (const p of running) if (this.alive(p.child)) p.child.kill(signal);
    const killer = setTimeout(() => running.forEach((p) => this.alive(p.child) && p.child.kill('SIGKILL')), timeoutMs);
    await Promise.all(exited);
    clearTimeout(killer);
  }

  private spawn(spec: ProcessSpec): ChildProcess {
    const out = this.opts.stdio ?? 'inherit';
    const child = fork(spec.entry, [], { env: spec.env, execArgv: [...process.execArgv, ...(spec.execArgv ?? [])], stdio: typeof out === 'number' ? ['ignore', out, out, 'ipc'] : out });
    this.emit('started', spec.name, child.pid);
    return child;
  }

  private watch(p: Supervised): void {
    p.child.once('exit', (code, signal) => {
      this.emit('exit', p.spec.name, code, signal);
      if (this.stopping) return;
      if (!this.opts.restart) {
        this.log(`launcher: ${p.spec.name} exited (${signal ?? code}); stopping the others`);
        this.emit('gave-up', p.spec.name);
        return;
      }
      const now = Date.now();
      p.exits = p.exits.filter((t) => now - t < 60_000).concat(now);
      if (p.exits.length > this.maxRestarts) {
        this.log(`launcher: ${p.spec.name} exited ${p.exits.length} times within a minute; giving up`);
        this.emit('gave-up', p.spec.name);
        return;
      }
      const delay = Math.min(30_000, this.delayMs * 2 ** (p.exits.length - 1));
      this.log(`launcher: ${p.spec.name} exited (${signal ?? code}); starting it again in ${delay} ms`);
      p.timer = setTimeout(() => {
        if (this.stopping) return;
        p.restarts++;
        p.child = this.spawn(p.spec);
        this.watch(p);
      }, delay);
    });
  }

  private alive(child: ChildProcess): boolean {
    return child.exitCode === null && child.signalCode === null;
  }

  private exited(child: ChildProcess): Promise<void> {
    return this.alive(child) ? new Promise((r) => child.once('exit', () => r())) : Promise.resolve();
  }
}
