// The single-file build: dist/kaifuku.html copied alone into an empty folder (as on a USB stick
// or saved from a mail) and opened as file:// with no server at all, must do the whole fix.
import { test } from "node:test";
import { copyFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import {
  assert, assertNoPageProblems, assertOnlyOwnOrigin, assertSameBytes, cli, DIST, fixFlow, fixture, launch,
  pickedToBlobMs, rmSync, scratch,
} from "./lib.mjs";

for (const [image, locale, check] of [
  ["gpt-win-dynamic.vhd", "ja-JP", "削除するファイルが 3 個見つかりました。"],
  ["bare-64k.raw", "en-US", "Found 2 file(s) to delete."],
]) {
  test(`kaifuku.html from file:// fixes ${image} (${locale})`, { timeout: 300_000 }, async () => {
    const dir = scratch("single");
    const page = path.join(dir, "kaifuku.html");
    copyFileSync(path.join(DIST, "kaifuku.html"), page);
    const url = pathToFileURL(page).href;
    const b = await launch({ locale });
    try {
      await b.page.goto(url);
      await b.page.waitForSelector("#pick-button");
      assert.equal(await b.page.evaluate(() => location.protocol), "file:");
      const out = await fixFlow(b.page, fixture(image));
      assert.ok(out.text.includes(check), out.text.slice(0, 1500));
      console.log(`single-file ${image}: picked→Blob ${pickedToBlobMs(out.metrics).toFixed(0)} ms`);
      const cliOut = path.join(dir, "cli.out");
      assert.equal(cli(["fix", fixture(image), "-o", cliOut, "--undo", cliOut + ".undo"]).code, 0);
      assertSameBytes(out.image, cliOut, "fixed image (single file vs CLI)");
      assertSameBytes(out.undo, cliOut + ".undo", "undo file (single file vs CLI)");
      assertOnlyOwnOrigin(b.requests, [url]);
      await assertNoPageProblems(b);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
