"""GET /docs: the OpenAPI document as a page, with nothing loaded from elsewhere.

One static HTML page with an inline script that reads ``openapi.json`` (same origin,
relative URL, so it works behind a path prefix) and lists every operation with its
summary, parameters, request body and answers, schemas shown as indented JSON with
``$ref`` resolved one level. No CDN, no font, no runtime dependency.
"""

from __future__ import annotations

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem}
h1{font-size:1.5rem}details{border:1px solid #ccd;border-radius:6px;margin:.5rem 0}
summary{cursor:pointer;padding:.5rem;font-family:monospace}
.m{display:inline-block;width:4.5rem;font-weight:bold}.get{color:#06c}.post{color:#080}
pre{background:#f6f6fa;padding:.6rem;overflow:auto;font-size:13px;margin:.3rem .6rem}
h4{margin:.6rem .6rem 0}
</style></head><body><h1 id="title">API</h1><p id="about"></p><div id="ops"></div>
<script>
const esc = s => String(s).replace(/[&<>]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;"})[c]);
fetch("openapi.json").then(r => r.json()).then(doc => {
  const schemas = (doc.components || {}).schemas || {};
  const resolve = s => (s && s.$ref) ? schemas[s.$ref.split("/").pop()] : s;
  const show = s => "<pre>" + esc(JSON.stringify(resolve(s), null, 2)) + "</pre>";
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  document.getElementById("about").textContent = doc.info.description || "";
  let html = "";
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === "parameters") continue;
      html += "<details><summary><span class='m " + method + "'>" + method.toUpperCase() +
        "</span>" + esc(path) + " &mdash; " + esc(op.summary || "") + "</summary>";
      for (const p of (item.parameters || []))
        html += "<h4>path: " + esc(p.name) + "</h4>" + show(p.schema);
      const body = op.requestBody && op.requestBody.content;
      for (const [type, media] of Object.entries(body || {}))
        html += "<h4>request body (" + esc(type) + ")</h4>" + show(media.schema);
      for (const [status, answer] of Object.entries(op.responses || {})) {
        html += "<h4>" + esc(status) + ": " + esc(answer.description) + "</h4>";
        for (const media of Object.values(answer.content || {})) html += show(media.schema);
      }
      html += "</details>";
    }
  }
  document.getElementById("ops").innerHTML = html;
}).catch(e => { document.getElementById("about").textContent = "openapi.json: " + e; });
</script></body></html>
"""
