// A tiny static file server for the built page: serves a directory on 127.0.0.1 under a
// sub-path, with the MIME types the page needs (application/wasm, text/javascript), and records
// every request it sees (the browser tests use that).
//   node web/serve.mjs [DIR] [PORT] [PREFIX]      (defaults: dist 8080 /)
import { createServer } from "node:http";
import { createReadStream, statSync } from "node:fs";
import path from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".json": "application/json",
};

/** Serves `root` at http://127.0.0.1:PORT`prefix` (prefix like "/some/sub/path/"). */
export async function serve(root, prefix = "/", port = 0) {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(req.url);
    const url = new URL(req.url, "http://127.0.0.1");
    if (!url.pathname.startsWith(prefix)) {
      res.writeHead(404).end("not here");
      return;
    }
    let rel = decodeURIComponent(url.pathname.slice(prefix.length)) || "index.html";
    if (rel.endsWith("/")) rel += "index.html";
    const file = path.join(root, rel);
    if (!file.startsWith(path.resolve(root) + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    let st;
    try {
      st = statSync(file);
    } catch {
      res.writeHead(404).end("not found");
      return;
    }
    if (!st.isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[path.extname(file)] || "application/octet-stream",
      "content-length": st.size,
      "cache-control": "no-cache",
    });
    createReadStream(file).pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const bound = server.address().port;
  return {
    url: `http://127.0.0.1:${bound}${prefix}`,
    origin: `http://127.0.0.1:${bound}`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(resolve);
    }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [root = "dist", port = "8080", prefix = "/"] = process.argv.slice(2);
  const s = await serve(path.resolve(root), prefix, Number(port));
  console.log(`kaifuku: serving ${root} at ${s.url} (Ctrl-C stops)`);
}
