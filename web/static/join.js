// mediagate join page: join a room's audio conference from the browser.
//
// Flow: POST /r/{room}/token ({name, pin}) for a join token (or take one
// from the link's fragment, #token=...), ask for the microphone, then WHIP
// (RFC 9725): POST /whip/{room} with a non-trickle SDP offer holding one
// send-receive audio transceiver, play the answer's audio, and DELETE the
// session's Location to leave. While in the room it polls
// GET /r/{room}/participants every 500 ms ({participants, recording}: the
// list, and whether the room is recorded, for the recording notice) and
// renews the token before it runs out. No framework and no external files:
// the page runs under a Content-Security-Policy that allows only this
// origin.
//
// In a cluster the page must run on the node that hosts the room: the
// server redirects GET /r/{room} there, and when the room moved after the
// page loaded, the token or WHIP request answers with a redirect. The page
// does not follow it (the CSP allows only this origin, and browsers drop
// the Authorization header on a redirect to another origin): it loads
// itself again, which the server redirects to the owner, with the token
// it has in the fragment, so the visitor only clicks Join again.
//
// For automated tests, window.mediagate exposes the connection state, the
// last error code, and the received audio's level (rxLevel) and tone
// energy (rxTone), both measured with WebAudio.
'use strict';

(() => {
  const POLL_MS = 500;
  const ICE_GATHER_TIMEOUT_MS = 5000;
  const RX_WINDOW_S = 0.1; // rxLevel's RMS window
  const FLOOR_DB = -120; // what silence measures, instead of -Infinity

  const $ = (id) => document.getElementById(id);
  const app = $('app');
  const roomID = app.dataset.room || '';
  const access = app.dataset.access || '';
  const found = app.dataset.found === 'true';
  const roomURL = '/r/' + encodeURIComponent(roomID);
  const whipURL = '/whip/' + encodeURIComponent(roomID);

  const form = $('join-form');
  const nameRow = $('name-row');
  const nameInput = $('name');
  const pinInput = $('pin');
  const joinButton = $('join');
  const inviteNote = $('invite-note');
  const call = $('call');
  const muteButton = $('mute');
  const leaveButton = $('leave');
  const list = $('participants');
  const count = $('count');
  const recordingNotice = $('recording');
  const stateLine = $('state-line');
  const stateText = $('state');
  const message = $('message');
  const audio = $('remote');

  // Messages by problem type slug (the last path segment of an RFC 9457
  // "type", as api and rtc write them) or by our own error codes.
  const MESSAGES = {
    'room-not-found': 'This room does not exist. Check the link.',
    'room-full': 'The room is full. Try again later.',
    'room-locked': 'The room is locked. Ask the host to let you in.',
    'room-closed': 'The room has closed.',
    'wrong-pin': 'Wrong PIN. Check it and try again.',
    'too-many-attempts': 'Too many wrong PINs. Wait a few minutes, then try again.',
    'invitation-required': 'This room is by invitation: open the link you were sent.',
    'token-expired': 'Your invitation has expired. Ask for a new link.',
    'unauthorized': 'Your access to this room is not valid (any more). Join again.',
    'forbidden': 'You are not allowed to join this room this way.',
    'insufficient-grant': 'You are not allowed to join this room this way.',
    'participant-exists': 'You are already in this room, in another window.',
    'invalid-name': 'Please enter your name (up to 64 characters).',
    'mic-denied': 'Microphone access was denied. Allow the microphone for this site, then join again.',
    'mic-missing': 'No microphone was found. Connect one, then join again.',
    'mic-busy': 'The microphone is in use by another program.',
    'no-webrtc': 'This browser cannot join calls from this page (it needs WebRTC and a secure https:// address).',
    'connection-failed': 'The connection failed. Check your network, then join again.',
    'server-closed': 'The server is restarting. Try again in a moment.',
    'room-moved': 'This room is hosted on another server. Taking you there…',
    'room-unavailable': 'The room cannot be opened right now. Try again in a moment.',
    'error': 'Something went wrong. Try again.',
  };
  // Codes for answers whose problem type is not in MESSAGES.
  const BY_STATUS = {
    401: 'unauthorized', 403: 'forbidden', 404: 'room-not-found', 409: 'room-full',
    410: 'room-closed', 429: 'too-many-attempts', 503: 'server-closed',
  };

  // JoinError carries one of the codes above and, optionally, what the
  // server said.
  class JoinError extends Error {
    constructor(code, detail) {
      super(detail || code);
      this.code = code;
      this.detail = detail || '';
    }
  }

  const st = {
    state: 'idle', // idle, joining, then RTCPeerConnection.connectionState
    error: '', // code of the last message shown, '' when none
    token: '',
    tokenFromLink: false,
    pc: null,
    local: null, // microphone MediaStream
    remote: null, // received MediaStream
    location: '', // WHIP session URL
    polling: false,
    pollTimer: 0,
    refreshTimer: 0,
    audioCtx: null,
    analyser: null,
    timeBuf: null,
    freqBuf: null,
    rows: new Map(), // participant id → <li>
  };

  // --- messages and state ---------------------------------------------------

  function show(code, detail) {
    st.error = code;
    let text = MESSAGES[code] || MESSAGES.error;
    if (code === 'too-many-attempts' && detail) text += ' ' + detail;
    message.textContent = text;
    message.hidden = false;
  }

  function clearMessage() {
    st.error = '';
    message.textContent = '';
    message.hidden = true;
  }

  function setState(s) {
    st.state = s;
    app.dataset.state = s;
    stateText.textContent = s;
    stateLine.hidden = s === 'idle';
  }

  // --- HTTP -----------------------------------------------------------------

  // request fetches without following redirects: a redirect means the
  // room is hosted by another node (see the top of this file).
  async function request(url, init) {
    let res;
    try {
      res = await fetch(url, Object.assign({ cache: 'no-store', credentials: 'omit', redirect: 'manual' }, init));
    } catch (e) {
      throw new JoinError('connection-failed', e.message);
    }
    if (res.type === 'opaqueredirect' || (res.status >= 300 && res.status < 400)) throw new JoinError('room-moved');
    return res;
  }

  // moveToOwner loads the page again from its own address, which the
  // server redirects (307) to the node hosting the room. The token goes
  // along in the fragment, which browsers keep across the redirect and
  // never send to a server.
  function moveToOwner() {
    const hash = st.token ? '#token=' + encodeURIComponent(st.token) : '';
    history.replaceState(null, '', location.pathname + location.search + hash);
    location.reload();
  }

  // problemError turns an error answer into a JoinError, preferring the
  // problem type (RFC 9457 §3.1.1) over the bare status.
  async function problemError(res) {
    let slug = '';
    let detail = '';
    if ((res.headers.get('Content-Type') || '').startsWith('application/problem+json')) {
      try {
        const p = await res.json();
        slug = String(p.type || '').split('/').pop();
        detail = String(p.detail || '');
      } catch (_) { /* no body: fall back to the status */ }
    }
    if (res.status === 429) {
      const after = parseInt(res.headers.get('Retry-After') || '', 10);
      if (after > 0) detail = 'You can try again in ' + Math.ceil(after / 60) + ' min.';
    }
    if (slug.startsWith('token-') && slug !== 'token-expired') slug = 'unauthorized';
    const code = MESSAGES[slug] ? slug : (BY_STATUS[res.status] || 'error');
    return new JoinError(code, detail);
  }

  function authHeader() {
    return { Authorization: 'Bearer ' + st.token };
  }

  // tokenLifetimeMs reads how long the token was issued for from its own
  // iat/exp claims (both set by the server's clock, so a wrong clock here
  // does not matter).
  function tokenLifetimeMs(token) {
    try {
      const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(b64));
      return Math.max(0, (claims.exp - claims.iat) * 1000);
    } catch (_) {
      return 0;
    }
  }

  async function fetchToken(name, pin) {
    const res = await request(roomURL + '/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, pin }),
    });
    if (!res.ok) throw await problemError(res);
    const body = await res.json();
    st.token = body.token;
  }

  // refreshToken trades the current token for a fresh one with the same
  // identity, so a long stay outlives the token's lifetime.
  async function refreshToken() {
    const res = await request(roomURL + '/token', {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json' }, authHeader()),
      body: '{}',
    });
    if (!res.ok) throw await problemError(res);
    st.token = (await res.json()).token;
  }

  function scheduleRefresh() {
    clearTimeout(st.refreshTimer);
    const life = tokenLifetimeMs(st.token);
    if (!life) return;
    st.refreshTimer = setTimeout(async () => {
      try {
        await refreshToken();
      } catch (_) { /* the next poll's 401 retries */ }
      if (st.pc) scheduleRefresh();
    }, Math.max(5000, life * 0.8));
  }

  // --- media ----------------------------------------------------------------

  async function getMicrophone() {
    if (!window.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new JoinError('no-webrtc');
    }
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
    } catch (e) {
      switch (e.name) {
        case 'NotAllowedError':
        case 'SecurityError':
          throw new JoinError('mic-denied');
        case 'NotFoundError':
        case 'OverconstrainedError':
          throw new JoinError('mic-missing');
        case 'NotReadableError':
        case 'AbortError':
          throw new JoinError('mic-busy');
        default:
          throw new JoinError('mic-denied', e.message);
      }
    }
  }

  // gatheringComplete waits until the offer holds every ICE candidate:
  // the server takes no trickled candidates (non-trickle WHIP).
  function gatheringComplete(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  async function connect(mic) {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    st.pc = pc;
    setState(pc.connectionState);
    pc.addEventListener('connectionstatechange', () => onConnectionState(pc));
    pc.addEventListener('track', (ev) => attachRemote(ev));
    const [track] = mic.getAudioTracks();
    pc.addTransceiver(track, { direction: 'sendrecv', streams: [mic] });
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc);
    if (st.pc !== pc) throw new JoinError('connection-failed', 'left while connecting');
    const res = await request(whipURL, {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/sdp' }, authHeader()),
      body: pc.localDescription.sdp,
    });
    if (res.status !== 201) throw await problemError(res);
    const location = res.headers.get('Location');
    if (location) st.location = new URL(location, res.url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  }

  function onConnectionState(pc) {
    if (st.pc !== pc) return;
    setState(pc.connectionState);
    if (pc.connectionState === 'failed') {
      show('connection-failed');
      teardown(true).then(showForm);
    }
  }

  function attachRemote(ev) {
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    st.remote = stream;
    audio.srcObject = stream;
    audio.play().catch(() => { /* autoplay is allowed after the Join click */ });
    measure(stream);
  }

  // measure feeds the received stream to an AnalyserNode for rxLevel and
  // rxTone. The analyser reaches the destination through a muted gain, so
  // the graph keeps pulling it; the <audio> element does the listening.
  function measure(stream) {
    const ctx = st.audioCtx;
    if (!ctx) return;
    const source = ctx.createMediaStreamSource(stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(analyser).connect(mute).connect(ctx.destination);
    st.analyser = analyser;
    st.timeBuf = new Float32Array(analyser.fftSize);
    st.freqBuf = new Float32Array(analyser.frequencyBinCount);
  }

  // rxLevel is the RMS level of the last 100 ms received, in dBFS.
  function rxLevel() {
    const an = st.analyser;
    if (!an) return FLOOR_DB;
    an.getFloatTimeDomainData(st.timeBuf);
    const buf = st.timeBuf;
    const n = Math.min(buf.length, Math.round(st.audioCtx.sampleRate * RX_WINDOW_S));
    let sum = 0;
    for (let i = buf.length - n; i < buf.length; i++) sum += buf[i] * buf[i];
    const rms = Math.sqrt(sum / n);
    return rms > 0 ? Math.max(FLOOR_DB, 20 * Math.log10(rms)) : FLOOR_DB;
  }

  // rxTone is the received energy at freq Hz in dB: the loudest of the
  // analyser's FFT bins next to freq (bins are sampleRate/8192 ≈ 6 Hz).
  function rxTone(freq) {
    const an = st.analyser;
    if (!an) return FLOOR_DB;
    an.getFloatFrequencyData(st.freqBuf);
    const k = Math.round(freq / (st.audioCtx.sampleRate / an.fftSize));
    let best = -Infinity;
    for (let i = Math.max(1, k - 1); i <= Math.min(st.freqBuf.length - 1, k + 1); i++) {
      best = Math.max(best, st.freqBuf[i]);
    }
    return Number.isFinite(best) ? Math.max(FLOOR_DB, best) : FLOOR_DB;
  }

  // --- participant list -----------------------------------------------------

  function startPolling() {
    st.polling = true;
    poll();
  }

  function stopPolling() {
    st.polling = false;
    clearTimeout(st.pollTimer);
  }

  async function poll() {
    if (!st.polling) return;
    try {
      const res = await fetch(roomURL + '/participants', { headers: authHeader(), cache: 'no-store' });
      if (res.ok) {
        const body = await res.json();
        if (!st.polling) return; // left meanwhile: show nothing of the room
        render(body.participants);
        showRecording(body.recording === true);
      } else if (res.status === 401) {
        await refreshToken();
      }
    } catch (_) { /* a missed poll is retried by the next one */ }
    if (st.polling) st.pollTimer = setTimeout(poll, POLL_MS);
  }

  // render updates the list in place, one <li> per participant, so the
  // meters move instead of flickering. Names go in as text, never markup.
  function render(participants) {
    const seen = new Set();
    for (const p of participants) {
      seen.add(p.id);
      let li = st.rows.get(p.id);
      if (!li) {
        li = document.createElement('li');
        const name = document.createElement('span');
        name.className = 'name';
        const kind = document.createElement('span');
        kind.className = 'kind';
        const muted = document.createElement('span');
        muted.className = 'muted';
        const meter = document.createElement('meter');
        meter.min = 0;
        meter.max = 1;
        meter.low = 0.25;
        meter.high = 0.85;
        meter.optimum = 0.5;
        li.append(name, kind, muted, meter);
        st.rows.set(p.id, li);
      }
      li.children[0].textContent = p.name || 'Guest';
      li.children[1].textContent = p.kind === 'phone' ? 'phone' : '';
      li.children[2].textContent = p.muted ? 'muted' : '';
      // level is dBov, -127 (silence) to 0: show the top 60 dB.
      li.children[3].value = Math.min(1, Math.max(0, (Number(p.level) + 60) / 60));
      li.children[3].title = Math.round(Number(p.level)) + ' dBov';
      li.classList.toggle('speaking', Boolean(p.speaking));
      li.dataset.id = p.id;
      list.append(li); // keeps the server's (join) order
    }
    for (const [id, li] of st.rows) {
      if (!seen.has(id)) {
        li.remove();
        st.rows.delete(id);
      }
    }
    count.textContent = '(' + participants.length + ')';
  }

  // showRecording shows or hides the recording notice. Its parent is a
  // live region (role=status) that is always there, so screen readers
  // announce the notice when it appears.
  function showRecording(on) {
    recordingNotice.hidden = !on;
  }

  // --- join and leave -------------------------------------------------------

  function showForm() {
    call.hidden = true;
    form.hidden = false;
    joinButton.disabled = access === 'invite' && !st.token;
  }

  async function join() {
    clearMessage();
    const name = nameInput.value.trim();
    if (!st.tokenFromLink && (name.length === 0 || name.length > 64)) {
      show('invalid-name');
      nameInput.focus();
      return;
    }
    joinButton.disabled = true;
    setState('joining');
    // Created in the click's turn, so the browser lets it run.
    if (!st.audioCtx && window.AudioContext) st.audioCtx = new AudioContext();
    try {
      if (!st.tokenFromLink) await fetchToken(name, pinInput.value.trim());
      st.local = await getMicrophone();
      await connect(st.local);
      form.hidden = true;
      call.hidden = false;
      muteButton.disabled = false;
      startPolling();
      scheduleRefresh();
    } catch (e) {
      const err = e instanceof JoinError ? e : new JoinError('connection-failed', e && e.message);
      await teardown(Boolean(st.location));
      if (err.code === 'room-moved') {
        show(err.code);
        moveToOwner();
        return;
      }
      setState(err.code === 'connection-failed' ? 'failed' : 'idle');
      show(err.code, err.detail);
      showForm();
      if (err.code === 'wrong-pin') {
        pinInput.focus();
        pinInput.select();
      }
    } finally {
      joinButton.disabled = access === 'invite' && !st.token;
    }
  }

  // teardown ends the session: DELETE on the WHIP resource (RFC 9725 §4.3)
  // when asked, then the peer connection, the microphone and the list.
  async function teardown(sendDelete) {
    stopPolling();
    clearTimeout(st.refreshTimer);
    const location = st.location;
    st.location = '';
    if (sendDelete && location) {
      try {
        await fetch(location, { method: 'DELETE', headers: authHeader() });
      } catch (_) { /* the server drops the session when ICE times out */ }
    }
    if (st.pc) {
      st.pc.close();
      st.pc = null;
    }
    if (st.local) {
      st.local.getTracks().forEach((t) => t.stop());
      st.local = null;
    }
    audio.srcObject = null;
    st.remote = null;
    st.analyser = null;
    st.rows.clear();
    list.replaceChildren();
    count.textContent = '';
    showRecording(false);
    muteButton.textContent = 'Mute';
    muteButton.setAttribute('aria-pressed', 'false');
    if (!st.tokenFromLink) st.token = '';
  }

  async function leave() {
    leaveButton.disabled = true;
    await teardown(true);
    setState('closed');
    showForm();
    leaveButton.disabled = false;
  }

  // toggleMute mutes locally: the track sends silence while disabled.
  function toggleMute() {
    const track = st.local && st.local.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    muteButton.textContent = track.enabled ? 'Mute' : 'Unmute';
    muteButton.setAttribute('aria-pressed', String(!track.enabled));
  }

  // --- start ----------------------------------------------------------------

  // A token in the link's fragment (never sent to servers or in Referer)
  // is an invitation from the operator's platform; it is removed from the
  // address bar so it is not bookmarked or shared by accident.
  function tokenFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get('token');
    if (!token) return '';
    history.replaceState(null, '', location.pathname + location.search);
    return token;
  }

  window.mediagate = Object.freeze({
    get state() { return st.state; },
    get error() { return st.error; },
    rxLevel,
    rxTone,
  });

  if (!found) {
    show('room-not-found');
    return;
  }
  st.token = tokenFromFragment();
  st.tokenFromLink = st.token !== '';
  if (st.tokenFromLink) {
    nameRow.hidden = true;
    nameInput.required = false;
    $('pin-row').hidden = true;
    inviteNote.hidden = true;
  }
  joinButton.disabled = access === 'invite' && !st.token;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    join();
  });
  muteButton.addEventListener('click', toggleMute);
  leaveButton.addEventListener('click', leave);
  window.addEventListener('pagehide', () => {
    if (st.location) {
      fetch(st.location, { method: 'DELETE', headers: authHeader(), keepalive: true }).catch(() => {});
    }
  });
})();
