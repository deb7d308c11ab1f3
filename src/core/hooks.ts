import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import { ERROR_CODES, type AggregateSpec, type ErrorCode, type EventKind, type FilterSpec } from '../protocol/index.js';

/** A connection as hooks see it. */
export interface HookConnection {
  readonly id: string;
  /** The `client=` name it gave, or `''`. */
  readonly client: string;
  /** `live`, `phoenix` or `supabase`. */
  readonly door: string;
  readonly principal: Principal;
}

/** Where a message goes, and who sends it (`connection: null`: the admin API or the host app). */
export interface MessageContext {
  /** The topic written to; `@me` for a direct message. */
  readonly topic: string;
  /** A direct message's recipient (`sub`). */
  readonly to?: string;
  readonly principal: Principal;
  readonly connection: string | null;
}

/** What a subscription asks for, besides its topic. */
export interface SubscribeContext {
  readonly filter?: FilterSpec;
  readonly events?: readonly EventKind[];
  readonly since?: string;
  readonly snapshot?: boolean;
  readonly aggregate?: AggregateSpec;
  readonly connection: string;
}

/** What `authenticate` sees of an upgrade request (copied before anything is awaited). */
export interface AuthRequest {
  /** `live`, `phoenix` or `supabase`. */
  readonly door: string;
  /** Every request header, lower-case names (`cookie`, `authorization`, `x-api-key`, …). */
  readonly headers: Readonly<Record<string, string>>;
  /** The query string, without `?`. */
  readonly query: string;
  /** The token the door found (`?token=`, bearer, subprotocol, `apikey`), or `''`. */
  readonly token: string;
  readonly remoteAddress: string;
}

/** Who `authenticate` says a connection is: `sub`, `role` (admins when it is `ADMIN_ROLE`), claims for group policies. */
export interface AuthPrincipal {
  readonly sub: string;
  readonly role?: string | null;
  readonly claims?: Readonly<Record<string, unknown>>;
  /** When the connection must end (ms since the epoch); default: never. */
  readonly expiresAt?: number | null;
}

/** `authenticate`'s answer: nothing (the JWT check decides), `{principal}`, or `{refuse}` with an HTTP status 400–499. */
export type AuthVerdict = void | undefined | { readonly principal: AuthPrincipal } | { readonly refuse: HookRefusal & { readonly status: number } };

/** A refusal a hook returns: the client gets this code and message. */
export interface HookRefusal {
  readonly code: ErrorCode;
  readonly message: string;
}

/** `onMessage`'s answer: nothing (allow), `{cancel}` or `{modify}` (the message stored and delivered instead). */
export type MessageVerdict = void | undefined | { readonly cancel: HookRefusal } | { readonly modify: unknown };

/** `onSubscribe`'s answer: nothing (allow) or `{refuse}`. */
export type SubscribeVerdict = void | undefined | { readonly refuse: HookRefusal };

type Awaitable<T> = T | Promise<T>;

/**
 * The host app's hooks (docs/library.md, "Hooks"): called on the core API,
 * so on every door, and never per event per subscriber. Each may be async;
 * one that throws, times out or answers something else than its contract
 * fails that request with `INTERNAL` (and a correlation id in the log),
 * never the server.
 */
export interface RowcastHooks {
  /** An upgrade (every door), before the JWT check: decides who the connection is, refuses it, or leaves it to the token. */
  readonly authenticate?: (request: AuthRequest) => Awaitable<AuthVerdict>;
  /** A connection opened (after its token was accepted). Its failure is logged, nothing else. */
  readonly onConnect?: (connection: HookConnection) => Awaitable<void>;
  /** A connection closed, with the WebSocket close code. Its failure is logged. */
  readonly onClose?: (connection: HookConnection, code: number) => Awaitable<void>;
  /** A message for a custom topic (`new-message`, Supabase broadcast), before it is stored or delivered. */
  readonly onMessage?: (message: unknown, context: MessageContext) => Awaitable<MessageVerdict>;
  /** A subscription to `topic`, after the read policies allowed it and before it is made. */
  readonly onSubscribe?: (principal: Principal, topic: string, context: SubscribeContext) => Awaitable<SubscribeVerdict>;
}

/** A hook threw, timed out or broke its contract: the request fails with `INTERNAL`. */
export class HookError extends Error {
  override readonly name = 'HookError';
}

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Runs the host's hooks with a timeout each; without hooks every call is a no-op. */
export class Hooks {
  readonly #hooks: RowcastHooks;
  readonly #timeoutMs: number;
  readonly #logger: Logger;

  readonly #adminRole: string;

  constructor(hooks: RowcastHooks, timeoutMs: number, logger: Logger, adminRole = 'admin') {
    this.#hooks = hooks;
    this.#timeoutMs = timeoutMs;
    this.#logger = logger;
    this.#adminRole = adminRole;
  }

  /** Whether upgrades must wait for `authenticate`. */
  get authenticates(): boolean {
    return this.#hooks.authenticate !== undefined;
  }

  /** The principal `authenticate` gives, its refusal, or `null` (the token decides). */
  async authenticate(request: AuthRequest): Promise<{ readonly principal: Principal } | { readonly refusal: HookRefusal & { readonly status: number } } | null> {
    const hook = this.#hooks.authenticate;
    if (!hook) return null;
    const verdict = await this.#run('authenticate', () => hook(request));
    if (verdict === undefined || verdict === null) return null;
    if (typeof verdict === 'object' && 'refuse' in verdict) {
      const { status } = (verdict.refuse ?? {}) as { status?: unknown };
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 499) throw new HookError('hook authenticate: a refusal has an HTTP status 400–499');
      return { refusal: { ...refusal('authenticate', verdict.refuse), status } };
    }
    if (typeof verdict === 'object' && 'principal' in verdict) {
      const { sub, role = null, claims = {}, expiresAt = null } = (verdict.principal ?? {}) as Partial<AuthPrincipal>;
      if (typeof sub !== 'string' || sub === '' || sub.length > 256) throw new HookError('hook authenticate: a principal has a sub (1–256 characters)');
      if (role !== null && typeof role !== 'string') throw new HookError('hook authenticate: role is a string');
      const principal: Principal = Object.freeze({ sub, role, isAdmin: role === this.#adminRole, expiresAt, claims: Object.freeze({ ...claims }) });
      return { principal };
    }
    throw new HookError('hook authenticate: answer nothing, {principal: {sub, role?, claims?}} or {refuse: {status, code, message}}');
  }

  /** The message to store and deliver (the original, or what `onMessage` made of it); throws the refusal as a coded error's fields. */
  async message(message: unknown, context: MessageContext): Promise<{ readonly message: unknown } | { readonly refusal: HookRefusal }> {
    const hook = this.#hooks.onMessage;
    if (!hook) return { message };
    const verdict = await this.#run('onMessage', () => hook(message, context));
    if (verdict === undefined || verdict === null) return { message };
    if (typeof verdict === 'object' && 'cancel' in verdict) return { refusal: refusal('onMessage', verdict.cancel) };
    if (typeof verdict === 'object' && 'modify' in verdict) {
      if (verdict.modify === undefined) throw new HookError('hook onMessage: modify needs a message');
      return { message: verdict.modify };
    }
    throw new HookError('hook onMessage: answer nothing, {cancel: {code, message}} or {modify: message}');
  }

  /** `null` to allow, else the refusal. */
  async subscribe(principal: Principal, topic: string, context: SubscribeContext): Promise<HookRefusal | null> {
    const hook = this.#hooks.onSubscribe;
    if (!hook) return null;
    const verdict = await this.#run('onSubscribe', () => hook(principal, topic, context));
    if (verdict === undefined || verdict === null) return null;
    if (typeof verdict === 'object' && 'refuse' in verdict) return refusal('onSubscribe', verdict.refuse);
    throw new HookError('hook onSubscribe: answer nothing or {refuse: {code, message}}');
  }

  connected(connection: HookConnection): void {
    const hook = this.#hooks.onConnect;
    if (hook) this.#notify('onConnect', connection, () => hook(connection));
  }

  closed(connection: HookConnection, code: number): void {
    const hook = this.#hooks.onClose;
    if (hook) this.#notify('onClose', connection, () => hook(connection, code));
  }

  /** A notification hook: its failure is logged (with a correlation id), nothing waits for it. */
  #notify(name: string, connection: HookConnection, call: () => Awaitable<void>): void {
    this.#run(name, call).catch((error: unknown) => {
      this.#logger.error({ err: error, correlationId: randomUUID(), connection: connection.id }, `hook ${name} failed`);
    });
  }

  async #run<T>(name: string, call: () => Awaitable<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HookError(`hook ${name} did not answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      return await Promise.race([Promise.resolve().then(call), timeout]);
    } catch (error) {
      if (error instanceof HookError) throw error;
      throw new HookError(`hook ${name} threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

function refusal(hook: string, value: unknown): HookRefusal {
  const { code, message } = (value ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || !CODES.has(code) || typeof message !== 'string') {
    throw new HookError(`hook ${hook}: a refusal is {code, message} with one of the protocol's error codes`);
  }
  return { code: code as ErrorCode, message };
}
