// The page beyond the happy path: language switch, explanations for images that cannot be
// fixed (in both languages), cancel, and several images one after another without reloading.
import { after, before, describe, test } from "node:test";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { serve } from "../../web/serve.mjs";
import {
  assert, assertNoPageProblems, assertOnlyOwnOrigin, copySparse, DIST, fixFlow, fixture, launch, rmSync, scratch,
  state, statSync, waitState, withNtfs3gRw,
} from "./lib.mjs";

const SUB = "/kaifuku/";
let srv, b, dir;
before(async () => {
  srv = await serve(DIST, SUB);
  // Service workers off here (the offline test covers them), so routes can hold requests back.
  b = await launch({ locale: "en-US", serviceWorkers: "block" });
  dir = scratch("pages");
  await b.page.goto(srv.url);
  await b.page.waitForSelector("#pick-button");
});
after(async () => {
  await b?.close();
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const main = () => b.page.innerText("main");
const codes = () => b.page.$$eval(".problem", (ps) => ps.map((p) => p.dataset.code));

async function pick(file, states = ["planned", "inspected", "failed"]) {
  await b.page.setInputFiles("#file-input", file);
  return waitState(b.page, states);
}

// A monolithicFlat VMDK descriptor as qemu-img writes one (its extent file is not given).
const VMDK_DESCRIPTOR = [
  "# Disk DescriptorFile",
  "version=1",
  "CID=12345678",
  "parentCID=ffffffff",
  'createType="monolithicFlat"',
  "",
  "# Extent description",
  'RW 2048 FLAT "disk-flat.vmdk" 0',
  "",
].join("\n");

describe("page behaviour", { timeout: 300_000 }, () => {
  test("language switch: every visible sentence follows, and the choice is kept", async () => {
    const p = b.page;
    assert.equal(await p.getAttribute("html", "lang"), "en");
    assert.equal(await p.getAttribute("#lang-en", "aria-pressed"), "true");
    await p.click("#lang-ja");
    assert.equal(await p.getAttribute("html", "lang"), "ja");
    let t = await main();
    assert.ok(t.includes("イメージはこのコンピューターから出ません"));
    assert.ok(t.includes("1. ディスクイメージを選ぶ"));
    assert.ok(!t.includes("Choose a disk image"));
    await p.reload();
    await p.waitForSelector("#pick-button");
    assert.equal(await p.getAttribute("html", "lang"), "ja", "the choice survives a reload");
    await p.click("#lang-en");
    t = await main();
    assert.ok(t.includes("1. Choose a disk image"));
  });

  test("keyboard: the picker, language buttons and actions are reachable with Tab", async () => {
    const p = b.page;
    await p.focus("body");
    const seen = [];
    // Enough presses to pass the picker, the SAS URL form, the practice-disk buttons and the
    // language buttons.
    for (let i = 0; i < 16; i++) {
      await p.keyboard.press("Tab");
      seen.push(await p.evaluate(() => document.activeElement?.id || document.activeElement?.tagName));
    }
    for (const id of ["lang-ja", "lang-en", "pick-button"]) assert.ok(seen.includes(id), `Tab reaches #${id}: ${seen}`);
  });

  test("nothing to fix, then the explanation in Japanese after switching", async () => {
    assert.equal(await pick(fixture("no-crowdstrike.raw")), "inspected");
    assert.equal(await b.page.getAttribute("#outcome", "data-outcome"), "nothing-to-fix");
    assert.deepEqual(await codes(), ["directory_missing"]);
    assert.ok((await main()).includes("CrowdStrike Falcon is not installed"));
    assert.equal(await b.page.$("#fix-button"), null, "no fix offered");
    await b.page.click("#lang-ja");
    assert.ok((await main()).includes("CrowdStrike Falcon が入っていない"));
    await b.page.click("#lang-en");

    assert.equal(await pick(fixture("cs-empty.raw")), "inspected");
    assert.deepEqual(await codes(), ["no_match"]);
  });

  test("formats kaifuku cannot read yet, and damaged files, are explained", async () => {
    // A VMDK text descriptor: the data lives in extent files the page was not given.
    const vmdk = path.join(dir, "disk.vmdk");
    writeFileSync(vmdk, VMDK_DESCRIPTOR);
    assert.equal(await pick(vmdk), "inspected");
    assert.deepEqual(await codes(), ["unsupported_format"]);
    let t = await main();
    // The page names what to pick instead (the -flat.vmdk, a raw disk) and the command line for
    // a disk split over several data files.
    assert.ok(t.includes("This is a VMDK descriptor"), t);
    assert.ok(t.includes("pick it instead"), t);
    assert.ok(t.includes("kaifuku fix DISK.vmdk -o fixed.vmdk"), t);
    await b.page.click("#lang-ja");
    t = await main();
    assert.ok(t.includes("これは VMDK の記述ファイル"), t);
    assert.ok(t.includes("kaifuku fix DISK.vmdk -o fixed.vmdk"), t);
    assert.ok(t.includes("技術的な詳細"));
    await b.page.click("#lang-en");

    // A sparse VMDK is read now: a file with only its signature is a damaged VMDK.
    const sparse = path.join(dir, "sparse.vmdk");
    const sbuf = Buffer.alloc(1 << 20);
    sbuf.write("KDMV", 0, "latin1");
    writeFileSync(sparse, sbuf);
    assert.equal(await pick(sparse), "inspected");
    assert.deepEqual(await codes(), ["damaged"]);
    assert.ok((await main()).includes("damaged or incomplete"));

    // VHDX is read now: a file with only its signature is a damaged VHDX, not a raw disk.
    const vhdx = path.join(dir, "disk.vhdx");
    const vbuf = Buffer.alloc(1 << 20);
    vbuf.write("vhdxfile", 0, "latin1");
    writeFileSync(vhdx, vbuf);
    assert.equal(await pick(vhdx), "inspected");
    assert.deepEqual(await codes(), ["damaged"]);
    assert.ok((await main()).includes("damaged or incomplete"));

    assert.equal(await pick(fixture("bad/truncated.vhd")), "inspected");
    assert.deepEqual(await codes(), ["damaged"]);
    assert.ok((await main()).includes("damaged or incomplete"));

    assert.equal(await pick(fixture("bad/random.raw")), "inspected");
    assert.equal(await b.page.$("#fix-button"), null);
  });

  test("drag and drop: a dropped file is read like a picked one", async () => {
    await b.page.evaluate((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], "dropped.vmdk"));
      const zone = document.getElementById("dropzone");
      zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, VMDK_DESCRIPTOR);
    assert.equal(await waitState(b.page, ["inspected", "failed"]), "inspected");
    assert.equal(await b.page.innerText("#file-name"), "dropped.vmdk");
    assert.deepEqual(await codes(), ["unsupported_format"]);
    assert.ok((await main()).includes("-flat.vmdk"));
  });

  test("BitLocker is explained and its key asked for, with the promise that it stays in the page", async () => {
    // A bare volume whose boot sector carries the BitLocker signature.
    const bl = path.join(dir, "bitlocker.raw");
    const buf = Buffer.alloc(8 << 20);
    buf.set([0xeb, 0x58, 0x90], 0);
    buf.write("-FVE-FS-", 3, "latin1");
    buf.writeUInt16LE(512, 11);
    buf[13] = 8;
    buf.writeUInt16LE(0xaa55, 510);
    writeFileSync(bl, buf);
    assert.equal(await pick(bl), "inspected");
    assert.ok((await codes()).includes("bitlocker"), `codes: ${await codes()}`);
    assert.ok(await b.page.isVisible("#unlock-form"), "the key form is shown");
    assert.ok((await main()).includes("Give its 48-digit recovery password"));
    assert.ok((await b.page.innerText("#key-promise")).includes("never sent anywhere and never saved"));
  });

  test("a hibernated Windows is refused, in both languages", async () => {
    const img = path.join(dir, "hibernated.raw");
    copySparse(fixture("cs-rootonly.raw"), img);
    withNtfs3gRw(img, 0, statSync(img).size, (mnt) => {
      const hib = Buffer.alloc(64 << 10);
      hib.write("hibr", 0, "latin1");
      writeFileSync(path.join(mnt, "hiberfil.sys"), hib);
    });
    assert.equal(await pick(img), "inspected");
    assert.ok((await codes()).includes("hibernated"), `codes: ${await codes()}`);
    assert.ok((await main()).includes("shut it down fully"));
    assert.ok((await main()).includes("cannot be deleted here"), "the outcome line says the matches cannot be deleted");
    assert.ok(!(await main()).includes("file(s) to delete."), "no promise to delete");
    assert.equal(await b.page.$("#fix-button"), null, "no fix offered");
    assert.equal(await b.page.$("#plan-button"), null, "no plan offered");
    await b.page.click("#lang-ja");
    assert.ok((await main()).includes("Windows が休止状態です"));
    await b.page.click("#lang-en");
  });

  test("cancel stops the work, and the next image still works (no reload)", async () => {
    // The page starts its worker when it loads; hold that worker's wasm back (and load the page
    // again) so the picked image waits for it and the page is busy long enough to cancel.
    await b.ctx.route("**/kaifuku-worker_bg.wasm", async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue().catch(() => {});
    });
    await b.page.reload();
    await b.page.waitForSelector("#pick-button");
    await b.page.setInputFiles("#file-input", fixture("gpt-win.raw"));
    await b.page.waitForSelector("#cancel");
    assert.ok(await b.page.isVisible("#progress-bar"));
    assert.match(await b.page.innerText("#progress-figures"), /read in \d+ reads, [\d.]+ s elapsed/);
    await b.page.click("#cancel");
    assert.equal(await state(b.page), "cancelled");
    assert.ok((await main()).includes("Cancelled. Nothing was changed."));
    await b.ctx.unroute("**/kaifuku-worker_bg.wasm");

    // Two fixes in a row on the same page.
    for (const img of ["mbr-logical.raw", "bare-64k-dynamic.vhd"]) {
      const out = await fixFlow(b.page, fixture(img), { download: false });
      assert.ok(out.text.includes("Save the fixed image"));
      const size = await b.page.evaluate(() => window.kaifukuResult.image.size);
      const { statSync } = await import("node:fs");
      assert.equal(size, statSync(fixture(img)).size, `${img}: the fixed image has the input's size`);
    }
  });

  test("nothing outside the page's origin was requested", async () => {
    assertOnlyOwnOrigin(b.requests, [srv.origin + SUB]);
    await assertNoPageProblems(b);
  });
});
