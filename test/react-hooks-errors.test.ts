/**
 * The React hooks' failures, as a component sees them: `useTopic` on a
 * topic that does not exist shows `status: 'error'` with `TOPIC_NOT_FOUND`
 * (in strict mode too), `usePublish`'s function rejects with a
 * `RowcastClientError` whose `code` says why (a non-writer, a missing
 * topic; even an unencodable message is a rejection, not a throw), and
 * `useLiveRows` accepts an `interface` as its row type, whose fields match
 * the values the server sends. Real components rendered with react-dom into
 * happy-dom's document, against the real server, through the built packages.
 */
import { GlobalRegistrator } from '@happy-dom/global-registrator';
import test from 'ava';
import { createElement as h, StrictMode, useState, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient, RowcastClientError } from '@rowcast/client';
import { RowcastProvider, useLiveRows, usePublish, useTopic, type Publish } from '@rowcast/react';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';

GlobalRegistrator.register();

/** The few DOM parts used here (the project compiles without the DOM lib). */
interface ElementLike {
  readonly textContent: string | null;
  remove(): void;
}
const document = (globalThis as unknown as { document: { createElement(tag: string): ElementLike; body: { append(node: ElementLike): void } } }).document;
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;

/** Renders `app` under a provider whose client connects as `sub`; both go when the test ends. */
function mount(t: { teardown(fn: () => void): void }, liveUrl: string, app: ReactNode, sub = 'alice'): ElementLike {
  const client = createClient({ url: liveUrl, token: signToken({ sub }) });
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container as unknown as Parameters<typeof createRoot>[0]);
  root.render(h(StrictMode, null, h(RowcastProvider, { client }, app)));
  t.teardown(() => {
    root.unmount();
    client.close();
    container.remove();
  });
  return container;
}

const text = (container: ElementLike) => container.textContent ?? '';

/** Unhandled rejections while a test runs: there must be none. */
function unhandledRejections(t: { teardown(fn: () => void): void }): unknown[] {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  t.teardown(() => process.off('unhandledRejection', listener));
  return seen;
}

function Feed(props: { readonly topic: string }): ReactNode {
  const { status, error, events } = useTopic<{ message: { text: string }; sender: string | null }>(props.topic);
  if (status === 'error') return h('p', null, `error ${error?.code} ${error instanceof RowcastClientError}`);
  return h('p', null, `${status} ${events.map((e) => `${e.data.attributes.sender}:${e.data.attributes.message.text}`).join(',')}`);
}

test.serial('useTopic on a topic that does not exist: status error with TOPIC_NOT_FOUND, in strict mode', withServer, {}, async (t, { liveUrl }) => {
  const container = mount(t, liveUrl, h(Feed, { topic: 'no-such-topic' }));
  await waitFor('the refusal to be shown', () => text(container).startsWith('error'));
  t.is(text(container), 'error TOPIC_NOT_FOUND true');
});

test.serial('useTopic on a topic this user may not read is TOPIC_NOT_FOUND too; on one that exists it goes live', withServer, {}, async (t, { liveUrl, connect }) => {
  const admin = await connect({ sub: 'ops', role: 'admin' });
  await admin.call('create-topic', { name: 'staff', readers: 'admin' });
  await admin.call('create-topic', { name: 'lobby', writers: 'authenticated' });
  const container = mount(t, liveUrl, h('div', null, h(Feed, { topic: 'staff' }), h(Feed, { topic: 'lobby' })));
  await waitFor('both answers', () => text(container).includes('error') && text(container).includes('live'));
  t.is(text(container), 'error TOPIC_NOT_FOUND truelive ');
});

let publish: Publish | undefined;
function Chat(props: { readonly topic: string }): ReactNode {
  const { status, events } = useTopic<{ message: { text: string } }>(props.topic);
  publish = usePublish(props.topic);
  const [problem, setProblem] = useState('none');
  return h(
    'div',
    null,
    h('p', null, `${status} ${events.map((e) => e.data.attributes.message.text).join(',')}`),
    h('button', { onClick: () => publish!({ text: 'hi' }).then(() => setProblem('none'), (error: RowcastClientError) => setProblem(error.code)) }, 'send'),
    h('p', null, `problem:${problem}`),
  );
}

test.serial('usePublish rejects with a RowcastClientError: FORBIDDEN for a user who may not write, TOPIC_NOT_FOUND without the topic; caught, nothing is unhandled', withServer, {}, async (t, { liveUrl, connect }) => {
  const unhandled = unhandledRejections(t);
  const admin = await connect({ sub: 'ops', role: 'admin' });
  await admin.call('create-topic', { name: 'announcements', writers: 'admin' });
  const container = mount(t, liveUrl, h(Chat, { topic: 'announcements' }));
  await waitFor('live', () => text(container).startsWith('live'));

  const forbidden = await t.throwsAsync(publish!({ text: 'hi' }), { instanceOf: RowcastClientError });
  t.is(forbidden.code, 'FORBIDDEN');
  // The component's own handler: a click whose rejection is caught and shown.
  (globalThis as unknown as { document: { querySelector(s: string): { click(): void } } }).document.querySelector('button').click();
  await waitFor('the refusal to be shown', () => text(container).includes('problem:FORBIDDEN'));

  const missing = await t.throwsAsync(publishOnce(liveUrl, 'no-such-topic'), { instanceOf: RowcastClientError });
  t.is(missing.code, 'TOPIC_NOT_FOUND');

  // A message JSON cannot encode: a rejection too (JSON.stringify's TypeError), not a throw at the call.
  const call = publish!({ n: 1n } as never);
  t.true(call instanceof Promise);
  await t.throwsAsync(call, { instanceOf: TypeError });
  t.deepEqual(unhandled, []);
});

/** Publishes once through a `usePublish` of a component mounted for it, and returns that promise. */
async function publishOnce(liveUrl: string, topic: string): Promise<unknown> {
  let send: Publish | undefined;
  function Sender(): ReactNode {
    send = usePublish(topic);
    return null;
  }
  const client = createClient({ url: liveUrl, token: signToken({ sub: 'alice' }) });
  const container = document.createElement('div');
  const root = createRoot(container as unknown as Parameters<typeof createRoot>[0]);
  root.render(h(RowcastProvider, { client }, h(Sender)));
  try {
    await waitFor('the hook', () => send !== undefined);
    return await send!({ text: 'anyone?' });
  } finally {
    root.unmount();
    client.close();
  }
}

/** An `interface` (not a `type`) as the row type: it has no index signature, which `useLiveRows` used to require. */
interface Order {
  id: number | string; // bigserial (int8): a number while it is a safe integer
  owner_id: number | null; // int4
  amount: string | null; // numeric: a string, exactly as stored
  status: string | null; // text
  created_at: string; // timestamptz: ISO-8601 in UTC
}

const ORDERS = `
  CREATE TABLE "order" (id bigserial PRIMARY KEY, owner_id int, amount numeric, status text, created_at timestamptz NOT NULL DEFAULT '2026-11-22 10:00:00.5+00');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('order', 'public');`;

test.serial('useLiveRows<Order> with an interface: the rows carry the values the interface says (int8 a number, numeric a string, timestamptz an ISO string), ids are strings', withServer, { sql: ORDERS }, async (t, { liveUrl, db }) => {
  let seen: { rows: readonly Order[]; byId: ReadonlyMap<string, Order> } | undefined;
  function Orders(): ReactNode {
    const { rows, byId, status } = useLiveRows<Order>('order', { filter: { status: { eq: 'paid' } }, snapshot: [['0', { id: 0, owner_id: null, amount: null, status: 'paid', created_at: '' }]] });
    seen = { rows, byId };
    return h('ul', null, status, rows.map((row) => h('li', { key: String(row.id) }, `#${row.id} ${row.amount} ${row.status}`)));
  }
  await db.query(`INSERT INTO "order" (owner_id, amount, status) VALUES (42, 19.90, 'paid'), (43, 5, 'cancelled')`);
  const container = mount(t, liveUrl, h(Orders));
  await waitFor('the snapshot', () => text(container).startsWith('live'));
  t.is(text(container), 'live#1 19.90 paid');
  const [id, row] = [...seen!.byId][0]!;
  t.is(typeof id, 'string');
  t.deepEqual(row, { id: 1, owner_id: 42, amount: '19.90', status: 'paid', created_at: '2026-11-22T10:00:00.5Z' });
});
