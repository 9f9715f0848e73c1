// After the first visit the page keeps working with the network gone: the service worker serves
// the whole build from its cache. Here the server is shut down, the page reloaded and a fix run.
import { test } from "node:test";
import { serve } from "../../web/serve.mjs";
import { assert, assertNoPageProblems, assertOnlyOwnOrigin, DIST, fixFlow, fixture, launch, waitState } from "./lib.mjs";

test("works offline after the first visit", { timeout: 300_000 }, async () => {
  const SUB = "/offline/kaifuku/";
  const srv = await serve(DIST, SUB);
  const b = await launch({ locale: "en-US" });
  try {
    await b.page.goto(srv.url);
    await b.page.waitForSelector("#pick-button");
    // Wait until the service worker has cached everything and controls the page.
    await b.page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      for (let i = 0; i < 100 && !navigator.serviceWorker.controller; i++) await new Promise((r) => setTimeout(r, 100));
      if (!navigator.serviceWorker.controller) throw new Error("no service worker controls the page");
    });
    const seen = srv.requests.length;
    await srv.close();
    await b.page.reload();
    await b.page.waitForSelector("#pick-button");
    assert.equal(srv.requests.length, seen, "nothing reached the (closed) server");
    const out = await fixFlow(b.page, fixture("cs-rootonly.raw"), { download: false });
    assert.ok(out.text.includes("Save the fixed image"));
    // A second image, still offline.
    await b.page.setInputFiles("#file-input", fixture("no-crowdstrike.raw"));
    assert.equal(await waitState(b.page, ["inspected", "failed"]), "inspected");
    assertOnlyOwnOrigin(b.requests, [srv.origin + SUB]);
    await assertNoPageProblems(b);
  } finally {
    await b.close();
    await srv.close().catch(() => {});
  }
});

test("a practice disk fetched once stays available offline; one never fetched says so", { timeout: 300_000 }, async () => {
  const SUB = "/offline/practice/";
  const srv = await serve(DIST, SUB);
  const b = await launch({ locale: "ja-JP" });
  try {
    await b.page.goto(srv.url);
    await b.page.waitForSelector("#practice-gpt");
    await b.page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      for (let i = 0; i < 100 && !navigator.serviceWorker.controller; i++) await new Promise((r) => setTimeout(r, 100));
      if (!navigator.serviceWorker.controller) throw new Error("no service worker controls the page");
    });
    await b.page.click("#practice-gpt");
    assert.equal(await waitState(b.page, ["planned", "failed"], 120_000), "planned");
    assert.ok(srv.requests.some((r) => r.includes("practice/gpt.raw.gz")), "the gpt disk came from the server");

    const seen = srv.requests.length;
    await srv.close();
    await b.page.reload();
    await b.page.waitForSelector("#practice-gpt");
    await b.page.click("#practice-gpt");
    assert.equal(await waitState(b.page, ["planned", "failed"], 120_000), "planned", (await b.page.innerText("main")).slice(-1500));
    assert.ok((await b.page.innerText("main")).includes("削除するファイルが 2 個見つかりました。"));

    // The mbr disk was never fetched: offline, the page says it could not be loaded.
    await b.page.reload();
    await b.page.click("#practice-mbr");
    await b.page.waitForSelector("#practice-failed", { timeout: 60_000 });
    assert.equal(srv.requests.length, seen, "nothing reached the (closed) server");
    assertOnlyOwnOrigin(b.requests, [srv.origin + SUB]);
  } finally {
    await b.close();
    await srv.close().catch(() => {});
  }
});
