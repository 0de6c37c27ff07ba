// The oracle harness: the real Kaltura v7 player (@playkit-js/kaltura-player-js) with its KAVA plugin
// (@playkit-js/playkit-js-kava) in headless Chromium, driven through scripted sessions; every request the
// page sends to the beacon endpoint is recorded as it arrives.
//
//   node harness.mjs --out DIR [--cache DIR] [--only NAME,...] [--chromium PATH] [--parallel N]
//
// Writes DIR/<session>.json per session and prints one summary line per session. Everything listens on
// loopback: the page is served from http://localhost:<port> and the beacons go to http://127.0.0.1:<other
// port>, a different site, so they are cross-origin (and cross-site) as in production.
import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {createRequire} from 'node:module';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const {chromium} = require('playwright-core');

const PLAYER_JS = require.resolve('@playkit-js/kaltura-player-js/dist/kaltura-ovp-player.js');
const KAVA_JS = require.resolve('@playkit-js/playkit-js-kava/dist/playkit-kava.js');
const PLAYER_VERSION = require('@playkit-js/kaltura-player-js/package.json').version;
const KAVA_VERSION = require('@playkit-js/playkit-js-kava/package.json').version;

const MEDIA = {duration: 24, fps: 25, gop: 25, entryId: '1_oracle24', partnerId: 1980101, uiConfId: 47306783};
// What the collector answers (sim/collector/app.py CORS, kaltura_api.kava_result)
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, GET, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'Origin, X-Requested-With, Content-Type, Accept, Range, Cache-Control, Authorization',
};
const MAX_AGE = '86400';

// --- the scripted sessions --------------------------------------------------------------------------------
// Steps run in order through the player API: play, pause, wait S (wall clock), to P (play until the playhead
// reaches P: on a busy machine the playhead, not the clock, keeps the session's shape), until_ended, seek S,
// mute B, fullscreen B, replay (play() after the end: the media element restarts from 0), quit (close the
// page). Each session runs once per transport: 'get' is 0.15's own request; 'post' sends the same plugin's
// events as a JSON POST.
const SCRIPTS = {   // longest first
  'long-pause': ['play', {to: 5}, 'pause', {wait: 36}, 'play', {to: 10}, 'quit'],
  'replay': ['play', 'until_ended', {wait: 2}, 'replay', {to: 8}, 'quit'],
  'play-to-end': ['play', 'until_ended', {wait: 3}, 'quit'],
  'fullscreen-mute': ['play', {to: 3}, {fullscreen: true}, {mute: true}, {to: 14}, {mute: false},
    {fullscreen: false}, {to: 16}, 'quit'],
  'seek-back': ['play', {to: 14}, {seek: 2}, {to: 7}, 'quit'],
  'seek-forward': ['play', {to: 3}, {seek: 19.5}, {to: 21.5}, 'quit'],
};
const TRANSPORTS = ['get', 'post'];

// --- media ------------------------------------------------------------------------------------------------
function makeMedia(cacheDir) {
  fs.mkdirSync(cacheDir, {recursive: true});
  const args = ['-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc=size=320x180:rate=${MEDIA.fps}`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(MEDIA.duration),
    // a keyframe every second so seeks land exactly where asked
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-g', String(MEDIA.gop), '-keyint_min', String(MEDIA.gop), '-sc_threshold', '0', '-b:v', '300k',
    '-c:a', 'aac', '-b:a', '64k', '-movflags', '+faststart'];
  const key = createHash('sha256').update(args.join(' ')).digest('hex').slice(0, 12);
  const file = path.join(cacheDir, `oracle-${key}.mp4`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp.mp4`;
    const run = spawnSync('ffmpeg', [...args, tmp], {encoding: 'utf8'});
    if (run.status !== 0) throw new Error(`ffmpeg failed: ${run.stderr || run.error}`);
    fs.renameSync(tmp, file);
  }
  return file;
}

// --- servers ----------------------------------------------------------------------------------------------
function listen(server) {
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

function pageHtml(name, transport, beaconPort) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>oracle ${name}</title>
<style>body{margin:0}#player{width:640px;height:360px}</style></head>
<body><div id="player"></div>
<script src="/kaltura-ovp-player.js"></script>
<script src="/playkit-kava.js"></script>
<script>
window.oracleEvents = [];
const player = KalturaPlayer.setup({
  targetId: 'player',
  log: {level: 'ERROR'},
  provider: {partnerId: ${MEDIA.partnerId}, uiConfId: ${MEDIA.uiConfId}},
  playback: {autoplay: false, preload: 'none'},
  plugins: {kava: {serviceUrl: '//127.0.0.1:${beaconPort}/api_v3/index.php'}}
});
window.player = player;
${transport === 'post' ? 'installPost(player.plugins.kava);' : ''}
for (const name of ['firstplay', 'playing', 'pause', 'seeking', 'seeked', 'ended', 'waiting', 'volumechange',
                    'mutechange', 'enterfullscreen', 'exitfullscreen', 'sourceselected', 'error']) {
  player.addEventListener(name, () => window.oracleEvents.push(
    {event: name, t: Date.now() / 1000, currentTime: player.currentTime}));
}
player.setMedia({
  sources: {id: '${MEDIA.entryId}', duration: ${MEDIA.duration}, type: 'Vod',
            progressive: [{id: '${MEDIA.entryId}_flavor1', mimetype: 'video/mp4', url: '/media.mp4',
                           bitrate: 364000, width: 320, height: 180}]},
  // what an OVP provider's media config carries: the player adds the session id to it
  session: {partnerId: ${MEDIA.partnerId}, uiConfId: ${MEDIA.uiConfId}, isAnonymous: true},
  plugins: {}
});

// POST transport: 0.15.1 has no POST, so its sendAnalytics is replaced by one that sends the same event model
// the way the plugin's current line does (playkit-js-providers analytics-service: eventType, partnerId, entryId
// and sessionId in the URL; apiVersion, format and the other params as a JSON body with
// Content-Type: application/json). eventIndex and the server's answer are handled exactly as 0.15.1 does.
function installPost(kava) {
  const URL_KEYS = ['eventType', 'partnerId', 'entryId', 'sessionId'];
  kava.sendAnalytics = function (model) {
    return new Promise((resolve, reject) => {
      const params = Object.assign({apiVersion: '3.3.0', format: 1}, model);
      const query = URL_KEYS.map(k => k + '=' + encodeURIComponent(params[k])).join('&');
      const body = {};
      for (const k of Object.keys(params)) if (!URL_KEYS.includes(k)) body[k] = params[k];
      const xhr = new XMLHttpRequest();
      xhr.onreadystatechange = () => {
        if (xhr.readyState !== 4) return;
        if (xhr.status === 200) {
          let answer;
          try { answer = JSON.parse(xhr.responseText); } catch (e) { return reject(e); }
          this._handleServerResponseSuccess(answer, model);
          resolve();
        } else { this._handleServerResponseFailed(xhr.responseText, model); reject(xhr.responseText); }
      };
      xhr.open('POST', window.location.protocol + this.config.serviceUrl +
               '?service=analytics&action=trackEvent&' + query);
      xhr.setRequestHeader('Content-Type', 'application/json');
      xhr.send(JSON.stringify(body));
      this._model.updateModel({eventIndex: this._model.getEventIndex() + 1});
    });
  };
}
</script></body></html>`;
}

function pageServer(mediaFile, pages) {
  const media = fs.readFileSync(mediaFile);
  const files = {
    '/kaltura-ovp-player.js': [fs.readFileSync(PLAYER_JS), 'application/javascript'],
    '/playkit-kava.js': [fs.readFileSync(KAVA_JS), 'application/javascript'],
  };
  return http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/media.mp4') {
      const range = /bytes=(\d*)-(\d*)/.exec(req.headers.range || '');
      let start = 0, end = media.length - 1;
      if (range) {
        if (range[1]) start = Number(range[1]);
        if (range[2]) end = Math.min(Number(range[2]), end);
        if (!range[1] && range[2]) { start = media.length - Number(range[2]); end = media.length - 1; }
      }
      if (start > end || start >= media.length) {
        res.writeHead(416, {'Content-Range': `bytes */${media.length}`});
        return res.end();
      }
      res.writeHead(range ? 206 : 200, {
        'Content-Type': 'video/mp4', 'Accept-Ranges': 'bytes', 'Content-Length': end - start + 1,
        ...(range ? {'Content-Range': `bytes ${start}-${end}/${media.length}`} : {}),
      });
      return res.end(req.method === 'HEAD' ? undefined : media.subarray(start, end + 1));
    }
    if (files[url.pathname]) {
      const [body, type] = files[url.pathname];
      res.writeHead(200, {'Content-Type': type, 'Content-Length': body.length});
      return res.end(body);
    }
    const page = pages[url.pathname];
    if (page) {
      res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8'});
      return res.end(page());
    }
    if (url.pathname === '/favicon.ico') { res.writeHead(204); return res.end(); }
    pageServer.notFound.push(req.url);
    res.writeHead(404);
    res.end();
  });
}
pageServer.notFound = [];

// One beacon endpoint per session: every request recorded in arrival order, answered as Kaltura does.
function beaconServer(recorded) {
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      const arrived = Date.now() / 1000;
      const rec = {
        n: recorded.length, t: arrived, method: req.method, url: req.url, http_version: req.httpVersion,
        headers: pairs(req.rawHeaders), body: chunks.length ? Buffer.concat(chunks).toString('utf8') : null,
      };
      recorded.push(rec);
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {...CORS, 'Access-Control-Max-Age': MAX_AGE});
        return res.end();
      }
      // KAVA's answer: the server time as a float (seconds, milliseconds kept) and whether VIEWs are wanted
      const answer = JSON.stringify({time: Math.round(Date.now()) / 1000, viewEventsEnabled: true});
      rec.answer = answer;
      res.writeHead(200, {...CORS, 'Content-Type': 'application/json'});
      res.end(answer);
    });
  });
}

function pairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

// --- the driver -------------------------------------------------------------------------------------------
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function runStep(page, step, actions) {
  const name = typeof step === 'string' ? step : Object.keys(step)[0];
  const value = typeof step === 'string' ? null : step[name];
  const at = async () => page.evaluate(() => ({t: Date.now() / 1000, currentTime: window.player.currentTime,
                                              paused: window.player.paused, ended: window.player.ended}));
  if (name === 'quit') {
    // The viewer leaves at this instant, as closing the tab would: the plugin stops listening and its timer
    // stops in the same task that reads the playhead, so the media playing on while the page is torn down
    // (seconds on a busy machine) sends nothing more. What was already sent still arrives.
    const last = await page.evaluate(() => {
      const kava = window.player.plugins.kava;
      kava.eventManager.removeAll();
      kava._timer.destroy();
      return {t: Date.now() / 1000, currentTime: window.player.currentTime, paused: window.player.paused,
              ended: window.player.ended};
    });
    actions.push({step: name, value, t: last.t, t_done: last.t, position: last.currentTime,
                  position_done: last.currentTime, paused: last.paused, ended: last.ended});
    return;
  }
  const before = await at();
  switch (name) {
    case 'play':
    case 'replay':
      await page.evaluate(() => window.player.play());
      break;
    case 'pause':
      await page.evaluate(() => window.player.pause());
      break;
    case 'wait':
      await sleep(value * 1000);
      break;
    case 'to':
      await page.waitForFunction(p => window.player.currentTime >= p, value, {timeout: 120000, polling: 20});
      break;
    case 'until_ended':
      await page.waitForFunction(() => window.player.ended, null, {timeout: 120000, polling: 20});
      break;
    case 'seek':
      await page.evaluate(v => { window.player.currentTime = v; }, value);
      break;
    case 'mute':
      await page.evaluate(v => { window.player.muted = v; }, value);
      break;
    case 'fullscreen':
      // evaluate runs with a user gesture, which the Fullscreen API needs
      await page.evaluate(v => v ? window.player.enterFullscreen() : window.player.exitFullscreen(), value);
      break;
    default:
      throw new Error(`unknown step ${name}`);
  }
  const after = await at();
  actions.push({step: name, value, t: before.t, t_done: after.t, position: before.currentTime,
                position_done: after.currentTime, paused: before.paused, ended: before.ended});
}

async function runSession(browser, name, transport, pagePort) {
  const recorded = [];
  const beacons = beaconServer(recorded);
  const beaconPort = await listen(beacons);
  const pagePath = `/oracle/${name}-${transport}.html`;
  runSession.pages[pagePath] = () => pageHtml(name, transport, beaconPort);
  const context = await browser.newContext({viewport: {width: 1280, height: 720}});
  // Nothing leaves the machine (the browser resolves no other host name, see main); what was tried is listed.
  // Playwright's request routing is not used: it answers CORS preflights itself, hiding them from the endpoint.
  const offHost = [];
  const page = await context.newPage();
  page.on('requestfailed', req => {
    const host = new URL(req.url()).hostname;
    if (!['localhost', '127.0.0.1'].includes(host)) offHost.push(req.url());
  });
  const consoleErrors = [];
  page.on('response', res => { if (res.status() >= 400) consoleErrors.push(`${res.status()} ${res.url()}`); });
  page.on('console', msg => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  page.on('pageerror', err => consoleErrors.push(String(err)));
  const actions = [];
  const pageUrl = `http://localhost:${pagePort}${pagePath}?campaign=oracle`;
  const loadT = Date.now() / 1000;
  await page.goto(pageUrl, {waitUntil: 'load'});
  await page.waitForFunction(() => window.player && window.player.plugins && window.player.plugins.kava);
  actions.push({step: 'load', value: null, t: loadT, t_done: Date.now() / 1000, position: 0, position_done: 0});
  for (const step of SCRIPTS[name]) await runStep(page, step, actions);
  const facts = await page.evaluate(() => ({
    events: window.oracleEvents, userAgent: navigator.userAgent, kavaConfig: window.player.plugins.kava.config,
    duration: window.player.duration,
  }));
  await context.close();
  await sleep(300);   // a request in flight at close still arrives before the endpoint stops
  await new Promise(r => beacons.close(r));
  delete runSession.pages[pagePath];
  return {
    session: name, transport, script: SCRIPTS[name],
    versions: {'kaltura-player-js': PLAYER_VERSION, 'playkit-js-kava': KAVA_VERSION,
               chromium: browser.version(), 'playwright-core': require('playwright-core/package.json').version},
    media: {...MEDIA, duration_seen: facts.duration},
    page_url: pageUrl, beacon_origin: `http://127.0.0.1:${beaconPort}`, user_agent: facts.userAgent,
    endpoint: {access_control_max_age: Number(MAX_AGE), cors: CORS},
    kava_config: facts.kavaConfig, actions, player_events: facts.events, console_errors: consoleErrors,
    off_host_requests: offHost, requests: recorded,
  };
}
runSession.pages = {};

function parseArgs(argv) {
  const args = {out: null, cache: path.join(HERE, '.cache'), only: null, chromium: null, parallel: '4'};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args)) throw new Error(`unknown option ${argv[i]}`);
    args[key] = argv[++i];
  }
  if (!args.out) throw new Error('--out DIR is required');
  return args;
}

function which(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  return null;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const executablePath = args.chromium || which('chromium') || which('chromium-browser');
  if (!executablePath) throw new Error('no chromium on PATH');
  const mediaFile = makeMedia(args.cache);
  const server = pageServer(mediaFile, runSession.pages);
  const pagePort = await listen(server);
  const browser = await chromium.launch({
    executablePath, headless: true,
    args: ['--autoplay-policy=no-user-gesture-required', '--no-sandbox', '--mute-audio',
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1'],
  });
  const wanted = args.only ? args.only.split(',') : null;
  const todo = [];
  for (const name of Object.keys(SCRIPTS)) {
    for (const transport of TRANSPORTS) {
      if (wanted && !wanted.includes(name) && !wanted.includes(`${name}-${transport}`)) continue;
      todo.push([name, transport]);
    }
  }
  // a few at a time, the longest first (SCRIPTS' order): each page decodes video, and a starved page is late
  // to every event it handles
  const results = [];
  const worker = async () => {
    while (todo.length) {
      const [name, transport] = todo.shift();
      results.push(await runSession(browser, name, transport, pagePort));
    }
  };
  const stop = () => browser.close().finally(() => process.exit(1));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await Promise.all(Array.from({length: Number(args.parallel)}, worker));
  results.sort((a, b) => `${a.session}-${a.transport}`.localeCompare(`${b.session}-${b.transport}`));
  await browser.close();
  server.close();
  fs.mkdirSync(args.out, {recursive: true});
  for (const rec of results) {
    rec.harness_wall_s = (Date.now() - started) / 1000;
    fs.writeFileSync(path.join(args.out, `${rec.session}-${rec.transport}.json`), JSON.stringify(rec, null, 1) + '\n');
    const kinds = rec.requests.map(r => r.method === 'OPTIONS' ? 'OPTIONS' :
      new URLSearchParams(r.url.split('?')[1]).get('eventType'));
    console.log(`${rec.session}-${rec.transport}: ${rec.requests.length} requests: ${kinds.join(' ')}`);
  }
  if (pageServer.notFound.length) console.log(`page server 404s: ${[...new Set(pageServer.notFound)].join(' ')}`);
  console.log(`wall ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch(err => { console.error(err && err.stack || String(err)); process.exit(1); });
