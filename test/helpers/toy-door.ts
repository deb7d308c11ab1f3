/**
 * A toy door. It exists only to prove the seam of "one core, several
 * doors": a second protocol is one small file outside src/ that
 * authenticates with the core, opens sessions through a SessionPort of its
 * own, subscribes through the core (keeping the handles) and renders events
 * with its own FrameEncoder. Permissions, limits and routing stay the core's.
 *
 * Its framing, one text line per frame:
 *   client → `SUB <topic>` | `UNSUB <topic>`
 *   server → `OK <topic>` | `ERR <CODE>` | `REVOKED <topic>` | `EV <topic> <kind> <id> <json attributes>`
 * The token comes as `?token=<JWT>`; a refused upgrade answers 401/403 with `ERR <CODE>` as its body.
 */
import type { TemplatedApp, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import type { Principal } from '../../src/auth/principal.js';
import type { RowcastCore } from '../../src/core/rowcast-core.js';
import type { SessionPort, SubscriptionHandle } from '../../src/core/session-types.js';
import type { Session } from '../../src/core/session.js';
import { RowcastError } from '../../src/errors.js';
import { encoderSlot, type FrameEncoder } from '../../src/events/event.js';

/** One `/toy` connection: the uWS socket's user data. */
interface ToyConnection {
  readonly principal: Principal;
  session: Session | null;
  /** One subscription per topic (`SUB` again replaces it). */
  readonly handles: Map<string, SubscriptionHandle>;
  /** Requests run in order: an `UNSUB` does not overtake the `SUB` before it. */
  queue: Promise<void>;
  /** Set in `close`: nothing may touch the socket after. */
  closed: boolean;
}

/** `EV <topic> <kind> <id> <json attributes>` (a delete shows the old row). */
export const toyEncoder: FrameEncoder = {
  slot: encoderSlot(),
  encode(event, kind) {
    const row = kind === 'delete' ? (event.old ?? event.row!) : event.row!;
    return `EV ${event.topic} ${kind} ${event.idOf(row)} ${JSON.stringify(row)}`;
  },
  encodeDropped: (event) => `ERR EVENT_DROPPED ${event.topic}`,
};

const FRAME = /^(SUB|UNSUB) (\S+)$/;
const decoder = new TextDecoder();

/** The `/toy` door, for `startServer`'s `doors`: made once from the core, mounted on every uWS app. */
export function toyDoor(core: RowcastCore): (app: TemplatedApp) => void {
  let connections = 0;

  const behavior: WebSocketBehavior<ToyConnection> = {
    upgrade: (res, req, context) => {
      let principal: Principal;
      try {
        principal = core.authenticate(req.getQuery('token') ?? '');
      } catch (error) {
        const code = error instanceof RowcastError ? error.code : 'INTERNAL';
        res.writeStatus(code === 'FORBIDDEN' ? '403 Forbidden' : code === 'INTERNAL' ? '500 Internal Server Error' : '401 Unauthorized').end(`ERR ${code}`);
        return;
      }
      const conn: ToyConnection = { principal, session: null, handles: new Map(), queue: Promise.resolve(), closed: false };
      res.upgrade(conn, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      const conn = ws.getUserData();
      conn.session = core.openSession({ id: `toy-${++connections}`, client: 'toy' }, conn.principal, port(ws));
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData();
      const match = isBinary ? null : FRAME.exec(decoder.decode(message));
      if (!match) {
        ws.send('ERR INVALID_MESSAGE');
        return;
      }
      conn.queue = conn.queue.then(() => run(ws, match[1] as 'SUB' | 'UNSUB', match[2]!));
    },
    close: (ws) => {
      const conn = ws.getUserData();
      conn.closed = true;
      if (conn.session) core.closeSession(conn.session);
    },
  };

  /** Runs one request through the core and answers it (never throws: its promise is the queue's). */
  async function run(ws: WebSocket<ToyConnection>, verb: 'SUB' | 'UNSUB', topic: string): Promise<void> {
    const conn = ws.getUserData();
    const reply = (line: string) => {
      if (!conn.closed) ws.cork(() => ws.send(line));
    };
    if (verb === 'UNSUB') {
      const handle = conn.handles.get(topic);
      conn.handles.delete(topic);
      reply(handle && conn.session!.unsubscribe(handle) ? `OK ${topic}` : 'ERR NOT_SUBSCRIBED');
      return;
    }
    try {
      await conn.session!.subscribe({ topics: [topic], encoder: toyEncoder, replaces: (name) => conn.handles.get(name) }, ({ handles }) => {
        conn.handles.set(topic, handles[0]!);
        reply(`OK ${topic}`);
      });
    } catch (error) {
      reply(`ERR ${error instanceof RowcastError ? error.code : 'INTERNAL'}`);
    }
  }

  /** How the core reaches one `/toy` socket. */
  function port(ws: WebSocket<ToyConnection>): SessionPort {
    const conn = ws.getUserData();
    return {
      door: 'toy',
      subscribeTopic: (topic) => {
        if (!conn.closed) ws.subscribe(topic);
      },
      unsubscribeTopic: (topic) => {
        if (!conn.closed) ws.unsubscribe(topic);
      },
      bufferedBytes: () => (conn.closed ? 0 : ws.getBufferedAmount()),
      revoked: (handle) => {
        if (conn.handles.get(handle.topic) === handle) conn.handles.delete(handle.topic);
        if (!conn.closed) ws.cork(() => ws.send(`REVOKED ${handle.topic}`));
      },
      close: (code, reason) => {
        if (!conn.closed) ws.end(code, reason);
      },
    };
  }

  return (app) => {
    app.ws('/toy', behavior);
  };
}
