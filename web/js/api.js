// api.js -- the console's calls to /api/ (DESIGN.md "API contract").
//
// The session is the HttpOnly cookie the server set at login; this module
// keeps only the CSRF token from the login answer (sessionStorage: this tab,
// gone with it) and sends it in X-CSRF-Token on every write.  Errors come
// back as ApiError with the HTTP status and the server's {"error","message"}.
// A 401 on anything but the login itself means the session ended: the
// handlers registered with onSessionEnd() run (the app shows the login).

const CSRF = 'remigate.csrf';
const ME = 'remigate.me';
const endListeners = [];

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || `http_${status}`;
    this.body = body || {};
  }
}

export function onSessionEnd(f) {
  endListeners.push(f);
}

export function me() {
  try {
    return JSON.parse(sessionStorage.getItem(ME) || 'null');
  } catch {
    return null;
  }
}

function forget() {
  sessionStorage.removeItem(CSRF);
  sessionStorage.removeItem(ME);
}

export async function call(method, path, { body, query, headers } = {}) {
  let url = `/api/${path}`;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.append(k, v);
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  const h = { Accept: 'application/json', ...(headers || {}) };
  if (method !== 'GET') {
    const token = sessionStorage.getItem(CSRF);
    if (token) h['X-CSRF-Token'] = token;
  }
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'offline', String(e));
  }
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (type.startsWith('application/json')) data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.error, data && data.message, data);
    err.retryAfter = Number(res.headers.get('Retry-After')) || 0;
    if (res.status === 401 && path !== 'login') {
      forget();
      for (const f of endListeners) f(err);
    }
    throw err;
  }
  return { data: data || {}, headers: res.headers, status: res.status };
}

export async function login(username, password, otp) {
  const body = { username, password };
  if (otp) body.otp = otp;
  const { data } = await call('POST', 'login', { body });
  sessionStorage.setItem(CSRF, data.csrf || '');
  const who = {
    username: data.username || username,
    role: data.role,
    districts: data.districts || [],
    totp: !!data.totp,
    totp_required: !!data.totp_required,
  };
  sessionStorage.setItem(ME, JSON.stringify(who));
  return who;
}

export async function logout() {
  try {
    await call('POST', 'logout', { body: {} });
  } finally {
    forget();
  }
}

// The session as the server sees it (after a reload of the page).
export async function whoami() {
  const { data } = await call('GET', 'me');
  const who = {
    username: data.username,
    role: data.role,
    districts: data.districts || [],
    totp: !!data.totp,
    totp_required: !!data.totp_required,
  };
  if (data.csrf) sessionStorage.setItem(CSRF, data.csrf);
  sessionStorage.setItem(ME, JSON.stringify(who));
  return who;
}

export const get = (path, query) => call('GET', path, { query }).then((r) => r.data);
export const post = (path, body, headers) => call('POST', path, { body: body ?? {}, headers });
