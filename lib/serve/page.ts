/**
 * GET /: the service's one page, self-contained (no external script, style or font). Upload a model
 * (drop it or pick it), set the budget and the main options, follow the job's events, read its report
 * and download the model. It speaks to the same API with the same token rules: the page itself holds
 * no data and is served to anyone; every request it makes carries the token typed into it (kept in
 * the tab's sessionStorage), so the event stream is read with fetch, not EventSource (which cannot
 * send a header).
 */
export const SERVICE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>redpp</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1040px}
h1{font-size:20px}fieldset{border:1px solid #ddd;margin:12px 0;padding:8px 12px}label{margin-right:16px}
#drop{border:2px dashed #aaa;padding:28px;text-align:center;color:#555;margin:12px 0}#drop.over{border-color:#4e79a7;background:#f2f6fb}
progress{width:420px}#status{margin:8px 0}#error{color:#b00}iframe{width:100%;height:900px;border:1px solid #ddd;margin-top:12px}
button{font:inherit;padding:4px 14px}
</style></head><body>
<h1>redpp: compress an ONNX model</h1>
<div id="drop">Drop an .onnx file here, or <input type="file" id="file" accept=".onnx"></div>
<fieldset><legend>How</legend>
<label><input type="radio" name="mode" value="maxDeviation" checked> fidelity budget, max deviation <input id="maxDeviation" type="number" step="0.005" min="0" value="0.02" style="width:6em"></label>
<label><input type="radio" name="mode" value="targetSize"> target size (fraction of the file) <input id="targetSize" type="number" step="0.05" min="0.01" max="1" value="0.3" style="width:5em"></label>
<label><input type="radio" name="mode" value="beta"> RED++ at beta <input id="beta" type="number" step="0.01" min="0" value="0.05" style="width:5em"></label>
<br><label><input type="checkbox" id="validate"> validate in onnxruntime</label>
<label>kernel split <select id="kernelSplit"><option>auto</option><option>off</option><option>force</option></select></label>
<label>token <input id="token" type="password" placeholder="when the server asks for one" autocomplete="off"></label>
</fieldset>
<button id="submit" disabled>Compress</button>
<div id="status"></div><progress id="progress" max="1" value="0" hidden></progress><div id="error"></div>
<p id="result" hidden><a id="download" download>Download the model</a> · <a id="json" target="_blank">the JSON report</a></p>
<iframe id="report" title="report" hidden sandbox></iframe>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let chosen = null;
$("token").value = sessionStorage.getItem("redpp-token") || "";
$("token").addEventListener("change", () => sessionStorage.setItem("redpp-token", $("token").value));
const headers = () => ($("token").value ? { authorization: "Bearer " + $("token").value } : {});
function pick(file) { chosen = file; $("submit").disabled = !file; $("status").textContent = file ? file.name + " (" + file.size + " bytes)" : ""; }
$("file").addEventListener("change", () => pick($("file").files[0] || null));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files[0] || null); });
function options() {
  const mode = document.querySelector("input[name=mode]:checked").value;
  const o = { [mode]: Number($(mode).value), kernelSplit: $("kernelSplit").value };
  if ($("validate").checked) o.validate = true;
  return o;
}
async function failed(r) { const e = await r.json().catch(() => ({})); throw new Error((e.error && e.error.code + ": " + e.error.message) || r.status + " " + r.statusText); }
function show(job) {
  const p = job.progress;
  $("status").textContent = "job " + job.id + ": " + job.state + (p ? " — " + p.phase + (p.total > 1 ? " " + p.done + "/" + p.total : "") : "");
  $("progress").hidden = job.state !== "running";
  if (p) { $("progress").max = p.total || 1; $("progress").value = p.done; }
  if (job.error) $("error").textContent = job.error.code + ": " + job.error.message;
}
/** The job's server-sent events, read from a fetch stream: resolves with the last state. */
async function follow(id) {
  const r = await fetch("/v1/jobs/" + id + "/events", { headers: headers() });
  if (!r.ok) await failed(r);
  const reader = r.body.getReader(); const text = new TextDecoder(); let buffer = ""; let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += text.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const data = buffer.slice(0, end).split("\\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\\n");
      buffer = buffer.slice(end + 2);
      if (data) { last = JSON.parse(data); show(last); }
    }
  }
}
async function blobUrl(path) { const r = await fetch(path, { headers: headers() }); if (!r.ok) await failed(r); return URL.createObjectURL(await r.blob()); }
$("submit").addEventListener("click", async () => {
  $("error").textContent = ""; $("result").hidden = true; $("report").hidden = true; $("submit").disabled = true;
  try {
    const r = await fetch("/v1/jobs?options=" + encodeURIComponent(JSON.stringify(options())), { method: "POST", body: chosen, headers: { ...headers(), "content-type": "application/octet-stream" } });
    if (r.status !== 202) await failed(r);
    const { id } = await r.json();
    const job = await follow(id);
    if (!job || job.state !== "done") return;
    $("download").href = await blobUrl("/v1/jobs/" + id + "/model");
    $("download").download = chosen.name.replace(/\\.onnx$/, "") + ".pruned.onnx";
    $("json").href = await blobUrl("/v1/jobs/" + id + "/report");
    const page = await fetch("/v1/jobs/" + id + "/report.html", { headers: headers() });
    if (!page.ok) await failed(page);
    $("report").srcdoc = await page.text(); $("report").hidden = false;
    $("result").hidden = false;
  } catch (e) { $("error").textContent = e.message; }
  finally { $("submit").disabled = !chosen; }
});
</script>
</body></html>
`;
