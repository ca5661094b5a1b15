using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionSharp.Visualization;

/// <summary>
/// One self-contained HTML page (no network, no external files) to explore attention in the manner of bertviz: for text,
/// the tokens on both sides with lines weighted by attention, a layer selector, head buttons (click: that head alone;
/// shift-click: add or remove it; "all"), and hovering a token isolates its lines; for an image, the picture under the
/// attention of the class token (or of the patch under the pointer), per layer and head, and the rollout over all layers.
/// </summary>
public static class AttentionHtml
{
    /// <summary>Writes the page for <paramref name="view"/> to <paramref name="path"/>, atomically.</summary>
    public static void Save(string path, AttentionView view)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, Render(view));
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>The page as a string.</summary>
    public static string Render(AttentionView view)
    {
        if (view.Layers.Count == 0) throw new ArgumentException("There are no attention layers to show.", nameof(view));
        // The default encoder escapes <, > and & as \u003C…, so the JSON cannot close the script element it sits in.
        var json = Payload(view).ToJsonString(new JsonSerializerOptions { WriteIndented = false });
        return Template.Replace("/*TITLE*/", System.Net.WebUtility.HtmlEncode(view.Title)).Replace("/*DATA*/", json);
    }

    static JsonObject Payload(AttentionView view)
    {
        var layers = new JsonArray();
        foreach (var layer in view.Layers)
            layers.Add(new JsonObject
            {
                ["name"] = layer.Name,
                ["queryTokens"] = new JsonArray(layer.QueryTokens.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
                ["keyTokens"] = new JsonArray(layer.KeyTokens.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
                ["heads"] = new JsonArray(layer.Heads.Select(m => (JsonNode)Matrix(m)).ToArray()),
            });
        var payload = new JsonObject { ["title"] = view.Title, ["mode"] = view.Image is null ? "text" : "image", ["layers"] = layers };
        if (view.Image is { } image)
        {
            payload["image"] = new JsonObject
            {
                ["height"] = image.Height, ["width"] = image.Width, ["patch"] = image.Patch,
                ["pixels"] = new JsonArray(image.Pixels.Select(p => (JsonNode)JsonValue.Create(Math.Round(p, 3))!).ToArray()),
            };
            var rollout = AttentionRollout.Compute(view.Layers);
            var rows = new JsonArray();
            for (int i = 0; i < rollout.GetLength(0); i++)
                rows.Add(new JsonArray(Enumerable.Range(0, rollout.GetLength(1)).Select(j => (JsonNode)JsonValue.Create(Math.Round(rollout[i, j], 5))!).ToArray()));
            payload["rollout"] = rows;
        }
        return payload;
    }

    static JsonArray Matrix(float[,] m)
    {
        var rows = new JsonArray();
        for (int i = 0; i < m.GetLength(0); i++)
            rows.Add(new JsonArray(Enumerable.Range(0, m.GetLength(1)).Select(j => (JsonNode)JsonValue.Create(Math.Round(m[i, j], 4))!).ToArray()));
        return rows;
    }

    const string Template = """
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>/*TITLE*/</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 20px; color: #222; }
  h1 { font-size: 18px; margin: 0 0 12px; }
  #controls { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; margin-bottom: 10px; }
  button.head { border: 2px solid var(--c); background: #fff; color: #222; border-radius: 4px; min-width: 30px; padding: 2px 6px; cursor: pointer; }
  button.head.on { background: var(--c); color: #fff; }
  button.all { padding: 2px 8px; cursor: pointer; }
  button:disabled { opacity: 0.4; cursor: default; }
  svg text.token { font: 13px ui-monospace, monospace; cursor: default; }
  svg text.token.hover { font-weight: bold; fill: #000; }
  svg text.axis { font: 12px system-ui, sans-serif; fill: #666; }
  #info { color: #555; min-height: 1.4em; margin-top: 8px; white-space: pre-wrap; }
  canvas { image-rendering: pixelated; border: 1px solid #ccc; }
</style>
</head>
<body>
<h1 id="title"></h1>
<div id="controls">
  <label>Layer <select id="layer"></select></label>
  <span>Heads <span id="heads"></span></span>
</div>
<div id="view"></div>
<div id="info"></div>
<script type="application/json" id="attention-data">/*DATA*/</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("attention-data").textContent);
const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
const svgNs = "http://www.w3.org/2000/svg";
const rolloutLayer = -1;
const state = { layer: 0, heads: new Set(), hover: null };
const layerSelect = document.getElementById("layer");
const headBox = document.getElementById("heads");
const view = document.getElementById("view");
const info = document.getElementById("info");
let lineGroup = null, tokenNodes = [];

function svgEl(name, attributes) {
  const e = document.createElementNS(svgNs, name);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, String(v));
  return e;
}
function color(h) { return palette[h % palette.length]; }
function currentLayer() { return state.layer === rolloutLayer ? null : data.layers[state.layer]; }
function shown(token) { return token === " " ? "\u2423" : token === "\n" ? "\u21b5" : token === "\t" ? "\u21e5" : token; }

function buildLayers() {
  data.layers.forEach((layer, i) => {
    const option = document.createElement("option");
    option.value = String(i); option.textContent = layer.name;
    layerSelect.appendChild(option);
  });
  if (data.mode === "image") {
    const option = document.createElement("option");
    option.value = String(rolloutLayer); option.textContent = "rollout (all layers)";
    layerSelect.appendChild(option);
  }
  layerSelect.addEventListener("change", () => { state.layer = Number(layerSelect.value); buildHeads(); build(); });
}

function buildHeads() {
  const layer = currentLayer();
  const count = layer ? layer.heads.length : data.layers[0].heads.length;
  const kept = [...state.heads].filter(h => h < count);
  state.heads = new Set(kept.length ? kept : [...Array(count).keys()]);
  headBox.replaceChildren();
  for (let h = 0; h < count; h++) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "head"; b.dataset.head = String(h); b.textContent = String(h);
    b.style.setProperty("--c", color(h));
    b.title = "head " + h + ": click to show it alone, shift-click to add or remove it";
    b.disabled = !layer;
    b.addEventListener("click", event => {
      if (event.shiftKey) { if (state.heads.has(h)) state.heads.delete(h); else state.heads.add(h); }
      else state.heads = new Set([h]);
      refresh();
    });
    headBox.appendChild(b);
  }
  const all = document.createElement("button");
  all.type = "button"; all.className = "all"; all.textContent = "all"; all.disabled = !layer;
  all.addEventListener("click", () => { state.heads = new Set([...Array(count).keys()]); refresh(); });
  headBox.appendChild(all);
}

function markHeads() {
  for (const b of headBox.querySelectorAll("button.head")) b.classList.toggle("on", state.heads.has(Number(b.dataset.head)));
}

function build() { if (data.mode === "image") buildImage(); else buildText(); refresh(); }
function refresh() { markHeads(); if (data.mode === "image") drawImage(); else drawLines(); }

// ---- text: tokens on both sides, lines weighted by attention ----
const rowHeight = 22, firstRow = 34, leftX = 170, rightX = 470;
function buildText() {
  const layer = currentLayer();
  const rows = Math.max(layer.queryTokens.length, layer.keyTokens.length);
  const svg = svgEl("svg", { width: 640, height: firstRow + rows * rowHeight + 10, role: "img" });
  svg.appendChild(svgEl("text", { x: leftX, y: 16, "text-anchor": "end", class: "axis" })).textContent = "queries (attend from)";
  svg.appendChild(svgEl("text", { x: rightX, y: 16, class: "axis" })).textContent = "keys (attend to)";
  lineGroup = svg.appendChild(svgEl("g", { class: "lines" }));
  tokenNodes = [];
  const add = (tokens, side, x, anchor) => tokens.forEach((token, i) => {
    const t = svgEl("text", { x, y: firstRow + i * rowHeight + rowHeight / 2 + 4, "text-anchor": anchor, class: "token " + side, "data-index": i });
    t.textContent = shown(token);
    t.addEventListener("mouseenter", () => { state.hover = { side, index: i }; refresh(); });
    t.addEventListener("mouseleave", () => { state.hover = null; refresh(); });
    svg.appendChild(t); tokenNodes.push(t);
  });
  add(layer.queryTokens, "query", leftX, "end");
  add(layer.keyTokens, "key", rightX, "start");
  view.replaceChildren(svg);
}

function drawLines() {
  const layer = currentLayer();
  lineGroup.replaceChildren();
  const heads = [...state.heads].sort((a, b) => a - b);
  const hover = state.hover;
  for (const h of heads) {
    const map = layer.heads[h];
    for (let i = 0; i < layer.queryTokens.length; i++) {
      if (hover && hover.side === "query" && hover.index !== i) continue;
      for (let j = 0; j < layer.keyTokens.length; j++) {
        if (hover && hover.side === "key" && hover.index !== j) continue;
        const w = map[i][j];
        if (w < 0.01) continue;
        lineGroup.appendChild(svgEl("line", {
          x1: leftX + 6, y1: firstRow + i * rowHeight + rowHeight / 2, x2: rightX - 6, y2: firstRow + j * rowHeight + rowHeight / 2,
          stroke: color(h), "stroke-width": 2, "stroke-opacity": w.toFixed(3), "data-head": h,
        }));
      }
    }
  }
  for (const t of tokenNodes)
    t.classList.toggle("hover", !!hover && t.classList.contains(hover.side) && Number(t.dataset.index) === hover.index);
  info.textContent = hover ? describeToken(layer, heads, hover) : layer.name + ", heads " + heads.join(", ") + ": hover a token to isolate its lines";
}

function describeToken(layer, heads, hover) {
  const tokens = hover.side === "query" ? layer.keyTokens : layer.queryTokens;
  const parts = heads.map(h => {
    const weights = tokens.map((_, n) => hover.side === "query" ? layer.heads[h][hover.index][n] : layer.heads[h][n][hover.index]);
    const best = weights.map((w, n) => [w, n]).sort((a, b) => b[0] - a[0]).slice(0, 3);
    return "head " + h + ": " + best.map(([w, n]) => JSON.stringify(tokens[n]) + " " + w.toFixed(2)).join(", ");
  });
  const own = (hover.side === "query" ? layer.queryTokens : layer.keyTokens)[hover.index];
  return JSON.stringify(own) + (hover.side === "query" ? " attends to\n" : " is attended by\n") + parts.join("\n");
}

// ---- image: the picture under the attention of one token (the class token unless the pointer is on a patch) ----
let canvas = null;
const scale = 14;
function buildImage() {
  const image = data.image;
  canvas = document.createElement("canvas");
  canvas.width = image.width * scale; canvas.height = image.height * scale;
  canvas.addEventListener("mousemove", event => {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor((event.clientX - r.left) / scale / image.patch), y = Math.floor((event.clientY - r.top) / scale / image.patch);
    const gw = image.width / image.patch, gh = image.height / image.patch;
    const index = x >= 0 && y >= 0 && x < gw && y < gh ? 1 + y * gw + x : 0;
    if (!state.hover || state.hover.index !== index) { state.hover = { side: "query", index }; refresh(); }
  });
  canvas.addEventListener("mouseleave", () => { state.hover = null; refresh(); });
  view.replaceChildren(canvas);
}

function attentionOverPatches(from) {
  const layer = currentLayer();
  if (!layer) return data.rollout[from].slice(1);
  const heads = [...state.heads];
  const row = layer.heads[0][from].map(() => 0);
  for (const h of heads) layer.heads[h][from].forEach((w, j) => { row[j] += w / heads.length; });
  return row.slice(1);
}

function drawImage() {
  const image = data.image, context = canvas.getContext("2d");
  const from = state.hover ? state.hover.index : 0;
  const weights = attentionOverPatches(from);
  const max = Math.max(...weights, 1e-12);
  const gw = image.width / image.patch;
  for (let y = 0; y < image.height; y++)
    for (let x = 0; x < image.width; x++) {
      const v = image.pixels[y * image.width + x];
      const a = weights[Math.floor(y / image.patch) * gw + Math.floor(x / image.patch)] / max;
      const light = Math.round(255 * v * (0.25 + 0.75 * a));
      context.fillStyle = "rgb(" + Math.round(light * 0.55 + 255 * a * 0.45) + "," + Math.round(light * 0.8 + 120 * a * 0.2) + "," + light + ")";
      context.fillRect(x * scale, y * scale, scale, scale);
    }
  if (from > 0) {
    const p = from - 1, s = image.patch * scale;
    context.strokeStyle = "#ff3"; context.lineWidth = 2;
    context.strokeRect((p % gw) * s + 1, Math.floor(p / gw) * s + 1, s - 2, s - 2);
  }
  const layer = currentLayer();
  info.textContent = (layer ? layer.name + ", heads " + [...state.heads].sort((a, b) => a - b).join(", ") : "rollout over all layers") +
    ": attention from " + (from === 0 ? "the class token" : "patch " + (from - 1)) + " (move the pointer over a patch to see its own)";
}

document.getElementById("title").textContent = data.title;
buildLayers();
buildHeads();
build();
</script>
</body>
</html>
""";
}
