// The page's part of tests/bench/cloud-bench.py: fixes the page blob at URL from the built page in
// headless Chromium, as a user would (paste the SAS URL, open, verify and make the undo file, save
// it, write), and prints the page's own timings as JSON. The storage account (Azurite on port
// 10000, which the page's security policy allows) must already allow the page's origin; the
// origin is printed first, on a line of its own, so that the caller can set the CORS rule.
//   node tests/bench/page-remote.mjs URL           (reads "go" on stdin once the rule is set)
import { serve } from "../../web/serve.mjs";
import { DIST, downloadFrom, launch, scratch, rmSync, waitState } from "../web/lib.mjs";
import { once } from "node:events";

const url = process.argv[2];
const srv = await serve(DIST, "/kaifuku/");
const b = await launch({ serviceWorkers: "block" });
const dir = scratch("page-remote-bench");
try {
  console.log(new URL(srv.url).origin);
  process.stdin.resume();
  await once(process.stdin, "data");
  const p = b.page;
  await p.goto(srv.url);
  await p.waitForSelector("#sas-url");
  await p.fill("#sas-url", url);
  const t0 = performance.now();
  await p.click("#sas-open");
  if ((await waitState(p, ["planned", "inspected", "failed"], 600_000)) !== "planned") {
    throw new Error("not planned: " + (await p.innerText("main")).slice(-1500));
  }
  const planned = performance.now();
  await p.click("#fix-button");
  if ((await waitState(p, ["undo-ready", "failed"], 600_000)) !== "undo-ready") {
    throw new Error("no undo file: " + (await p.innerText("main")).slice(-1500));
  }
  const prepared = performance.now();
  await (await downloadFrom(p, "#remote-undo")).saveAs(dir + "/page.undo");
  const t1 = performance.now();
  await p.click("#remote-write");
  if ((await waitState(p, ["fixed", "failed"], 600_000)) !== "fixed") {
    throw new Error("not written: " + (await p.innerText("main")).slice(-1500));
  }
  const written = performance.now();
  const own = await p.$eval("#remote-traffic", (e) => ({ ...e.dataset }));
  console.log(JSON.stringify({
    open_plan_ms: planned - t0,
    verify_undo_ms: prepared - planned,
    write_readback_ms: written - t1,
    own,
  }));
} finally {
  await b.close();
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdin.pause();
}
