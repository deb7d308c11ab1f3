import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { minLsn, type Lsn } from '../replication/lsn.js';
import type { ReplayWindow, WindowFloorState } from './replay-window.js';

/** What the floors are kept for and how. */
export interface WindowFloorsOptions {
  readonly db: Database;
  readonly slotName: string;
  readonly window: ReplayWindow;
  /** Where the stream has handed events off to (every later event is still to come). */
  readonly handedOff: () => Lsn;
  /** The state the window started from (what the table held at start-up), or `null`. */
  readonly restored: WindowFloorState | null;
  /** Where this process's stream started. */
  readonly startLsn: Lsn;
  readonly logger: Logger;
  /** How often a changed state is written (ms). */
  readonly intervalMs?: number;
}

/**
 * Keeps the replay window's floors in `rowcast.replay_floors` so that
 * `since` works across a restart (docs/delivery.md): after it, the window
 * starts from the floors the last process wrote instead of from the slot's
 * position, and a client that saw no event before the restart is resumed
 * when what it missed is still in the stream.
 *
 * That is only true if every event after the written floor is still in the
 * stream, so the slot is never acknowledged past an event after it. While
 * the window's floors equal the last ones written, that holds by itself (an
 * event after the floor is in the window, which holds the slot back, or is
 * still to come). While they differ (events pushed out of a full window, a
 * read rule changed), {@link holdBack} keeps the slot at the position the
 * written floors were read at, until the new ones are written.
 */
export class WindowFloors {
  readonly #options: WindowFloorsOptions;
  /** The state last written (or restored), as compared: `null` before the first write. */
  #writtenKey: string | null;
  /** Where the slot could be acknowledged when the written state was read. */
  #writtenAt: Lsn;
  #writing = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: WindowFloorsOptions) {
    this.#options = options;
    this.#writtenKey = options.restored ? keyOf(options.restored) : null;
    this.#writtenAt = options.startLsn;
  }

  /** The floors kept for `slotName`, or `null` (none yet, or the table is unreadable). */
  static async load(db: Database, slotName: string): Promise<WindowFloorState | null> {
    const row = await db.selectFrom('rowcast.replay_floors').select(['floor', 'topic_floors']).where('slot_name', '=', slotName).executeTakeFirst();
    return row ? { floor: row.floor, topics: row.topic_floors } : null;
  }

  /** The slot was made anew: floors kept for an earlier slot of that name say nothing about it. */
  static async forget(db: Database, slotName: string): Promise<void> {
    await db.deleteFrom('rowcast.replay_floors').where('slot_name', '=', slotName).execute();
  }

  start(): void {
    this.#timer = setInterval(() => void this.#write(), this.#options.intervalMs ?? 500);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The slot may be acknowledged up to this position (`null`: no limit from the floors). */
  holdBack(): Lsn | null {
    const state = this.#options.window.floors();
    if (state !== null && keyOf(state) === this.#writtenKey) return null;
    return this.#writtenAt;
  }

  async #write(): Promise<void> {
    if (this.#writing) return;
    const { window, db, slotName, handedOff, logger } = this.#options;
    const state = window.floors();
    if (state === null) return;
    const key = keyOf(state);
    if (key === this.#writtenKey) return;
    // Every event after this state's floor is in the window or still to come: at or after this position.
    const at = minLsn(window.holdBack(), handedOff()) ?? handedOff();
    this.#writing = true;
    try {
      await db
        .insertInto('rowcast.replay_floors')
        .values({ slot_name: slotName, floor: state.floor, topic_floors: JSON.stringify(state.topics) as never, updated_at: new Date() })
        .onConflict((oc) => oc.column('slot_name').doUpdateSet({ floor: state.floor, topic_floors: JSON.stringify(state.topics) as never, updated_at: new Date() }))
        .execute();
      this.#writtenKey = key;
      this.#writtenAt = at;
    } catch (error) {
      logger.warn({ err: error }, 'could not keep the replay window floors (resume across a restart waits for the next write)');
    } finally {
      this.#writing = false;
    }
  }
}

function keyOf(state: WindowFloorState): string {
  return JSON.stringify([state.floor, Object.entries(state.topics).sort(([a], [b]) => (a < b ? -1 : 1))]);
}
