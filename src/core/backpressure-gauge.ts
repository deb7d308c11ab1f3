import type { Logger } from 'pino';
import { CLOSE_CODES } from '../protocol/index.js';
import type { Publisher } from './event-router.js';
import type { SessionState } from './session-types.js';

/** Tells the replication stream whether to wait for sockets to drain. */
export interface Pacer {
  /** True while some socket holds more than the high-water mark of unsent bytes. */
  congested(): boolean;
}

/** Thresholds of a {@link BackpressureGauge}. */
export interface BackpressureGaugeOptions {
  /** Unsent bytes above which a socket counts as congested (the stream waits for it). */
  readonly highWaterBytes: number;
  /** Unsent bytes past which a socket is closed with 1013 at once (`MAX_BACKPRESSURE_BYTES`). */
  readonly maxBytes: number;
  /** A socket congested this long is closed with 1013 (slow consumer), even while it drains. */
  readonly graceMs: number;
  /** A congested socket whose buffer has not shrunk for this long has stopped reading: closed with 1013. */
  readonly stallMs: number;
  /** At most one sweep per this many ms; in between the last answer stands. */
  readonly sweepIntervalMs: number;
  /**
   * The share of one core sweeps may take: a sweep that took d ms is followed
   * by at least d / share ms without one, so many sockets mean rarer sweeps,
   * not a cost per event that grows with the connection count.
   */
  readonly sweepCpuShare: number;
  readonly logger: Logger;
}

/**
 * Flow control between the replication stream and the sockets. A burst (say a
 * 200,000-row transaction) is decoded no faster than subscribers take it:
 * while most sockets are above the high-water mark the stream stops reading,
 * so memory stays bounded and consumers that are merely slower than the
 * decoder still receive everything. A minority of slow sockets never holds
 * the stream (fast consumers see no added latency): they may buffer up to
 * `maxBytes`. A socket past `maxBytes`, congested past the grace period, or
 * not draining for `stallMs` while the stream is held for it, is closed with
 * 1013; its client reconnects and resumes with `since`. (uWS's own
 * `maxBackpressure` close remains the hard memory cap.)
 *
 * The sweep reads each socket's buffered amount, so it runs at most once per
 * `sweepIntervalMs` and only when the stream asks, i.e. while events flow;
 * it is never part of the per-event path. With many sockets it runs less
 * often still, so that it never takes more than `sweepCpuShare` of a core
 * (at 20,000 sockets every 20 ms it had taken about 10%, which doubled the
 * CPU per change of the scoped fan-out benchmark).
 *
 * That CPU share is measured in wall time, so it does not bound what a
 * socket gains between two sweeps: a sweep that was descheduled looks slow
 * and postpones the next one by 100 times as long, and a burst in that gap
 * can carry a socket past uWS's hard cap, which cuts it with 1006 instead of
 * our 1013. So once half of `maxBytes` has been published (through
 * {@link metered}) since the last sweep, the next `congested()` after
 * `sweepIntervalMs` sweeps, however slow the last sweep seemed.
 */
export class BackpressureGauge implements Pacer {
  readonly #sessions: ReadonlySet<SessionState>;
  readonly #options: BackpressureGaugeOptions;
  #lastSweep = 0;
  #nextSweepAfterMs: number;
  #congested = false;
  #slowClosed = 0;
  /** Bytes (string length for text) published since the last sweep. */
  #published = 0;

  constructor(sessions: ReadonlySet<SessionState>, options: BackpressureGaugeOptions) {
    this.#sessions = sessions;
    this.#options = options;
    this.#nextSweepAfterMs = options.sweepIntervalMs;
  }

  /** Connections closed as slow consumers so far. */
  get slowConsumersClosed(): number {
    return this.#slowClosed;
  }

  /** `publisher`, counting what it publishes towards the next sweep (see the class). */
  metered(publisher: Publisher): Publisher {
    return {
      publish: (topic, message, isBinary) => {
        this.#published += typeof message === 'string' ? message.length : message.byteLength;
        return publisher.publish(topic, message, isBinary);
      },
      numSubscribers: (topic) => publisher.numSubscribers(topic),
    };
  }

  congested(): boolean {
    const now = Date.now();
    const sinceSweep = now - this.#lastSweep;
    if (sinceSweep < this.#options.sweepIntervalMs) return this.#congested;
    if (sinceSweep < this.#nextSweepAfterMs && this.#published < this.#options.maxBytes / 2) return this.#congested;
    this.#lastSweep = now;
    this.#published = 0;
    const started = performance.now();
    const { highWaterBytes, graceMs } = this.#options;
    // While the stream is held, a socket that does not drain has stopped reading.
    const held = this.#congested;
    let congested = 0;
    let slow: SessionState[] | null = null;
    for (const conn of this.#sessions) {
      const buffered = conn.port.bufferedBytes();
      if (buffered <= highWaterBytes) {
        conn.congestedSince = 0;
        continue;
      }
      if (conn.congestedSince === 0 || buffered < conn.congestedBytes) {
        conn.congestedSince ||= now;
        conn.drainedAt = now;
      }
      conn.congestedBytes = buffered;
      if (buffered > this.#options.maxBytes || now - conn.congestedSince > graceMs || (held && now - conn.drainedAt > this.#options.stallMs)) {
        (slow ??= []).push(conn);
      } else {
        congested++;
      }
    }
    for (const conn of slow ?? []) {
      this.#slowClosed++;
      this.#options.logger.warn({ connection: conn.id, client: conn.client, bufferedBytes: conn.congestedBytes }, 'closing slow consumer');
      conn.port.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: reconnect and resume with since');
    }
    // Hold the stream only when most sockets are behind (a burst outruns everyone): a few slow
    // ones must not delay the rest; they get up to maxBytes and are closed past it.
    const open = this.#sessions.size - (slow?.length ?? 0);
    this.#congested = congested > 0 && congested * 2 > open;
    const tookMs = performance.now() - started;
    this.#nextSweepAfterMs = Math.max(this.#options.sweepIntervalMs, tookMs / this.#options.sweepCpuShare);
    return this.#congested;
  }
}
