/** The example's HTML: small pages, every value escaped. */
const esc = (v) =>
  String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const json = (v) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;

function layout(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:.75rem;overflow:auto}form{display:inline}</style>
</head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

export function signedOutPage(message) {
  return layout('Example app', `${message ? `<p id="message">${esc(message)}</p>` : ''}
<p id="status">You are not signed in.</p>
<p><a id="sign-in" href="/login">Sign in with Portico</a></p>`);
}

/** The signed-in view: who the verified id_token says the user is, and what to try next. */
export function signedInPage(session, { title = 'Example app', message, userinfo } = {}) {
  return layout(title, `${message ? `<p id="message">${esc(message)}</p>` : ''}
<p id="status">Signed in as <strong id="email">${esc(session.claims.email ?? session.claims.sub)}</strong>.</p>
<h2>id_token claims (signature and claims verified)</h2>
<div id="claims">${json(session.claims)}</div>
<p id="refresh-token">${session.refreshToken ? 'A refresh token was issued.' : 'No refresh token was issued.'}</p>
${userinfo ? `<h2>userinfo</h2><div id="userinfo">${json(userinfo)}</div>` : ''}
<form method="post" action="/userinfo"><button id="call-userinfo">Call userinfo</button></form>
<form method="post" action="/refresh"><button id="refresh">Refresh tokens</button></form>
<form method="post" action="/logout"><button id="log-out">Log out</button></form>
<p><a href="/">Home</a></p>`);
}

export function errorPage(message) {
  return layout('Sign-in failed', `<p id="error">${esc(message)}</p><p><a href="/">Home</a></p>`);
}
