// The Windows registry in the page's inspect view, in English and Japanese, on the volumes of
// tests/make-hive-fixtures.py (hives written by hivex; SYSTEM left dirty as a crash leaves it):
// the build and each hive's state are what `kaifuku inspect --json` reports and what hivexget reads
// from the hive ntfscat extracts. The registry transaction-log checkbox: off by default, ticked
// under the report it re-inspects and plans the TxR files ntfsls lists, and the fixed image is
// `kaifuku fix --txr-logs`'s output; on a build-9600 volume the page says why they stay.
// Skipped (with the reason) when the script exits 77.
import { after, before, describe, test } from "node:test";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { serve } from "../../web/serve.mjs";
import { assert, assertNoPageProblems, cli, DIST, downloadFrom, launch, ROOT, rmSync, run, scratch, sha256File, waitState } from "./lib.mjs";

let srv;
let dir;
let skip = false;
before(async () => {
  srv = await serve(DIST, "/");
  dir = scratch("registry");
  const r = spawnSync("python3", [path.join(ROOT, "tests/make-hive-fixtures.py"), path.join(dir, "hives")], { encoding: "utf8" });
  if (r.status === 77) skip = r.stdout.trim() || "make-hive-fixtures.py exited 77";
  else assert.equal(r.status, 0, `make-hive-fixtures.py failed: ${r.stdout}${r.stderr}`);
});
after(async () => {
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const WORDS = {
  "en-US": {
    heading: "Windows registry (read only, never changed)",
    build: (b, p) => `Windows build ${b} (${p})`,
    dirty: (p, s) => `SYSTEM hive: DIRTY. Windows was writing it when it stopped (primary sequence number ${p}, secondary ${s})`,
    clean: (s) => `SOFTWARE hive: clean (its last write completed; sequence number ${s})`,
    missing: "SYSTEM hive: not found",
    cut: "SOFTWARE hive: cannot be read as a hive (it is cut short",
  },
  "ja-JP": {
    heading: "Windows のレジストリ(読み取りのみ。書き換えません)",
    build: (b, p) => `Windows のビルド ${b}(${p})`,
    dirty: (p, s) => `SYSTEM ハイブ: 書き込み途中。Windows はこのハイブの書き込み中に停止しました(プライマリ シーケンス番号 ${p}、セカンダリ ${s})`,
    clean: (s) => `SOFTWARE ハイブ: 正常(最後の書き込みは完了しています。シーケンス番号 ${s})`,
    missing: "SYSTEM ハイブ: ありません",
    cut: "SOFTWARE ハイブ: ハイブとして読めません(途中で切れています",
  },
};

async function shown(locale, image) {
  const b = await launch({ locale });
  try {
    await b.page.goto(srv.url);
    await b.page.waitForSelector("#pick-button");
    await b.page.setInputFiles("#file-input", image);
    await waitState(b.page, ["planned", "inspected"]);
    const registry = await b.page.$eval(".registry", (d) => ({
      build: d.dataset.build,
      version: d.querySelector(".windows-version").dataset.code,
      hives: [...d.querySelectorAll(".hive")].map((h) => ({ hive: h.dataset.hive, code: h.dataset.code, text: h.innerText })),
      text: d.innerText,
    }));
    await assertNoPageProblems(b);
    return registry;
  } finally {
    await b.close();
  }
}

describe("the Windows registry in the inspect view", () => {
  for (const locale of ["en-US", "ja-JP"]) {
    test(`build and dirty SYSTEM hive, ${locale}`, async (t) => {
      if (skip) return t.skip(skip);
      const image = path.join(dir, "hives/win-hives.raw");
      const report = JSON.parse(cli(["inspect", "--json", image]).stdout);
      const reg = report.volumes[0].registry;
      const extracted = path.join(dir, `SOFTWARE-${locale}`);
      run("sh", ["-c", 'ntfscat "$0" /Windows/System32/config/SOFTWARE > "$1"', image, extracted]);
      const key = "\\Microsoft\\Windows NT\\CurrentVersion";
      const build = run("hivexget", [extracted, key, "CurrentBuildNumber"]).trim();
      const product = run("hivexget", [extracted, key, "ProductName"]).trim();
      assert.equal(String(reg.windows_version.build), build);

      const s = await shown(locale, image);
      const w = WORDS[locale];
      assert.equal(s.build, build);
      assert.equal(s.version, "build");
      assert.deepEqual(s.hives.map((h) => [h.hive, h.code]), [["SYSTEM", "dirty"], ["SOFTWARE", "clean"]]);
      assert.ok(s.text.includes(w.heading), s.text);
      assert.ok(s.text.includes(w.build(build, product)), s.text);
      const sys = reg.system.state;
      assert.ok(s.hives[0].text.startsWith(w.dirty(sys.primary_sequence, sys.secondary_sequence)), s.hives[0].text);
      assert.ok(s.hives[1].text.startsWith(w.clean(reg.software.state.sequence)), s.hives[1].text);
    });

    test(`missing and cut hives are notes, ${locale}`, async (t) => {
      if (skip) return t.skip(skip);
      const image = path.join(dir, "hives/win-hives-broken.raw");
      const s = await shown(locale, image);
      const w = WORDS[locale];
      assert.equal(s.build, "");
      assert.equal(s.version, "no_software_hive");
      assert.deepEqual(s.hives.map((h) => [h.hive, h.code]), [["SYSTEM", "missing"], ["SOFTWARE", "damaged"]]);
      assert.equal(s.hives[0].text, w.missing);
      assert.ok(s.hives[1].text.startsWith(w.cut), s.hives[1].text);
    });
  }
});

const TXR_WORDS = {
  "en-US": {
    checkbox: "Also delete the registry transaction logs",
    explained: ["*.TxR.*.regtrans-ms", "*.TxR.blf", "Windows Server 2016 (build 14393)", "SOFTWARE hive's CurrentBuildNumber", "Off by default"],
    skipped: "not run. Windows build 9600 is older than build 14393, the first this rule is for; nothing of it is deleted.",
  },
  "ja-JP": {
    checkbox: "レジストリのトランザクションログも削除する",
    explained: ["*.TxR.*.regtrans-ms", "*.TxR.blf", "Windows Server 2016(ビルド 14393)", "SOFTWARE ハイブの CurrentBuildNumber", "既定ではオフ"],
    skipped: "実行しません。Windows のビルド 9600 は、このルールの対象のビルド 14393 より前です。このルールでは何も削除しません。",
  },
};

/** The files of `dir` on the bare NTFS volume `image`, as ntfs-3g's ntfsls lists them. */
function ntfsls(image, dir) {
  return run("ntfsls", ["-p", dir, image])
    .split("\n")
    .filter((n) => n && n !== "." && n !== "..")
    .map((n) => `${dir}/${n}`.replaceAll("/", "\\"))
    .sort();
}

const checkbox = (page, sel) =>
  page.$eval(sel, (c) => ({ checked: c.checked, label: c.closest("label").innerText, explanation: document.getElementById(c.getAttribute("aria-describedby")).innerText }));

const planned = (page) =>
  page.$$eval("#plan .deletions li", (ls) => ls.map((l) => ({ text: l.innerText, rule: l.querySelector(".deletion-rule")?.dataset.rule ?? null })));

describe("the registry transaction logs", () => {
  for (const locale of ["en-US", "ja-JP"]) {
    test(`the checkbox is off by default, re-inspects when ticked, and fixes as the CLI does, ${locale}`, async (t) => {
      if (skip) return t.skip(skip);
      const w = TXR_WORDS[locale];
      const image = path.join(dir, "hives/win-hives.raw");
      const txr = ntfsls(image, "/Windows/System32/config/TxR");
      assert.ok(txr.some((p) => p.endsWith(".TxR.blf")) && txr.some((p) => p.endsWith(".regtrans-ms")), txr.join(" "));
      const b = await launch({ locale });
      try {
        await b.page.goto(srv.url);
        await b.page.waitForSelector("#pick-button");
        const pick = await checkbox(b.page, "#txr-logs");
        assert.equal(pick.checked, false, "off by default");
        assert.equal(pick.label.trim(), w.checkbox);
        for (const words of w.explained) assert.ok(pick.explanation.includes(words), `${words} in ${pick.explanation}`);

        await b.page.setInputFiles("#file-input", image);
        assert.equal(await waitState(b.page, ["planned", "inspected", "failed"]), "planned");
        const before = await planned(b.page);
        assert.equal(before.length, 1, JSON.stringify(before));
        assert.ok(!txr.some((p) => before[0].text.includes(p)), before[0].text);
        const now = await checkbox(b.page, "#txr-logs-report");
        assert.equal(now.checked, false);
        assert.equal(now.label.trim(), w.checkbox);

        // Ticked under the report: inspected again, and the plan lists the transaction logs.
        await b.page.check("#txr-logs-report");
        await b.page.waitForSelector('#plan .deletion-rule[data-rule="registry-txr-log"]', { timeout: 60_000 });
        assert.equal(await waitState(b.page, ["planned", "failed"]), "planned");
        assert.equal((await checkbox(b.page, "#txr-logs-report")).checked, true);
        assert.equal((await checkbox(b.page, "#txr-logs")).checked, true, "the choice holds for the next image");
        const after = await planned(b.page);
        assert.equal(after.length, 1 + txr.length, JSON.stringify(after));
        for (const p of txr) {
          const d = after.find((x) => x.text.includes(p));
          assert.ok(d, `${p} is not planned: ${JSON.stringify(after)}`);
          assert.equal(d.rule, p.endsWith(".TxR.blf") ? "registry-txr-log" : "registry-txr-containers");
        }
        assert.equal(after.filter((d) => d.rule === "crowdstrike-2024-07-19").length, 1);

        await b.page.click("#fix-button");
        assert.equal(await waitState(b.page, ["fixed", "failed"]), "fixed");
        const dl = await downloadFrom(b.page, "#download-image");
        const cliOut = path.join(dir, `cli-txr-${locale}.raw`);
        const r = cli(["fix", "--txr-logs", image, "-o", cliOut]);
        assert.equal(r.code, 0, `kaifuku fix --txr-logs: ${r.stdout}${r.stderr}`);
        assert.equal(sha256File(await dl.path()), sha256File(cliOut), "page and CLI outputs differ");
        await assertNoPageProblems(b);
      } finally {
        await b.close();
      }
    });

    test(`build 9600: the transaction logs stay, with the reason, ${locale}`, async (t) => {
      if (skip) return t.skip(skip);
      const w = TXR_WORDS[locale];
      const image = path.join(dir, "hives/win-hives-9600.raw");
      const b = await launch({ locale });
      try {
        await b.page.goto(srv.url);
        await b.page.waitForSelector("#pick-button");
        await b.page.check("#txr-logs");
        await b.page.setInputFiles("#file-input", image);
        assert.equal(await waitState(b.page, ["planned", "inspected", "failed"]), "planned");
        const skipped = await b.page.$$eval(".rule-skipped", (ls) => ls.map((l) => ({ rule: l.dataset.rule, code: l.dataset.code, text: l.innerText })));
        assert.deepEqual(skipped.map((s) => [s.rule, s.code]).sort(), [["registry-txr-containers", "build_below"], ["registry-txr-log", "build_below"]]);
        for (const s of skipped) assert.ok(s.text.includes(w.skipped), s.text);
        // The report offers no checkbox for this image: nothing of the rules could run.
        assert.equal(await b.page.$("#txr-logs-report"), null);
        const p = await planned(b.page);
        assert.deepEqual(p.map((d) => d.rule), ["crowdstrike-2024-07-19"]);
        await assertNoPageProblems(b);
      } finally {
        await b.close();
      }
    });
  }
});
