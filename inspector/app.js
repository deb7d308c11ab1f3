// The rowcast inspector: paste a token, see the topics it may read, subscribe
// with a click, watch events arrive with their seq, see who is present on
// custom topics with presence, publish to custom topics, and watch the
// server's connections and events/s. Plain DOM and the client SDK the server
// serves at /client/ (no build step).
import { createClient } from '/client/index.js';

const $ = (id) => document.getElementById(id);
const MAX_ROWS = 200;
let client = null;
const subscribed = new Map(); // topic → unsubscribe
const presences = new Map(); // topic → client.presence(topic), while subscribed to a topic with presence

/** An element with attributes/properties and children. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'className' || key === 'textContent' || key === 'value' || key === 'disabled') node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function showState(state) {
  const text = {
    connecting: 'connecting…',
    open: 'connected',
    reconnecting: `reconnecting (attempt ${state.attempt}${state.reason ? `: ${state.reason}` : ''})`,
    closed: 'not connected',
  }[state.status];
  $('state').textContent = text;
  $('state').className = `state ${state.status}`;
  if (state.status === 'open') {
    const { user, connectionId } = state.session;
    $('who').textContent = `connection ${connectionId} · sub ${user.sub ?? '(anonymous)'} · role ${user.role ?? '–'}`;
    void loadTopics();
  }
}

async function loadTopics() {
  const list = $('topics');
  try {
    const { topics } = await client.listTopics();
    list.replaceChildren(
      ...topics.map((topic) => {
        const button = el('button', { type: 'button', 'data-topic': topic.name, onclick: () => toggle(topic, button) });
        button.textContent = subscribed.has(topic.name) ? 'unsubscribe' : 'subscribe';
        const kind = topic.kind === 'table' ? `table, ${topic.read}` : 'custom';
        return el('li', {}, el('span', {}, topic.name, el('span', { className: 'kind', textContent: kind })), button);
      }),
    );
    if (topics.length === 0) list.replaceChildren(el('li', { className: 'muted', textContent: 'no topic this token may read' }));
    const custom = topics.filter((topic) => topic.kind === 'custom');
    $('publish-topic').replaceChildren(...custom.map((topic) => el('option', { value: topic.name, textContent: topic.name })));
  } catch (error) {
    list.replaceChildren(el('li', { className: 'error', textContent: `${error.code ?? 'ERROR'}: ${error.message}` }));
  }
}

function toggle({ name: topic, kind }, button) {
  const unsubscribe = subscribed.get(topic);
  if (unsubscribe) {
    unsubscribe();
    subscribed.delete(topic);
    unwatchPresence(topic);
    button.textContent = 'subscribe';
    return;
  }
  const stop = client.subscribe(topic, { onResync: () => note(`${topic}: resumed: false after a reconnect; events may be missing`) }, showEvent);
  subscribed.set(topic, stop);
  button.textContent = 'subscribing…';
  stop.ready.then(
    () => {
      button.textContent = 'unsubscribe';
      if (kind !== 'custom') return;
      client.getTopic(topic).then(
        (detail) => {
          if (detail.presence && subscribed.get(topic) === stop) watchPresence(topic);
        },
        (error) => note(`${topic}: ${error.code}: ${error.message}`),
      );
    },
    (error) => {
      subscribed.delete(topic);
      button.textContent = 'subscribe';
      note(`${topic}: ${error.code}: ${error.message}`);
    },
  );
}

/** Shows who is present on `topic`, kept current by the client (it shares the inspector's subscription). */
function watchPresence(topic) {
  const presence = client.presence(topic);
  presences.set(topic, presence);
  presence.onSync(showPresence);
  showPresence();
}

function unwatchPresence(topic) {
  presences.get(topic)?.close();
  if (presences.delete(topic)) showPresence();
}

function showPresence() {
  const panel = $('presence');
  if (presences.size === 0) {
    panel.replaceChildren(el('p', { className: 'muted', textContent: 'subscribe to a custom topic with presence to see who is there' }));
    return;
  }
  panel.replaceChildren(
    ...[...presences].map(([topic, presence]) => {
      const members = Object.entries(presence.state());
      const list = members.map(([key, { metas }]) =>
        el('li', { 'data-key': key }, el('strong', { textContent: key }), ...metas.map((meta) => el('code', { textContent: JSON.stringify(meta) }))),
      );
      return el(
        'div',
        { className: 'presence', 'data-topic': topic },
        el('h3', { textContent: `${topic} · ${members.length} present` }),
        list.length > 0 ? el('ul', { className: 'members' }, ...list) : el('p', { className: 'muted', textContent: 'no one' }),
      );
    }),
  );
}

function showEvent(event) {
  const seq = event.part ? `${event.seq}/${event.part}` : event.seq;
  const row = el(
    'tr',
    { 'data-seq': seq },
    el('td', { textContent: seq }),
    el('td', { textContent: event.topic }),
    el('td', { textContent: event.event }),
    el('td', { textContent: event.data.id }),
    el('td', { className: 'attributes', textContent: JSON.stringify(event.data.attributes) }),
  );
  const body = $('events');
  body.prepend(row);
  while (body.children.length > MAX_ROWS) body.lastElementChild.remove();
}

function note(text) {
  $('events').prepend(el('tr', {}, el('td', { colspan: '5', className: 'error', textContent: text })));
}

// The token pasted last: it connects to /live and, for admins, reads /status.
let token = '';

$('connect').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  if (!token) return;
  client?.close();
  subscribed.clear();
  presences.clear();
  showPresence();
  const url = new URL('/live', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  client = createClient({ url: url.toString(), token, client: 'inspector' });
  client.onState(showState);
  showState(client.state);
});

$('publish').addEventListener('submit', async (e) => {
  e.preventDefault();
  const result = $('publish-result');
  let message;
  try {
    message = JSON.parse($('publish-message').value);
  } catch {
    message = $('publish-message').value;
  }
  try {
    const stored = await client.publish($('publish-topic').value, message);
    result.className = 'muted';
    result.textContent = `published ${stored.id ?? ''} ${stored.seq ?? ''}`;
  } catch (error) {
    result.className = 'error';
    result.textContent = `${error.code ?? 'ERROR'}: ${error.message}`;
  }
});

$('clear').addEventListener('click', () => $('events').replaceChildren());

// Live counts from /status, once a second: connections and events/s over the last minute. /status
// is for operators: it answers an admin token (or the server's METRICS_TOKEN, or anyone with STATUS_PUBLIC).
const rates = [];
let last = null;
async function poll() {
  try {
    const response = await fetch('/status', { headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (response.status === 401 || response.status === 403) {
      $('connections').textContent = 'admin token needed';
      return;
    }
    const status = await response.json();
    const now = performance.now();
    if (last) rates.push(((status.eventsPublished - last.events) * 1000) / (now - last.at));
    last = { events: status.eventsPublished, at: now };
    if (rates.length > 60) rates.shift();
    $('connections').textContent = status.connections;
    $('rate').textContent = rates.length ? Math.round(rates.at(-1)) : '–';
    drawChart();
  } catch {
    $('connections').textContent = '?';
  }
}
function drawChart() {
  const max = Math.max(1, ...rates);
  const points = rates.map((rate, i) => `${(i / 59) * 300},${60 - (rate / max) * 56}`).join(' ');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points);
  $('chart').replaceChildren(line);
}
setInterval(poll, 1000);
void poll();
