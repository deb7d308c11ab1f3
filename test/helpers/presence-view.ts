import type { PresenceFrame, ServerFrame } from '../../src/protocol/index.js';

/** key → phx_refs → meta: a presence state as a client holds it. */
export type View = Map<string, Map<string, Record<string, unknown>>>;

/**
 * What a client knows of `topic`'s presence after `frames`: the last state,
 * with every diff after it applied as Phoenix.Presence's clients apply them.
 * Throws when a diff comes before any state, or leaves a meta the client
 * never saw (the server's order or its batching is wrong).
 */
export function presenceView(frames: readonly ServerFrame[], topic: string): View | null {
  let view: View | null = null;
  for (const frame of frames) {
    if (frame.type !== 'presence' || frame.topic !== topic) continue;
    if (frame.event === 'state') view = toView(frame.data);
    else {
      if (view === null) throw new Error(`a presence diff on ${topic} came before its state`);
      applyDiff(view, frame.data);
    }
  }
  return view;
}

/** Applies one diff; a leave of a meta not in `view` throws. */
export function applyDiff(view: View, diff: Extract<PresenceFrame, { event: 'diff' }>['data']): void {
  for (const [key, { metas }] of Object.entries(diff.leaves)) {
    const held = view.get(key);
    for (const meta of metas) {
      if (!held?.delete(meta.phx_ref)) throw new Error(`a leave of ${key}/${meta.phx_ref}, which was not present`);
    }
    if (held?.size === 0) view.delete(key);
  }
  for (const [key, { metas }] of Object.entries(diff.joins)) {
    let held = view.get(key);
    if (!held) view.set(key, (held = new Map()));
    for (const meta of metas) held.set(meta.phx_ref, meta);
  }
}

export function toView(state: Extract<PresenceFrame, { event: 'state' }>['data']): View {
  return new Map(Object.entries(state).map(([key, { metas }]) => [key, new Map(metas.map((meta) => [meta.phx_ref, meta as Record<string, unknown>]))]));
}

/** A view as sorted `key: [field values]` for comparing (`field` of each meta, e.g. `tab`). */
export function summary(view: View | null, field: string): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const [key, metas] of [...(view ?? new Map())].sort(([a], [b]) => a.localeCompare(b))) {
    out[key] = [...metas.values()].map((meta) => meta[field]).sort();
  }
  return out;
}
