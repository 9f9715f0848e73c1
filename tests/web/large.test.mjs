// A 100 GiB sparse disk (GPT, the Windows volume of a fixture placed inside) goes through the whole
// flow. The fixed image is not saved (that would write 100 GiB); instead the page's Blob is
// compared with the command line's output over every region that holds data, chunk by chunk, and
// must have the same size. Elsewhere both are the input's holes by construction.
import { test } from "node:test";
import path from "node:path";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertOnlyOwnOrigin, cli, DIST, fixFlow, launch, makeLargeSparse, pickedToBlobMs, rmSync, scratch,
  sha256File, statSync,
} from "./lib.mjs";

const GIB = 1024 ** 3;
const CHUNK = 16 << 20;

test("100 GiB sparse image: whole flow, Blob equals the CLI output", { timeout: 600_000 }, async () => {
  const dir = scratch("large");
  const srv = await serve(DIST, "/");
  const b = await launch({ locale: "en-US" });
  try {
    const img = path.join(dir, "big.raw");
    const size = 100 * GIB;
    const part = makeLargeSparse(img, size);
    await b.page.goto(srv.url);
    await b.page.waitForSelector("#pick-button");
    const out = await fixFlow(b.page, img, { download: false });
    const m = out.metrics;
    console.log(`100 GiB: picked→Blob ${pickedToBlobMs(m).toFixed(0)} ms, ${m.calls} reads, ${m.bytes} bytes, wasm ${m.wasmMemory} bytes`);
    assert.ok(out.text.includes("100.0 GiB"));
    assert.ok(out.text.includes("Found 2 file(s) to delete."));
    // The read budget is 4 MiB plus the ownership proof's scan of every in-use MFT record, which
    // grows with the number of files on the volume (the report says how much it read).
    const scanned = await b.page.evaluate(async () => {
      const report = JSON.parse(await window.kaifukuResult.report.text());
      return report.plan.verification.ownership.reduce((sum, s) => sum + s.bytes_read, 0);
    });
    assert.ok(scanned > 0, "the report shows the ownership scan");
    assert.ok(m.bytes <= 4 * 1024 * 1024 + scanned, `read ${m.bytes} bytes, ${scanned} of them scanning $MFT`);

    const cliOut = path.join(dir, "cli.raw");
    assert.equal(cli(["fix", img, "-o", cliOut]).code, 0);
    assert.equal(statSync(cliOut).size, size);
    const blobSize = await b.page.evaluate(() => window.kaifukuResult.image.size);
    assert.equal(blobSize, size);
    // The regions with data: the start of the disk through the partition, and the backup GPT.
    const regions = [[0, part.start + part.size], [size - (1 << 20), size]];
    for (const [start, end] of regions) {
      const pageHashes = await b.page.evaluate(async ({ start, end, chunk }) => {
        const blob = window.kaifukuResult.image;
        const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, "0")).join("");
        const out = [];
        for (let at = start; at < end; at += chunk) {
          const bytes = await blob.slice(at, Math.min(end, at + chunk)).arrayBuffer();
          out.push(hex(await crypto.subtle.digest("SHA-256", bytes)));
        }
        return out;
      }, { start, end, chunk: CHUNK });
      const cliHashes = [];
      for (let at = start; at < end; at += CHUNK) cliHashes.push(sha256File(cliOut, at, Math.min(end, at + CHUNK)));
      assert.deepEqual(pageHashes, cliHashes, `bytes ${start}..${end} differ`);
    }
    assertOnlyOwnOrigin(b.requests, [srv.origin + "/"]);
  } finally {
    await b.close();
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
