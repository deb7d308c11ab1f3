import type { LogLine, ServerProcess } from '../test/helpers/server-process.js';

/** pino's numeric level of `warn`. */
const WARN = 40;
/** Warning and error lines kept per node, as evidence. */
const KEEP = 50;

/** What one node logged: every message counted, warnings and errors kept (the first {@link KEEP}). */
export interface NodeLogSummary {
  readonly counts: Readonly<Record<string, number>>;
  readonly warnings: number;
  readonly errors: number;
  readonly kept: readonly LogLine[];
}

/**
 * Digests a node's JSON log as it runs: a node at the default level logs
 * each connection opened and closed, which over a long soak would pile up in
 * {@link ServerProcess.logs}; {@link drain} counts the lines by message and
 * level, keeps warnings and errors, and empties the array.
 */
export class NodeLogDigest {
  readonly #node: ServerProcess;
  readonly #counts: Record<string, number> = {};
  readonly #kept: LogLine[] = [];
  #warnings = 0;
  #errors = 0;

  constructor(node: ServerProcess) {
    this.#node = node;
  }

  get summary(): NodeLogSummary {
    return { counts: { ...this.#counts }, warnings: this.#warnings, errors: this.#errors, kept: [...this.#kept] };
  }

  /** Counts the lines logged since the last call (call it only while nothing waits on the log). */
  drain(): void {
    for (const line of this.#node.logs.splice(0)) {
      const msg = String(line['msg']);
      this.#counts[msg] = (this.#counts[msg] ?? 0) + 1;
      const level = Number(line['level']);
      if (level < WARN) continue;
      if (level === WARN) this.#warnings++;
      else this.#errors++;
      if (this.#kept.length < KEEP) this.#kept.push(line);
    }
  }
}
