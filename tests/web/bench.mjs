// Benchmark of the web page in headless Chromium (not a test; run by hand, results in README):
// for sparse disk images of 1 GiB, 100 GiB, 1 TiB and 2000 GiB (GPT, the Windows volume of a
// fixture inside), the time from file picked to the matches listed on the page next to the
// worker's own time for those reads, the time from picked to patched Blob ready (leaving out the
// wait for the Fix click), FileReaderSync calls and bytes read in the worker, and the worker's
// wasm memory; then the page weight of dist/ and dist/kaifuku.html, raw and gzip.
// The image is picked once the page's worker is ready (its wasm compiled), as it is when a person
// picks a file: the page starts the worker when it loads.
//   node tests/web/bench.mjs [RUNS]      (needs dist/ built and the fixtures)
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { serve } from "../../web/serve.mjs";
import { DIST, fixFlow, launch, makeLargeSparse, pickedToBlobMs, rmSync, scratch } from "./lib.mjs";

const runs = Number(process.argv[2] || 3);
const GIB = 1024 ** 3;
const sizes = [["1 GiB", GIB], ["100 GiB", 100 * GIB], ["1 TiB", 1024 * GIB], ["2000 GiB", 2000 * GIB]];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (n) => (n / 1024 / 1024).toFixed(2) + " MiB";
const kib = (n) => (n / 1024).toFixed(0) + " KiB";
const ms = (xs) => `${median(xs).toFixed(0)} ms (${xs.map((x) => x.toFixed(0)).join(", ")})`;

const dir = scratch("bench");
const srv = await serve(DIST, "/");
const rows = [];
try {
  for (const [label, size] of sizes) {
    const img = path.join(dir, "disk.raw");
    makeLargeSparse(img, size);
    const listed = [], inspect = [], blob = [];
    let last;
    for (let i = 0; i < runs; i++) {
      // A fresh browser each run: nothing cached from the run before.
      const b = await launch({ locale: "en-US", serviceWorkers: "block" });
      try {
        await b.page.goto(srv.url);
        await b.page.waitForSelector("#pick-button");
        await b.page.waitForFunction(() => window.kaifukuMetrics?.workerReady > 0);
        const out = await fixFlow(b.page, img, { download: false });
        const m = out.metrics;
        listed.push(m.listed - m.picked);
        inspect.push(m.inspectMs);
        blob.push(pickedToBlobMs(m));
        last = m;
      } finally {
        await b.close();
      }
    }
    rows.push([label, ms(listed), ms(inspect), ms(blob), last.calls, mib(last.bytes), mib(last.wasmMemory)]);
    rmSync(img, { force: true });
  }
} finally {
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\nChromium headless, ${runs} run(s) each (median, all runs)\n`);
console.log("| image | picked → listed | worker's inspect | picked → Blob | FileReaderSync calls | bytes read | worker wasm memory |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);

const files = readdirSync(DIST).filter((f) => statSync(path.join(DIST, f)).isFile());
const page = files.filter((f) => f !== "kaifuku.html");
const raw = page.reduce((n, f) => n + statSync(path.join(DIST, f)).size, 0);
const gz = page.reduce((n, f) => n + gzipSync(readFileSync(path.join(DIST, f)), { level: 9 }).length, 0);
const single = readFileSync(path.join(DIST, "kaifuku.html"));
console.log("\n| page | raw | gzip |\n|---|---|---|");
console.log(`| dist/ (${page.length} files, without kaifuku.html) | ${kib(raw)} | ${kib(gz)} |`);
console.log(`| dist/kaifuku.html | ${kib(single.length)} | ${kib(gzipSync(single, { level: 9 }).length)} |`);
for (const f of page.filter((f) => /\.(wasm|js)$/.test(f))) {
  const b = readFileSync(path.join(DIST, f));
  console.log(`| ${f} | ${kib(b.length)} | ${kib(gzipSync(b, { level: 9 }).length)} |`);
}
