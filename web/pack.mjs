// Trunk post-build step (see Trunk.toml). In the staging directory Trunk just built:
//  1. index.html gets its Content-Security-Policy: only its own origin, its inline start-up script
//     by hash, WebAssembly compilation; nothing from anywhere else.
//  2. sw.js: a service worker that caches every file of the build, so the page keeps working
//     with the network gone after the first visit.
//  3. kaifuku.html: the whole page in one file (styles, scripts and gzip-compressed wasm inlined,
//     the worker started from a blob: URL), for opening from disk (file://) with no server at all:
//     browsers refuse module scripts and .wasm fetches from file:// pages.
// Usage: node web/pack.mjs [STAGING_DIR]   (Trunk sets TRUNK_STAGING_DIR)
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

const stage = process.env.TRUNK_STAGING_DIR || process.argv[2];
if (!stage) {
  console.error("pack: no staging directory (TRUNK_STAGING_DIR or first argument)");
  process.exit(2);
}
const read = (f) => readFileSync(path.join(stage, f));
const text = (f) => read(f).toString("utf8");
const sha256 = (s) => "'sha256-" + createHash("sha256").update(s, "utf8").digest("base64") + "'";
const fail = (msg) => {
  console.error("pack: " + msg);
  process.exit(1);
};

// Where the page may connect besides its own origin: Azure Blob Storage (public, China and US
// Government clouds), for a disk fixed where it lives by its SAS URL, and Azurite (Microsoft's
// storage emulator) on its default port, for practising that without a cloud account. Nothing else.
const storageHosts = [
  "https://*.blob.core.windows.net",
  "https://*.blob.core.chinacloudapi.cn",
  "https://*.blob.core.usgovcloudapi.net",
  "http://127.0.0.1:10000",
  "http://localhost:10000",
].join(" ");

// ---- 1. index.html ----
let index = text("index.html");
if (!index.includes("KAIFUKU_CSP")) fail("index.html has no KAIFUKU_CSP placeholder (built twice?)");
const inline = [...index.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
if (inline.length === 0) fail("no inline start-up script in index.html");
const indexCsp = [
  "default-src 'none'",
  `script-src 'self' 'wasm-unsafe-eval' ${inline.map(sha256).join(" ")}`,
  "style-src 'self'",
  "img-src 'self' data: blob:",
  `connect-src 'self' ${storageHosts}`,
  "worker-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
].join("; ");
index = index.replace("KAIFUKU_CSP", indexCsp);
writeFileSync(path.join(stage, "index.html"), index);

// The files the page is made of.
const pick = (re, what) => {
  const m = index.match(re);
  if (!m) fail(`cannot find ${what} in index.html`);
  return m[1];
};
const cssFile = pick(/<link rel="stylesheet" href="\.\/([^"]+\.css)"/, "the stylesheet");
const iconFile = pick(/<link rel="icon" href="\.\/([^"]+\.svg)"/, "the icon");
const appJs = pick(/import init, \* as bindings from '\.\/([^']+\.js)'/, "the app script");
const appWasm = pick(/module_or_path: '\.\/([^']+\.wasm)'/, "the app wasm");
const workerJs = "kaifuku-worker.js";
const workerWasm = "kaifuku-worker_bg.wasm";
for (const f of [cssFile, iconFile, appJs, appWasm, workerJs, workerWasm, "kaifuku-worker_loader.js"]) {
  if (!statSync(path.join(stage, f), { throwIfNoEntry: false })) fail(`missing ${f}`);
}

// ---- 3. kaifuku.html (before sw.js, which lists it) ----
// wasm-bindgen's `--target web` glue is an ES module whose only module syntax is its export list
// and `import.meta.url` (the default wasm location, unused here); as a classic script it runs
// inside a function and is started with the embedded bytes.
function classicGlue(js, name) {
  let out = js
    .replace(/^export\s*\{[^}]*\};?\s*$/m, "")
    .replace(/^export (function|class|const|let|async function) /gm, "$1 ")
    .replaceAll("import.meta.url", "self.location.href");
  if (/^\s*(import|export)\b/m.test(out) || out.includes("import.meta")) fail(`${name}: module syntax left`);
  if (!out.includes("function initSync") || !out.includes("__wbg_init")) fail(`${name}: unexpected glue`);
  return out;
}
const b64gz = (buf) => gzipSync(buf, { level: 9 }).toString("base64");
const helpers = `
const kaifukuBytes = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u; };
const kaifukuGunzip = (b64) => new Response(new Blob([kaifukuBytes(b64)]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
`;
const workerSrc = `"use strict";
${helpers}
${classicGlue(text(workerJs), workerJs)}
kaifukuGunzip("${b64gz(read(workerWasm))}").then((bytes) => { initSync({ module: bytes }); });
`;
const appScript = `(() => {
"use strict";
${helpers}
window.KAIFUKU_SINGLE_FILE = true;
window.KAIFUKU_WORKER_URL = URL.createObjectURL(new Blob([document.getElementById("kaifuku-worker-src").textContent], { type: "text/javascript" }));
${classicGlue(text(appJs), appJs)}
kaifukuGunzip(document.getElementById("kaifuku-app-wasm").textContent.trim()).then((bytes) => __wbg_init({ module_or_path: bytes }));
})();
`;
for (const [name, s] of [["worker script", workerSrc], ["app script", appScript]]) {
  if (/<\/script/i.test(s)) fail(`${name} contains </script`);
}
const css = text(cssFile);
const body = pick(/<body>([\s\S]*)<\/body>/, "the body").replace(/<script[\s\S]*?<\/script>/g, "");
// The practice disks (already gzip), inlined as base64 for training from disk; the page reads
// them only when training starts. The served page fetches them from practice/ instead.
const practiceScripts = ["gpt", "mbr", "unclean"]
  .map((name) => {
    const f = path.join("practice", name + ".raw.gz");
    if (!statSync(path.join(stage, f), { throwIfNoEntry: false })) fail(`missing ${f}`);
    return `<script type="application/octet-stream" id="kaifuku-practice-${name}">${read(f).toString("base64")}</script>`;
  })
  .join("\n");
const singleCsp = [
  "default-src 'none'",
  `script-src 'wasm-unsafe-eval' ${sha256(appScript)}`,
  `style-src ${sha256(css)}`,
  "img-src data: blob:",
  "worker-src blob:",
  `connect-src ${storageHosts}`,
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
].join("; ");
const single = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${singleCsp}">
<meta name="referrer" content="no-referrer">
<title>kaifuku (回復)</title>
<link rel="icon" href="data:image/svg+xml;base64,${read(iconFile).toString("base64")}">
<style>${css}</style>
</head>
<body>${body}
<script type="application/octet-stream" id="kaifuku-app-wasm">${b64gz(read(appWasm))}</script>
<script type="text/plain" id="kaifuku-worker-src">${workerSrc}</script>
${practiceScripts}
<script>${appScript}</script>
</body>
</html>
`;
writeFileSync(path.join(stage, "kaifuku.html"), single);

// ---- 2. sw.js ----
// Only the top-level files: the practice disks (practice/) are not part of the first load.
const files = readdirSync(stage)
  .filter((f) => !f.startsWith(".") && f !== "sw.js" && statSync(path.join(stage, f)).isFile())
  .sort();
const version = createHash("sha256");
for (const f of files) version.update(f).update(read(f));
const cacheName = "kaifuku-" + version.digest("hex").slice(0, 16);
const assets = ["./", ...files.filter((f) => f !== "kaifuku.html").map((f) => "./" + f)];
const sw = `// Generated by web/pack.mjs: keeps this build of kaifuku working offline.
const CACHE = ${JSON.stringify(cacheName)};
const ASSETS = ${JSON.stringify(assets)};
self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(ASSETS)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("kaifuku-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});
self.addEventListener("fetch", (e) => {
  const req = e.request;
  if (req.method !== "GET" || new URL(req.url).origin !== self.location.origin) return;
  // Network first, so a new build is used as soon as it is published (the worker's files keep
  // their names from build to build); the cache when the network is gone. A practice disk is not
  // pre-cached (it is not part of the first load) but is kept once a trainee has fetched it, so a
  // disk practised on once still opens in a classroom without network.
  const keep = new URL(req.url).pathname.includes("/practice/");
  e.respondWith(
    fetch(req).then((r) => {
      if (keep && r.ok) {
        const copy = r.clone();
        e.waitUntil(caches.open(CACHE).then((c) => c.put(req, copy)));
      }
      return r;
    }).catch(() =>
      caches.open(CACHE).then((c) =>
        c.match(req, { ignoreSearch: true }).then((r) => r || (req.mode === "navigate" ? c.match("./") : Response.error())),
      ),
    ),
  );
});
`;
writeFileSync(path.join(stage, "sw.js"), sw);

const kib = (n) => (n / 1024).toFixed(0) + " KiB";
const total = files.reduce((n, f) => n + statSync(path.join(stage, f)).size, 0);
console.log(`pack: index.html CSP set; sw.js caches ${assets.length} files (${cacheName}); kaifuku.html ${kib(single.length)}; build ${kib(total)}`);
