/** What every door counts for /status and /metrics. */
export interface DoorCounters {
  /** Frames refused by the door's rate limiter, and connections closed with 1008 for going on. */
  rateLimited(): { refused: number; closed: number };
}
