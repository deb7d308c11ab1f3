/** A node's memory over a window of the steady phase, and whether it stayed flat. */
export interface Flatness {
  /** The window judged: its start and end, in minutes into the steady phase, and the samples in it. */
  readonly fromMinute: number;
  readonly toMinute: number;
  readonly samples: number;
  readonly meanMiB: number;
  /** Least-squares slope of RSS over time. */
  readonly slopeMiBPerMinute: number;
  /** The slope times the window's length: growth over the window, with the noise (the GC's sawtooth) fitted away. */
  readonly fittedGrowthMiB: number;
  /** Largest minus smallest sample in the window. */
  readonly spreadMiB: number;
  /** Standard deviation of the samples around the fitted line: the noise. */
  readonly noiseMiB: number;
  /** Fitted growth allowed: twice the noise, and at least {@link MIN_TOLERANCE_MIB}. */
  readonly toleranceMiB: number;
  /** `true`/`false` once the window is as long as required; `null` (not judged) for shorter runs. */
  readonly flat: boolean | null;
}

/** The window: no growth over the last 20 minutes beyond noise. */
export const WINDOW_MINUTES = 20;
/** Growth below this is not judged a leak however quiet the samples are. */
export const MIN_TOLERANCE_MIB = 10;

/**
 * Judges one node's RSS series (`[minute into the steady phase, MiB]`). The
 * window is the last {@link WINDOW_MINUTES} minutes; a run too short for
 * that (CI size, a medium run) is reported over everything after its first
 * fifth (connections settling, the replay window filling) and not judged.
 *
 * Flat means the growth the least-squares line gives over the window stays
 * within the noise: twice the samples' standard deviation around that line
 * (V8's heap grows and shrinks by tens of MiB between collections), and at
 * least {@link MIN_TOLERANCE_MIB}. A steady leak shows as a slope whose
 * growth over 20 minutes stands out of that band.
 */
export function judgeFlatness(series: ReadonlyArray<readonly [number, number]>, steadyMinutes: number): Flatness | null {
  const long = steadyMinutes >= WINDOW_MINUTES;
  const from = long ? steadyMinutes - WINDOW_MINUTES : steadyMinutes / 5;
  const points = series.filter(([minute]) => minute >= from);
  if (points.length < 3) return null;
  const n = points.length;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  const sxx = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  const sxy = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const residuals = points.map(([x, y]) => y - (meanY + slope * (x - meanX)));
  const noiseMiB = Math.sqrt(residuals.reduce((sum, r) => sum + r * r, 0) / Math.max(1, n - 2));
  const ys = points.map(([, y]) => y);
  const fromMinute = points[0]![0];
  const toMinute = points.at(-1)![0];
  const fittedGrowthMiB = slope * (toMinute - fromMinute);
  const toleranceMiB = Math.max(MIN_TOLERANCE_MIB, 2 * noiseMiB);
  return {
    fromMinute,
    toMinute,
    samples: n,
    meanMiB: meanY,
    slopeMiBPerMinute: slope,
    fittedGrowthMiB,
    spreadMiB: Math.max(...ys) - Math.min(...ys),
    noiseMiB,
    toleranceMiB,
    flat: long ? fittedGrowthMiB <= toleranceMiB : null,
  };
}
