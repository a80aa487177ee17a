// The openvod console: a small single-page app over the same HTTP API the clients use. The session
// is an HttpOnly cookie; every state change sends the session's CSRF token in X-CSRF-Token.
import Hls from 'hls.js';
import * as tus from 'tus-js-client';
import './style.css';

const main = document.getElementById('main');
let session = null; // {username, role, csrf_token}
let refreshTimer = null;

// ---------- helpers ----------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  return (await request(method, path, body)).json;
}

// A GET of a paged list that tells its total in X-Total-Count.
async function apiPage(path) {
  const { json, response } = await request('GET', path);
  return { data: json.data, total: Number(response.headers.get('x-total-count') || json.data.length) };
}

async function request(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session) headers['x-csrf-token'] = session.csrf_token;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (r.status === 204) return { json: null, response: r };
  const json = await r.json().catch(() => null);
  if (!r.ok) {
    const message = json?.error?.messages?.join('; ') || `${r.status} ${r.statusText}`;
    if (r.status === 401 && session && path !== '/console/api/session') {
      session = null;
      route();
    }
    throw new ApiError(r.status, message);
  }
  return { json, response: r };
}

function showError(container, e) {
  container.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message || String(e)));
}

// Both worlds' words for the asset states: Mux's and Tencent VOD's.
function statusLabel(asset) {
  if (asset.status === 'ready') return h('span', { class: 'status ready' }, 'Normal');
  if (asset.status === 'errored') {
    const why = asset.errors?.messages?.join('; ') || 'unknown error';
    return h('span', { class: 'status errored', title: why }, `Errored: ${why}`);
  }
  return h('span', { class: 'status preparing' }, 'Processing');
}

function duration(seconds) {
  if (seconds === undefined || seconds === null) return '–';
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

function localTime(iso) {
  if (!iso) return '';
  const seconds = Number(iso);
  const date = Number.isFinite(seconds) ? new Date(seconds * 1000) : new Date(iso);
  return date.toLocaleString();
}

function publicPlaybackId(asset) {
  return asset.playback_ids?.find((p) => p.policy === 'public')?.id;
}

function copyButton(text) {
  const button = h('button', { type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select and copy by hand';
    }
  } }, 'Copy');
  return button;
}

function title(asset) {
  return asset.meta?.title || asset.id;
}

// ---------- login ----------

function loginPage() {
  const error = h('div');
  const form = h('form', { class: 'card login', onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    try {
      const r = await api('POST', '/console/api/session', { username: data.get('username'), password: data.get('password') });
      session = r.data;
      // Back to the page that was asked for (a deep link), else the videos.
      if (!location.hash) location.hash = '#/videos';
      route();
    } catch (err) {
      showError(error, err);
    }
  } },
    h('h1', {}, 'Log in'),
    h('label', { for: 'username' }, 'Username'),
    h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true }),
    h('label', { for: 'password' }, 'Password'),
    h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    h('button', { type: 'submit' }, 'Log in'),
    error,
  );
  main.replaceChildren(form);
  form.querySelector('input').focus();
}

// ---------- invite link: choose a password ----------

async function invitePage(token) {
  const error = h('div');
  let invite;
  try {
    invite = (await api('GET', `/openvod/v1/invites/${encodeURIComponent(token)}`)).data;
  } catch (err) {
    main.replaceChildren(h('div', { class: 'card login' }, h('h1', {}, 'Invite link'), error,
      h('p', {}, h('a', { href: '#/videos' }, 'Go to the log-in page'))));
    showError(error, err);
    return;
  }
  const form = h('form', { class: 'card login', onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    if (data.get('password') !== data.get('confirm')) {
      showError(error, new Error('The two passwords differ.'));
      return;
    }
    try {
      session = (await api('POST', `/openvod/v1/invites/${encodeURIComponent(token)}/accept`, { password: data.get('password') })).data;
      location.hash = '#/recordings';
    } catch (err) {
      showError(error, err);
    }
  } },
    h('h1', {}, `Welcome, ${invite.username}`),
    h('p', {}, 'Choose a password (at least 10 characters) to log in to openvod.'),
    h('input', { type: 'hidden', name: 'username', autocomplete: 'username', value: invite.username }),
    h('label', { for: 'new-password' }, 'Password'),
    h('input', { id: 'new-password', name: 'password', type: 'password', autocomplete: 'new-password', minlength: 10, required: true }),
    h('label', { for: 'confirm-password' }, 'Password again'),
    h('input', { id: 'confirm-password', name: 'confirm', type: 'password', autocomplete: 'new-password', minlength: 10, required: true }),
    h('button', { type: 'submit' }, 'Set password and log in'),
    error,
  );
  main.replaceChildren(form);
  form.querySelector('#new-password').focus();
}

// ---------- videos ----------

const listState = { page: 1, search: '', status: '', owner: '' };

async function videosPage() {
  const list = h('div', { class: 'list', id: 'video-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const search = h('input', { type: 'search', id: 'search', placeholder: 'Search by title', 'aria-label': 'Search by title', value: listState.search,
    oninput: () => {
      listState.search = search.value;
      listState.page = 1;
      clearTimeout(searchTimer);
      searchTimer = setTimeout(load, 250);
    } });
  let searchTimer = null;
  const status = h('select', { id: 'status-filter', 'aria-label': 'Filter by status', onchange: () => { listState.status = status.value; listState.page = 1; load(); } },
    h('option', { value: '' }, 'All statuses'),
    h('option', { value: 'preparing' }, 'Processing'),
    h('option', { value: 'ready' }, 'Normal'),
    h('option', { value: 'errored' }, 'Errored'));
  status.value = listState.status;
  // Admins see everyone's videos and can narrow them to one owner (server-side, meta.creator_id).
  const owner = session.role === 'admin'
    ? h('input', { type: 'search', id: 'owner-filter', placeholder: 'Owner', 'aria-label': 'Filter by owner', value: listState.owner,
      onchange: () => { listState.owner = owner.value.trim(); listState.page = 1; load(); } })
    : null;
  const pager = h('div', { class: 'pager' });
  main.replaceChildren(
    h('section', { class: 'toolbar' }, h('h1', {}, 'Videos'), search, status, owner),
    uploadPanel(() => load()),
    list,
    pager,
  );

  let assets = [];
  function render() {
    // Search, status and owner are filtered by the server (title, status, creator_id).
    const filtered = listState.search.trim() || listState.status || listState.owner;
    if (assets.length === 0) {
      list.replaceChildren(h('p', { class: 'empty' }, filtered
        ? 'No video matches. Clear the search or the filters.'
        : 'No videos yet. Drop files above or pick them to upload your first video.'));
    } else {
      list.replaceChildren(...assets.map(videoRow));
    }
    pager.replaceChildren(
      h('button', { type: 'button', disabled: listState.page <= 1, onclick: () => { listState.page--; load(); } }, 'Previous'),
      h('span', {}, `Page ${listState.page}`),
      h('button', { type: 'button', disabled: assets.length < 25, onclick: () => { listState.page++; load(); } }, 'Next'),
    );
  }
  let loads = 0;
  async function load() {
    const mine = ++loads; // only the latest request's answer is shown (typing sends several)
    try {
      const params = new URLSearchParams({ limit: '25', page: String(listState.page) });
      if (listState.owner) params.set('creator_id', listState.owner);
      if (listState.search.trim()) params.set('title', listState.search.trim());
      if (listState.status) params.set('status', listState.status);
      const r = await api('GET', `/video/v1/assets?${params}`);
      if (mine !== loads) return;
      assets = r.data;
      render();
      clearTimeout(refreshTimer);
      // New and processing videos turn ready without a reload.
      if (location.hash.startsWith('#/videos') && !location.hash.startsWith('#/videos/')) {
        refreshTimer = setTimeout(load, assets.some((a) => a.status === 'preparing') ? 1500 : 5000);
      }
    } catch (e) {
      showError(list, e);
    }
  }
  await load();
}

function videoRow(asset) {
  const pid = publicPlaybackId(asset);
  const thumb = pid && asset.status === 'ready'
    ? h('img', { src: `/${pid}/thumbnail.jpg?width=160`, alt: '', width: 160, height: 90, loading: 'lazy' })
    : h('div', { class: 'thumb-placeholder', 'aria-hidden': 'true' });
  return h('a', { class: 'row', href: `#/videos/${asset.id}`, 'data-asset-id': asset.id, 'data-status': asset.status },
    h('div', { class: 'thumb' }, thumb),
    h('div', { class: 'meta' },
      h('strong', { class: 'title' }, title(asset)),
      h('span', { class: 'muted' }, `${duration(asset.duration)} · ${localTime(asset.created_at)}`),
      asset.meta?.creator_id && session?.role === 'admin' ? h('span', { class: 'muted' }, `owner: ${asset.meta.creator_id}`) : null),
    statusLabel(asset));
}

// ---------- upload ----------

function uploadPanel(onChange) {
  const items = h('ul', { class: 'uploads', id: 'uploads' });
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, accept: 'video/*,audio/*', onchange: () => { start([...input.files]); input.value = ''; } });
  const zone = h('div', { class: 'dropzone', tabindex: '0',
    ondragover: (e) => { e.preventDefault(); zone.classList.add('over'); },
    ondragleave: () => zone.classList.remove('over'),
    ondrop: (e) => { e.preventDefault(); zone.classList.remove('over'); start([...e.dataTransfer.files]); },
  }, h('label', { for: 'file-input' }, 'Drop video files here or ', h('span', { class: 'link' }, 'choose files')), input);

  function start(files) {
    for (const file of files) uploadOne(file);
  }
  // tus: chunks are retried through network errors, and an upload cut by a reload or a closed tab
  // resumes where the server's committed offset is when the same file is picked again.
  async function uploadOne(file) {
    const bar = h('progress', { max: 100, value: 0, 'aria-label': `Upload of ${file.name}` });
    const state = h('span', { class: 'muted' }, 'Starting…');
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const li = h('li', { 'data-file': file.name }, h('span', { class: 'name' }, file.name), bar, state, cancel);
    items.append(li);
    const upload = new tus.Upload(file, {
      endpoint: '/tus/',
      chunkSize: 1024 * 1024,
      retryDelays: [0, 1000, 2000, 4000, 8000, 15000],
      headers: { 'X-CSRF-Token': session.csrf_token },
      metadata: { filename: file.name, title: file.name, playback_policy: 'public' },
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => {
        const pct = total ? (sent / total) * 100 : 0;
        bar.value = pct;
        state.textContent = `${Math.floor(pct)} %`;
      },
      onShouldRetry: (err, attempt) => {
        state.textContent = `Connection lost; retrying (${attempt + 1})…`;
        const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
        return status === 0 || status === 409 || status === 423 || status >= 500;
      },
      onError: (err) => {
        state.textContent = `Failed: ${err.message.split('\n')[0]}`;
        li.dataset.state = 'error';
      },
      onSuccess: () => {
        bar.value = 100;
        state.textContent = 'Uploaded; processing';
        li.dataset.state = 'done';
        cancel.remove();
        onChange();
      },
    });
    const previous = await upload.findPreviousUploads();
    if (previous.length > 0) {
      upload.resumeFromPreviousUpload(previous[0]);
      li.dataset.resumed = 'true';
      state.textContent = 'Resuming…';
    }
    upload.start();
    cancel.addEventListener('click', async () => {
      await upload.abort(true).catch(() => {});
      state.textContent = 'Cancelled';
      li.dataset.state = 'cancelled';
      cancel.remove();
    });
  }
  return h('section', { class: 'card', 'aria-label': 'Upload' }, zone, items);
}

// ---------- Tencent VOD (admins; the same API Tencent's SDKs call, with the session) ----------

async function vod(action, params) {
  const r = await fetch('/', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-tc-action': action, 'x-tc-version': '2018-07-17', 'x-csrf-token': session.csrf_token },
    body: JSON.stringify(params),
  });
  const json = await r.json();
  if (json.Response?.Error) throw new Error(`${json.Response.Error.Code}: ${json.Response.Error.Message}`);
  return json.Response;
}

function quickView(asset) {
  const out = h('div', { id: 'quick-view' });
  const templates = h('input', { id: 'templates', placeholder: '100010, 100020', 'aria-label': 'Transcoding template ids' });
  async function show() {
    try {
      const info = (await vod('DescribeMediaInfos', { FileIds: [asset.file_id] })).MediaInfoSet[0];
      const set = info?.TranscodeInfo?.TranscodeSet || [];
      out.replaceChildren(set.length
        ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Definition'), h('th', {}, 'Size'), h('th', {}, 'URL'))),
          h('tbody', {}, ...set.map((t) => h('tr', { 'data-definition': t.Definition },
            h('td', {}, String(t.Definition)), h('td', {}, t.Width ? `${t.Width}×${t.Height}` : ''), h('td', {}, h('a', { href: t.Url }, t.Url))))))
        : h('p', { class: 'empty' }, 'No outputs yet.'));
    } catch (e) {
      showError(out, e);
    }
  }
  const process = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const defs = templates.value.split(/[ ,]+/).filter(Boolean).map(Number);
      const r = await vod('ProcessMedia', { FileId: asset.file_id, MediaProcessTask: { TranscodeTaskSet: defs.map((d) => ({ Definition: d })) } });
      out.replaceChildren(h('p', { role: 'status' }, `Task ${r.TaskId} started.`));
    } catch (err) {
      showError(out, err);
    }
  } }, templates, h('button', { type: 'submit' }, 'Process'), h('button', { type: 'button', onclick: show }, 'Quick View'));
  return h('section', { class: 'card', 'aria-labelledby': 'vod-h' }, h('h2', { id: 'vod-h' }, `Tencent VOD · FileId ${asset.file_id}`), process, out);
}

// The events about one asset and each delivery attempt (admins).
function assetEvents(asset) {
  const out = h('div', { id: 'asset-events' }, h('p', { class: 'muted' }, 'Loading…'));
  (async () => {
    try {
      const events = (await api('GET', `/openvod/v1/events?object_id=${asset.id}&limit=100`)).data;
      if (events.length === 0) {
        out.replaceChildren(h('p', { class: 'empty' }, 'No events yet.'));
        return;
      }
      out.replaceChildren(h('ul', {}, ...events.map((e) => {
        const attempts = h('ul', { class: 'attempts' });
        // Mux-shaped envelopes have `type`; Tencent-only events (vod.*) their `EventType`.
        const type = e.type || e.EventType || 'event';
        const li = h('li', { 'data-event-type': type }, h('code', {}, type), ` · ${localTime(e.created_at)} `,
          h('button', { type: 'button', onclick: async () => {
            const rows = (await api('GET', `/openvod/v1/events/${e.id}/attempts`)).data;
            attempts.replaceChildren(...(rows.length ? rows.map((a) => h('li', { class: 'attempt', 'data-success': String(a.success) },
              `${localTime(a.attempted_at)} · ${a.success ? `delivered (${a.response_status_code})` : `failed: ${a.error || a.response_status_code}`}`))
              : [h('li', {}, 'No delivery attempts (no endpoint wants this event).')]));
          } }, 'Attempts'), ' ',
          h('button', { type: 'button', onclick: async (ev) => {
            await api('POST', `/openvod/v1/events/${e.id}/resend`);
            ev.target.textContent = 'Resent';
          } }, 'Resend'), attempts);
        return li;
      })));
    } catch (err) {
      showError(out, err);
    }
  })();
  return h('section', { class: 'card', 'aria-labelledby': 'events-h' }, h('h2', { id: 'events-h' }, 'Events'), out);
}

// ---------- video detail ----------

let hls = null;

async function videoPage(id) {
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  let asset;
  try {
    asset = (await api('GET', `/video/v1/assets/${id}`)).data;
  } catch (e) {
    showError(main, e);
    return;
  }
  const pid = publicPlaybackId(asset);
  const video = h('video', { id: 'player', controls: true, playsinline: true, muted: true, width: 640, height: 360 });
  const levels = h('select', { id: 'rendition', 'aria-label': 'Rendition' }, h('option', { value: '-1' }, 'Auto'));
  const player = h('section', { class: 'card player' });
  if (asset.status === 'ready' && pid) {
    player.append(video, h('label', { for: 'rendition' }, 'Rendition '), levels);
    if (hls) hls.destroy();
    hls = new Hls();
    hls.loadSource(`/${pid}.m3u8`);
    hls.attachMedia(video);
    hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
      levels.append(...d.levels.map((l, i) => h('option', { value: i }, `${l.height}p · ${Math.round(l.bitrate / 1000)} kbit/s`)));
    });
    levels.addEventListener('change', () => { hls.currentLevel = Number(levels.value); });
  } else {
    player.append(h('p', {}, statusLabel(asset), asset.status === 'preparing' ? ' — the player appears when the video is ready.' : ''));
    if (asset.status === 'preparing') refreshTimer = setTimeout(() => videoPage(id), 1500);
  }

  const titleInput = h('input', { id: 'title', value: asset.meta?.title || '', 'aria-label': 'Title' });
  const passthrough = h('input', { id: 'passthrough', value: asset.passthrough || '', 'aria-label': 'Passthrough' });
  const saveState = h('span', { class: 'muted', role: 'status' });
  const edit = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('PATCH', `/video/v1/assets/${id}`, { meta: { title: titleInput.value }, passthrough: passthrough.value });
      saveState.textContent = 'Saved';
    } catch (err) {
      saveState.textContent = err.message;
    }
  } }, h('h2', {}, 'Details'), h('label', { for: 'title' }, 'Title'), titleInput, h('label', { for: 'passthrough' }, 'Passthrough'), passthrough,
    h('button', { type: 'submit' }, 'Save'), saveState);

  const ids = h('section', { class: 'card' }, h('h2', {}, 'Playback ids'),
    h('ul', {}, ...(asset.playback_ids || []).map((p) => {
      const url = `${location.origin}/${p.id}.m3u8`;
      return h('li', {}, h('code', {}, p.policy), ' ', h('input', { readonly: true, value: url, 'aria-label': `${p.policy} playback URL` }),
        copyButton(() => url));
    })));

  const previews = pid && asset.status === 'ready'
    ? h('section', { class: 'card previews', 'aria-labelledby': 'previews-h' }, h('h2', { id: 'previews-h' }, 'Thumbnail and storyboard'),
      h('img', { id: 'thumbnail', src: `/${pid}/thumbnail.jpg?width=320`, alt: `Thumbnail of ${title(asset)}`, width: 320 }),
      h('img', { id: 'storyboard', src: `/${pid}/storyboard.jpg`, alt: `Storyboard of ${title(asset)}` }))
    : null;
  const outputs = h('section', { class: 'card' }, h('h2', {}, 'Outputs'),
    h('dl', {},
      h('dt', {}, 'Status'), h('dd', {}, statusLabel(asset)),
      h('dt', {}, 'Duration'), h('dd', {}, duration(asset.duration)),
      h('dt', {}, 'Max resolution'), h('dd', {}, asset.max_stored_resolution || '–'),
      h('dt', {}, 'Created'), h('dd', {}, localTime(asset.created_at)),
      h('dt', {}, 'Static renditions'), h('dd', {}, (asset.static_renditions?.files || []).map((f) => f.name).join(', ') || 'none')));

  const del = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(`Delete “${title(asset)}” and all its files? This cannot be undone.`)) return;
    try {
      await api('DELETE', `/video/v1/assets/${id}`);
      location.hash = '#/videos';
    } catch (e) {
      alert(e.message);
    }
  } }, 'Delete video');

  main.replaceChildren(
    h('p', {}, h('a', { href: '#/videos' }, '← Videos')),
    h('h1', { id: 'video-title' }, title(asset)),
    player, edit, previews, outputs, ids, session.role === 'admin' ? quickView(asset) : null, session.role === 'admin' ? assetEvents(asset) : null, h('section', { class: 'card' }, del));
}

// ---------- settings (admins) ----------

async function settingsPage() {
  const endpoints = h('div', { id: 'endpoints' });
  const keys = h('div', { id: 'signing-keys' });
  const keyNotice = h('div');
  const tokens = h('div', { id: 'tokens' });
  const tokenNotice = h('div');
  const tokenName = h('input', { id: 'token-name', required: true, maxlength: 200, placeholder: 'my-app', 'aria-label': 'Token name' });
  const tokenForm = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const t = (await api('POST', '/openvod/v1/tokens', { name: tokenName.value })).data;
      tokenNotice.replaceChildren(h('p', { role: 'status' }, 'Token created; its secret is shown once. Id: ', h('code', { id: 'token-id' }, t.id), ' Secret: ', h('code', { id: 'token-secret' }, t.secret)));
      tokenName.value = '';
      loadTokens();
    } catch (err) {
      showError(tokenNotice, err);
    }
  } }, tokenName, h('button', { type: 'submit' }, 'Create token'));
  async function loadTokens() {
    try {
      const list = (await api('GET', '/openvod/v1/tokens')).data;
      tokens.replaceChildren(h('ul', {}, ...list.map((t) => h('li', { 'data-token-id': t.id, 'data-revoked': String(t.revoked) },
        h('strong', {}, t.name), ' ', h('code', {}, t.id), ` · ${localTime(t.created_at)} `,
        t.revoked ? h('span', { class: 'status errored' }, 'revoked') : h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirm(`Revoke token ${t.name}? Programs using it stop working at once.`)) return;
          await api('DELETE', `/openvod/v1/tokens/${t.id}`);
          loadTokens();
        } }, 'Revoke')))));
    } catch (e) {
      showError(tokens, e);
    }
  }
  const secretBox = h('div', { role: 'status' });
  const url = h('input', { id: 'endpoint-url', type: 'url', required: true, placeholder: 'https://app.example/webhooks', 'aria-label': 'Endpoint URL' });
  const format = h('select', { id: 'endpoint-format', 'aria-label': 'Format' },
    h('option', { value: 'mux' }, 'Mux (mux-signature)'),
    h('option', { value: 'standard' }, 'Standard Webhooks'),
    h('option', { value: 'tencent-v3' }, 'Tencent VOD v3'));
  const create = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const created = (await api('POST', '/openvod/v1/webhook-endpoints', { url: url.value, format: format.value })).data;
      secretBox.replaceChildren(h('p', {}, 'Signing secret (copy it now, it is shown once): ', h('code', { id: 'endpoint-secret' }, created.secret)));
      url.value = '';
      loadEndpoints();
    } catch (err) {
      showError(secretBox, err);
    }
  } }, url, format, h('button', { type: 'submit' }, 'Add endpoint'));

  // Re-sends past events to one endpoint (a receiver that was down or lost its data).
  function replayForm(ep) {
    const after = h('input', { type: 'number', min: 0, value: 0, class: 'cursor', 'aria-label': `Replay events after this cursor to ${ep.url}` });
    const result = h('span', { role: 'status', class: 'muted' });
    return h('details', { class: 'replay' }, h('summary', {}, 'Replay events'),
      h('form', { class: 'inline', onsubmit: async (e) => {
        e.preventDefault();
        try {
          const r = (await api('POST', `/openvod/v1/webhook-endpoints/${ep.id}/replay`, { after: String(after.value || 0) })).data;
          result.textContent = `${r.queued} event(s) queued for delivery again.`;
        } catch (err) {
          result.textContent = err.message;
        }
      } }, h('span', {}, 'Every event after cursor'), after, h('span', { class: 'muted' }, '(0: from the first)'),
      h('button', { type: 'submit' }, 'Replay'), result));
  }

  async function loadEndpoints() {
    try {
      const list = (await api('GET', '/openvod/v1/webhook-endpoints')).data;
      if (list.length === 0) {
        endpoints.replaceChildren(h('p', { class: 'empty' }, 'No webhook endpoints. Add the URL of your app\'s receiver above.'));
        return;
      }
      endpoints.replaceChildren(...list.map((ep) => {
        const attempts = h('ul', { class: 'attempts' });
        return h('div', { class: 'endpoint', 'data-endpoint-id': ep.id },
          h('strong', {}, ep.url), ' ', h('code', {}, ep.format), ' ',
          h('span', { class: `status ${ep.enabled ? 'ready' : 'errored'}` }, ep.enabled ? 'enabled' : `disabled${ep.disabled_reason ? ': ' + ep.disabled_reason : ''}`),
          ' ', h('span', { class: 'muted' }, `secret ${ep.secret_hint}`),
          h('div', { class: 'actions' },
            h('button', { type: 'button', onclick: async () => {
              const rows = (await api('GET', `/openvod/v1/webhook-endpoints/${ep.id}/attempts`)).data;
              attempts.replaceChildren(...(rows.length ? rows.map((a) => h('li', { class: 'attempt', 'data-success': String(a.success) },
                `${localTime(a.attempted_at)} · event ${a.event_id} · `,
                h('span', { class: 'code' }, a.success ? `delivered (${a.response_status_code})` : `failed: ${a.error || a.response_status_code}`),
                ` · ${a.latency_ms} ms`)) : [h('li', {}, 'No attempts yet.')]));
            } }, 'Attempts'),
            h('button', { type: 'button', onclick: async () => {
              await api('PATCH', `/openvod/v1/webhook-endpoints/${ep.id}`, { enabled: !ep.enabled });
              loadEndpoints();
            } }, ep.enabled ? 'Disable' : 'Enable'),
            h('button', { type: 'button', onclick: async () => {
              if (!confirm(`Replace the signing secret of ${ep.url}? The receiver must be given the new one.`)) return;
              try {
                const rotated = (await api('PATCH', `/openvod/v1/webhook-endpoints/${ep.id}`, { rotate_secret: true })).data;
                secretBox.replaceChildren(h('p', {}, `New signing secret for ${ep.url} (copy it now, it is shown once): `, h('code', { id: 'endpoint-secret' }, rotated.secret)));
                loadEndpoints();
              } catch (err) {
                showError(secretBox, err);
              }
            } }, 'New secret')),
          replayForm(ep),
          attempts);
      }));
    } catch (e) {
      showError(endpoints, e);
    }
  }

  async function loadKeys() {
    try {
      const list = (await api('GET', '/system/v1/signing-keys')).data;
      keys.replaceChildren(
        h('button', { type: 'button', onclick: async () => {
          const key = (await api('POST', '/system/v1/signing-keys', {})).data;
          keyNotice.replaceChildren(h('p', { role: 'status' }, `Key ${key.id} created; its private key is shown once: `, h('textarea', { readonly: true, rows: 3, 'aria-label': 'Private key' }, key.private_key)));
          loadKeys();
        } }, 'Create signing key'),
        list.length ? h('ul', {}, ...list.map((k) => h('li', { 'data-key-id': k.id }, h('code', {}, k.id), ` · ${localTime(k.created_at)} `,
          h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!confirm(`Delete signing key ${k.id}? Tokens signed with it stop working.`)) return;
            await api('DELETE', `/system/v1/signing-keys/${k.id}`);
            loadKeys();
          } }, 'Delete')))) : h('p', { class: 'empty' }, 'No signing keys. Create one to sign playback tokens for signed playback ids.'));
    } catch (e) {
      showError(keys, e);
    }
  }

  // People: accounts, one-time passwords, ending sessions.
  const people = h('div', { id: 'people' });
  const peopleNotice = h('div', { role: 'status' });
  const newUser = h('input', { id: 'new-username', required: true, placeholder: 'username', 'aria-label': 'New username' });
  const newRole = h('select', { id: 'new-role', 'aria-label': 'Role' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'staff' }, 'staff'), h('option', { value: 'admin' }, 'admin'));
  const showPassword = (username, password) => peopleNotice.replaceChildren(h('p', {}, `One-time password for ${username} (shown once): `, h('code', { class: 'one-time-password' }, password)));
  const peopleForm = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const u = (await api('POST', '/openvod/v1/users', { username: newUser.value.trim(), role: newRole.value })).data;
      showPassword(u.username, u.password);
      newUser.value = '';
      loadPeople();
    } catch (err) {
      showError(peopleNotice, err);
    }
  } }, newUser, newRole, h('button', { type: 'submit' }, 'Add person'));
  async function loadPeople() {
    try {
      const list = (await api('GET', '/openvod/v1/users')).data;
      people.replaceChildren(h('ul', {}, ...list.map((u) => h('li', { 'data-username': u.username },
        h('strong', {}, u.username), ` · ${u.role}`, u.can_log_in ? '' : ' · no password yet', ' ',
        h('button', { type: 'button', onclick: async () => {
          const r = (await api('POST', `/openvod/v1/users/${encodeURIComponent(u.username)}/password`, {})).data;
          showPassword(r.username, r.password);
        } }, 'Reset password'), ' ',
        h('button', { type: 'button', onclick: async () => {
          const r = (await api('POST', `/openvod/v1/users/${encodeURIComponent(u.username)}/invites`)).data;
          const link = h('input', { readonly: true, value: r.url, id: 'invite-link', 'aria-label': `Invite link for ${r.username}` });
          peopleNotice.replaceChildren(h('p', { role: 'status' },
            `Send this link to ${r.username}; it lets them choose a password once, until ${localTime(r.expires_at)}: `,
            link, ' ', copyButton(() => r.url)));
        } }, 'Invite link'), ' ',
        h('button', { type: 'button', onclick: async () => {
          const r = (await api('DELETE', `/openvod/v1/users/${encodeURIComponent(u.username)}/sessions`)).data;
          peopleNotice.replaceChildren(h('p', {}, `${r.ended_sessions} session(s) of ${r.username} ended.`));
        } }, 'End sessions')))));
    } catch (err) {
      showError(people, err);
    }
  }

  // Tencent VOD's event callback settings, through the VOD API (ModifyEventConfig).
  const vodMode = h('select', { id: 'vod-mode', 'aria-label': 'Event mode' }, h('option', { value: 'PUSH' }, 'Push to a URL (callback v3)'), h('option', { value: 'PULL' }, 'Pull (PullEvents / ConfirmEvents)'));
  const vodUrl = h('input', { id: 'vod-url', type: 'url', placeholder: 'https://app.example/vod-callback', 'aria-label': 'Callback URL' });
  const vodUpload = h('input', { id: 'vod-upload', type: 'checkbox' });
  const vodDelete = h('input', { id: 'vod-delete', type: 'checkbox' });
  const vodState = h('span', { class: 'muted', role: 'status' });
  const vodForm = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await vod('ModifyEventConfig', {
        Mode: vodMode.value,
        NotificationUrl: vodUrl.value,
        UploadMediaCompleteEventSwitch: vodUpload.checked ? 'ON' : 'OFF',
        DeleteMediaCompleteEventSwitch: vodDelete.checked ? 'ON' : 'OFF',
      });
      vodState.textContent = 'Saved';
    } catch (err) {
      vodState.textContent = err.message;
    }
  } }, vodMode, vodUrl,
    h('label', {}, vodUpload, ' Upload events'), h('label', {}, vodDelete, ' Delete events'),
    h('button', { type: 'submit' }, 'Save event settings'), vodState);
  async function loadVod() {
    try {
      const c = await vod('DescribeEventConfig', {});
      vodMode.value = c.Mode;
      vodUrl.value = c.NotificationUrl || '';
      vodUpload.checked = c.UploadMediaCompleteEventSwitch === 'ON';
      vodDelete.checked = c.DeleteMediaCompleteEventSwitch === 'ON';
    } catch (err) {
      vodState.textContent = err.message;
    }
  }

  // Everything is loaded before the page is shown: sections filling in one by one would push
  // the ones below them around (layout shift).
  await Promise.all([loadEndpoints(), loadKeys(), loadTokens(), loadVod(), loadPeople()]);
  main.replaceChildren(
    h('h1', {}, 'Settings'),
    h('section', { class: 'card', 'aria-labelledby': 'webhooks-h' }, h('h2', { id: 'webhooks-h' }, 'Webhook endpoints'), create, secretBox, endpoints),
    h('section', { class: 'card', 'aria-labelledby': 'keys-h' }, h('h2', { id: 'keys-h' }, 'Signing keys'), keyNotice, keys),
    h('section', { class: 'card', 'aria-labelledby': 'tokens-h' }, h('h2', { id: 'tokens-h' }, 'API access tokens'), tokenForm, tokenNotice, tokens));
  main.append(h('section', { class: 'card', 'aria-labelledby': 'vod-events-h' }, h('h2', { id: 'vod-events-h' }, 'Tencent VOD event notifications'), vodForm));
  main.append(h('section', { class: 'card', 'aria-labelledby': 'people-h' }, h('h2', { id: 'people-h' }, 'People'), peopleForm, peopleNotice, people));
}

// ---------- BigBlueButton recordings ----------

async function recordingsPage() {
  const mine = h('div', { id: 'external' });
  const claims = h('div', { id: 'claims' });
  async function loadMine() {
    try {
      const list = (await api('GET', '/openvod/v1/external-recordings')).data;
      if (list.length === 0) {
        mine.replaceChildren(h('p', { class: 'empty' }, 'No external recordings of yours were found on the old server.'));
        return;
      }
      mine.replaceChildren(h('ul', {}, ...list.map((r) => h('li', { 'data-external-id': r.id },
        h('strong', {}, r.name), ` · ${localTime(r.start_at)} · `, h('span', { class: 'state' }, r.state), ' ',
        r.state === 'not imported' || r.state.startsWith('error')
          ? h('button', { type: 'button', onclick: async () => {
            await api('POST', `/openvod/v1/external-recordings/${r.id}/import`);
            loadMine();
          } }, 'Import')
          : null))));
      if (list.some((r) => r.state === 'importing')) refreshTimer = setTimeout(loadMine, 2000);
    } catch (e) {
      showError(mine, e);
    }
  }
  async function loadClaims() {
    try {
      const list = (await api('GET', '/openvod/v1/bbb/claims')).data;
      if (list.length === 0) {
        claims.replaceChildren(h('p', { class: 'empty' }, 'Nothing to claim: every migrated recording has an owner.'));
        return;
      }
      claims.replaceChildren(h('ul', {}, ...list.map((c) => {
        const owner = h('input', { 'aria-label': `Owner for ${c.name}`, placeholder: 'username' });
        return h('li', { 'data-claim-asset': c.asset_id },
          h('strong', {}, c.name), ` · ${localTime(c.start_time)} · ${c.origin_server_name || ''} `,
          h('button', { type: 'button', onclick: async () => { await api('POST', `/openvod/v1/bbb/claims/${c.asset_id}`, { owner: session.username }); loadClaims(); } }, 'Claim for me'),
          ' ', owner,
          h('button', { type: 'button', onclick: async () => { if (owner.value) { await api('POST', `/openvod/v1/bbb/claims/${c.asset_id}`, { owner: owner.value }); loadClaims(); } } }, 'Assign'));
      })));
    } catch (e) {
      showError(claims, e);
    }
  }
  const migration = h('div', { id: 'migration' });
  const migrationPage = { page: 1, limit: 20 };
  async function loadMigration() {
    try {
      const { data, total } = await apiPage(`/openvod/v1/bbb/recordings?limit=${migrationPage.limit}&page=${migrationPage.page}`);
      if (total === 0) {
        migration.replaceChildren(h('p', { class: 'empty' }, 'No recording listed yet: run openvod bbb migrate (see the README) to list the old server.'));
        return;
      }
      const pages = Math.max(1, Math.ceil(total / migrationPage.limit));
      const rows = data.map((r) => h('tr', { 'data-record-id': r.record_id },
        h('td', {}, r.name, h('br'), h('small', { class: 'muted' }, r.record_id)),
        h('td', {}, localTime(r.start_time)),
        h('td', {}, r.owners.length ? r.owners.map((o) => `${o.full_name ? `${o.full_name} (${o.username})` : o.username} · ${o.origin}`).join(', ') : h('span', { class: 'muted' }, 'none')),
        h('td', { class: 'migration-state' }, r.actions.length === 0 ? h('span', { class: 'muted' }, 'listed only') : r.actions.map((a) => h('div', {},
          `${a.mode.replace('_', ' ')}: `,
          h('span', { class: a.state === 'failed' || a.asset_state?.startsWith('error') ? 'status errored' : 'status ready' },
            a.state === 'failed' ? `failed: ${a.error}` : a.asset_state || a.detail || a.state),
          a.asset_id ? [' ', h('a', { href: `#/videos/${a.asset_id}` }, 'video')] : null)))));
      migration.replaceChildren(
        h('div', { class: 'table-scroll' }, h('table', {},
          h('caption', {}, `${total} recording(s) of the old server`),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Recording'), h('th', { scope: 'col' }, 'Started'), h('th', { scope: 'col' }, 'Owners'), h('th', { scope: 'col' }, 'State'))),
          h('tbody', {}, ...rows))),
        h('nav', { class: 'pager', 'aria-label': 'Migration pages' },
          h('button', { type: 'button', disabled: migrationPage.page <= 1, onclick: () => { migrationPage.page -= 1; loadMigration(); } }, 'Previous'),
          ` Page ${migrationPage.page} of ${pages} `,
          h('button', { type: 'button', disabled: migrationPage.page >= pages, onclick: () => { migrationPage.page += 1; loadMigration(); } }, 'Next')));
    } catch (e) {
      showError(migration, e);
    }
  }
  const sections = [h('h1', {}, 'Recordings'),
    h('section', { class: 'card', 'aria-labelledby': 'mine-h' }, h('h2', { id: 'mine-h' }, 'My external recordings'), mine)];
  if (session.role !== 'user') {
    sections.push(h('section', { class: 'card', 'aria-labelledby': 'claims-h' }, h('h2', { id: 'claims-h' }, 'Migrated recordings to claim'), claims));
    sections.push(h('section', { class: 'card', 'aria-labelledby': 'migration-h' }, h('h2', { id: 'migration-h' }, 'Migration of the old server'), migration));
  }
  // Loaded before shown, so no section moves when the one above it fills in.
  await Promise.all([loadMine(), session.role !== 'user' ? loadClaims() : null, session.role !== 'user' ? loadMigration() : null]);
  main.replaceChildren(...sections);
}

// ---------- routing ----------

async function route() {
  clearTimeout(refreshTimer);
  const invite = (location.hash || '').match(/^#\/invite\/([A-Za-z0-9_-]+)$/);
  if (invite) {
    document.getElementById('nav').hidden = true;
    await invitePage(invite[1]);
    return;
  }
  if (!session) {
    try {
      session = (await api('GET', '/console/api/session')).data;
    } catch {
      session = null;
    }
  }
  const nav = document.getElementById('nav');
  nav.hidden = !session;
  if (!session) {
    loginPage();
    return;
  }
  document.getElementById('who').textContent = `${session.username} (${session.role})`;
  document.getElementById('nav-settings').hidden = session.role !== 'admin';
  const hash = location.hash || '#/videos';
  const detail = hash.match(/^#\/videos\/([A-Za-z0-9]+)$/);
  if (detail) await videoPage(detail[1]);
  else if (hash === '#/settings' && session.role === 'admin') await settingsPage();
  else if (hash === '#/recordings') await recordingsPage();
  else await videosPage();
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('DELETE', '/console/api/session').catch(() => {});
  session = null;
  location.hash = '#/videos';
  route();
});
window.addEventListener('hashchange', route);
route();
