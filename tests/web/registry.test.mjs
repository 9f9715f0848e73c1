// The Windows registry in the page's inspect view, in English and Japanese, on the volumes of
// tests/make-hive-fixtures.py (hives written by hivex; SYSTEM left dirty as a crash leaves it):
// the build and each hive's state are what `kaifuku inspect --json` reports and what hivexget reads
// from the hive ntfscat extracts. Skipped (with the reason) when the script exits 77.
import { after, before, describe, test } from "node:test";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { serve } from "../../web/serve.mjs";
import { assert, assertNoPageProblems, cli, DIST, launch, ROOT, rmSync, run, scratch, waitState } from "./lib.mjs";

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
