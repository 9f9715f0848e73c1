// A user's rule file on the page, in English and Japanese. The image is made by
// tests/make-user-rule-fixture.py: ntfs-3g writes a vendor's channel files on a copy of gpt-win.raw
// and `touch` stamps them (never kaifuku's own code). A good rule file lists its rule in the page's
// language, and the image fixed with it is byte-identical to `kaifuku fix --rule FILE`'s output;
// a hostile file (one naming \$MFT, a malformed one, one over 64 KiB) shows its error in the
// page's language and none of its rules touches the image. Skipped (with the reason) when the
// script exits 77.
import { after, before, describe, test } from "node:test";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { writeFileSync, readFileSync } from "node:fs";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertNoPageProblems, cli, DIST, FIXTURES, fixFlow, launch, ROOT, rmSync, scratch, sha256File, waitState,
} from "./lib.mjs";

let srv;
let dir;
let skip = false;
let files;
before(async () => {
  srv = await serve(DIST, "/");
  dir = scratch("rules");
  const out = path.join(dir, "made");
  const r = spawnSync("python3", [path.join(ROOT, "tests/make-user-rule-fixture.py"), FIXTURES, out], { encoding: "utf8" });
  if (r.status === 77) {
    skip = r.stdout.trim() || "make-user-rule-fixture.py exited 77";
    return;
  }
  assert.equal(r.status, 0, `make-user-rule-fixture.py failed: ${r.stdout}${r.stderr}`);
  const good = readFileSync(path.join(out, "contoso.toml"), "utf8");
  files = {
    image: path.join(out, "contoso.raw"),
    good: path.join(out, "contoso.toml"),
    expected: JSON.parse(readFileSync(path.join(out, "expected.json"), "utf8")),
    system: path.join(dir, "system.toml"),
    malformed: path.join(dir, "malformed.toml"),
    large: path.join(dir, "large.toml"),
  };
  writeFileSync(files.system, good.replace("directory = '\\ProgramData\\Contoso\\Agent\\Channels'", () => "directory = '\\$MFT'"));
  writeFileSync(files.malformed, "format = 1\n[[rule]\nid = \"contoso\"\n");
  writeFileSync(files.large, good + "#" + "x".repeat(64 * 1024) + "\n");
});
after(async () => {
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const WORDS = {
  "en-US": {
    title: "Contoso agent channel file 42 (2025-03-02)",
    description: "The channel file behind the 2025-03-02 boot loop; deleting it lets Windows start.",
    target: "Target: \\ProgramData\\Contoso\\Agent\\Channels\\CH-0042*.bin (on volumes holding \\Windows\\System32)",
    faulty: "Faulty version: modified from 2025-03-02 04:09:00 to before 2025-03-02 04:10:00 (UTC)",
    verdict: "faulty version (modified 2025-03-02 04:09:00 to 2025-03-02 04:10:00 UTC)",
    errors: {
      system: ["names_system_file", 'Rule "contoso-agent-2025-03-02" names the NTFS system file $MFT, which kaifuku never deletes'],
      malformed: ["syntax", "Not a valid rule file at line 2, column"],
      large: ["too_large", "The file is too large ("],
    },
    refused: "none of its rules apply, only the built-in rule",
  },
  "ja-JP": {
    title: "Contoso エージェントのチャネルファイル 42(2025-03-02)",
    description: "2025-03-02 の起動ループの原因となったチャネルファイルです。削除すると Windows が起動します。",
    target: "対象: \\ProgramData\\Contoso\\Agent\\Channels\\CH-0042*.bin(\\Windows\\System32 のあるボリュームのみ)",
    faulty: "不具合版: 更新日時が 2025-03-02 04:09:00 以上 2025-03-02 04:10:00 未満(UTC)",
    verdict: "不具合版(更新 2025-03-02 04:09:00 ~ 2025-03-02 04:10:00 UTC)",
    errors: {
      system: ["names_system_file", "ルール「contoso-agent-2025-03-02」は NTFS のシステムファイル $MFT を指しています"],
      malformed: ["syntax", "2 行"],
      large: ["too_large", "ファイルが大きすぎます("],
    },
    refused: "このファイルのルールは使わず、組み込みのルールのみを使います",
  },
};

async function pickRules(page, file, expectState) {
  await page.setInputFiles("#rules-input", file);
  await page.waitForSelector(`#rules-status[data-state="${expectState}"]`, { timeout: 30_000 });
}

describe("a user's rule file on the page", () => {
  for (const locale of ["en-US", "ja-JP"]) {
    test(`a good rule file is listed and fixes as the CLI does, ${locale}`, async (t) => {
      if (skip) return t.skip(skip);
      const w = WORDS[locale];
      const b = await launch({ locale });
      try {
        await b.page.goto(srv.url);
        await b.page.waitForSelector("#pick-button");
        await pickRules(b.page, files.good, "loaded");
        const listed = await b.page.$$eval("#rules-list li.rule", (ls) => ls.map((l) => ({ key: l.dataset.key, text: l.innerText })));
        assert.equal(listed.length, 1);
        assert.equal(listed[0].key, "contoso-agent-2025-03-02");
        for (const words of [w.title, w.description, w.target, w.faulty]) {
          assert.ok(listed[0].text.includes(words), `${words} in ${listed[0].text}`);
        }
        assert.equal(await b.page.evaluate(() => document.querySelector(".page").dataset.state), "idle", "a rule file alone starts nothing");

        const out = await fixFlow(b.page, files.image);
        // The report: the rule, and the two files ntfs-3g wrote that its glob matches.
        assert.ok(out.text.includes(w.title), out.text.slice(0, 3000));
        const paths = await b.page.$$eval("#matches tbody tr th code", (cs) => cs.map((c) => c.innerText));
        assert.deepEqual(paths, files.expected.matches.map((m) => m.path));
        const verdicts = await b.page.$$eval("#matches tbody tr .verdict", (cs) => cs.map((c) => c.innerText));
        assert.equal(verdicts[0], w.verdict);

        // The download is the command line's output, byte for byte.
        const cliOut = path.join(dir, `cli-${locale}.raw`);
        const r = cli(["fix", "--rule", files.good, files.image, "-o", cliOut]);
        assert.equal(r.code, 0, `kaifuku fix --rule: ${r.stdout}${r.stderr}`);
        assert.equal(sha256File(out.image), sha256File(cliOut), "page and CLI outputs differ");
        assert.notEqual(sha256File(out.image), sha256File(files.image), "the fix changed the image");
        await assertNoPageProblems(b);
      } finally {
        await b.close();
      }
    });

    test(`hostile rule files show their error and touch nothing, ${locale}`, async (t) => {
      if (skip) return t.skip(skip);
      const w = WORDS[locale];
      const before = sha256File(files.image);
      const b = await launch({ locale });
      try {
        await b.page.goto(srv.url);
        await b.page.waitForSelector("#pick-button");
        for (const kind of ["system", "malformed", "large"]) {
          await pickRules(b.page, files[kind], "refused");
          const [code, words] = w.errors[kind];
          const shown = await b.page.$eval("#rules-status", (s) => ({
            code: s.querySelector(".rule-file-error").dataset.code,
            text: s.innerText,
            listed: s.querySelectorAll("li.rule").length,
          }));
          assert.equal(shown.code, code, kind);
          assert.ok(shown.text.includes(words), `${kind}: ${words} in ${shown.text}`);
          assert.ok(shown.text.includes(w.refused), `${kind}: ${shown.text}`);
          assert.equal(shown.listed, 0, `${kind}: no rule listed`);
          assert.equal(await b.page.evaluate(() => document.querySelector(".page").dataset.state), "idle");
        }
        // The image picked next is inspected with the built-in rule alone: the refused file's
        // rule never ran, so nothing of \$MFT nor of the vendor's directory is listed.
        await b.page.setInputFiles("#file-input", files.image);
        await waitState(b.page, ["planned", "inspected", "failed"]);
        const paths = await b.page.$$eval("#matches tbody tr th code", (cs) => cs.map((c) => c.innerText));
        assert.ok(paths.length > 0, "the built-in rule finds the channel file");
        for (const p of paths) assert.match(p, /^\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291/i);
        const rules = await b.page.$$eval("p.rule", (ps) => ps.map((p) => p.dataset.rule));
        assert.deepEqual(rules, ["crowdstrike-2024-07-19"]);
        await assertNoPageProblems(b);
      } finally {
        await b.close();
      }
      assert.equal(sha256File(files.image), before, "the picked image is never written");
    });
  }
});
