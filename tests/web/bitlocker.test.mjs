// BitLocker in the page, in headless Chromium, in English and Japanese. The encrypted disk is made
// by independent tools (tests/make-bitlocker-disk.sh: dislocker writes a Windows-made BitLocker
// volume of the shared test set, mkntfs + ntfs-3g put the CrowdStrike tree in it, sfdisk and
// qemu-img make a GPT disk in a dynamic VHD). The page must ask for a key with a keyboard-only
// form, name the mistyped group of a recovery password, refuse a wrong key with no download,
// unlock with the right recovery password while showing key stretching's progress, and fix: the
// download byte-identical to `kaifuku fix --recovery-password`, dislocker and ntfs-3g seeing the
// file gone, and no key material in the report, the console or the page.
import { after, before, describe, test } from "node:test";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertNoPageProblems, assertOnlyOwnOrigin, assertSameBytes, cli, copyFileSync, crowdstrikeNamesByNtfs3g, DIST,
  downloadFrom, launch, ROOT, run, scratch, state, waitState,
} from "./lib.mjs";

const SUB = "/bitlocker/";
const ARCHIVE = path.resolve(ROOT, "../shared/testdata/bitlk/bitlk-images.tar.xz");
const FAULTY = "C-00000291-00000000-00000032.sys";
const VOLUME_OFFSET = 1 << 20;

let srv;
let dir;
let disk;
let keys;

function skipReason() {
  return existsSync(ARCHIVE)
    ? false
    : "the GPL test data bitlk/bitlk-images.tar.xz is absent (it is kept beside the repository in ../shared/testdata, not in it)";
}

before(async () => {
  if (skipReason()) return;
  srv = await serve(DIST, SUB);
  dir = scratch("bitlocker");
  const made = spawnSync("sh", [path.join(ROOT, "tests/make-bitlocker-disk.sh"), dir, "bitlk-aes-xts-256", "gpt", "vhd"],
    { encoding: "utf8" });
  assert.equal(made.status, 0, `make-bitlocker-disk.sh: ${made.stdout}${made.stderr}`);
  disk = path.join(dir, "disk.vhd");
  keys = Object.fromEntries(readFileSync(path.join(dir, "keys"), "utf8").trim().split("\n")
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  assert.match(keys.RP, /^(\d{6}-){7}\d{6}$/);
});
after(async () => {
  await srv?.close();
});

/** The recovery password with group `n` (from 1) changed so that it is no multiple of 11. */
function mistyped(rp, n) {
  const groups = rp.split("-");
  const g = groups[n - 1];
  groups[n - 1] = g.slice(0, 5) + String((Number(g[5]) + 1) % 10);
  return groups.join("-");
}

/** Every form of a key that must never show: as given, digits only, each separator. */
function keyForms() {
  const rp = keys.RP;
  return [rp, rp.replaceAll("-", ""), rp.replaceAll("-", " "), keys.PW];
}

function assertNoKey(text, where) {
  for (const k of keyForms()) assert.ok(!text.includes(k), `key material in ${where}`);
}

const activeId = (page) => page.evaluate(() => document.activeElement?.id || "");

/** Tabs forward until the element `id` has the focus (keyboard only), at most `max` times. */
async function tabTo(page, id, max = 40) {
  for (let i = 0; i < max; i++) {
    if ((await activeId(page)) === id) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`#${id} is not reachable with Tab (focus on #${await activeId(page)})`);
}

/**
 * Runs `send` (which sends a key) and waits for the worker's answer: the image inspected again
 * with the key, or the key file refused. Returns the page's state then.
 */
async function unlockAndWait(page, send) {
  const before = await page.evaluate(() => performance.now());
  await send();
  await page.waitForFunction((t) => {
    const m = window.kaifukuMetrics || {};
    return m.inspected > t || m.keyFileRefused > t || document.querySelector(".page")?.dataset.state === "failed";
  }, before, { timeout: 120_000 });
  return waitState(page, ["inspected", "planned", "failed"], 120_000);
}

/** Types `text` into the focused field after emptying it, with the keyboard only. */
async function retype(page, text) {
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Backspace");
  await page.keyboard.type(text);
}

const WORDS = {
  "en-US": {
    promise: "never sent anywhere and never saved",
    mistyped: (n) => `Group ${n} (counting from the left) is mistyped`,
    refused: "did not unlock the volume",
    unlocking: "Unlocking BitLocker",
  },
  "ja-JP": {
    promise: "どこにも送信も保存もされません",
    mistyped: (n) => `${n} 組目(左から数えて)の 6 桁が違います`,
    refused: "ロックを解除できませんでした",
    unlocking: "BitLocker のロックを解除中",
  },
};

async function bitlockerCase(locale, { separator, badGroup }) {
  const words = WORDS[locale];
  const b = await launch({ locale });
  const consoleText = [];
  b.page.on("console", (m) => consoleText.push(m.text()));
  try {
    await b.page.goto(srv.url);
    await b.page.waitForSelector("#pick-button");
    await b.page.setInputFiles("#file-input", disk);
    assert.equal(await waitState(b.page, ["inspected", "planned", "failed"]), "inspected");

    // Asked for a key, with the promise that it stays here; nothing to fix yet.
    await b.page.waitForSelector("#unlock-form");
    assert.ok((await b.page.innerText("#key-promise")).includes(words.promise));
    const codes = await b.page.$$eval("#problems .problem", (ps) => ps.map((p) => p.dataset.code));
    assert.ok(codes.includes("bitlocker"), `codes: ${codes}`);
    assert.equal(await b.page.$("#fix-button"), null);
    assert.equal(await activeId(b.page), "unlock-title", "the focus is on the key form");

    // Keyboard only: Tab to the recovery password field; a mistyped group is named as it is typed.
    await tabTo(b.page, "key-method-recovery");
    await tabTo(b.page, "recovery-password");
    assert.equal(await b.page.getAttribute("#recovery-password", "type"), "password", "masked");
    const bad = mistyped(keys.RP, badGroup).replaceAll("-", separator);
    await b.page.keyboard.type(bad.slice(0, 7 * badGroup - 1));
    assert.ok((await b.page.innerText("#key-status")).includes(words.mistyped(badGroup)),
      `status: ${await b.page.innerText("#key-status")}`);
    assert.equal(await b.page.getAttribute("#recovery-password", "aria-invalid"), "true");
    // The show toggle unmasks the field, and masks it again.
    await tabTo(b.page, "show-key");
    await b.page.keyboard.press("Enter");
    assert.equal(await b.page.getAttribute("#recovery-password", "type"), "text");
    await b.page.keyboard.press("Enter");
    assert.equal(await b.page.getAttribute("#recovery-password", "type"), "password");
    // Sending it anyway is refused by the form: nothing goes to the worker.
    await b.page.keyboard.press("Shift+Tab");
    assert.equal(await activeId(b.page), "recovery-password");
    // Focus by keyboard selects the field's text: go to its end to go on typing.
    await b.page.keyboard.press("End");
    await b.page.keyboard.type(bad.slice(7 * badGroup - 1));
    await b.page.keyboard.press("Enter");
    assert.equal(await state(b.page), "inspected");
    assert.ok((await b.page.innerText("#key-status")).includes(words.mistyped(badGroup)),
      `status after sending: ${await b.page.innerText("#key-status")}`);
    assert.equal(await b.page.inputValue("#recovery-password"), bad, "kept to correct");

    // A well-formed but wrong recovery password: tried, refused, no download, the form stays.
    await b.page.focus("#recovery-password");
    await retype(b.page, "111111-111111-111111-111111-111111-111111-111111-111111");
    assert.equal(await b.page.innerText("#key-status"), "");
    assert.equal(await unlockAndWait(b.page, () => b.page.keyboard.press("Enter")), "inspected");
    assert.ok((await b.page.innerText("#key-refused")).includes(words.refused),
      `refused: ${await b.page.innerText("#unlock")}`);
    assert.equal(await b.page.$("#fix-button"), null);
    assert.equal(await b.page.$("#download-image"), null);
    assert.equal(await b.page.inputValue("#recovery-password"), "", "the field is emptied");

    // A wrong user password (the volume has a password protector too): refused likewise.
    await tabTo(b.page, "key-method-recovery");
    await b.page.keyboard.press("ArrowDown");
    assert.equal(await activeId(b.page), "key-method-password");
    await tabTo(b.page, "password");
    await b.page.keyboard.type("not-the-password");
    assert.equal(await unlockAndWait(b.page, () => b.page.keyboard.press("Enter")), "inspected");
    assert.ok((await b.page.innerText("#key-refused")).includes(words.refused));
    assert.equal(await b.page.$("#download-image"), null);

    // The right recovery password: key stretching's progress is shown, then the same flow.
    // The form is shown afresh after each try, with the recovery password chosen.
    await tabTo(b.page, "key-method-recovery");
    await tabTo(b.page, "recovery-password");
    await b.page.keyboard.type(keys.RP.replaceAll("-", separator));
    assert.equal(await b.page.innerText("#key-status"), "");
    await b.page.keyboard.press("Enter");
    await b.page.waitForSelector("#stretch-figures", { timeout: 60_000 });
    assert.ok((await b.page.innerText("#progress")).includes(words.unlocking));
    const bar = await b.page.$eval("#progress-bar", (p) => ({ value: p.value, max: p.max }));
    assert.ok(bar.max === 0x100000 && bar.value >= 0 && bar.value <= bar.max, `bar ${JSON.stringify(bar)}`);
    assert.equal(await waitState(b.page, ["planned", "inspected", "failed"], 120_000), "planned",
      (await b.page.innerText("main")).slice(-2000));
    const m = await b.page.evaluate(() => ({ ...window.kaifukuMetrics }));
    const unlockMs = m.inspected - m.unlockRequested;
    console.log(`# BitLocker unlock (key stretching) + inspect in headless Chromium (${locale}): ${unlockMs.toFixed(0)} ms`);
    assert.equal(await b.page.$("#unlock-form"), null, "the form is gone once unlocked");

    await b.page.click("#fix-button");
    assert.equal(await waitState(b.page, ["fixed", "failed"], 120_000), "fixed",
      (await b.page.innerText("main")).slice(-2000));
    const image = await (await downloadFrom(b.page, "#download-image")).path();
    const undo = await (await downloadFrom(b.page, "#download-undo")).path();
    const reportPath = await (await downloadFrom(b.page, "#download-report")).path();

    // The same bytes as the command line with the same recovery password.
    const cliOut = path.join(dir, `cli-${locale}.vhd`);
    const r = cli(["fix", disk, "-o", cliOut, "--undo", cliOut + ".undo", "--recovery-password", keys.RP]);
    assert.equal(r.code, 0, `CLI fix failed: ${r.stderr}`);
    assertSameBytes(image, cliOut, "fixed image (page vs CLI)");
    assertSameBytes(undo, cliOut + ".undo", "undo file (page vs CLI)");

    // The report: the fix, the volume unlocked by its recovery password, and no key material.
    const reportText = readFileSync(reportPath, "utf8");
    assertNoKey(reportText, "the report");
    const report = JSON.parse(reportText);
    assert.equal(report.plan.deletions.length, 1);
    assert.equal(report.plan.verification.matches_after, 0);
    assert.ok(report.plan.encrypted_sectors.length > 0, "the plan re-encrypts sectors");
    assert.ok(report.report.volumes.some((v) => v.bitlocker), "the report says the volume was unlocked");

    // Nor in the page or the console.
    assertNoKey(await b.page.content(), "the page");
    const values = await b.page.$$eval("input", (is) => is.map((i) => i.value));
    assertNoKey(values.join("\n"), "an input");
    assertNoKey(consoleText.join("\n"), "the console");

    assertOnlyOwnOrigin(b.requests, [srv.origin + SUB]);
    await assertNoPageProblems(b);
    // Kept past the browser, which deletes its downloads when it closes.
    const kept = path.join(dir, `page-${locale}.vhd`);
    copyFileSync(image, kept);
    return kept;
  } finally {
    await b.close();
  }
}

/** dislocker (an independent implementation) decrypts the output; ntfs-3g lists the directory. */
function judgeByDislocker(vhd, name) {
  const raw = path.join(dir, `${name}.raw`);
  const dec = path.join(dir, `${name}.decrypted`);
  run("qemu-img", ["convert", "-f", "vpc", "-O", "raw", vhd, raw]);
  run("dislocker-file", ["-V", raw, "-O", String(VOLUME_OFFSET), `-p${keys.RP}`, "--", dec]);
  return crowdstrikeNamesByNtfs3g(dec, 0, Number(run("stat", ["-c", "%s", dec]).trim()));
}

describe("BitLocker in the page", { skip: skipReason() }, () => {
  test("English: mistyped group named, wrong keys refused, recovery password unlocks and fixes", async () => {
    const image = await bitlockerCase("en-US", { separator: "-", badGroup: 3 });
    const before = judgeByDislocker(disk, "input");
    const names = judgeByDislocker(image, "output-en");
    assert.ok(before.includes(FAULTY), `dislocker + ntfs-3g see the input: ${before}`);
    assert.deepEqual(names, before.filter((n) => n !== FAULTY), "only the faulty file is gone");
  });

  test("Japanese: the same, the password pasted with spaces between the groups", async () => {
    await bitlockerCase("ja-JP", { separator: " ", badGroup: 6 });
  });

  test("a key file that is no key is named, and a key list without this volume's key is refused", async () => {
    const b = await launch({ locale: "en-US" });
    try {
      await b.page.goto(srv.url);
      await b.page.waitForSelector("#pick-button");
      await b.page.setInputFiles("#file-input", disk);
      assert.equal(await waitState(b.page, ["inspected", "planned", "failed"]), "inspected");
      await b.page.check("#key-method-startup-key");
      const notBek = path.join(dir, "not-a-key.BEK");
      writeFileSync(notBek, Buffer.alloc(300, 0x41));
      await b.page.setInputFiles("#startup-key-input", notBek);
      assert.equal(await unlockAndWait(b.page, () => b.page.click("#unlock-button")), "inspected");
      assert.ok((await b.page.innerText("#key-refused")).includes("not a BitLocker startup key"));
      // A key list as Entra ID exports it, for another volume only.
      await b.page.check("#key-method-key-list");
      const csv = path.join(dir, "other-keys.csv");
      writeFileSync(csv, "Id,Key\r\n00000000-1111-2222-3333-444444444444,111111-111111-111111-111111-111111-111111-111111-111111\r\n");
      await b.page.setInputFiles("#key-list-input", csv);
      assert.equal(await unlockAndWait(b.page, () => b.page.click("#unlock-button")), "inspected");
      assert.ok((await b.page.innerText("#key-refused")).includes("The key list has no recovery password for this volume"),
        await b.page.innerText("#unlock"));
      assert.ok((await b.page.innerText("#key-refused")).toLowerCase().includes(keys.RP_VMK_GUID.toLowerCase()));
      // The right key list unlocks (the form comes back with the recovery password chosen).
      const good = path.join(dir, "keys.csv");
      writeFileSync(good, `Id,Key\r\n${keys.RP_VMK_GUID.toUpperCase()},${keys.RP}\r\n`);
      await b.page.check("#key-method-key-list");
      await b.page.setInputFiles("#key-list-input", good);
      assert.equal(await unlockAndWait(b.page, () => b.page.click("#unlock-button")), "planned",
        (await b.page.innerText("main")).slice(-1500));
      await assertNoPageProblems(b);
    } finally {
      await b.close();
    }
  });
});
