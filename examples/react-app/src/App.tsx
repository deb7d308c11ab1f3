import { useState } from 'react';
import { createClient, type RowcastClientError } from '@rowcast/client';
import { RowcastProvider, useConnectionState, useLiveRows, usePublish, useTopic, type UseLiveRowsOptions } from '@rowcast/react';

const client = createClient({
  url: 'ws://localhost:6336/live',
  // The token endpoint of this page's origin, asked on every connect and before the token expires.
  getToken: async () => (await (await fetch('/api/rowcast-token')).json()).token,
});

// Typed as rowcast sends them (docs/protocol.md, Values): int8 a number (a string past 2^53), numeric a string.
interface Order {
  id: number | string;
  owner_id: number | null;
  amount: string | null;
  status: string | null;
}

export default function App() {
  return (
    <RowcastProvider client={client}>
      <Status />
      <Orders title="All orders" />
      <Orders title="Paid orders" filter={{ status: { eq: 'paid' } }} />
      <Lobby />
    </RowcastProvider>
  );
}

function Status() {
  const state = useConnectionState();
  return <p>rowcast: {state.status} {state.status === 'reconnecting' && state.reason}</p>;
}

function Orders({ title, filter }: { title: string; filter?: UseLiveRowsOptions['filter'] }) {
  // The server's snapshot of the rows this token may read, then every change.
  const { rows, status, error } = useLiveRows<Order>('order', { filter });
  return (
    <section>
      <h2>{title}</h2>
      {status === 'error' && <p>{error?.code}</p>}
      <ul>
        {rows.map((row) => (
          <li key={row.id}>#{row.id} {row.amount} {row.status}</li>
        ))}
      </ul>
    </section>
  );
}

function Lobby() {
  // status 'error', error.code TOPIC_NOT_FOUND, until an admin creates the topic.
  const { events, status, error } = useTopic<{ message: { text: string }; sender: string | null }>('lobby');
  const publish = usePublish('lobby');
  const [text, setText] = useState('hi');
  const [problem, setProblem] = useState('');
  // A refused message rejects with a RowcastClientError: FORBIDDEN, RATE_LIMIT_EXCEEDED, …
  const send = () => publish({ text }).then(() => setProblem(''), (e: RowcastClientError) => setProblem(e.code));
  return (
    <section>
      <h2>Lobby</h2>
      {status === 'error' && <p>{error?.code}</p>}
      {events.map((e) => (
        <p key={e.seq}>{e.data.attributes.sender}: {e.data.attributes.message.text}</p>
      ))}
      <input value={text} onChange={(e) => setText(e.target.value)} />
      <button onClick={send}>send</button>
      {problem && <p>not sent: {problem}</p>}
    </section>
  );
}
