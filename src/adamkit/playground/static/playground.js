// The playground's page: it reads the controls, asks the server's JSON API, and draws what
// comes back with plotly.js. It computes nothing about the optimizers: every number shown is
// one the server sent. `document.body.dataset.state` is "busy" while a request of the latest
// change runs and "ready" when everything it changed is drawn.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
const DEBOUNCE_MS = 60;
const REVEAL_FRAMES = 12;  // a path arriving from the server is drawn point by point over this many frames
const BIAS_PAIR_STEPS = 40;
const DECAY_PAIR_DEFAULT = 0.1;
const PLOT_CONFIG = { displayModeBar: false, responsive: true };

const page = {
  lang: "en",
  catalogue: null,
  chosen: [],          // optimizer names drawn, in the catalogue's order
  lrs: {},             // optimizer name -> its learning rate
  focus: "adam",       // the optimizer looked inside
  t: 1,                // the step looked inside
  contours: null,
  results: [],         // the /api/paths answer of the latest settings, each with how much is drawn
  animation: null,     // the promise of the paths' drawing, while they are being drawn
  pairs: [],           // the side-by-side panels: [element id, title key, title suffix, result]
  generation: 0,
  controller: null,
  timer: null,
};

const $ = (id) => document.getElementById(id);
const say = (key) => STRINGS[page.lang][key] ?? key;

function show(value) {
  if (value === null || value === undefined) return say("diverged");
  return Number(value).toPrecision(6);
}

// A number written inside a formula: negative ones in parentheses.
function term(value) {
  const text = show(value);
  return text.startsWith("-") ? `(${text})` : text;
}

// --- talking to the server -------------------------------------------------------------

async function answer(response) {
  if (response.ok) return response;
  const problem = await response.json().catch(() => ({ error: response.statusText }));
  throw new Error(problem.error || response.statusText);
}

async function post(url, body, signal) {
  const response = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  });
  return (await answer(response)).json();
}

// POST and call onItem with each JSON line of the answer as soon as it arrives.
async function stream(url, body, signal, onItem) {
  const response = await answer(await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  }));
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    const lines = buffered.split("\n");
    buffered = lines.pop();
    for (const line of lines) if (line.trim()) onItem(JSON.parse(line));
  }
  if (buffered.trim()) onItem(JSON.parse(buffered));
}

// --- the controls ----------------------------------------------------------------------

function settings() {
  return {
    function: $("function").value,
    condition: 10 ** Number($("condition").value),
    angle: Number($("angle").value),
    optimizers: page.chosen.map((name) => ({ name, lr: page.lrs[name] })),
    steps: Number($("steps").value),
    beta1: Number($("beta1").value),
    beta2: Number($("beta2").value),
    eps: 10 ** Number($("eps").value),
    weight_decay: Number($("weight-decay").value),
    decay: $("decay").value,
    amsgrad: $("amsgrad").checked,
    bias_correction: $("bias-correction").checked,
    noise: $("noise").checked ? 1.0 : 0.0,
  };
}

function showValues() {
  const body = settings();
  $("condition-value").textContent = show(body.condition);
  $("angle-value").textContent = body.angle;
  $("lr-value").textContent = show(page.lrs[page.focus]);
  $("beta1-value").textContent = body.beta1;
  $("beta2-value").textContent = body.beta2;
  $("eps-value").textContent = body.eps.toExponential(1);
  $("weight-decay-value").textContent = body.weight_decay;
  $("steps-value").textContent = body.steps;
  $("quadratic-controls").hidden = body.function !== "quadratic";
}

function buildOptimizerList() {
  const list = $("optimizer-list");
  list.replaceChildren();
  Object.entries(page.catalogue.optimizers).forEach(([name, about], index) => {
    const label = document.createElement("label");
    label.className = "toggle";
    label.style.color = COLORS[index % COLORS.length];
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `optimizer-${name}`;
    box.checked = page.chosen.includes(name);
    box.addEventListener("change", () => {
      const names = Object.keys(page.catalogue.optimizers);
      page.chosen = names.filter((other) => $(`optimizer-${other}`).checked);
      if (!page.chosen.includes(page.focus) && page.chosen.length) page.focus = page.chosen[0];
      buildFocus();
      recompute();
    });
    label.append(box, ` ${about.label}`);
    list.append(label);
  });
  buildFocus();
}

function buildFocus() {
  const focus = $("focus");
  focus.replaceChildren(...page.chosen.map((name) => new Option(page.catalogue.optimizers[name].label, name)));
  focus.value = page.focus;
  $("lr").value = Math.log10(page.lrs[page.focus]);
}

function chooseFunction(name) {
  const about = page.catalogue.functions[name];
  page.chosen = about.optimizers.slice();
  page.lrs = { ...about.lrs };
  page.focus = page.chosen.includes("adam") ? "adam" : page.chosen[0];
  $("noise").checked = about.noise > 0;
  $("steps").value = about.steps;
  $("formula").textContent = about.formula;
  buildOptimizerList();
}

// --- drawing ---------------------------------------------------------------------------

function colorOf(name) {
  return COLORS[Object.keys(page.catalogue.optimizers).indexOf(name) % COLORS.length];
}

function contourTraces(grid) {
  return [
    { type: "contour", x: grid.x, y: grid.y, z: grid.z, ncontours: 25, showscale: false, hoverinfo: "skip",
      colorscale: "Greys", reversescale: true, opacity: 0.45, contours: { coloring: "fill" },
      line: { color: "#888", width: 0.5 } },
    { type: "scatter", mode: "markers", x: [grid.start[0]], y: [grid.start[1]], hoverinfo: "skip", showlegend: false,
      marker: { symbol: "circle-open", size: 11, color: "black", line: { width: 2 } } },
    { type: "scatter", mode: "markers", x: [grid.reference[0]], y: [grid.reference[1]], hoverinfo: "skip",
      showlegend: false, marker: { symbol: "star", size: 14, color: "black" } },
  ];
}

function pathTrace(result, name = result.label, color = colorOf(result.name)) {
  const path = result.path.slice(0, result.shown ?? result.path.length);
  return {
    type: "scatter", mode: "lines+markers", name, meta: result.name,
    x: path.map((point) => point[0]), y: path.map((point) => point[1]),
    line: { color, width: 2 }, marker: { size: 3, color },
  };
}

function axesOf(grid) {
  return {
    xaxis: { range: [grid.x[0], grid.x[grid.x.length - 1]], title: { text: "x" } },
    yaxis: { range: [grid.y[0], grid.y[grid.y.length - 1]], title: { text: "y" } },
  };
}

function drawPaths() {
  if (!page.contours) return;
  const traces = [...contourTraces(page.contours), ...page.results.map((result) => pathTrace(result))];
  const focused = page.results.find((result) => result.name === page.focus);
  if (focused && focused.path[page.t]) {
    traces.push({ type: "scatter", mode: "markers", x: [focused.path[page.t][0]], y: [focused.path[page.t][1]],
      name: `t = ${page.t}`, hoverinfo: "skip", marker: { size: 14, color: "rgba(0,0,0,0)", line: { color: "black", width: 2 } } });
  }
  const legends = page.results.map((result) => result.label);
  Plotly.react("contour-plot", traces, {
    ...axesOf(page.contours), margin: { l: 50, r: 10, t: 30, b: 40 }, hovermode: "closest",
    title: { text: `${page.contours.title}: ${page.contours.formula}`, font: { size: 13 } },
    legend: { orientation: "h", y: -0.15 }, meta: legends,
  }, PLOT_CONFIG);
}

// Draw the paths that arrived a little further each frame; resolves when all are drawn whole.
function animatePaths() {
  page.animation ??= new Promise((resolve) => {
    const frame = () => {
      let more = false;
      for (const result of page.results) {
        const length = result.path.length;
        result.shown = Math.min(length, (result.shown ?? 1) + Math.ceil(length / REVEAL_FRAMES));
        more ||= result.shown < length;
      }
      drawPaths();
      if (more) {
        requestAnimationFrame(frame);
      } else {
        page.animation = null;
        resolve();
      }
    };
    requestAnimationFrame(frame);
  });
  return page.animation;
}

function smallPlot(id, result, key, title, logarithmic) {
  const series = result ? result.series[key] : null;
  if (!series) {
    Plotly.react(id, [], { title: { text: title, font: { size: 12 } }, margin: { l: 50, r: 10, t: 30, b: 35 } }, PLOT_CONFIG);
    return;
  }
  const steps = series.map((_, index) => index + 1);
  const traces = ["x", "y"].map((coordinate, index) => ({
    type: "scatter", mode: "lines", name: coordinate, x: steps, y: series.map((values) => values[index]),
  }));
  Plotly.react(id, traces, {
    title: { text: title, font: { size: 12 } }, margin: { l: 55, r: 10, t: 30, b: 35 },
    xaxis: { title: { text: say("step") } }, yaxis: { type: logarithmic ? "log" : "linear", exponentformat: "power" },
    shapes: [{ type: "line", x0: page.t, x1: page.t, yref: "paper", y0: 0, y1: 1, line: { color: "black", dash: "dot", width: 1 } }],
    legend: { orientation: "h", y: 1.15, x: 1, xanchor: "right" }, showlegend: true,
  }, PLOT_CONFIG);
}

function drawOverTime() {
  const result = page.results.find((item) => item.name === page.focus);
  const keys = result ? Object.keys(result.series).filter((key) => key !== "step_size") : [];
  smallPlot("plot-first", result, keys[0], keys[0] ? say(keys[0]) : say("first_moment"), false);
  smallPlot("plot-second", result, keys[1], keys[1] ? say(keys[1]) : say("second_moment"), false);
  smallPlot("plot-step", result, "step_size", say("step_size"), true);
}

// --- inside one step -------------------------------------------------------------------

// The formula of each quantity of the Adam family, and the numbers to fill it with: each row
// is [key, symbol, how to write coordinate i with this step's numbers].
function adamRows(step) {
  const v = step.values;
  const s = step.scalars;
  const g = v.gradient_used;
  const second = step.amsgrad ? "max_exp_avg_sq" : "exp_avg_sq";
  const off = !step.bias_correction;
  const rows = [
    ["theta_before", "θₜ₋₁", (i) => ""],
    ["gradient", "g = ∇f(θₜ₋₁)", (i) => ""],
  ];
  if (s.weight_decay > 0 && !step.decoupled) {
    rows.push(["gradient_used", "g ← g + λθ", (i) => `${term(v.gradient[i])} + ${s.weight_decay}·${term(v.theta_before[i])}`]);
  }
  rows.push(["exp_avg", "m ← β₁·m + (1 − β₁)·g", (i) => `${s.beta1}·${term(v.exp_avg_before[i])} + (1 − ${s.beta1})·${term(g[i])}`]);
  if (step.rule === "adamax") {
    rows.push(["exp_inf", "u ← max(β₂·u, |g| + ε)", (i) => `max(${s.beta2}·${term(v.exp_inf_before[i])}, |${term(g[i])}| + ${s.eps})`]);
  } else {
    rows.push(["exp_avg_sq", "v ← β₂·v + (1 − β₂)·g²", (i) => `${s.beta2}·${term(v.exp_avg_sq_before[i])} + (1 − ${s.beta2})·(${term(g[i])})²`]);
    if (step.amsgrad) {
      rows.push(["max_exp_avg_sq", "v_max ← max(v_max, v)", (i) => `max(${term(v.max_exp_avg_sq_before[i])}, ${term(v.exp_avg_sq[i])})`]);
    }
  }
  rows.push(["bias_correction1", "1 − β₁ᵗ", () => off ? say("bias_off") : `1 − ${s.beta1}^${step.step_count}`]);
  rows.push(["exp_avg_hat", "m̂ = m / (1 − β₁ᵗ)", (i) => `${term(v.exp_avg[i])} / ${term(s.bias_correction1)}`]);
  if (step.rule !== "adamax") {
    rows.push(["bias_correction2", "1 − β₂ᵗ", () => off ? say("bias_off") : `1 − ${s.beta2}^${step.step_count}`]);
    rows.push(["exp_avg_sq_hat", step.amsgrad ? "v̂ = v_max / (1 − β₂ᵗ)" : "v̂ = v / (1 − β₂ᵗ)",
      (i) => `${term(v[second][i])} / ${term(s.bias_correction2)}`]);
    rows.push(["step_size", "η = γ / (√v̂ + ε)", (i) => `${s.lr} / (√${term(v.exp_avg_sq_hat[i])} + ${s.eps})`]);
  } else {
    rows.push(["step_size", "η = γ / u", (i) => `${s.lr} / ${term(v.exp_inf[i])}`]);
  }
  if (step.decoupled) {
    rows.push(["decay", "γλθₜ₋₁", (i) => `${s.lr}·${s.weight_decay}·${term(v.theta_before[i])}`]);
    rows.push(["update", "Δθ = η·m̂ + γλθₜ₋₁", (i) => `${term(v.step_size[i])}·${term(v.exp_avg_hat[i])} + ${term(v.decay[i])}`]);
  } else {
    rows.push(["update", "Δθ = η·m̂", (i) => `${term(v.step_size[i])}·${term(v.exp_avg_hat[i])}`]);
  }
  rows.push(["theta", "θₜ = θₜ₋₁ − Δθ", (i) => `${term(v.theta_before[i])} − ${term(v.update[i])}`]);
  return rows;
}

// Rules outside the Adam family: each stored quantity before and after the step.
function otherRows(step) {
  const v = step.values;
  const stored = Object.keys(v).filter((key) => `${key}_before` in v);
  return [
    ["theta_before", "θₜ₋₁", () => ""],
    ["gradient", "g = ∇f(θₜ₋₁)", () => ""],
    ...stored.map((key) => [key, `${say(key)}`, (i) => `${term(v[`${key}_before`][i])} →`]),
    ["step_size", "η", () => ""],
    ["update", "Δθ", () => ""],
    ["theta", "θₜ = θₜ₋₁ − Δθ", (i) => `${term(v.theta_before[i])} − ${term(v.update[i])}`],
  ];
}

function scalarOf(step, key) {
  return key in step.scalars ? [step.scalars[key], step.scalars[key]] : null;
}

function drawInside(step) {
  $("inside-optimizer").textContent = step.label;
  $("step-t").textContent = step.t;
  const rows = step.rule === "adam" || step.rule === "adamax" ? adamRows(step) : otherRows(step);
  const body = $("inside-table").tBodies[0];
  body.replaceChildren();
  for (const [key, symbol, written] of rows) {
    const values = step.values[key] ?? scalarOf(step, key);
    if (!values) continue;
    const row = body.insertRow();
    row.dataset.key = key;
    row.insertCell().textContent = say(key);
    row.insertCell().textContent = symbol;
    values.forEach((value, coordinate) => {
      const cell = row.insertCell();
      const text = written(coordinate);
      if (text) cell.append(`${text} = `);
      const number = document.createElement("b");
      number.dataset.key = key;
      number.dataset.coord = coordinate;
      number.textContent = show(value);
      cell.append(number);
    });
  }
}

async function refreshInside(generation, signal) {
  const index = page.chosen.indexOf(page.focus);
  if (index < 0) return;
  const step = await post("/api/step", { ...settings(), optimizer: index, t: page.t }, signal);
  if (generation === page.generation) {
    page.lastStep = step;
    drawInside(step);
  }
}

// --- side by side ------------------------------------------------------------------------

function drawPair(id, result, title) {
  Plotly.react(id, [...contourTraces(page.contours), pathTrace(result, title, "#d62728")], {
    ...axesOf(page.contours), title: { text: title, font: { size: 12 } }, showlegend: false,
    margin: { l: 45, r: 10, t: 30, b: 35 },
  }, PLOT_CONFIG);
}

function linkAxes(first, second) {
  let linking = false;
  const follow = (from, to) => $(from).on("plotly_relayout", (change) => {
    if (linking) return;
    const ranges = Object.fromEntries(Object.entries(change).filter(([key]) => key.includes("axis")));
    if (!Object.keys(ranges).length) return;
    linking = true;
    Plotly.relayout(to, ranges).finally(() => { linking = false; });
  });
  follow(first, second);
  follow(second, first);
}

async function refreshPairs(generation, signal) {
  const base = settings();
  const adam = page.lrs.adam ?? page.catalogue.functions[base.function].lrs.adam;
  const one = [{ name: "adam", lr: adam }];
  const decay = base.weight_decay > 0 ? base.weight_decay : DECAY_PAIR_DEFAULT;
  const requests = [
    ["pair-bias-on", "with_bc", "", { ...base, optimizers: one, steps: BIAS_PAIR_STEPS, bias_correction: true }],
    ["pair-bias-off", "without_bc", "", { ...base, optimizers: one, steps: BIAS_PAIR_STEPS, bias_correction: false }],
    ["pair-decay-l2", "adam_l2", `, λ = ${decay}`, { ...base, optimizers: one, weight_decay: decay, decay: "l2" }],
    ["pair-decay-decoupled", "adamw", `, λ = ${decay}`, { ...base, optimizers: one, weight_decay: decay, decay: "decoupled" }],
  ];
  const results = await Promise.all(requests.map(([, , , body]) => post("/api/paths", body, signal)));
  if (generation !== page.generation) return;
  page.pairs = requests.map(([id, title, suffix], index) => [id, title, suffix, results[index]]);
  drawPairs();
}

function drawPairs() {
  for (const [id, title, suffix, result] of page.pairs) drawPair(id, result, say(title) + suffix);
}

// --- the whole page, after a change ------------------------------------------------------

async function refresh(withContours) {
  const generation = ++page.generation;
  if (page.controller) page.controller.abort();
  const controller = new AbortController();
  page.controller = controller;
  document.body.dataset.state = "busy";
  $("error").textContent = "";
  showValues();
  try {
    const body = settings();
    if (withContours || !page.contours) page.contours = await post("/api/contours", body, controller.signal);
    page.results = [];
    await stream("/api/paths", body, controller.signal, (result) => {
      if (generation !== page.generation) return;
      page.results.push({ ...result, shown: 1 });
      animatePaths();
    });
    await animatePaths();
    if (generation !== page.generation) return;
    page.t = Math.min(page.t, body.steps);
    $("step-slider").max = body.steps;
    $("step-slider").value = page.t;
    drawPaths();
    drawOverTime();
    await Promise.all([refreshInside(generation, controller.signal), refreshPairs(generation, controller.signal)]);
    if (generation === page.generation) document.body.dataset.state = "ready";
  } catch (error) {
    if (error.name === "AbortError") return;
    $("error").textContent = error.message;
    if (generation === page.generation) document.body.dataset.state = "error";
  }
}

function recompute(withContours = false) {
  clearTimeout(page.timer);
  document.body.dataset.state = "busy";
  page.timer = setTimeout(() => refresh(withContours), DEBOUNCE_MS);
}

async function moveStep(t) {
  page.t = Math.max(1, Math.min(Number($("steps").value), t));
  $("step-slider").value = page.t;
  const generation = ++page.generation;
  if (page.controller) page.controller.abort();
  page.controller = new AbortController();
  document.body.dataset.state = "busy";
  drawPaths();
  drawOverTime();
  try {
    await refreshInside(generation, page.controller.signal);
    if (generation === page.generation) document.body.dataset.state = "ready";
  } catch (error) {
    if (error.name !== "AbortError") $("error").textContent = error.message;
  }
}

// --- the small real task -----------------------------------------------------------------

function buildLogreg() {
  const about = page.catalogue.logreg;
  const list = $("logreg-optimizers");
  list.replaceChildren();
  for (const [name, optimizer] of Object.entries(about.optimizers)) {
    const label = document.createElement("label");
    label.className = "toggle";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `logreg-${name}`;
    box.checked = about.default_optimizers.includes(name);
    label.append(box, ` ${optimizer.label} (lr ${optimizer.lr})`);
    list.append(label);
  }
}

function drawLogreg(curves) {
  const names = Object.keys(curves);
  const trace = (name, key) => ({
    type: "scatter", mode: "lines+markers", name: curves[name].label,
    x: curves[name].epochs, y: curves[name][key], marker: { size: 4 },
  });
  const layout = (title, logarithmic) => ({
    title: { text: title, font: { size: 12 } }, margin: { l: 55, r: 10, t: 30, b: 35 },
    xaxis: { title: { text: say("epoch") } }, yaxis: { type: logarithmic ? "log" : "linear" },
  });
  Plotly.react("logreg-loss", names.map((name) => trace(name, "train_loss")), layout(say("train_loss"), true), PLOT_CONFIG);
  Plotly.react("logreg-accuracy", names.map((name) => trace(name, "test_accuracy")), layout(say("test_accuracy"), false), PLOT_CONFIG);
}

async function trainLogreg() {
  const optimizers = Object.keys(page.catalogue.logreg.optimizers).filter((name) => $(`logreg-${name}`).checked);
  const curves = {};
  $("logreg-run").disabled = true;
  document.body.dataset.logreg = "running";
  try {
    await stream("/api/logreg", { optimizers }, undefined, (epoch) => {
      const curve = curves[epoch.optimizer] ??= { label: epoch.label, epochs: [], train_loss: [], test_accuracy: [] };
      curve.epochs.push(epoch.epoch);
      curve.train_loss.push(epoch.train_loss);
      curve.test_accuracy.push(epoch.test_accuracy);
      drawLogreg(curves);
    });
    document.body.dataset.logreg = "done";
  } catch (error) {
    $("error").textContent = error.message;
    document.body.dataset.logreg = "error";
  } finally {
    $("logreg-run").disabled = false;
  }
}

// --- language ------------------------------------------------------------------------------

function setLanguage(lang) {
  page.lang = lang;
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = say("title");
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = say(element.dataset.i18n);
  $("lang-en").classList.toggle("active", lang === "en");
  $("lang-zh").classList.toggle("active", lang === "zh");
  const url = new URL(window.location);
  url.searchParams.set("lang", lang);
  history.replaceState(null, "", url);
  if (page.results.length) {
    drawOverTime();
    if (page.lastStep) drawInside(page.lastStep);
    drawPairs();
  }
}

// --- start -----------------------------------------------------------------------------------

async function start() {
  page.catalogue = await (await fetch("/api/catalogue")).json();
  const asked = new URL(window.location).searchParams.get("lang");
  setLanguage(asked in STRINGS ? asked : page.catalogue.lang);
  const select = $("function");
  for (const [name, about] of Object.entries(page.catalogue.functions)) select.append(new Option(about.title, name));
  select.value = "rosenbrock";
  chooseFunction(select.value);
  buildLogreg();

  select.addEventListener("change", () => { chooseFunction(select.value); page.t = 1; recompute(true); });
  for (const id of ["condition", "angle"]) $(id).addEventListener("input", () => recompute(true));
  for (const id of ["beta1", "beta2", "eps", "weight-decay", "steps"]) $(id).addEventListener("input", () => recompute());
  for (const id of ["decay", "bias-correction", "amsgrad", "noise"]) $(id).addEventListener("change", () => recompute());
  $("lr").addEventListener("input", () => { page.lrs[page.focus] = 10 ** Number($("lr").value); recompute(); });
  $("focus").addEventListener("change", () => { page.focus = $("focus").value; buildFocus(); showValues(); moveStep(page.t); });
  $("step-slider").addEventListener("input", () => moveStep(Number($("step-slider").value)));
  $("step-back").addEventListener("click", () => moveStep(page.t - 1));
  $("step-forward").addEventListener("click", () => moveStep(page.t + 1));
  $("lang-en").addEventListener("click", () => setLanguage("en"));
  $("lang-zh").addEventListener("click", () => setLanguage("zh"));
  $("logreg-run").addEventListener("click", trainLogreg);
  await refresh(true);
  $("contour-plot").on("plotly_click", (event) => {
    const point = event.points.find((item) => item.data.meta && page.chosen.includes(item.data.meta));
    if (!point) return;
    page.focus = point.data.meta;
    buildFocus();
    moveStep(Math.max(1, point.pointNumber));
  });
  linkAxes("pair-bias-on", "pair-bias-off");
  linkAxes("pair-decay-l2", "pair-decay-decoupled");
}

start();
