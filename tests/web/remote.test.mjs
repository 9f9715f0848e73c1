// A disk fixed where it lives, from the page: an Azure page blob by its SAS URL, on Azurite
// (Microsoft's storage emulator, on its default port 10000, which the page's security policy
// allows for practice). The blob is stored, its CORS rule set and the result read back by
// tests/azurite.py (Azure's REST API, not kaifuku's code). Judged like the command line's remote
// fix: the blob after the page's fix equals the fixture fixed locally by `kaifuku fix`; the page's
// undo file equals the one `kaifuku fix --in-place URL --undo` makes for the same blob, and
// `kaifuku undo` with it gives the original back; Azurite's own log shows ranged reads of a few
// MiB and a few KiB written, never the whole disk; the SAS token is never shown; a concurrent
// writer stops the write with nothing overwritten.
import { after, before, describe, test } from "node:test";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertNoPageProblems, assertSameBytes, cli, DIST, downloadFrom, fixture, launch, path,
  rmSync, ROOT, scratch, waitState,
} from "./lib.mjs";

const PORT = 10000;
let srv, b, dir, azPid;

function azurite(...args) {
  const r = spawnSync("python3", [path.join(ROOT, "tests/azurite.py"), ...args.map(String)], { encoding: "utf8" });
  assert.equal(r.status, 0, `tests/azurite.py ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

/** What Azurite logged for `blob`: each request's method and the bytes moved. */
function requests(blob) {
  const log = readFileSync(path.join(dir, "azurite", "requests.log"), "utf8");
  const open = new Map();
  const out = [];
  const numberAfter = (line, key) => {
    const m = line.split(key)[1]?.match(/^[:"]*(\d+)/);
    return m ? Number(m[1]) : null;
  };
  for (const line of log.split("\n")) {
    const id = line.split(/\s+/)[1];
    if (line.includes("RequestMethod=")) {
      if (line.includes(`/disks/${blob}`)) open.set(id, [line.split("RequestMethod=")[1].split(/\s+/)[0], 0]);
    } else if (line.includes("DeserializedParameters=") && line.includes('"comp":"page"')) {
      const n = numberAfter(line, '"contentLength"');
      if (open.has(id) && n !== null) open.get(id)[1] = n;
    } else if (line.includes("EndMiddleware: End response") && open.has(id)) {
      const [method, put] = open.get(id);
      open.delete(id);
      out.push([method, method === "GET" ? numberAfter(line, '"content-length"') ?? 0 : put]);
    }
  }
  return out;
}

const signature = (url) => new URL(url).searchParams.get("sig");

before(async () => {
  dir = scratch("remote");
  azPid = Number(azurite("start", path.join(dir, "azurite"), PORT));
  srv = await serve(DIST, "/kaifuku/");
  b = await launch({ locale: "en-US", serviceWorkers: "block" });
  await b.page.goto(srv.url);
  await b.page.waitForSelector("#sas-url");
});
after(async () => {
  await b?.close();
  await srv?.close();
  if (azPid) spawnSync("sh", ["-c", `kill -- -${azPid}; sleep 1`]);
  // Azurite may still be writing its log as it stops.
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

async function open(url) {
  await b.page.fill("#sas-url", url);
  await b.page.click("#sas-open");
  return waitState(b.page, ["planned", "inspected", "failed"]);
}

const code = () => b.page.$eval("#problems .problem, .problem", (p) => p.dataset.code).catch(() => null);

describe("an Azure page blob fixed where it lives, from the page", { timeout: 600_000 }, () => {
  test("refused with the CORS explanation until the account allows the page; then fixed, undone, and judged", async () => {
    const p = b.page;
    const image = fixture("gpt-win-fixed.vhd");
    const url = azurite("upload", PORT, "disk.vhd", image);
    const twin = azurite("upload", PORT, "twin.vhd", image);
    const origin = new URL(srv.url).origin;
    const uploaded = requests("disk.vhd").length;

    // No CORS rule: the browser gets nothing, and the page says what to set.
    azurite("cors", PORT);
    assert.equal(await open(url), "failed");
    assert.equal(await code(), "remote_unreachable");
    // Not in the technical detail either (the browser's own words name the URL whole).
    assert.ok(!(await p.$eval("body", (e) => e.textContent)).includes(signature(url)), "the SAS signature was shown");
    assert.match(await p.innerText("main"), /CORS/);
    assert.ok((await p.$eval("#remote-cors pre", (e) => e.textContent)).includes(`--origins ${origin}`));
    await p.click("#lang-ja");
    const ja = await p.innerText("main");
    assert.ok(ja.includes("ストレージに接続できません") && ja.includes("CORS 規則"), ja.slice(-1500));
    assert.ok(ja.includes("クラウド上のディスクをその場で修復"));
    await p.click("#lang-en");
    b.problems.length = 0; // the browser's own console line for the blocked request

    // The rule the page asks for: the fix goes through.
    azurite("cors", PORT, origin);
    assert.equal(await open(url), "planned", (await p.innerText("main")).slice(-1500));
    assert.ok((await p.innerText("#remote-current")).includes(`http://127.0.0.1:${PORT}/devstoreaccount1/disks/disk.vhd?…`));
    assert.equal(await p.$("#as-fixed-vhd"), null, "no download format for a blob fixed in place");
    await p.click("#fix-button");
    assert.equal(await waitState(p, ["undo-ready", "failed"]), "undo-ready", (await p.innerText("main")).slice(-1500));
    const before = requests("disk.vhd").slice(uploaded);
    assert.ok(before.every(([m]) => m !== "PUT"), "nothing written before the undo file is saved");
    assert.ok(await p.isDisabled("#remote-write"), "writing waits for the undo file");
    const dl = await downloadFrom(p, "#remote-undo");
    assert.equal(dl.suggestedFilename(), "disk.vhd.undo");
    const pageUndo = path.join(dir, "page.undo");
    await dl.saveAs(pageUndo);
    assert.ok(!(await p.isDisabled("#remote-write")));
    await p.click("#remote-write");
    assert.equal(await waitState(p, ["fixed", "failed"]), "fixed", (await p.innerText("main")).slice(-1500));
    const text = await p.$eval("body", (e) => e.textContent);
    assert.ok(!text.includes(signature(url)), "the SAS signature was shown");
    const traffic = await p.$eval("#remote-traffic", (e) => ({ ...e.dataset }));
    // What the page did, before this test reads the blob itself.
    const log = requests("disk.vhd").slice(uploaded);

    // The blob equals the fixture fixed locally by the command line.
    const local = path.join(dir, "local-fixed.vhd");
    let r = cli(["fix", image, "-o", local]);
    assert.equal(r.code, 0, r.stderr);
    const got = path.join(dir, "blob-after.vhd");
    azurite("download", url, got);
    assertSameBytes(got, local, "the blob fixed by the page and the local fix");

    // The command line's in-place fix of the twin blob makes the same undo file and blob.
    const cliUndo = path.join(dir, "cli.undo");
    r = cli(["fix", "--in-place", twin, "--undo", cliUndo]);
    assert.equal(r.code, 0, r.stderr);
    assertSameBytes(pageUndo, cliUndo, "the page's undo file and the command line's");

    // Azurite's log: ranged reads and page writes of a few KiB, never the whole disk.
    const reads = log.filter(([m]) => m === "GET");
    const puts = log.filter(([m]) => m === "PUT");
    const size = Number(spawnSync("stat", ["-c", "%s", image], { encoding: "utf8" }).stdout);
    const largest = Math.max(...reads.map(([, n]) => n));
    const readBytes = reads.reduce((a, [, n]) => a + n, 0);
    const written = puts.reduce((a, [, n]) => a + n, 0);
    // The command line's bounds for the same fix (crates/cli/tests/cloud_azure.rs).
    assert.ok(readBytes < 16 << 20 && largest <= 4 << 20 && readBytes < size / 16,
      `reads: ${reads.length}, ${readBytes} bytes, largest ${largest}`);
    assert.ok(puts.length >= 1 && written < 256 << 10, `puts: ${puts.length}, ${written} bytes`);
    assert.equal(Number(traffic.puts), puts.length, "the page's count of writes and Azurite's");
    assert.equal(Number(traffic.bytesWritten), written, "the page's bytes written and Azurite's");
    console.log(`# page fix of a ${size}-byte blob: ${reads.length} reads (${readBytes} bytes, largest ${largest}), ${puts.length} puts (${written} bytes)`);

    // The page's undo file restores the blob with the command line.
    r = cli(["undo", url, pageUndo]);
    assert.equal(r.code, 0, r.stderr);
    const restored = path.join(dir, "blob-restored.vhd");
    azurite("download", url, restored);
    assertSameBytes(restored, image, "the blob after undo and the original");

    // Every request went to the page's origin or to the storage.
    const outside = b.requests.filter((u) => !u.startsWith("blob:") && !u.startsWith("data:") &&
      !u.startsWith(srv.url) && !u.startsWith(`http://127.0.0.1:${PORT}/`));
    assert.deepEqual(outside, []);
    await assertNoPageProblems(b);
  });

  test("a rule that hides the answer's headers, and a wrong signature, are explained; nothing is written", async () => {
    const p = b.page;
    const origin = new URL(srv.url).origin;
    const image = fixture("gpt-win-fixed.vhd");
    const url = azurite("upload", PORT, "refused.vhd", image);
    const uploaded = requests("refused.vhd").length;
    // Allowed, but only Content-Length exposed: the size and the ETag cannot be checked.
    azurite("cors", PORT, origin, "content-length");
    assert.equal(await open(url), "failed");
    assert.equal(await code(), "remote_headers_hidden");
    assert.match(await p.innerText("main"), /--exposed-headers '\*'/);
    azurite("cors", PORT, origin);
    // A signature that is not the account's: refused by the storage (403), the token not shown.
    const forged = url.replace(/sig=[^&]+/, "sig=" + encodeURIComponent(Buffer.alloc(32, 7).toString("base64")));
    assert.equal(await open(forged), "failed");
    assert.equal(await code(), "remote_access_denied");
    const text = await p.$eval("body", (e) => e.textContent);
    assert.ok(!text.includes(signature(forged)) && !text.includes("sig="), "the SAS token was shown");
    assert.match(text, /sp=rw/);
    assert.ok(requests("refused.vhd").slice(uploaded).every(([m]) => m !== "PUT"), "nothing written");
    b.problems.length = 0; // the browser's console lines for the refused requests
  });

  // A BitLocker disk (made from a Windows-made volume of the shared GPL test set, as the BitLocker
  // browser test makes it) as a page blob: the key form, the unlock, and the re-encrypted fix
  // written where the disk lives, equal to `kaifuku fix --recovery-password` of the local file.
  const ARCHIVE = path.resolve(ROOT, "../shared/testdata/bitlk/bitlk-images.tar.xz");
  test("a BitLocker disk as a blob is unlocked with its recovery password and fixed where it lives",
    { skip: !existsSync(ARCHIVE) && "the GPL test data bitlk/bitlk-images.tar.xz is absent (kept beside the repository)" },
    async () => {
      const p = b.page;
      const made = spawnSync("sh", [path.join(ROOT, "tests/make-bitlocker-disk.sh"), path.join(dir, "bitlk"),
        "bitlk-aes-xts-256", "gpt", "raw"], { encoding: "utf8" });
      assert.equal(made.status, 0, `make-bitlocker-disk.sh: ${made.stdout}${made.stderr}`);
      const image = path.join(dir, "bitlk", "disk.img");
      const keys = Object.fromEntries(readFileSync(path.join(dir, "bitlk", "keys"), "utf8").trim().split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      const url = azurite("upload", PORT, "bitlk.img", image);
      azurite("cors", PORT, new URL(srv.url).origin);
      assert.equal(await open(url), "inspected");
      await p.waitForSelector("#unlock-form");
      await p.click("#key-method-recovery");
      await p.fill("#recovery-password", keys.RP);
      await p.click("#unlock-button");
      assert.equal(await waitState(p, ["planned", "failed"], 120_000), "planned",
        await p.$eval("main", (m) => m.textContent.slice(-1500)));
      await p.click("#fix-button");
      assert.equal(await waitState(p, ["undo-ready", "failed"]), "undo-ready", (await p.innerText("main")).slice(-1500));
      const pageUndo = path.join(dir, "bitlk.undo");
      await (await downloadFrom(p, "#remote-undo")).saveAs(pageUndo);
      await p.click("#remote-write");
      assert.equal(await waitState(p, ["fixed", "failed"]), "fixed", (await p.innerText("main")).slice(-1500));

      const local = path.join(dir, "bitlk-fixed.img");
      let r = cli(["fix", image, "-o", local, "--recovery-password", keys.RP]);
      assert.equal(r.code, 0, r.stderr);
      const got = path.join(dir, "bitlk-after.img");
      azurite("download", url, got);
      assertSameBytes(got, local, "the BitLocker blob fixed by the page and the local fix");
      r = cli(["undo", url, pageUndo]);
      assert.equal(r.code, 0, r.stderr);
      const restored = path.join(dir, "bitlk-restored.img");
      azurite("download", url, restored);
      assertSameBytes(restored, image, "the BitLocker blob after undo and the original");
    });

  test("a concurrent writer stops the write with nothing overwritten", async () => {
    const p = b.page;
    const image = fixture("gpt-win-fixed.vhd");
    const url = azurite("upload", PORT, "busy.vhd", image);
    assert.equal(await open(url), "planned");
    await p.click("#fix-button");
    assert.equal(await waitState(p, ["undo-ready", "failed"]), "undo-ready");
    await downloadFrom(p, "#remote-undo");
    // Another writer changes a page the fix does not touch (the last one), after kaifuku read.
    const size = Number(spawnSync("stat", ["-c", "%s", image], { encoding: "utf8" }).stdout);
    azurite("put-page", url, size - 1024, "ab".repeat(512));
    await p.click("#remote-write");
    assert.equal(await waitState(p, ["fixed", "failed"]), "failed");
    assert.equal(await code(), "remote_changed");
    const got = path.join(dir, "busy-after.vhd");
    azurite("download", url, got);
    const a = readFileSync(got);
    const o = readFileSync(image);
    o.fill(0xab, size - 1024, size - 512);
    assert.ok(a.equals(o), "the blob holds the other writer's page and nothing of kaifuku's");
    b.problems.length = 0; // the browser's console line for the refused write (412)
  });
});
