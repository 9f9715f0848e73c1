// Training: "Practise on a sample disk" fetches a practice disk (web/practice/*.raw.gz, copied
// into dist/practice/) only when pressed, decompresses it in the page and runs it through the
// normal flow. Driven by keyboard only, in English and Japanese; the fixed practice disk the page
// offers must equal `kaifuku fix` of the same disk byte for byte, and ntfs-3g must see the
// channel-291 files gone and every other file of the directory kept. The single-file build does
// the same from file:// with the disks inlined. Screenshots go to tests/out/web/.
import { after, before, test } from "node:test";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertNoPageProblems, assertOnlyOwnOrigin, assertSameBytes, cli, crowdstrikeNamesByNtfs3g,
  DIST, launch, partitions, ROOT, rmSync, run, scratch, waitState, WORK,
} from "./lib.mjs";

const SUB = "/training/";
let srv;
before(async () => {
  srv = await serve(DIST, SUB);
});
after(async () => {
  await srv?.close();
});

const isTarget = (n) => /^c-00000291.*\.sys$/i.test(n);
const SHOTS = path.join(WORK, "screenshots");

/** `gzip -dc` of a committed practice disk (decompressed by gzip, not by the page). */
function gunzip(name, dir) {
  const out = path.join(dir, `${name}.raw`);
  run("sh", ["-c", `gzip -dc '${path.join(ROOT, "web/practice", name + ".raw.gz")}' > '${out}'`]);
  return out;
}

/** Moves the focus to `selector` with Tab presses only. */
async function focusByKeyboard(page, selector) {
  for (let i = 0; i < 400; i++) {
    if (await page.evaluate((s) => document.activeElement === document.querySelector(s), selector)) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`${selector} cannot be reached with Tab`);
}

/** Focuses `selector` with Tab presses only, then presses Enter on it. */
async function pressByKeyboard(page, selector) {
  await focusByKeyboard(page, selector);
  await page.keyboard.press("Enter");
}

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

/** The whole practice by keyboard: practice button → (consent) → plan → fix → download. */
async function practise(b, scenario, { consent = false, lang }) {
  const { page } = b;
  await page.waitForSelector(`#practice-${scenario}`);
  await shot(page, `training-${lang}-0-start.png`);
  await pressByKeyboard(page, `#practice-${scenario}`);
  let s = await waitState(page, ["planned", "inspected", "failed"], 120_000);
  await shot(page, `training-${lang}-1-${scenario}-inspected.png`);
  if (consent) {
    assert.equal(s, "inspected", "the unclean disk stops for consent");
    await focusByKeyboard(page, "#consent");
    await page.keyboard.press("Space");
    assert.ok(await page.isChecked("#consent"));
    await pressByKeyboard(page, "#plan-button");
    s = await waitState(page, ["planned", "failed"], 120_000);
  }
  assert.equal(s, "planned", (await page.innerText("main")).slice(-1500));
  await shot(page, `training-${lang}-2-${scenario}-planned.png`);
  await pressByKeyboard(page, "#fix-button");
  s = await waitState(page, ["fixed", "failed"], 120_000);
  assert.equal(s, "fixed", (await page.innerText("main")).slice(-1500));
  await shot(page, `training-${lang}-3-${scenario}-fixed.png`);
  await focusByKeyboard(page, "#download-image");
  const [dl] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Enter")]);
  return { image: await dl.path(), name: dl.suggestedFilename(), text: await page.innerText("main") };
}

/**
 * "Show the bytes" by keyboard; returns every annotated structure (what, disk offset, fields with
 * their typed values and their worded row) and the $MFT:$BITMAP bits the patches flip.
 */
async function showTheBytes(page, lang) {
  await pressByKeyboard(page, "#explain-button");
  await page.waitForSelector("#structures", { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.activeElement?.id), "structures-title", "focus moves to the structures");
  await shot(page, `training-${lang}-4-structures.png`);
  return page.evaluate(() => {
    const structures = [...document.querySelectorAll("#structures article.structure")].map((a) => ({
      what: JSON.parse(a.dataset.what),
      offset: Number(a.dataset.diskOffset),
      hexHidden: a.querySelector("pre.hex")?.getAttribute("aria-hidden"),
      fields: [...a.querySelectorAll("tr[data-field]")].map((r) => ({
        name: JSON.parse(r.dataset.field).field, value: JSON.parse(r.dataset.value), text: r.innerText,
      })),
    }));
    const bits = [...document.querySelectorAll("#structures article.patch li[data-field]")]
      .filter((li) => JSON.parse(li.dataset.field)?.field === "mft_bitmap_bits")
      .flatMap((li) => [...li.querySelectorAll("li.bit")].map((b) => ({ bit: Number(b.dataset.bit), set: b.dataset.setAfter === "true" })));
    return { structures, bits };
  });
}

/** What the page annotated against mmls, ntfsinfo, fls and istat on the same disk. */
function judgeViewer(v, raw, dir, lang) {
  const field = (s, name) => s.fields.find((f) => f.name === name);
  // The Windows partition is the last one mmls lists.
  const rows = run("mmls", [raw]).split("\n").filter((l) => /^\d+:\s+\d+/.test(l));
  const win = rows.at(-1).trim().split(/\s+/);
  const start = Number(win[2]) * 512;
  const size = Number(win[4]) * 512;
  const boots = v.structures.filter((s) => s.what.kind === "ntfs_boot_sector");
  const boot = boots.find((s) => s.offset === start);
  assert.ok(boot, `a boot sector at mmls's start ${start}: ${boots.map((s) => s.offset)}`);
  assert.equal(boot.hexHidden, "true", "the hex view is hidden from screen readers; the table names the fields");
  const vol = path.join(dir, "volume.raw");
  run("dd", [`if=${raw}`, `of=${vol}`, "bs=512", `skip=${start / 512}`, `count=${size / 512}`, "status=none"]);
  const info = run("ntfsinfo", ["-m", vol]);
  const cluster = Number(info.match(/Cluster Size: (\d+)/)[1]);
  assert.equal(field(boot, "sectors_per_cluster").value.bytes, cluster, "cluster size as ntfsinfo");
  assert.equal(field(boot, "mft_lcn").value.value, Number(info.match(/LCN of Data Attribute for FILE_MFT: (\d+)/)[1]));
  const offsetSectors = String(start / 512);
  const faulty = run("fls", ["-r", "-p", "-o", offsetSectors, raw]).split("\n")
    .filter((l) => /CrowdStrike\/C-00000291[^/]*\.sys$/i.test(l) && !l.includes(" * "))
    .map((l) => Number(l.split(":\t")[0].trim().split(/\s+/).at(-1).split("-")[0]))
    .sort((a, b) => a - b);
  const records = v.structures.filter((s) => s.what.kind === "mft_record");
  assert.deepEqual(records.map((s) => s.what.record).sort((a, b) => a - b), faulty, "MFT record numbers as fls");
  for (const r of records) {
    const ist = run("istat", ["-o", offsetSectors, raw, String(r.what.record)]);
    assert.equal(field(r, "sequence_number").value.value, Number(ist.match(/Sequence: (\d+)/)[1]), "sequence as istat");
    assert.equal(field(r, "link_count").value.value, Number(ist.match(/Links: (\d+)/)[1]), "link count as istat");
    assert.equal(field(r, "record_flags").value.in_use, true);
  }
  assert.deepEqual(v.bits.filter((b) => !b.set).map((b) => b.bit).sort((a, b) => a - b), faulty, "$MFT:$BITMAP bits cleared = the records");
  // The words beside the hex view, in the page's language.
  const seq = field(records[0], "sequence_number").text;
  assert.ok(lang.startsWith("ja") ? seq.includes("シーケンス番号") : seq.includes("sequence number"), seq);
}

/** The downloaded fix against `kaifuku fix` of the same disk and against ntfs-3g. */
function judge(downloaded, practiceRaw, dir, consent) {
  const cliOut = path.join(dir, "cli-fixed.raw");
  const args = ["fix", practiceRaw, "-o", cliOut];
  if (consent) args.push("--discard-journal");
  const r = cli(args);
  assert.equal(r.code, 0, r.stderr);
  assertSameBytes(downloaded, cliOut, "fixed practice disk (page vs CLI)");
  const win = partitions(practiceRaw).at(-1);
  const beforeNames = crowdstrikeNamesByNtfs3g(practiceRaw, win.start, win.size);
  const afterNames = crowdstrikeNamesByNtfs3g(downloaded, win.start, win.size);
  assert.equal(beforeNames.filter(isTarget).length, 2);
  assert.deepEqual(afterNames, beforeNames.filter((n) => !isTarget(n)), "only the channel-291 files go");
}

for (const [scenario, locale, lang, consent, texts] of [
  ["gpt", "en-US", "en", false, ["Practise on a sample disk", "Found 2 file(s) to delete."]],
  ["mbr", "ja-JP", "ja", false, ["練習用ディスクで試す", "削除するファイルが 2 個見つかりました。"]],
  ["unclean", "en-US", "en-unclean", true, ["Practise on a sample disk"]],
]) {
  test(`practice disk ${scenario} (${locale}) by keyboard, fetched only when asked`, { timeout: 300_000 }, async () => {
    const dir = scratch("training");
    const b = await launch({ locale });
    try {
      await b.page.goto(srv.url);
      await b.page.waitForSelector(`#practice-${scenario}`);
      // Let the first load finish (the worker ahead of time, the service worker's cache).
      await b.page.waitForLoadState("networkidle");
      const firstLoad = [...b.requests];
      assert.deepEqual(firstLoad.filter((u) => u.includes("/practice/")), [], "no practice disk in the first load");
      const out = await practise(b, scenario, { consent, lang });
      // (The page's request and the service worker's are one fetch.)
      const fetched = [...new Set(b.requests.filter((u) => u.includes("/practice/")))];
      assert.deepEqual(fetched, [srv.url + `practice/${scenario}.raw.gz`], "the one asset, fetched when asked");
      assert.equal(out.name, `practice-${scenario}-fixed.raw`);
      for (const t of texts) assert.ok(out.text.includes(t) || (await b.page.innerText("body")).includes(t), t);
      const raw = gunzip(scenario, dir);
      judge(out.image, raw, dir, consent);
      if (!consent) judgeViewer(await showTheBytes(b.page, lang), raw, dir, lang);
      assertOnlyOwnOrigin(b.requests, [srv.origin + SUB]);
      await assertNoPageProblems(b);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("the practice disks are not part of the first load and fit the budget", () => {
  // sw.js caches the files of the first load: none of the practice disks.
  const sw = run("cat", [path.join(DIST, "sw.js")]);
  assert.ok(!sw.includes("practice"), "sw.js must not pre-cache the practice disks");
  for (const name of ["gpt", "mbr", "unclean"]) {
    const size = statSync(path.join(DIST, "practice", `${name}.raw.gz`)).size;
    assert.ok(size <= 300 * 1024, `${name}.raw.gz is ${size} bytes`);
  }
});

test("kaifuku.html from file:// practises offline with the disks inlined", { timeout: 300_000 }, async () => {
  const dir = scratch("training-single");
  const page = path.join(dir, "kaifuku.html");
  copyFileSync(path.join(DIST, "kaifuku.html"), page);
  const url = pathToFileURL(page).href;
  const b = await launch({ locale: "ja-JP" });
  try {
    await b.ctx.setOffline(true);
    await b.page.goto(url);
    const out = await practise(b, "gpt", { lang: "ja-single" });
    assert.ok(out.text.includes("削除するファイルが 2 個見つかりました。"), out.text.slice(0, 1500));
    judge(out.image, gunzip("gpt", dir), dir, false);
    assertOnlyOwnOrigin(b.requests, [url]);
    await assertNoPageProblems(b);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
