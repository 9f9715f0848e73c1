// Many images at once in headless Chromium: five images dropped together (fixable raw and VHD,
// nothing to fix, a damaged GPT, one more fixable raw), in English and Japanese. The summary rows
// must say what each image is before anything is written; "Fix all fixable" then offers each
// fixed image, which must be byte-identical to what the command line's batch (`kaifuku fix
// --out-dir`) writes for the same image, its undo file identical to `kaifuku fix --undo`'s.
// Also: stopping the queue, an image that needs a decision left for the user, and writing into a
// chosen folder (the File System Access API, backed here by the origin-private file system).
import { after, before, describe, test } from "node:test";
import { linkSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertNoPageProblems, assertOnlyOwnOrigin, cli, DIST, downloadFrom, existsSync, fixture, launch,
  makeUnclean, readJson, rmSync, scratch, sha256File,
} from "./lib.mjs";

const SUB = "/queue/";
let srv;
before(async () => {
  srv = await serve(DIST, SUB);
});
after(async () => {
  await srv?.close();
});

const FIVE = [
  { file: "gpt-win.raw", outcome: "fixable", files: 3 },
  { file: "gpt-win-fixed.vhd", outcome: "fixable", files: 3 },
  { file: "no-crowdstrike.raw", outcome: "nothing-to-fix" },
  { file: "bad/gpt-badcrc.raw", outcome: "damaged" },
  { file: "mbr-win.raw", outcome: "fixable", files: 2 },
];

const WORDS = {
  en: {
    fixable: (n) => `fixable: ${n} file(s) to delete`,
    fixed: (n) => `fixed: ${n} file(s) deleted, verified`,
    "nothing-to-fix": "nothing to fix",
    damaged: "cannot be read: ",
    "open-alone": "open it alone: discarding its unclean journal needs your consent",
    skipped: "not started: the queue was stopped",
    journalNone: "none",
    fixAll: (n) => `Fix all fixable (${n})`,
    heading: "5 images",
    time: / s$/,
  },
  ja: {
    fixable: (n) => `修復できます: 削除するファイル ${n} 個`,
    fixed: (n) => `修復済み: ファイル ${n} 個を削除し、検証しました`,
    "nothing-to-fix": "修復の必要はありません",
    damaged: "読み取れません: ",
    "open-alone": "このイメージだけを開いてください: 未完了のジャーナルを破棄するにはあなたの同意が必要です",
    skipped: "中止したため未処理",
    journalNone: "なし",
    fixAll: (n) => `修復できるものをすべて修復(${n} 個)`,
    heading: "5 個のイメージ",
    time: / 秒$/,
  },
};

const fixedName = (file) => {
  const base = path.basename(file);
  const dot = base.lastIndexOf(".");
  return base.slice(0, dot) + "-fixed" + base.slice(dot);
};

/**
 * Drops `files` on the drop zone together, as a user would: Playwright puts them into a spare file
 * input (so the page gets real `File`s backed by the files on disk), and the page's drop handler
 * gets them in one `DataTransfer`.
 */
async function dropFiles(page, files) {
  await page.evaluate(() => {
    const input = document.createElement("input");
    input.type = "file";
    input.multiple = true;
    input.id = "test-drop-source";
    input.hidden = true;
    document.body.append(input);
  });
  await page.setInputFiles("#test-drop-source", files);
  await page.evaluate(() => {
    const source = document.querySelector("#test-drop-source");
    const dt = new DataTransfer();
    for (const f of source.files) dt.items.add(f);
    source.remove();
    const zone = document.querySelector("#dropzone");
    for (const type of ["dragenter", "dragover", "drop"]) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  });
}

/**
 * Drops the folder `dir` on the drop zone as the operating system does (Chromium's own drag
 * input, through the DevTools protocol): the page gets the folder as a directory entry, not as
 * readable files.
 */
async function dropFolder(page, dir) {
  // A corner of the zone: its text changes under the pointer while a drag is over it. A drop
  // follows a dragover the page accepted, so the pointer "moves" twice.
  const box = await page.locator("#dropzone").boundingBox();
  const at = { x: box.x + 12, y: box.y + 12 };
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: [dir], dragOperationsMask: 1 };
  for (const type of ["dragEnter", "dragOver", "dragOver", "drop"]) {
    await cdp.send("Input.dispatchDragEvent", { type, ...at, data });
  }
  await cdp.detach();
}

/** The queue's rows as the page shows them. */
function rows(page) {
  return page.$$eval("#queue-table tbody tr", (rs) => rs.map((r) => ({
    name: r.dataset.name,
    outcome: r.dataset.outcome,
    text: r.querySelector(".result").innerText,
    journal: r.querySelector(".journal").innerText,
    read: r.querySelector(".read").innerText,
    time: r.querySelector(".time").innerText,
    links: [...r.querySelectorAll("a")].map((a) => a.className),
  })));
}

async function waitIdle(page, timeout = 300_000) {
  await page.waitForSelector('.page[data-state="queue"] #queue[data-run="idle"]', { timeout });
}

async function fiveImages(lang, locale) {
  const w = WORDS[lang];
  const dir = scratch("queue");
  const b = await launch({ locale });
  try {
    await b.page.goto(srv.url);
    await b.page.waitForSelector("#pick-button");
    const images = FIVE.map((i) => fixture(i.file));
    await dropFiles(b.page, images);
    await waitIdle(b.page);

    // The summary before anything is written: one row per image, in the order dropped.
    const text = await b.page.innerText("main");
    assert.ok(text.includes(w.heading), `page text lacks ${w.heading}`);
    let seen = await rows(b.page);
    assert.deepEqual(seen.map((r) => r.name), FIVE.map((i) => path.basename(i.file)));
    for (const [i, want] of FIVE.entries()) {
      const r = seen[i];
      assert.equal(r.outcome, want.outcome, `${want.file}: ${r.text}`);
      assert.deepEqual(r.links, [], `${want.file}: nothing offered before the fix`);
      assert.match(r.time, w.time, `${want.file}: time shown`);
      if (want.outcome === "fixable") {
        assert.equal(r.text, w.fixable(want.files));
        assert.equal(r.journal, w.journalNone);
        assert.match(r.read, /\d+(\.\d)? (B|KiB|MiB)$/, `${want.file}: bytes read shown`);
      } else if (want.outcome === "damaged") {
        assert.ok(r.text.startsWith(w.damaged) && r.text.length > w.damaged.length, `reason given: ${r.text}`);
        assert.equal(r.journal, "—");
      } else {
        assert.equal(r.text, w[want.outcome]);
      }
    }
    if (lang === "en") assert.ok(!/[\u3040-\u30ff]/.test(seen.map((r) => r.text + r.journal).join("")), "no Japanese in the English rows");
    else assert.ok(!/fixable|nothing to fix|cannot be read/.test(seen.map((r) => r.text).join("")), "no English in the Japanese rows");
    const fixable = FIVE.filter((i) => i.outcome === "fixable");
    assert.equal(await b.page.innerText("#queue-fix-all"), w.fixAll(fixable.length));

    // Fix all: each fixed image offered as a download.
    await b.page.click("#queue-fix-all");
    await waitIdle(b.page);
    seen = await rows(b.page);
    for (const [i, want] of FIVE.entries()) {
      const r = seen[i];
      if (want.outcome === "fixable") {
        assert.equal(r.outcome, "fixed", `${want.file}: ${r.text}`);
        assert.equal(r.text, w.fixed(want.files));
        assert.deepEqual(r.links, ["download-image", "download-undo", "download-report"]);
      } else {
        assert.equal(r.outcome, want.outcome, `${want.file}: unchanged by the fix`);
        assert.deepEqual(r.links, [], `${want.file}: no download`);
      }
    }
    assert.equal(await b.page.$("#queue-fix-all"), null, "nothing left to fix");

    // The command line's batch over the same five images is the reference.
    const batchDir = path.join(dir, "batch");
    mkdirSync(batchDir);
    const batch = cli(["fix", "--out-dir", batchDir, ...images]);
    assert.equal(batch.code, 3, `the batch ends with the damaged image's status: ${batch.stderr}`);
    for (const want of FIVE) {
      const name = fixedName(want.file);
      const row = `#queue-table tr[data-name="${path.basename(want.file)}"]`;
      if (want.outcome !== "fixable") {
        assert.ok(!existsSync(path.join(batchDir, name)), `the CLI wrote no ${name} either`);
        continue;
      }
      const img = await downloadFrom(b.page, `${row} a.download-image`);
      assert.equal(img.suggestedFilename(), name);
      assert.equal(sha256File(await img.path()), sha256File(path.join(batchDir, name)), `${name}: page and CLI batch differ`);
      const undo = await downloadFrom(b.page, `${row} a.download-undo`);
      assert.equal(undo.suggestedFilename(), name + ".undo");
      const single = path.join(dir, "single-" + name);
      const r = cli(["fix", fixture(want.file), "-o", single, "--undo", single + ".undo"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha256File(await undo.path()), sha256File(single + ".undo"), `${name}.undo: page and CLI differ`);
      assert.equal(sha256File(single), sha256File(path.join(batchDir, name)), "CLI single and batch agree");
      const rep = await downloadFrom(b.page, `${row} a.download-report`);
      assert.equal(rep.suggestedFilename(), name + ".report.json");
      const report = readJson(await rep.path());
      assert.equal(report.image, path.basename(want.file));
      assert.equal(report.output, name);
      assert.equal(report.plan.deletions.length, want.files);
      assert.equal(report.plan.verification.matches_after, 0);
    }
    assertOnlyOwnOrigin(b.requests, [srv.origin + SUB]);
    await assertNoPageProblems(b);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("many images in the browser", { timeout: 900_000 }, () => {
  test("five images dropped at once, English", async () => {
    await fiveImages("en", "en-US");
  });

  test("five images dropped at once, Japanese", async () => {
    await fiveImages("ja", "ja-JP");
  });

  test("stopping the queue: the image being read finishes, the rest are not started", async () => {
    const b = await launch({ locale: "en-US" });
    try {
      await b.page.goto(srv.url);
      await b.page.waitForSelector("#pick-button");
      await b.page.setInputFiles("#file-input", FIVE.map((i) => fixture(i.file)));
      await b.page.click("#queue-stop");
      await waitIdle(b.page);
      const seen = await rows(b.page);
      const skipped = seen.filter((r) => r.outcome === "skipped");
      assert.ok(skipped.length >= 1 && skipped.length < FIVE.length, `some skipped: ${seen.map((r) => r.outcome)}`);
      const first = seen.findIndex((r) => r.outcome === "skipped");
      assert.ok(seen.slice(first).every((r) => r.outcome === "skipped"), "nothing read after the stop");
      assert.ok(seen.slice(0, first).every((r) => r.outcome === FIVE[seen.indexOf(r)].outcome), "what was read is complete");
      for (const r of skipped) assert.equal(r.text, WORDS.en.skipped);
      await assertNoPageProblems(b);
    } finally {
      await b.close();
    }
  });

  test("a dropped folder is expanded: its images and its subfolders' images, in path order", async () => {
    const dir = scratch("queue-drop-folder");
    const b = await launch({ locale: "en-US" });
    try {
      // A folder with no image: the page says so and queues nothing.
      const empty = path.join(dir, "notes-only");
      mkdirSync(empty);
      writeFileSync(path.join(empty, "readme.txt"), "not a disk\n");
      const exports = path.join(dir, "exports");
      for (const sub of ["b-site", "a-site"]) mkdirSync(path.join(exports, sub), { recursive: true });
      linkSync(fixture("mbr-win.raw"), path.join(exports, "b-site", "web01.raw"));
      linkSync(fixture("no-crowdstrike.raw"), path.join(exports, "a-site", "db01.raw"));
      writeFileSync(path.join(exports, "a-site", "notes.txt"), "ticket 4711\n");
      await b.page.goto(srv.url);
      await b.page.waitForSelector("#pick-button");
      await dropFolder(b.page, empty);
      await b.page.waitForSelector("#pick-note");
      assert.equal(
        await b.page.innerText("#pick-note"),
        "This folder (with its subfolders) holds no disk image: looked for .raw, .img, .vhd, .vhdx, .qcow2, .vmdk, .bin and .dd files.",
      );
      assert.equal(await b.page.$("#queue-table"), null, "nothing queued");

      await dropFolder(b.page, exports);
      await waitIdle(b.page);
      const seen = await rows(b.page);
      assert.deepEqual(seen.map((r) => [r.name, r.outcome]), [["db01.raw", "nothing-to-fix"], ["web01.raw", "fixable"]]);
      assert.equal(seen[1].text, WORDS.en.fixable(2));
      await assertNoPageProblems(b);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a worker that crashes, reading or fixing, fails its own image only; the queue goes on", async () => {
    const b = await launch({ locale: "en-US" });
    try {
      // Every worker gets a message listener ahead of the worker's own (which the worker adds
      // once its wasm is compiled): it throws, as a wasm trap would, and keeps the message from
      // the worker, when one image is to be read and when another is to be fixed.
      b.page.on("worker", (w) => {
        w.evaluate(() => {
          let image = null;
          self.addEventListener("message", (e) => {
            const kind = typeof e.data === "string" ? e.data : Object.keys(e.data ?? {})[0];
            if (kind === "inspect") image = e.data.inspect.file.name;
            if ((kind === "inspect" && image === "gpt-win-fixed.vhd") || (kind === "fix" && image === "gpt-win.raw")) {
              e.stopImmediatePropagation();
              throw new Error(`simulated crash (${kind} ${image})`);
            }
          });
        }).catch(() => {});
      });
      const images = ["gpt-win-fixed.vhd", "gpt-win.raw", "no-crowdstrike.raw", "mbr-win.raw"];
      await b.page.goto(srv.url);
      await b.page.waitForSelector("#pick-button");
      await b.page.setInputFiles("#file-input", images.map(fixture));
      await waitIdle(b.page);
      let seen = await rows(b.page);
      assert.deepEqual(seen.map((r) => r.outcome), ["error", "fixable", "nothing-to-fix", "fixable"]);
      assert.ok(seen[0].text.includes("The reading process stopped unexpectedly."), seen[0].text);
      assert.ok(seen[0].text.includes("simulated crash (inspect gpt-win-fixed.vhd)"), seen[0].text);

      await b.page.click("#queue-fix-all");
      await waitIdle(b.page);
      seen = await rows(b.page);
      assert.deepEqual(seen.map((r) => r.outcome), ["error", "not-fixed", "nothing-to-fix", "fixed"]);
      assert.ok(seen[1].text.includes("simulated crash (fix gpt-win.raw)"), seen[1].text);
      assert.deepEqual(seen[1].links, [], "nothing offered for the image whose fix crashed");
      assert.ok(seen[3].links.length > 0, "the image after it is fixed and offered");
      const others = b.problems.filter((p) => !p.includes("simulated crash"));
      assert.deepEqual(others, [], "no page problem but the simulated crashes");
    } finally {
      await b.close();
    }
  });

  test("an image that needs consent is left to open alone; the others are fixed", async () => {
    const dir = scratch("queue-alone");
    const b = await launch({ locale: "ja-JP" });
    try {
      const unclean = path.join(dir, "unclean.raw");
      makeUnclean(fixture("mbr-win.raw"), unclean, 2);
      await b.page.goto(srv.url);
      await b.page.waitForSelector("#pick-button");
      await b.page.setInputFiles("#file-input", [unclean, fixture("mbr-win.raw")]);
      await waitIdle(b.page);
      let seen = await rows(b.page);
      assert.deepEqual(seen.map((r) => r.outcome), ["open-alone", "fixable"]);
      assert.equal(seen[0].text, WORDS.ja["open-alone"]);
      await b.page.click("#queue-fix-all");
      await waitIdle(b.page);
      seen = await rows(b.page);
      assert.deepEqual(seen.map((r) => r.outcome), ["open-alone", "fixed"]);
      assert.deepEqual(seen[0].links, [], "nothing fixed without consent");
      await assertNoPageProblems(b);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("writing into a chosen folder: the fixed files appear there, an existing file is never replaced", async () => {
    const dir = scratch("queue-folder");
    const b = await launch({ locale: "en-US" });
    try {
      // The folder the user would choose: the origin-private file system, a real directory handle.
      await b.ctx.addInitScript(() => {
        window.showDirectoryPicker = async () => navigator.storage.getDirectory();
      });
      await b.page.goto(srv.url);
      await b.page.waitForSelector("#pick-button");
      await b.page.evaluate(async () => {
        const root = await navigator.storage.getDirectory();
        const w = await (await root.getFileHandle("mbr-win-fixed.raw", { create: true })).createWritable();
        await w.write("already here");
        await w.close();
      });
      await b.page.setInputFiles("#file-input", [fixture("gpt-win.raw"), fixture("mbr-win.raw")]);
      await waitIdle(b.page);
      await b.page.click("#queue-choose-folder");
      await b.page.waitForSelector("#queue-folder");
      await b.page.click("#queue-fix-all");
      await waitIdle(b.page);
      const seen = await rows(b.page);
      assert.deepEqual(seen.map((r) => r.outcome), ["fixed", "not-fixed"]);
      assert.deepEqual(seen.map((r) => r.links), [[], []], "no downloads when writing into a folder");
      const written = await b.page.innerText('#queue-table tr[data-name="gpt-win.raw"] .output');
      assert.equal(written, "written into the folder: gpt-win-fixed.raw, gpt-win-fixed.raw.undo, gpt-win-fixed.raw.report.json");
      assert.ok(seen[1].text.includes("mbr-win-fixed.raw is already in the folder"), seen[1].text);
      const names = await b.page.evaluate(async () => {
        const out = [];
        for await (const [name] of (await navigator.storage.getDirectory()).entries()) out.push(name);
        return out.sort();
      });
      assert.deepEqual(names, ["gpt-win-fixed.raw", "gpt-win-fixed.raw.report.json", "gpt-win-fixed.raw.undo", "mbr-win-fixed.raw"]);
      const kept = await b.page.evaluate(async () =>
        (await (await (await navigator.storage.getDirectory()).getFileHandle("mbr-win-fixed.raw")).getFile()).text());
      assert.equal(kept, "already here", "the existing file is untouched");

      // What the folder holds, brought out through a download, against the command line.
      const single = path.join(dir, "cli-gpt-win-fixed.raw");
      const r = cli(["fix", fixture("gpt-win.raw"), "-o", single, "--undo", single + ".undo"]);
      assert.equal(r.code, 0, r.stderr);
      for (const [name, reference] of [["gpt-win-fixed.raw", single], ["gpt-win-fixed.raw.undo", single + ".undo"]]) {
        await b.page.evaluate(async (name) => {
          const file = await (await (await navigator.storage.getDirectory()).getFileHandle(name)).getFile();
          const a = document.createElement("a");
          a.id = "test-folder-file";
          a.href = URL.createObjectURL(file);
          a.download = name;
          a.textContent = name;
          document.querySelector("#test-folder-file")?.remove();
          document.body.append(a);
        }, name);
        const dl = await downloadFrom(b.page, "#test-folder-file");
        assert.equal(sha256File(await dl.path()), sha256File(reference), `${name}: folder and CLI differ`);
      }
      await assertNoPageProblems(b);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
