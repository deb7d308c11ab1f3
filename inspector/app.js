// The rowcast inspector: paste a token, see the topics it may read, subscribe
// with a click, watch events arrive with their seq, see a subscribed table's
// rows live (its snapshot, then each change, highlighted for a moment), see
// who is present on custom topics with presence, publish to custom topics,
// and watch the server's connections and events/s. Plain DOM and the client
// SDK the server serves at /client/ (no build step).
import { createClient } from '/client/index.js';

const $ = (id) => document.getElementById(id);
const MAX_ROWS = 200;
/** Rows a grid shows at most (a snapshot may have up to SNAPSHOT_MAX_ROWS). */
const MAX_GRID_ROWS = 1000;
/** How long a changed row stays highlighted. */
const FLASH_MS = 1500;
let client = null;
const subscribed = new Map(); // topic → unsubscribe
const presences = new Map(); // topic → client.presence(topic), while subscribed to a topic with presence
const grids = new Map(); // table topic → its grid (see openGrid), while subscribed

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
    closeGrid(topic);
    button.textContent = 'subscribe';
    return;
  }
  subscribe(topic, kind, button, kind === 'table');
}

/**
 * Subscribes to `topic`: its events go to the log. A table topic's rows go
 * to a grid too: with `snapshot` they start from the rows the token may read;
 * without (the snapshot was refused) only the rows that change show.
 */
function subscribe(topic, kind, button, snapshot) {
  const grid = kind === 'table' ? openGrid(topic) : null;
  let answered = false;
  const options = {
    onResync: () => note(`${topic}: resumed: false after a reconnect; events may be missing`),
    onError: (error) => {
      // A refused subscribe is handled below; this is one that failed after its answer (revoked, a snapshot that kept failing).
      if (!answered || subscribed.get(topic) !== stop) return;
      subscribed.delete(topic);
      unwatchPresence(topic);
      button.textContent = 'subscribe';
      note(`${topic}: ${error.code}: ${error.message}`);
      grid?.problem(`${error.code}: ${error.message}`);
    },
    ...(snapshot ? { snapshot: true, onSnapshot: (page) => grid.page(page) } : {}),
  };
  const stop = client.subscribe(topic, options, (event) => {
    showEvent(event);
    grid?.apply(event);
  });
  subscribed.set(topic, stop);
  button.textContent = 'subscribing…';
  stop.ready.then(
    () => {
      answered = true;
      if (subscribed.get(topic) !== stop) return;
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
      if (subscribed.get(topic) !== stop) return;
      subscribed.delete(topic);
      closeGrid(topic);
      note(`${topic}: ${error.code}: ${error.message}`);
      if (snapshot && (error.code === 'LIMIT_EXCEEDED' || error.code === 'SNAPSHOT_UNSUPPORTED')) {
        // Too many rows for a snapshot: the events alone, the grid showing the rows as they change.
        subscribe(topic, kind, button, false);
        grids.get(topic)?.problem(`no snapshot (${error.code}): only the rows that change from now on show`);
        return;
      }
      button.textContent = 'subscribe';
    },
  );
}

/** A cell's text: strings as they are, null as `null`, anything else as JSON. */
function cellText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value) ?? '';
}

/**
 * The grid of a table topic's rows, keyed by each row's id: a snapshot's
 * pages replace the rows once the last is there, then `create` and `update`
 * put a row and `delete` removes it, each highlighted for FLASH_MS. Columns
 * are the rows' attributes, in the order they were first seen.
 */
function openGrid(topic) {
  closeGrid(topic);
  const rows = new Map(); // id → attributes
  const columns = [];
  const timers = new Map(); // id → the timer that ends its highlight (or removes it, deleted)
  let pages = null; // the snapshot's rows so far, while one is on its way
  const title = el('h3', { textContent: `${topic} · loading…` });
  const status = el('p', { className: 'muted' });
  const head = el('tr');
  const body = el('tbody');
  const panel = el('div', { className: 'grid', 'data-topic': topic }, title, status, el('div', { className: 'scroll' }, el('table', {}, el('thead', {}, head), body)));

  const rowOf = (id) => body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  const renderRow = (id, attributes) =>
    el(
      'tr',
      { 'data-id': id },
      ...columns.map((column) => {
        const value = attributes[column];
        const text = cellText(value);
        return el('td', { className: value === null || value === undefined ? 'null' : '', title: text, textContent: value === undefined ? '' : text });
      }),
    );
  const showTitle = () => {
    title.textContent = `${topic} · ${rows.size} row${rows.size === 1 ? '' : 's'}${rows.size > MAX_GRID_ROWS ? ` (showing ${MAX_GRID_ROWS})` : ''}`;
  };
  const renderAll = () => {
    head.replaceChildren(...columns.map((column) => el('th', { textContent: column })));
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
    body.replaceChildren(...[...rows].slice(0, MAX_GRID_ROWS).map(([id, attributes]) => renderRow(id, attributes)));
    showTitle();
  };
  const addColumns = (attributes) => {
    let added = false;
    for (const column of Object.keys(attributes)) {
      if (columns.includes(column)) continue;
      columns.push(column);
      added = true;
    }
    return added;
  };
  const flash = (id, tr, className, then) => {
    clearTimeout(timers.get(id));
    tr.classList.remove('changed', 'deleted');
    tr.classList.add(className);
    timers.set(
      id,
      setTimeout(() => {
        timers.delete(id);
        tr.classList.remove(className);
        then?.();
      }, FLASH_MS),
    );
  };

  const grid = {
    page({ rows: pageRows, first, done }) {
      if (first || pages === null) pages = [];
      for (const row of pageRows) pages.push([row.id, row.attributes]);
      if (!done) return;
      rows.clear();
      for (const [id, attributes] of pages) {
        rows.set(id, attributes);
        addColumns(attributes);
      }
      pages = null;
      status.textContent = '';
      renderAll();
    },
    apply(event) {
      const { id, attributes } = event.data;
      const old = rowOf(id);
      if (event.event === 'delete') {
        rows.delete(id);
        showTitle();
        // Shown struck through for a moment, then gone.
        if (old) flash(id, old, 'deleted', () => old.remove());
        return;
      }
      rows.set(id, attributes);
      if (addColumns(attributes)) renderAll();
      const current = rowOf(id);
      const tr = renderRow(id, attributes);
      if (current) current.replaceWith(tr);
      else if (body.children.length < MAX_GRID_ROWS) body.append(tr);
      else {
        showTitle();
        return;
      }
      showTitle();
      flash(id, tr, 'changed');
    },
    problem(text) {
      status.className = 'error';
      status.textContent = text;
      if (pages !== null || title.textContent.endsWith('loading…')) showTitle();
    },
    close() {
      for (const timer of timers.values()) clearTimeout(timer);
      panel.remove();
      showGridsHint();
    },
  };
  grids.set(topic, grid);
  $('grids').append(panel);
  showGridsHint();
  return grid;
}

function closeGrid(topic) {
  const grid = grids.get(topic);
  if (!grid) return;
  grids.delete(topic);
  grid.close();
}

function showGridsHint() {
  $('grids-hint').hidden = grids.size > 0;
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
  for (const topic of [...grids.keys()]) closeGrid(topic);
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
