/**
 * The demo page's HTML: the whole layout, present before the script runs, so that every control has its label and
 * its place from the start. The script (`page/main.ts`) only binds to these elements by id.
 *
 * @since 0.2.0
 */

/** Where the page's script is served. */
export const scriptPath = "/demo/app.js"

const style = `
:root { color-scheme: light dark; --accent: #2457c5; --muted: #667; --line: #ccd; --ok: #11803d; --bad: #b3261e;
  font: 15px/1.45 system-ui, sans-serif; }
body { margin: 0; }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.1rem; margin: 0; }
header .who { margin-left: auto; }
main { padding: 1rem; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
section { border: 1px solid var(--line); border-radius: 8px; padding: .75rem; min-width: 0; }
#signin { max-width: 26rem; margin: 2rem auto; }
#signin form { display: grid; gap: .5rem; }
#app { display: grid; gap: 1rem; grid-template-columns: minmax(14rem, 1fr) minmax(18rem, 2fr) minmax(20rem, 2fr); }
@media (max-width: 900px) { #app { grid-template-columns: 1fr; } }
ul, ol { list-style: none; margin: 0 0 .5rem; padding: 0; }
li { display: flex; gap: .4rem; align-items: center; padding: .2rem 0; flex-wrap: wrap; }
li .name { font-weight: 600; }
.meta, .hint { color: var(--muted); font-size: .85rem; }
.row { display: flex; gap: .4rem; flex-wrap: wrap; align-items: center; }
.row input:not([type=checkbox]), .row select { flex: 1; min-width: 6rem; }
input, select, button { font: inherit; padding: .3rem .5rem; }
button { border: 1px solid var(--accent); background: var(--accent); color: white; border-radius: 5px; cursor: pointer; }
button.secondary { background: transparent; color: var(--accent); }
button:disabled { opacity: .45; cursor: default; }
:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
#chat-log { height: 16rem; overflow-y: auto; border: 1px solid var(--line); border-radius: 5px; padding: .4rem; }
#chat-log li { display: block; }
#chat-log .from { font-weight: 600; }
#chat-log .direct { color: var(--accent); }
[role=alert] { color: var(--bad); min-height: 1em; margin: .3rem 0; }
.state { font-weight: 600; }
[data-call-state=Active] .state, [data-watch-state=Watching] .state { color: var(--ok); }
.videos { display: grid; grid-template-columns: 1fr 1fr; gap: .5rem; margin: .5rem 0; }
video, canvas { width: 100%; aspect-ratio: 4 / 3; background: #111; border-radius: 5px; }
figure { margin: 0; }
figcaption { font-size: .8rem; color: var(--muted); }
[hidden] { display: none !important; }
`

/**
 * The page served at `/`.
 *
 * @since 0.2.0
 */
export const indexHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Symple demo</title>
<link rel="icon" href="data:,">
<style>${style}</style>
<script type="module" src="${scriptPath}"></script>
</head>
<body>
<header>
  <h1>Symple demo</h1>
  <span id="connection" class="meta" role="status">Not signed in</span>
  <span class="who" id="who" hidden></span>
  <button type="button" id="sign-out" class="secondary" hidden>Sign out</button>
</header>
<main>
<section id="signin" aria-labelledby="signin-heading">
  <h2 id="signin-heading">Sign in</h2>
  <form id="signin-form">
    <label for="name">Name</label>
    <input id="name" name="name" required maxlength="64" pattern="[^|]+" autocomplete="nickname"
      aria-describedby="name-hint">
    <span id="name-hint" class="hint">How others see you; no "|".</span>
    <label for="token">Token</label>
    <input id="token" name="token" type="password" autocomplete="off" aria-describedby="token-hint">
    <span id="token-hint" class="hint">Only when the server requires one.</span>
    <label for="rooms">Rooms to join</label>
    <input id="rooms" name="rooms" value="lobby" aria-describedby="rooms-hint">
    <span id="rooms-hint" class="hint">Separated by commas. You see and reach the people who share a room with you.</span>
    <span class="row"><input id="use-camera" name="use-camera" type="checkbox" checked>
      <label for="use-camera">Use my camera and microphone in calls (otherwise a drawn test picture)</label></span>
    <button type="submit" id="sign-in">Sign in</button>
    <p id="signin-error" role="alert"></p>
  </form>
</section>

<div id="app" hidden>
  <div>
    <section aria-labelledby="rooms-heading">
      <h2 id="rooms-heading">Your rooms</h2>
      <ul id="room-list" aria-labelledby="rooms-heading"></ul>
      <form id="join-form">
        <label for="join-room">Join a room</label>
        <span class="row"><input id="join-room" name="room" required maxlength="256">
          <button type="submit">Join</button></span>
      </form>
      <p id="rooms-error" role="alert"></p>
    </section>
    <section aria-labelledby="people-heading">
      <h2 id="people-heading">People online</h2>
      <ul id="peer-list" aria-labelledby="people-heading"></ul>
      <p id="no-peers" class="meta">Nobody else yet: open this page in another window.</p>
      <h2 id="streamers-heading">Streamers</h2>
      <ul id="streamer-list" aria-labelledby="streamers-heading"></ul>
      <p id="no-streamers" class="meta">None: run <code>npx tsx examples/streamer.ts</code>.</p>
    </section>
  </div>

  <section aria-labelledby="chat-heading">
    <h2 id="chat-heading">Chat</h2>
    <ol id="chat-log" aria-labelledby="chat-heading" aria-live="polite" tabindex="0"></ol>
    <form id="chat-form" class="row">
      <label for="chat-to">To</label>
      <select id="chat-to" name="to"></select>
      <label for="chat-text">Message</label>
      <input id="chat-text" name="text" required autocomplete="off" maxlength="2000">
      <button type="submit">Send</button>
    </form>
    <p id="chat-error" role="alert"></p>
  </section>

  <div>
    <section id="call" aria-labelledby="call-heading" data-call-state="Idle">
      <h2 id="call-heading">Call</h2>
      <p><span id="call-state" class="state" role="status">No call</span></p>
      <div id="incoming" class="row" hidden>
        <button type="button" id="accept">Accept</button>
        <button type="button" id="reject" class="secondary">Decline</button>
      </div>
      <button type="button" id="hangup" disabled>Hang up</button>
      <div class="videos">
        <figure><video id="remote-video" autoplay playsinline aria-label="The other person's video"></video>
          <figcaption>Them</figcaption></figure>
        <figure><video id="local-video" autoplay playsinline muted aria-label="Your video"></video>
          <figcaption id="local-caption">You</figcaption></figure>
      </div>
      <p id="call-stats" class="meta" aria-live="off"></p>
    </section>
    <section id="watch" aria-labelledby="watch-heading" data-watch-state="Idle" hidden>
      <h2 id="watch-heading">Stream</h2>
      <p><span id="watch-state" class="state" role="status"></span></p>
      <canvas id="stream" width="320" height="240" role="img" aria-label="The streamer's picture"></canvas>
      <p id="watch-stats" class="meta" aria-live="off"></p>
      <button type="button" id="stop-watching">Stop watching</button>
    </section>
  </div>
</div>
</main>
</body>
</html>
`
