/**
 * Issue 9, the React bindings (`@rowcast/react`): real components rendered
 * with react-dom into happy-dom's document, against the real server. The
 * package is imported by its own name, so its `exports` map is what is
 * tested, as an app would use it (the built `dist/`).
 */
import { GlobalRegistrator } from '@happy-dom/global-registrator';
import test from 'ava';
import { createElement as h, StrictMode, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { createClient, type RowcastClient } from '@rowcast/client';
import { RowcastProvider, useAggregate, useLiveRows, usePublish, useTopic } from '@rowcast/react';
import { recordingWebSocket } from './helpers/sdk-client.js';
import { waitFor } from './helpers/wait-for.js';
import { signToken, withServer } from './helpers/with-server.js';

/** Node's fetch: happy-dom's, registered below, applies browser CORS rules to the admin API. */
const nodeFetch = fetch;
GlobalRegistrator.register();

/** The few DOM parts used here (the project compiles without the DOM lib). */
interface ElementLike {
  readonly textContent: string | null;
  querySelectorAll(selector: string): { readonly length: number };
  remove(): void;
}
const document = (globalThis as unknown as { document: { createElement(tag: string): ElementLike; body: { append(node: ElementLike): void } } }).document;
// Updates come from the network, as in a browser: the tests wait for what the DOM shows instead of wrapping them in act().
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;

const TABLES = `
  CREATE TABLE orders (id int PRIMARY KEY, owner_id text NOT NULL, amount int NOT NULL);
  CREATE TABLE other (id int PRIMARY KEY);
  CREATE TABLE task (id int PRIMARY KEY, owner_id text NOT NULL, status text NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('orders', 'owner', 'owner_id'), ('task', 'owner', 'owner_id');
  INSERT INTO rowcast.table_policies (table_name, read) VALUES ('other', 'public');`;

interface Mounted {
  readonly client: RowcastClient;
  readonly container: ElementLike;
  readonly root: Root;
  readonly sent: string[];
}

async function mount(t: { teardown(fn: () => void): void }, liveUrl: string, app: ReactNode, strict = false): Promise<Mounted> {
  const sent: string[] = [];
  const client = createClient({ url: liveUrl, token: signToken({ sub: 'alice' }), client: 'react-test', WebSocket: recordingWebSocket(sent) });
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container as unknown as Parameters<typeof createRoot>[0]);
  const tree = h(RowcastProvider, { client }, app);
  root.render(strict ? h(StrictMode, null, tree) : tree);
  t.teardown(() => {
    client.close();
    container.remove();
  });
  return { client, container, root, sent };
}

const subscribes = (sent: string[]) => sent.filter((frame) => JSON.parse(frame).method === 'subscribe').length;
const text = (container: ElementLike) => container.textContent ?? '';

let renders = 0;
function Orders(): ReactNode {
  renders++;
  const { rows, status } = useLiveRows<{ id: number; amount: number }>('orders');
  return h('div', null, h('p', { className: 'status' }, status), h('ul', null, rows.map((row) => h('li', { key: row.id }, `${row.id}:${row.amount}`))));
}

test.serial('useLiveRows shows an inserted row, updates it, removes it on delete; re-renders only on change', withServer, { sql: TABLES }, async (t, { liveUrl, db }) => {
  renders = 0;
  const { container } = await mount(t, liveUrl, h(Orders));
  await waitFor('the subscription to be live', () => text(container).includes('live'));
  const settled = renders;

  await db.query(`INSERT INTO orders VALUES (1, 'alice', 10), (2, 'bob', 20)`);
  await waitFor('the inserted row', () => text(container).includes('1:10'));
  t.false(text(container).includes('2:20'), "bob's row is not alice's");
  t.is(renders, settled + 1);

  await db.query(`INSERT INTO other VALUES (1)`);
  await db.query(`UPDATE orders SET amount = 11 WHERE id = 1`);
  await waitFor('the update', () => text(container).includes('1:11'));
  // The insert into another table did not render this component.
  t.is(renders, settled + 2);

  await db.query(`DELETE FROM orders WHERE id = 1`);
  await waitFor('the delete', () => !text(container).includes('1:11'));
  t.is(container.querySelectorAll('li').length, 0);
});

test.serial('unmounting a component unsubscribes it on the server', withServer, { sql: TABLES }, async (t, { liveUrl, server, token }) => {
  const { container, root } = await mount(t, liveUrl, h(Orders));
  await waitFor('the subscription to be live', () => text(container).includes('live'));
  const subscriptions = async () => {
    const response = await nodeFetch(`http://127.0.0.1:${server.port}/admin/connections`, { headers: { authorization: `Bearer ${token({ sub: 'ops', role: 'admin' })}` } });
    const connections = (await response.json()) as Array<{ client: string; subscriptions: string[] }>;
    return connections.find((c) => c.client === 'react-test')?.subscriptions;
  };
  t.deepEqual(await subscriptions(), ['orders']);
  root.unmount();
  t.deepEqual(await waitFor('the unsubscribe', async () => ((await subscriptions())?.length === 0 ? [] : null)), []);
});

test.serial('strict mode mounts twice but subscribes once; each event renders once', withServer, { sql: TABLES }, async (t, { liveUrl, db }) => {
  let events = 0;
  function Feed(): ReactNode {
    const topic = useTopic('orders');
    events = topic.events.length;
    return h('p', null, `feed:${topic.status} ${topic.events.map((e) => e.data.id).join(',')}`);
  }
  const { container, sent } = await mount(t, liveUrl, h('div', null, h(Orders), h(Feed)), true);
  await waitFor('both subscriptions to be live', () => text(container).startsWith('live') && text(container).includes('feed:live'));
  await db.query(`INSERT INTO orders VALUES (7, 'alice', 70)`);
  await waitFor('the row', () => text(container).includes('7:70') && text(container).includes('feed:live 7'));
  // Orders and Feed share one server subscription (same topic, same options); strict mode's second mounts added none.
  t.is(subscribes(sent), 1);
  t.is(container.querySelectorAll('li').length, 1);
  t.is(events, 1);
});

test.serial('usePublish sends to a custom topic and useTopic shows the message', withServer, {}, async (t, { liveUrl, connect }) => {
  const admin = await connect({ sub: 'admin', role: 'admin' });
  await admin.call('create-topic', { name: 'lobby', writers: 'authenticated' });
  let send: ReturnType<typeof usePublish> | undefined;
  function Chat(): ReactNode {
    const { events, status } = useTopic<{ message: { text: string } }>('lobby');
    send = usePublish('lobby');
    return h('p', null, `${status}|${events.map((e) => e.data.attributes.message.text).join('|')}`);
  }
  const { container } = await mount(t, liveUrl, h(Chat));
  await waitFor('live', () => text(container).startsWith('live'));
  await send!({ text: 'hello from react' });
  await waitFor('the message', () => text(container).includes('hello from react'));
  t.pass();
});

test.serial('useLiveRows without load renders the server snapshot (the rows alice may read), then an inserted row', withServer, { sql: TABLES }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO orders VALUES (1, 'alice', 10), (2, 'bob', 20), (3, 'alice', 30)`);
  const { container, sent } = await mount(t, liveUrl, h(Orders));
  // `live` once the rows are there: never a live empty list before them.
  await waitFor('the snapshot', () => text(container).startsWith('live'));
  t.true(text(container).includes('1:10') && text(container).includes('3:30'));
  t.false(text(container).includes('2:20'), "bob's row is not alice's");
  t.is(container.querySelectorAll('li').length, 2);
  t.like(JSON.parse(sent.find((frame) => JSON.parse(frame).method === 'subscribe')!), { attributes: { topicName: 'orders', snapshot: true } });

  await db.query(`INSERT INTO orders VALUES (4, 'alice', 40), (5, 'bob', 50)`);
  await waitFor('the inserted row', () => text(container).includes('4:40'));
  t.false(text(container).includes('5:50'));
  t.is(container.querySelectorAll('li').length, 3);
});

function TaskCounts(props: { readonly groupBy: string }): ReactNode {
  const { groups, total, status, error } = useAggregate('task', { groupBy: props.groupBy });
  if (status === 'error') return h('p', null, `error ${error?.code}`);
  return h('p', null, `${status} ${[...groups].map(([key, count]) => `${String(key)}:${count}`).sort().join(' ')} total:${total}`);
}

test.serial('useAggregate counts the rows alice may read per group, then changes update the counts; a new groupBy counts anew', withServer, { sql: TABLES }, async (t, { liveUrl, db }) => {
  await db.query(`INSERT INTO task VALUES (1, 'alice', 'open'), (2, 'alice', 'open'), (3, 'alice', 'done'), (4, 'bob', 'open')`);
  const { client, container, root, sent } = await mount(t, liveUrl, h(TaskCounts, { groupBy: 'status' }), true);
  // `live` once the counts are there: never a live zero before them.
  await waitFor('the counts', () => text(container).startsWith('live'));
  t.is(text(container), 'live done:1 open:2 total:3');
  // Strict mode mounted twice; one subscribe.
  t.is(subscribes(sent), 1);
  t.like(JSON.parse(sent.find((frame) => JSON.parse(frame).method === 'subscribe')!), { attributes: { topicName: 'task', aggregate: { count: true, groupBy: 'status' } } });

  await db.query(`UPDATE task SET status = 'done' WHERE id = 1`);
  await db.query(`INSERT INTO task VALUES (5, 'alice', 'open'), (6, 'bob', 'done')`);
  await waitFor('the update and the insert', () => text(container) === 'live done:2 open:2 total:4');
  await db.query(`DELETE FROM task WHERE status = 'done'`);
  await waitFor('the deletes: the emptied group leaves', () => text(container) === 'live open:2 total:2');

  // Another groupBy: the same subscription on the server replaced by one counting by owner.
  root.render(h(StrictMode, null, h(RowcastProvider, { client }, h(TaskCounts, { groupBy: 'owner_id' }))));
  await waitFor('the counts by owner', () => text(container) === 'live alice:2 total:2');
  t.false(sent.some((frame) => JSON.parse(frame).method === 'unsubscribe'));
  // An unknown column is the hook's error.
  root.render(h(StrictMode, null, h(RowcastProvider, { client }, h(TaskCounts, { groupBy: 'nope' }))));
  await waitFor('the error', () => text(container) === 'error INVALID_ATTRIBUTES');
  t.pass();
});
