import type { EventKind } from '../../protocol/index.js';

/** A `postgres_changes` binding of a join, as sent, with the id the reply gives it. */
export interface Binding {
  /** The fields the client sent (`event`, `schema`, `table`, `filter`), echoed in the join reply exactly. */
  readonly echo: Readonly<Record<string, unknown>>;
  readonly id: number;
  /** The rowcast events it takes (`null`: all). */
  readonly events: readonly EventKind[] | null;
  readonly schema: string;
  /** `'*'`: every readable table of the schema. */
  readonly table: string;
  readonly filter: string | null;
  /** Why the binding cannot be served (it gets a `system` error), or `null`. */
  readonly problem: string | null;
}

const EVENTS: Readonly<Record<string, readonly EventKind[] | null>> = { '*': null, INSERT: ['create'], UPDATE: ['update'], DELETE: ['delete'] };
/** Longest schema, table or filter text looked at. */
const MAX_FIELD = 1024;

/**
 * Reads a join's `config.postgres_changes` (at most `max` bindings). Each
 * binding gets an id that depends only on what it asks for, so sockets that
 * bind alike share frames, and a binding the door cannot serve still gets
 * one (the reply lists every binding in order; the client checks that).
 */
export function readBindings(value: unknown, max: number): { ok: true; bindings: Binding[] } | { ok: false; reason: string } {
  if (value === undefined || value === null) return { ok: true, bindings: [] };
  if (!Array.isArray(value)) return { ok: false, reason: 'config.postgres_changes must be an array' };
  if (value.length > max) return { ok: false, reason: `at most ${max} postgres_changes bindings per channel (MAX_SUBSCRIPTIONS)` };
  const used = new Set<number>();
  const bindings: Binding[] = [];
  const seen = new Map<string, number>();
  for (const entry of value as unknown[]) {
    const binding = readBinding(entry);
    // Identical bindings share an id (and one subscription); different ones never do.
    const key = JSON.stringify([binding.events, binding.schema, binding.table, binding.filter, binding.problem]);
    let id = seen.get(key);
    if (id === undefined) {
      id = bindingId(key);
      while (used.has(id)) id = (id % 2_147_483_646) + 1;
      used.add(id);
      seen.set(key, id);
    }
    bindings.push({ ...binding, id });
  }
  return { ok: true, bindings };
}

function readBinding(entry: unknown): Omit<Binding, 'id'> {
  const fields = entry !== null && typeof entry === 'object' && !Array.isArray(entry) ? (entry as Record<string, unknown>) : {};
  const echo: Record<string, unknown> = {};
  for (const name of ['event', 'schema', 'table', 'filter']) if (name in fields) echo[name] = fields[name];
  const { event, schema, table = '*', filter = null } = fields;
  const fail = (problem: string): Omit<Binding, 'id'> => ({ echo, events: null, schema: '', table: '', filter: null, problem: `INVALID_ATTRIBUTES: ${problem}` });
  if (typeof event !== 'string' || !Object.hasOwn(EVENTS, event)) return fail(`event must be "*", "INSERT", "UPDATE" or "DELETE"`);
  if (typeof schema !== 'string' || schema === '' || schema.length > MAX_FIELD) return fail('schema must be a schema name');
  if (schema === '*') return fail('schema "*" is not supported: bind each schema (with table "*" for all of its tables)');
  if (typeof table !== 'string' || table === '' || table.length > MAX_FIELD) return fail('table must be a table name or "*"');
  if (filter !== null && (typeof filter !== 'string' || filter.length > MAX_FIELD)) return fail(`filter must be a string of at most ${MAX_FIELD} characters`);
  return { echo, events: EVENTS[event]!, schema, table, filter: filter === '' ? null : filter, problem: null };
}

/** A positive 31-bit id of a binding's key (FNV-1a). */
function bindingId(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return ((hash >>> 0) % 2_147_483_646) + 1;
}
