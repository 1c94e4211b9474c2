// mediagate admin page: recordings and deletion receipts through the
// admin REST API (/api/v1; docs/recordings.md has every route).
//
// Sign-in: the operator pastes an API key; GET /api/v1/keys/self checks it
// and names its role and tenant. The key is kept in sessionStorage only
// (this tab, until it closes or the operator signs out; never
// localStorage, a cookie or a URL) and is sent only as the
// "Authorization: Bearer" header of this page's fetch requests.
//
// Recordings are downloaded through a signed link (POST .../link, valid
// 60 s, for that recording only): the browser's download manager then
// streams the file to disk, shows its progress and can resume it (the
// link serves Range requests), where fetch() into a Blob would hold the
// whole file in memory first, hundreds of MB for a day-long recording.
// The key never appears in the link. The receipt exports are small and
// need the key: they are fetched and saved as Blobs.
//
// Viewer keys get no write buttons (the API would refuse their writes
// anyway). Errors show the API's problem+json detail as text. No
// framework, no external files: the page runs under a
// Content-Security-Policy that allows only this origin and no inline
// script.
//
// For automated tests, window.mediagateAdmin exposes the sign-in state,
// the last error and how often each view was loaded.
'use strict';

(() => {
  const API = '/api/v1';
  const KEY_STORAGE = 'mediagate.admin.key'; // sessionStorage only
  const LINK_TTL_S = 60;
  const SOON_MS = 7 * 24 * 3600 * 1000; // "expires soon" below this

  const $ = (id) => document.getElementById(id);
  const st = {
    key: '',
    self: null, // the key's description, from GET /keys/self
    cursors: [''], // the cursor of each page up to the one shown
    next: '', // next_cursor of the page shown
    current: null, // the manifest in the detail panel
  };
  const probe = { state: 'signed-out', error: '', listLoads: 0, receiptLoads: 0, detailLoads: 0 };
  window.mediagateAdmin = probe;

  // --- HTTP -----------------------------------------------------------------

  // APIError is a failed request: its message is what the server said
  // (the problem's detail, else its title) and the status.
  class APIError extends Error {
    constructor(status, text) {
      super(text);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = {
      method,
      headers: { Authorization: 'Bearer ' + st.key, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new APIError(0, 'the server cannot be reached (' + e.message + ')');
    }
    if (!res.ok) throw await problem(res);
    return res;
  }

  // problem reads an RFC 9457 problem+json answer into an APIError.
  async function problem(res) {
    let text = '';
    if ((res.headers.get('Content-Type') || '').startsWith('application/problem+json')) {
      try {
        const p = await res.json();
        text = String(p.detail || p.title || '');
      } catch (_) { /* no body: the status alone */ }
    }
    return new APIError(res.status, (text || res.statusText || 'error') + ' (HTTP ' + res.status + ')');
  }

  const recordingPath = (id, rest) => API + '/recordings/' + encodeURIComponent(id) + (rest || '');

  // save makes the browser download href as filename.
  function save(href, filename) {
    const a = document.createElement('a');
    a.href = href;
    a.download = filename;
    a.rel = 'noopener';
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
  }

  // --- messages -------------------------------------------------------------

  function showError(text) {
    probe.error = text;
    $('message').textContent = text;
    $('message').hidden = false;
  }

  function clearMessages() {
    probe.error = '';
    $('message').textContent = '';
    $('message').hidden = true;
    $('status').textContent = '';
  }

  function say(text) {
    $('status').textContent = text;
  }

  // fail shows what went wrong; a key the server no longer takes (401:
  // revoked, or the node's keys changed) signs the page out.
  function fail(what, e) {
    if (e.status === 401) {
      signOut();
      showError(what + ' failed: ' + e.message + '. Sign in again.');
      return;
    }
    showError(what + ' failed: ' + e.message);
  }

  // --- formatting -----------------------------------------------------------

  function formatTime(iso) {
    const d = new Date(iso);
    return iso && !isNaN(d) ? d.toISOString().slice(0, 19).replace('T', ' ') : '—';
  }

  function formatDuration(seconds) {
    const s = Math.floor(seconds || 0);
    const pad = (n) => String(n).padStart(2, '0');
    return Math.floor(s / 3600) + ':' + pad(Math.floor(s / 60) % 60) + ':' + pad(s % 60);
  }

  function formatSize(bytes) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let v = bytes || 0;
    let u = 0;
    while (v >= 1000 && u < units.length - 1) {
      v /= 1000;
      u++;
    }
    return (u === 0 ? String(v) : v.toFixed(1)) + ' ' + units[u];
  }

  // formatLeft writes a time span as "2 d 3 h 4 min 5 s".
  function formatLeft(ms) {
    const s = Math.floor(ms / 1000);
    const parts = [];
    if (s >= 86400) parts.push(Math.floor(s / 86400) + ' d');
    if (s >= 3600) parts.push(Math.floor(s / 3600) % 24 + ' h');
    if (s >= 60) parts.push(Math.floor(s / 60) % 60 + ' min');
    parts.push(s % 60 + ' s');
    return parts.join(' ');
  }

  function holdText(m) {
    return m.legal_hold ? 'On hold: ' + m.legal_hold.reason : 'No';
  }

  const downloadable = (m) => m.state === 'complete' || m.state === 'interrupted';
  const isAdmin = () => !!st.self && st.self.role === 'admin';

  // --- countdowns -------------------------------------------------------------

  // countdown returns the expiry of m: its time, a live countdown and the
  // "Expires soon" marker, shown (with the row highlighted) under 7 days.
  function countdown(m) {
    const box = document.createElement('span');
    box.className = 'expiry';
    if (m.state === 'deleted') {
      box.textContent = 'deleted';
      return box;
    }
    const time = document.createElement('time');
    time.dateTime = m.expires_at;
    time.textContent = formatTime(m.expires_at);
    const marker = document.createElement('strong');
    marker.className = 'soon-marker';
    marker.textContent = 'Expires soon';
    const left = document.createElement('span');
    left.className = 'countdown';
    left.dataset.expires = m.expires_at;
    left.dataset.held = m.legal_hold ? 'yes' : '';
    box.append(time, ' ', marker, ' ', left);
    tick(left, Date.now());
    return box;
  }

  function tick(el, now) {
    const left = Date.parse(el.dataset.expires) - now;
    if (left > 0) {
      el.textContent = 'in ' + formatLeft(left);
    } else {
      el.textContent = el.dataset.held ? 'expired, kept by the legal hold' : 'expired';
    }
    const soon = left < SOON_MS;
    const box = el.parentElement;
    box.querySelector('.soon-marker').hidden = !soon;
    const row = box.closest('tr');
    if (row) row.classList.toggle('expiring', soon);
    box.classList.toggle('expiring', soon);
  }

  function tickAll() {
    const now = Date.now();
    document.querySelectorAll('.countdown').forEach((el) => tick(el, now));
  }

  // --- sign-in ------------------------------------------------------------------

  async function signIn(key) {
    clearMessages();
    st.key = key;
    probe.state = 'signing-in';
    $('signin').disabled = true;
    try {
      const res = await api('GET', API + '/keys/self');
      st.self = await res.json();
    } catch (e) {
      st.key = '';
      sessionStorage.removeItem(KEY_STORAGE);
      probe.state = 'signed-out';
      showError('Sign-in failed: ' + e.message);
      return;
    } finally {
      $('signin').disabled = false;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $('api-key').value = '';
    $('who-name').textContent = st.self.name;
    $('who-id').textContent = 'ID ' + st.self.id;
    $('who-role').textContent = st.self.role === 'admin' ? 'admin' : st.self.role + ' (reads only)';
    $('who-tenant').textContent = st.self.tenant === '*' ? '* (every tenant)' : st.self.tenant;
    $('signin-form').hidden = true;
    $('whoami').hidden = false;
    $('recordings-view').hidden = false;
    $('receipts-view').hidden = false;
    probe.state = 'signed-in';
    st.cursors = [''];
    await Promise.all([loadPage(), loadReceipts()]);
  }

  // signOut forgets the key: sessionStorage, memory and what it showed.
  function signOut() {
    sessionStorage.removeItem(KEY_STORAGE);
    st.key = '';
    st.self = null;
    st.current = null;
    st.cursors = [''];
    st.next = '';
    $('recordings-body').replaceChildren();
    $('receipts-body').replaceChildren();
    $('detail-facts').replaceChildren();
    for (const id of ['whoami', 'recordings-view', 'receipts-view', 'detail']) $(id).hidden = true;
    $('signin-form').hidden = false;
    probe.state = 'signed-out';
  }

  // --- recordings list ----------------------------------------------------------

  function pageSize() {
    const n = parseInt($('page-size').value, 10);
    return n >= 1 && n <= 500 ? n : 25;
  }

  async function loadPage() {
    const q = new URLSearchParams();
    const room = $('filter-room').value.trim();
    if (room) q.set('room', room);
    if ($('filter-state').value) q.set('state', $('filter-state').value);
    q.set('limit', String(pageSize()));
    const cursor = st.cursors[st.cursors.length - 1];
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await (await api('GET', API + '/recordings?' + q)).json();
      st.next = page.next_cursor || '';
      renderRecordings(page.recordings || []);
    } catch (e) {
      fail('Listing the recordings', e);
    }
    probe.listLoads++;
  }

  function renderRecordings(list) {
    $('recordings-body').replaceChildren(...list.map(recordingRow));
    tickAll(); // now that the countdowns are in their rows, which they highlight
    $('recordings-empty').hidden = list.length > 0;
    $('prev-page').disabled = st.cursors.length <= 1;
    $('next-page').disabled = !st.next;
    $('page-info').textContent = 'Page ' + st.cursors.length;
  }

  function cell(tr, text) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
    return td;
  }

  function button(text, label, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.addEventListener('click', onClick);
    return b;
  }

  function recordingRow(m) {
    const tr = document.createElement('tr');
    tr.dataset.id = m.id;
    cell(tr, m.room).className = 'room';
    cell(tr, formatTime(m.started_at));
    cell(tr, formatDuration(m.duration));
    cell(tr, m.state).className = 'state';
    cell(tr, formatSize(m.bytes)).title = m.bytes + ' bytes';
    cell(tr, '').append(countdown(m));
    cell(tr, holdText(m)).className = 'hold';
    const actions = cell(tr, '');
    actions.className = 'row-actions';
    const what = ' the recording of ' + m.room + ' started ' + formatTime(m.started_at);
    if (downloadable(m)) {
      actions.append(button('Download', 'Download' + what, () => download(m)));
    }
    const open = isAdmin() ? 'Manage' : 'Details';
    actions.append(button(open, open + what, () => openDetail(m.id)));
    return tr;
  }

  // --- one recording --------------------------------------------------------------

  async function download(m) {
    clearMessages();
    try {
      const link = await (await api('POST', recordingPath(m.id, '/link'), { ttl_seconds: LINK_TTL_S })).json();
      if (!String(link.path).startsWith(API + '/recordings/')) throw new APIError(0, 'unexpected link');
      save(link.path, m.id + '.opus');
      say('Downloading ' + m.id + '.opus (' + formatSize(m.bytes) + ').');
    } catch (e) {
      fail('Download', e);
    }
  }

  async function openDetail(id) {
    clearMessages();
    try {
      showDetail(await (await api('GET', recordingPath(id))).json());
    } catch (e) {
      fail('Opening the recording', e);
    }
  }

  function fact(dl, name, value) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    dl.append(dt, dd);
  }

  function showDetail(m) {
    st.current = m;
    $('detail-id').textContent = m.id;
    const dl = $('detail-facts');
    dl.replaceChildren();
    fact(dl, 'Room', m.room);
    fact(dl, 'Tenant', m.tenant);
    fact(dl, 'State', m.state + (m.error ? ': ' + m.error : ''));
    fact(dl, 'Started (UTC)', formatTime(m.started_at));
    fact(dl, 'Ended (UTC)', formatTime(m.ended_at));
    fact(dl, 'Duration', formatDuration(m.duration));
    fact(dl, 'Size', formatSize(m.bytes) + ' (' + m.bytes + ' bytes)');
    fact(dl, 'SHA-256', m.sha256 || '—');
    fact(dl, 'Retention policy', m.retention);
    fact(dl, 'Expires (UTC)', countdown(m));
    fact(dl, 'Legal hold', m.legal_hold ? holdText(m) + ' (by ' + m.legal_hold.by + ', ' + formatTime(m.legal_hold.at) + ')' : 'No');
    const names = (m.participants || []).map((p) => p.name || p.number || p.kind).join(', ');
    fact(dl, 'Participants', String(m.participant_count) + (names ? ': ' + names : ''));
    if (m.deletion) {
      fact(dl, 'Deletion', m.deletion.reason + ', ' + formatTime(m.deletion.at) + ', receipt ' + (m.deletion.receipt || '—'));
    }
    $('detail-download').hidden = !downloadable(m);
    const admin = isAdmin();
    $('write-actions').hidden = !admin;
    if (admin) {
      const deleted = m.state === 'deleted';
      $('extend-form').hidden = deleted;
      const next = new Date(Date.parse(m.expires_at) + 24 * 3600 * 1000);
      $('extend-date').min = next.toISOString().slice(0, 10);
      $('hold-form').hidden = deleted || !!m.legal_hold;
      $('unhold-row').hidden = !m.legal_hold;
      $('delete-form').hidden = deleted || m.state === 'recording';
      $('delete-confirm').hidden = true;
    }
    $('detail').hidden = false;
    probe.detailLoads++;
  }

  // change sends one write for the recording in the panel, shows the
  // manifest the server answers, reloads the list and reports whether it
  // worked.
  async function change(what, method, rest, body, done) {
    clearMessages();
    const m = st.current;
    if (!m) return false;
    try {
      const updated = await (await api(method, recordingPath(m.id, rest), body)).json();
      showDetail(updated);
      say(done(updated));
    } catch (e) {
      fail(what, e);
      return false;
    }
    await loadPage();
    return true;
  }

  function extend(ev) {
    ev.preventDefault();
    const day = $('extend-date').value; // YYYY-MM-DD
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return;
    change('Extending', 'POST', '/extend', { until: day + 'T00:00:00Z' },
      (u) => 'Recording ' + u.id + ' now expires ' + formatTime(u.expires_at) + ' UTC.');
  }

  function hold(ev) {
    ev.preventDefault();
    const reason = $('hold-reason').value.trim();
    if (!reason) return;
    change('Putting on legal hold', 'POST', '/hold', { reason },
      (u) => 'Recording ' + u.id + ' is on legal hold.').then((ok) => { if (ok) $('hold-reason').value = ''; });
  }

  function unhold() {
    change('Lifting the legal hold', 'DELETE', '/hold', undefined,
      (u) => 'The legal hold of recording ' + u.id + ' is lifted.');
  }

  function askDelete(ev) {
    ev.preventDefault();
    $('delete-confirm').hidden = false;
    $('delete-no').focus();
  }

  function confirmDelete() {
    $('delete-confirm').hidden = true;
    change('Deleting', 'DELETE', '', { reason: $('delete-reason').value },
      (u) => 'The audio of recording ' + u.id + ' is deleted; receipt ' + ((u.deletion || {}).receipt || '—') + '.')
      .then((ok) => ok && loadReceipts());
  }

  // --- receipts -------------------------------------------------------------------

  function receiptsQuery() {
    const q = new URLSearchParams();
    const tenant = $('receipts-tenant').value.trim();
    if (tenant) q.set('tenant', tenant);
    if ($('receipts-from').value) q.set('from', $('receipts-from').value + 'T00:00:00Z');
    if ($('receipts-to').value) q.set('to', $('receipts-to').value + 'T00:00:00Z');
    return q;
  }

  async function loadReceipts() {
    try {
      const page = await (await api('GET', API + '/receipts?' + receiptsQuery())).json();
      const rows = (page.receipts || []).map((r) => {
        const tr = document.createElement('tr');
        tr.dataset.recording = r.recording_id;
        for (const v of [formatTime(r.deleted_at), r.recording_id, r.room, r.tenant, r.reason, r.actor, r.receipt_id]) {
          cell(tr, v);
        }
        return tr;
      });
      $('receipts-body').replaceChildren(...rows);
      $('receipts-empty').hidden = rows.length > 0;
    } catch (e) {
      fail('Listing the receipts', e);
    }
    probe.receiptLoads++;
  }

  async function exportReceipts(format) {
    clearMessages();
    const q = receiptsQuery();
    q.set('format', format);
    try {
      const blob = await (await api('GET', API + '/receipts/export?' + q)).blob();
      const url = URL.createObjectURL(blob);
      save(url, 'deletion-receipts.' + format);
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      say('Exported the receipts as ' + format.toUpperCase() + '.');
    } catch (e) {
      fail('Exporting the receipts', e);
    }
  }

  // --- wiring ---------------------------------------------------------------------

  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = $('api-key').value.trim();
    if (key) signIn(key);
  });
  $('signout').addEventListener('click', () => {
    signOut();
    clearMessages();
    say('Signed out; the key is forgotten.');
  });
  $('filter-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearMessages();
    st.cursors = [''];
    loadPage();
  });
  $('next-page').addEventListener('click', () => {
    if (!st.next) return;
    st.cursors.push(st.next);
    loadPage();
  });
  $('prev-page').addEventListener('click', () => {
    if (st.cursors.length <= 1) return;
    st.cursors.pop();
    loadPage();
  });
  $('detail-download').addEventListener('click', () => st.current && download(st.current));
  $('detail-close').addEventListener('click', () => {
    $('detail').hidden = true;
    st.current = null;
  });
  $('extend-form').addEventListener('submit', extend);
  $('hold-form').addEventListener('submit', hold);
  $('hold-off').addEventListener('click', unhold);
  $('delete-form').addEventListener('submit', askDelete);
  $('delete-yes').addEventListener('click', confirmDelete);
  $('delete-no').addEventListener('click', () => { $('delete-confirm').hidden = true; });
  $('receipts-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearMessages();
    loadReceipts();
  });
  $('export-json').addEventListener('click', () => exportReceipts('json'));
  $('export-csv').addEventListener('click', () => exportReceipts('csv'));
  setInterval(tickAll, 1000);

  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) signIn(saved);
})();
