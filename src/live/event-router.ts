import type { TemplatedApp } from 'uWebSockets.js';
import type { EventLog } from '../log/event-log.js';
import { adminPartition } from '../policies/audience-partitions.js';

/**
 * Publishes every event of the log to its audience partitions and to its
 * topic's admin partition. The per-recipient work is uWS's native fan-out;
 * this function's cost per event is the number of partitions of the row.
 *
 * @returns a live counter of events routed.
 */
export function routeEvents(log: EventLog, app: TemplatedApp): { readonly count: number } {
  const counter = { count: 0 };
  log.subscribe((event) => {
    counter.count++;
    const { partitions, frame } = event;
    for (let i = 0; i < partitions.length; i++) app.publish(partitions[i]!, frame, false);
    app.publish(adminPartition(event.topic), frame, false);
  });
  return counter;
}
