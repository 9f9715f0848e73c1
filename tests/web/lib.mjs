// Shared helpers for the browser tests: launching the system Chromium through playwright-core,
// driving the page through a whole fix, making test images, and judging results with tools other
// than kaifuku's own code (cmp, sha256, sfdisk, ntfs-3g, sleuthkit, qemu-img).
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync,
  rmSync, statSync, writeSync,
} from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const DIST = path.join(ROOT, "dist");
export const FIXTURES = process.env.KAIFUKU_FIXTURES || path.join(ROOT, "tests/out/fixtures");
export const CLI = path.join(ROOT, "target/release/kaifuku");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const WORK = path.join(ROOT, "tests/out/web");

export function fixture(name) {
  const p = path.join(FIXTURES, name);
  assert.ok(existsSync(p), `fixture ${p} is missing: run python3 tests/make-fixtures.py ${FIXTURES}`);
  return p;
}

/** A fresh scratch directory under tests/out/web (git ignores tests/out). */
export function scratch(name) {
  mkdirSync(WORK, { recursive: true });
  return mkdtempSync(path.join(WORK, name + "-"));
}

export function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });
}

/** Runs the command line tool; returns its exit code (and output). */
export function cli(args) {
  const r = spawnSync(CLI, args, { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Launches headless Chromium with a fresh profile. Every request any page, worker or service
 * worker makes is recorded in `requests`; console errors and CSP violations in `problems`.
 */
export async function launch({ locale = "en-US", serviceWorkers = "allow" } = {}) {
  const dir = scratch("profile");
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    locale,
    serviceWorkers,
    acceptDownloads: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-default-apps", "--disable-extensions", "--safebrowsing-disable-download-protection",
    ],
  });
  const requests = [];
  const problems = [];
  ctx.on("request", (r) => requests.push(r.url()));
  await ctx.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      (window.__cspViolations ||= []).push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
  page.on("console", (m) => {
    if (m.type() === "error" || /Content Security Policy/i.test(m.text())) problems.push("console: " + m.text());
  });
  return {
    ctx, page, requests, problems,
    async close() {
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fails when anything was requested outside `allowed` origins (blob: and data: are local). */
export function assertOnlyOwnOrigin(requests, allowed) {
  const outside = requests.filter((u) => !u.startsWith("blob:") && !u.startsWith("data:") &&
    !allowed.some((a) => u.startsWith(a)));
  assert.deepEqual(outside, [], "the page requested something outside its own origin");
}

export async function assertNoPageProblems(b) {
  const csp = await b.page.evaluate(() => window.__cspViolations || []);
  assert.deepEqual(csp, [], "CSP violations");
  assert.deepEqual(b.problems.filter((p) => !/integrity.*preload|favicon/i.test(p)), [], "console errors");
}

export const state = (page) => page.evaluate(() => document.querySelector(".page")?.dataset.state);

export async function waitState(page, states, timeout = 60_000) {
  const sel = states.map((s) => `.page[data-state="${s}"]`).join(", ");
  await page.waitForSelector(sel, { timeout });
  return state(page);
}

/**
 * Picks `file` and goes through the whole flow: inspect → (consent) → plan → fix. Returns the
 * page's metrics, the fix view text, and the downloads as saved files when `download` is set.
 * With `undo` false the page must offer no undo file (a fix that changes the file's size) and
 * say so.
 */
export async function fixFlow(page, file, { consent = false, download = true, undo = true } = {}) {
  await page.setInputFiles("#file-input", file);
  let s = await waitState(page, ["planned", "inspected", "failed"]);
  if (consent) {
    assert.equal(s, "inspected", "an unclean volume must stop for consent");
    assert.ok(await page.isDisabled("#plan-button"), "plan needs consent first");
    await page.check("#consent");
    assert.ok(!(await page.isDisabled("#plan-button")));
    await page.click("#plan-button");
    s = await waitState(page, ["planned", "failed"]);
  }
  assert.equal(s, "planned", "plan: " + (await page.innerText("main")).slice(-2000));
  await page.click("#fix-button");
  s = await waitState(page, ["fixed", "failed"]);
  assert.equal(s, "fixed", "fix: " + (await page.innerText("main")).slice(-2000));
  const metrics = await page.evaluate(() => ({ ...window.kaifukuMetrics }));
  const out = { metrics, text: await page.innerText("main") };
  assert.equal(await page.$("#download-undo") !== null, undo, "an undo download offered");
  assert.equal(await page.$("#no-undo") !== null, !undo, "the page says why no undo file is offered");
  const links = [["image", "#download-image"], ["undo", "#download-undo"], ["report", "#download-report"]];
  if (download) {
    for (const [key, sel] of links.filter(([key]) => undo || key !== "undo")) {
      const dl = await downloadFrom(page, sel);
      out[key] = await dl.path();
      out[key + "Name"] = dl.suggestedFilename();
    }
  }
  return out;
}

/**
 * Clicks the download link `sel` and returns Playwright's download. Chromium once (in about a
 * hundred runs, on a CI machine only) started no download for a click on a link whose `blob:` URL
 * and name were already in the page; the link is then clicked once more, and the log says so, so
 * that a link that never downloads still fails, with what the link held.
 */
export async function downloadFrom(page, sel) {
  for (let attempt = 1; ; attempt++) {
    try {
      const [dl] = await Promise.all([page.waitForEvent("download", { timeout: 60_000 }), page.click(sel, { timeout: 60_000 })]);
      return dl;
    } catch (e) {
      const link = await page.$eval(sel, (a) => ({ href: a.href, download: a.download })).catch(() => null);
      const what = `no download from ${sel} (attempt ${attempt}; link ${JSON.stringify(link)}; state ${await state(page)})`;
      if (attempt >= 2) throw new Error(`${what}: ${e.message}`);
      console.log(`# ${what}; clicking again`);
    }
  }
}

/** Picked → Blob ready, leaving out the time the page waited for the user's Fix click. */
export function pickedToBlobMs(m) {
  return (m.planned - m.picked) + (m.fixed - m.fixRequested);
}

export function sha256File(p, start = 0, end = statSync(p).size) {
  const h = createHash("sha256");
  const fd = openSync(p, "r");
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let at = start; at < end;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, end - at), at);
      if (n <= 0) throw new Error(`short read of ${p} at ${at}`);
      h.update(buf.subarray(0, n));
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** Byte-for-byte comparison with cmp(1). */
export function assertSameBytes(a, b, what) {
  const r = spawnSync("cmp", [a, b], { encoding: "utf8" });
  assert.equal(r.status, 0, `${what}: ${a} and ${b} differ: ${r.stdout}${r.stderr}`);
}

export function copySparse(src, dst) {
  run("cp", ["--sparse=always", src, dst]);
}

/** Partitions as sfdisk sees them (bytes). */
export function partitions(image) {
  const j = JSON.parse(run("sfdisk", ["-J", image]));
  const ss = j.partitiontable.sectorsize || 512;
  return j.partitiontable.partitions.map((p) => ({
    node: p.node, start: p.start * ss, size: p.size * ss, type: p.type,
  }));
}

/** Where `$LogFile` starts on an NTFS volume at `offset`, by sleuthkit (istat of record 2). */
export function logFileOffset(image, offset) {
  const sect = String(offset / 512);
  const fs = run("fsstat", ["-o", sect, image]);
  const cluster = Number(fs.match(/Cluster Size: (\d+)/)[1]);
  const ist = run("istat", ["-o", sect, image, "2"]);
  const data = ist.split(/Type: \$DATA/)[1];
  const clusters = data.split("\n").slice(1).join(" ").trim().split(/\s+/).map(Number).filter((n) => !isNaN(n));
  const need = Math.ceil(8192 / cluster);
  for (let i = 1; i < need; i++) assert.equal(clusters[i], clusters[0] + i, "$LogFile start is fragmented");
  return offset + clusters[0] * cluster;
}

/** A v1.1 `$LogFile` restart page whose restart area has a client in use and no clean flag. */
export function uncleanRestartPage() {
  const p = Buffer.alloc(4096, 0);
  p.write("RSTR", 0, "latin1");
  p.writeUInt16LE(0x1e, 4); // update sequence array offset
  p.writeUInt16LE(9, 6); // 1 + 8 sectors
  p.writeUInt32LE(4096, 0x10); // system page size
  p.writeUInt32LE(4096, 0x14); // log page size
  p.writeUInt16LE(0x30, 0x18); // restart area offset
  p.writeInt16LE(1, 0x1a); // minor version
  p.writeInt16LE(1, 0x1c); // major version
  p.writeBigUInt64LE(0x12345n, 0x30); // current LSN
  p.writeUInt16LE(1, 0x38); // log clients
  p.writeUInt16LE(0xffff, 0x3a); // client free list: none
  p.writeUInt16LE(0, 0x3c); // client in-use list: client 0
  p.writeUInt16LE(0, 0x3e); // flags: the clean bit (2) is clear
  const usn = 1;
  p.writeUInt16LE(usn, 0x1e);
  for (let i = 0; i < 8; i++) {
    const end = (i + 1) * 512 - 2;
    p.writeUInt16LE(p.readUInt16LE(end), 0x20 + 2 * i);
    p.writeUInt16LE(usn, end);
  }
  return p;
}

/** Copies a raw fixture and makes the journal of its NTFS partition `partNo` unclean. */
export function makeUnclean(src, dst, partNo) {
  copySparse(src, dst);
  const part = partitions(dst).find((p) => p.node.endsWith(String(partNo)));
  const log = logFileOffset(dst, part.start);
  const fd = openSync(dst, "r+");
  const page = uncleanRestartPage();
  writeSync(fd, page, 0, page.length, log);
  writeSync(fd, page, 0, page.length, log + 4096);
  closeSync(fd);
  return part;
}

/**
 * A sparse raw disk of `virtualBytes` with a GPT and one NTFS partition: the Windows volume of a
 * fixture, copied in at the same start sector (so its boot sector's hidden-sector count holds).
 */
export function makeLargeSparse(dst, virtualBytes, srcImage = fixture("mbr-win.raw"), srcPart = 2) {
  const p = partitions(srcImage).find((x) => x.node.endsWith(String(srcPart)));
  rmSync(dst, { force: true });
  run("truncate", ["-s", String(virtualBytes), dst]);
  run("sfdisk", ["--quiet", dst], {
    input: `label: gpt\nstart=${p.start / 512}, size=${p.size / 512}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Basic data partition"\n`,
    stdio: ["pipe", "pipe", "pipe"],
  });
  run("dd", [`if=${srcImage}`, `of=${dst}`, "bs=1M", `skip=${p.start}`, `seek=${p.start}`, `count=${p.size}`,
    "iflag=skip_bytes,count_bytes", "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"]);
  return p;
}

/**
 * Mounts the NTFS partition at `offset` of a raw image read-only with ntfs-3g (through a
 * read-only loop device) and returns the names in the CrowdStrike directory.
 */
export function crowdstrikeNamesByNtfs3g(rawImage, offset, size) {
  const mnt = scratch("mnt");
  const loop = run("losetup", ["-r", "-f", "--show", "-o", String(offset), "--sizelimit", String(size), rawImage]).trim();
  try {
    run("ntfs-3g", ["-o", "ro", loop, mnt]);
    try {
      return run("ls", ["-1", path.join(mnt, "Windows/System32/drivers/CrowdStrike")]).split("\n").filter(Boolean);
    } finally {
      run("umount", [mnt]);
    }
  } finally {
    run("losetup", ["-d", loop]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/** Mounts the NTFS volume at `offset` of a raw image read-write with ntfs-3g and runs `fn(dir)`. */
export function withNtfs3gRw(rawImage, offset, size, fn) {
  const mnt = scratch("mnt");
  const loop = run("losetup", ["-f", "--show", "-o", String(offset), "--sizelimit", String(size), rawImage]).trim();
  try {
    run("ntfs-3g", [loop, mnt]);
    try {
      return fn(mnt);
    } finally {
      run("umount", [mnt]);
    }
  } finally {
    run("losetup", ["-d", loop]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/** A raw view of a downloaded image (VHDs converted by qemu-img). */
export function asRaw(image, format, dir) {
  if (format === "raw") return image;
  const out = path.join(dir, "converted.raw");
  const from = format === "qcow2" ? "qcow2" : format.startsWith("vhdx") ? "vhdx" : format.startsWith("vmdk") ? "vmdk" : "vpc";
  run("qemu-img", ["convert", "-f", from, "-O", "raw", image, out]);
  return out;
}

export function readJson(p) {
  return JSON.parse(readFileSync(p, "utf8"));
}

export { copyFileSync, existsSync, rmSync, statSync, assert, path };
