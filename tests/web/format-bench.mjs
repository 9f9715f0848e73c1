// Benchmark of the container formats (not a test; run by hand, results in README): for GPT disks
// of 1 GiB, 100 GiB and 2000 GiB (the VHD format's limit; sparse, the Windows volume of a fixture
// inside), converted by qemu-img to every format kaifuku writes in the same format, the bytes
// read, read calls and time of
//   * the command line: `kaifuku fix IMAGE --dry-run --json` (inspect, plan, verify; its own
//     counters of reads of the image file) and its wall time;
//   * the page in headless Chromium: picked → patched Blob ready, FileReaderSync calls and bytes;
// each next to the raw disk's figures (what the container adds). Then the output time of a
// streamOptimized VMDK: `kaifuku fix -o` (re-streams only the changed grains) against qemu-img
// writing the whole stream from the raw disk.
//   node tests/web/format-bench.mjs [SIZES]   e.g. "1,100,2000" (GiB; default all three)
// Needs dist/ built, a release CLI, the fixtures, qemu-img, root (sfdisk on a file is enough).
import path from "node:path";
import { serve } from "../../web/serve.mjs";
import { DIST, cli, fixFlow, launch, makeLargeSparse, pickedToBlobMs, rmSync, run, scratch, statSync } from "./lib.mjs";

const GIB = 1024 ** 3;
const sizes = (process.argv[2] || "1,100,2000").split(",").map(Number);
const FORMATS = [
  // label, qemu-img -O, -o, file name
  ["raw", null, null, "disk.raw"],
  ["VHD fixed", "vpc", "subformat=fixed,force_size=on", "disk.vhd"],
  ["VHD dynamic", "vpc", "subformat=dynamic,force_size=on", "dyn.vhd"],
  ["VHDX dynamic", "vhdx", "subformat=dynamic", "disk.vhdx"],
  ["qcow2 v3", "qcow2", "compat=1.1", "disk.qcow2"],
  ["VMDK monolithicSparse", "vmdk", "subformat=monolithicSparse", "sparse.vmdk"],
  ["VMDK streamOptimized", "vmdk", "subformat=streamOptimized", "stream.vmdk"],
];
const mib = (n) => (n / 1024 / 1024).toFixed(2) + " MiB";
const kib = (n) => (n / 1024).toFixed(0) + " KiB";
const secs = (t0) => (performance.now() - t0) / 1000;
const added = (n) => (n >= 0 ? "+" : "−") + kib(Math.abs(n));

/** `kaifuku fix --dry-run --json`: its read counters and wall time. */
function cliDryRun(image) {
  const t0 = performance.now();
  const r = cli(["fix", image, "--dry-run", "--json"]);
  const wall = performance.now() - t0;
  if (r.code !== 0) throw new Error(`kaifuku fix --dry-run ${image}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout);
  return { bytes: doc.reads.bytes, calls: doc.reads.calls, ms: wall };
}

async function pageRun(srv, image) {
  const b = await launch({ locale: "en-US", serviceWorkers: "block" });
  try {
    await b.page.goto(srv.url);
    await b.page.waitForSelector("#pick-button");
    await b.page.waitForFunction(() => window.kaifukuMetrics?.workerReady > 0);
    const out = await fixFlow(b.page, image, { download: false, undo: !image.endsWith("stream.vmdk") });
    const m = out.metrics;
    return { bytes: m.bytes, calls: m.calls, ms: pickedToBlobMs(m) };
  } finally {
    await b.close();
  }
}

const dir = scratch("format-bench");
const srv = await serve(DIST, "/");
const rows = [];
const streams = [];
try {
  for (const gib of sizes) {
    const raw = path.join(dir, "disk.raw");
    makeLargeSparse(raw, gib * GIB);
    let base;
    for (const [label, fmt, opts, name] of FORMATS) {
      const image = path.join(dir, name);
      if (fmt) run("qemu-img", ["convert", "-f", "raw", "-O", fmt, "-o", opts, raw, image]);
      const c = cliDryRun(image);
      const p = await pageRun(srv, image);
      if (!fmt) base = { c, p };
      rows.push([
        `${gib} GiB`, label, mib(statSync(image).blocks * 512),
        `${c.calls}`, mib(c.bytes), added(c.bytes - base.c.bytes), `${c.ms.toFixed(0)} ms`,
        `${p.calls}`, mib(p.bytes), added(p.bytes - base.p.bytes), `${p.ms.toFixed(0)} ms`,
      ]);
      if (name === "stream.vmdk") {
        const out = path.join(dir, "out.vmdk");
        let t0 = performance.now();
        const r = cli(["fix", image, "-o", out]);
        if (r.code !== 0) throw new Error(r.stderr);
        const fixS = secs(t0);
        const fixedRaw = path.join(dir, "fixed.raw");
        const r2 = cli(["fix", raw, "-o", fixedRaw]);
        if (r2.code !== 0) throw new Error(r2.stderr);
        const q = path.join(dir, "qemu.vmdk");
        t0 = performance.now();
        run("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", fixedRaw, q]);
        const qemuS = secs(t0);
        streams.push([`${gib} GiB`, mib(statSync(image).size), `${fixS.toFixed(2)} s`, mib(statSync(out).size), `${qemuS.toFixed(2)} s`]);
        for (const f of [out, fixedRaw, q]) rmSync(f, { force: true });
      }
      if (fmt) rmSync(image, { force: true });
    }
    rmSync(raw, { force: true });
  }
} finally {
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log("\nBytes read per format (kaifuku fix --dry-run; the page: picked → patched Blob), one run each; \"+\" is what the container adds over the raw disk\n");
console.log("| disk | format | file on disk | CLI reads | CLI bytes | CLI + | CLI time | page reads | page bytes | page + | page time |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
console.log("\nstreamOptimized VMDK output: kaifuku fix -o (re-stream the changed grains) vs qemu-img convert of the fixed raw disk\n");
console.log("| disk | input file | kaifuku fix -o | output file | qemu-img convert -O vmdk streamOptimized |");
console.log("|---|---|---|---|---|");
for (const r of streams) console.log(`| ${r.join(" | ")} |`);
