// Crashed volumes in the browser (made by tests/journal-replay.py with mkntfs and ntfs-3g, their
// journals written by tests/logwriter.py):
// * `committed`: the 04:09 channel file's creation committed in the journal and not flushed. The
//   page must say that the journal is replayed (in Japanese and English), plan the replay and the
//   delete, and download exactly the bytes `kaifuku fix -o` writes; ntfs-3g must then see the
//   CrowdStrike folder without the file, and the journal clean.
// * `unknown-undo`: a journal kaifuku cannot replay (an undo operation no source describes) whose
//   pending updates touch the CrowdStrike folder: the page must not say "nothing to fix", must ask
//   for consent (worded in both languages) and plan nothing without it; with it, the download
//   equals `kaifuku fix --discard-journal -o`.
import { after, before, describe, test } from "node:test";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertNoPageProblems, assertOnlyOwnOrigin, assertSameBytes, cli, crowdstrikeNamesByNtfs3g, DIST, fixFlow,
  launch, readJson, ROOT, rmSync, run, scratch, statSync, waitState,
} from "./lib.mjs";

const SUB = "/crashed/";
let srv;
let images; // the crash-simulated volumes, or null when the generator skipped (no root, no FUSE)
let skipReason = "";
before(async () => {
  srv = await serve(DIST, SUB);
  images = scratch("journal");
  const r = spawnSync("python3", [path.join(ROOT, "tests/journal-replay.py"), images], { encoding: "utf8" });
  if (r.status === 77) {
    skipReason = r.stdout.trim();
    rmSync(images, { recursive: true, force: true });
    images = null;
    return;
  }
  assert.equal(r.status, 0, `tests/journal-replay.py failed: ${r.stdout}${r.stderr}`);
});
after(async () => {
  await srv?.close();
  if (images) rmSync(images, { recursive: true, force: true });
});

const CHANNEL_FILE = "C-00000291-00000000-00000032.sys";

const REPLAYED = {
  "en-US": ["Windows was interrupted while updating this disk; kaifuku completes the 1 update(s) Windows had committed, as Windows would at its next start.",
    "journal replay: redo LSN", "InitializeFileRecordSegment", "the journal is replayed and clean (Windows has nothing left to replay)."],
  "ja-JP": ["このディスクの更新中に Windows が中断されました。Windows が確定していた 1 件の更新を、Windows が次回の起動時に行うのと同じように kaifuku が完了します。",
    "ジャーナルの再生: MFT レコード 70", "InitializeFileRecordSegment を再実行", "ジャーナルを再生済みで、クリーンな状態です(Windows が再生するものは残っていません)。"],
};

const MAY_HOLD = {
  "en-US": ["Windows's unfinished updates (its journal) touch the CrowdStrike folder or a folder above it, and kaifuku cannot replay them.",
    "I understand: discard the journal and mark the volume so that Windows runs chkdsk at the next boot."],
  "ja-JP": ["Windows の書き込み途中の更新(ジャーナル)が CrowdStrike のフォルダーかその上のフォルダーに触れていて、kaifuku はそれをやり直せません。",
    "理解しました。ジャーナルを破棄し、次回起動時に Windows が chkdsk を実行するように印を付けてください。"],
};

const japanese = (t) => /[\u3040-\u30ff]/.test(t.replace("日本語", "").replace("回復", ""));

describe("crashed volumes in the browser", { timeout: 600_000 }, () => {
  for (const locale of ["en-US", "ja-JP"]) {
    test(`a journal holding the 04:09 file's creation is replayed, then the file deleted (${locale})`, async (t) => {
      if (!images) return t.skip(skipReason);
      const image = path.join(images, "committed.img");
      const dir = scratch("journal-replayed");
      const b = await launch({ locale });
      try {
        // Without the replay the file is not on the volume: only the journal holds it.
        const size = statSync(image).size;
        assert.ok(!crowdstrikeNamesByNtfs3g(image, 0, size).includes(CHANNEL_FILE));

        await b.page.goto(srv.url);
        await b.page.waitForSelector("#pick-button");
        // No consent is asked: a journal kaifuku can replay is replayed by default.
        const out = await fixFlow(b.page, image);
        for (const s of REPLAYED[locale]) {
          assert.ok(out.text.includes(s), `page text lacks ${JSON.stringify(s)}`);
        }
        const other = locale === "en-US" ? REPLAYED["ja-JP"] : REPLAYED["en-US"];
        assert.ok(!out.text.includes(other[0]), "the replay is said in the page's language only");
        if (locale === "en-US") assert.ok(!japanese(out.text), "no Japanese in the English page");
        assert.equal(await b.page.$$eval("#consent", (cs) => cs.length), 0, "no consent asked for a replay");
        const rows = await b.page.$$eval("#matches tbody tr", (rs) => rs.length);
        assert.equal(rows, 1, "the 04:09 file, found on the replayed view");

        const cliOut = path.join(dir, "cli-committed-fixed.img");
        const r = cli(["fix", image, "-o", cliOut, "--undo", cliOut + ".undo"]);
        assert.equal(r.code, 0, `CLI fix failed: ${r.stderr}`);
        assertSameBytes(out.image, cliOut, "fixed image (page vs CLI)");
        assertSameBytes(out.undo, cliOut + ".undo", "undo file (page vs CLI)");
        const report = readJson(out.report);
        assert.equal(report.plan.deletions.length, 1);
        assert.equal(report.plan.journals_discarded.length, 0);
        assert.equal(report.plan.journals_replayed.length, 1);
        assert.equal(report.plan.journals_replayed[0].replay.code, "replayed");
        assert.equal(report.plan.journals_replayed[0].replay.committed, 1);
        assert.equal(report.plan.verification.matches_after, 0);

        // Independent judges: ntfs-3g, mounting a copy read-write, finds the crashed volume's
        // journal unclean and the download's clean, and sees the folder without the channel file.
        const mountSays = (img) => {
          const copy = path.join(dir, "mounted.img");
          run("cp", ["--sparse=always", img, copy]);
          const mnt = scratch("mnt");
          const m = spawnSync("ntfs-3g", [copy, mnt], { encoding: "utf8" });
          if (m.status === 0) run("umount", [mnt]);
          rmSync(mnt, { recursive: true, force: true });
          rmSync(copy, { force: true });
          assert.equal(m.status, 0, `ntfs-3g mount: ${m.stdout}${m.stderr}`);
          return m.stdout + m.stderr;
        };
        assert.match(mountSays(image), /unclean file system/);
        assert.doesNotMatch(mountSays(out.image), /unclean file system/);
        assert.deepEqual(crowdstrikeNamesByNtfs3g(out.image, 0, size), ["csagent.sys"]);

        assertOnlyOwnOrigin(b.requests, [srv.origin + SUB]);
        await assertNoPageProblems(b);
      } finally {
        await b.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test(`an unreplayable journal touching the CrowdStrike folder asks for consent (${locale})`, async (t) => {
      if (!images) return t.skip(skipReason);
      const image = path.join(images, "unknown-undo.img");
      const dir = scratch("journal-refused");
      const b = await launch({ locale });
      try {
        assert.equal(cli(["fix", image, "-o", path.join(dir, "refused.img")]).code, 2, "the CLI refuses without consent");
        await b.page.goto(srv.url);
        await b.page.waitForSelector("#pick-button");
        await b.page.setInputFiles("#file-input", image);
        assert.equal(await waitState(b.page, ["planned", "inspected", "failed"]), "inspected");
        const text = await b.page.innerText("main");
        for (const s of MAY_HOLD[locale]) {
          assert.ok(text.includes(s), `page text lacks ${JSON.stringify(s)}`);
        }
        assert.ok(!text.includes(locale === "en-US" ? MAY_HOLD["ja-JP"][0] : MAY_HOLD["en-US"][0]));
        assert.ok(await b.page.isDisabled("#plan-button"), "no plan without consent");
        await b.page.reload();
        await b.page.waitForSelector("#pick-button");
        const out = await fixFlow(b.page, image, { consent: true });
        const cliOut = path.join(dir, "cli-fixed.img");
        const r = cli(["fix", image, "--discard-journal", "-o", cliOut, "--undo", cliOut + ".undo"]);
        assert.equal(r.code, 0, `CLI fix --discard-journal failed: ${r.stderr}`);
        assertSameBytes(out.image, cliOut, "fixed image (page vs CLI)");
        const report = readJson(out.report);
        assert.equal(report.plan.deletions.length, 0, "nothing on the disk to delete");
        assert.equal(report.plan.journals_discarded.length, 1);
        await assertNoPageProblems(b);
      } finally {
        await b.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
