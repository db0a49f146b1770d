// The page: choose, drop or paste an image, or turn on the camera; the server classifies it
// (POST /predictions/{model}), or, with "run in this browser", onnxruntime-web does on this device with
// the same preprocessing (preprocess.js); the top-5 is drawn as bars with the time taken.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { busy: false, stream: null, sessions: {}, infos: {}, last: null };

function headers() {
  const token = $("token").value || localStorage.getItem("squeezekit-token") || "";
  return token ? { Authorization: "Bearer " + token } : {};
}

async function loadModels() {
  const response = await fetch("/models", { headers: headers() });
  if (response.status === 401) {
    $("token-label").hidden = false;
    $("status").textContent = "This server needs its token.";
    return;
  }
  const { models } = await response.json();
  $("model").replaceChildren(...models.map((m) => new Option(m.modelName, m.modelName)));
  $("status").textContent = models.length ? "Ready." : "This server has no model.";
}

function show(answer, seconds, where) {
  const items = answer.predictions.map((p) => {
    const li = document.createElement("li");
    li.innerHTML = '<div class="row"><span></span><span></span></div><div class="bar"></div>';
    li.querySelector("span").textContent = p.label;
    li.dataset.id = p.id;
    li.querySelectorAll("span")[1].textContent = (100 * p.probability).toFixed(1) + " %";
    li.querySelector(".bar").style.width = Math.max(1, 100 * p.probability) + "%";
    return li;
  });
  $("results").replaceChildren(...items);
  const inner = where === "browser" ? `${answer.time_ms.toFixed(1)} ms in this browser`
    : `${answer.time_ms.toFixed(1)} ms on the server, ${(1000 * seconds).toFixed(0)} ms in all`;
  $("status").textContent = `${answer.model}: ${inner}`;
  state.last = { where, ...answer };
}

function showError(message) {
  const span = document.createElement("span");
  span.className = "error";
  span.textContent = message;
  $("status").replaceChildren(span);
}

async function modelInfo(name) {
  if (!state.infos[name]) {
    const response = await fetch(`/models/${encodeURIComponent(name)}`, { headers: headers() });
    if (!response.ok) throw new Error((await response.json()).error);
    [state.infos[name]] = await response.json();
  }
  return state.infos[name];
}

function loadScript(src, integrity) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.crossOrigin = "anonymous";
    if (integrity) script.integrity = integrity;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load onnxruntime-web from ${src}`));
    document.head.append(script);
  });
}

async function browserSession(name) {
  if (!state.sessions[name]) {
    if (!self.ort) {
      const { ort } = await (await fetch("/page-config")).json();
      await loadScript(ort.script, ort.integrity);
      self.ort.env.wasm.wasmPaths = ort.wasmPaths;
      self.ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    }
    $("status").textContent = `downloading ${name} for this browser...`;
    const response = await fetch(`/models/${encodeURIComponent(name)}/model.onnx`, { headers: headers() });
    if (!response.ok) throw new Error((await response.json()).error);
    const bytes = new Uint8Array(await response.arrayBuffer());
    state.sessions[name] = await self.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  }
  return state.sessions[name];
}

async function classifyInBrowser(name, decoded) {
  const info = await modelInfo(name);
  const session = await browserSession(name);
  const start = performance.now();
  const { resize, crop } = info.preprocessing;
  const pixels = squeezekitPreprocess.resizeAndCrop(decoded.rgb, decoded.width, decoded.height, resize, crop);
  const data = squeezekitPreprocess.toTensorData(pixels, info.preprocessing);
  const feeds = { [session.inputNames[0]]: new self.ort.Tensor("float32", data, [1, crop, crop, 3]) };
  const output = (await session.run(feeds))[session.outputNames[0]].data;
  const order = [...output.keys()].sort((a, b) => output[b] - output[a] || a - b).slice(0, 5);
  return { model: name, time_ms: performance.now() - start,
           predictions: order.map((i) => ({ id: info.labels[i][0], label: info.labels[i][1], probability: output[i] })) };
}

async function classify(blob, frame) {
  if (state.busy) return;
  state.busy = true;
  const start = performance.now();
  const name = $("model").value;
  try {
    if ($("local").checked) {
      const decoded = frame || await squeezekitPreprocess.decodeRGB(blob);
      show(await classifyInBrowser(name, decoded), (performance.now() - start) / 1000, "browser");
      return;
    }
    const response = await fetch(`/predictions/${encodeURIComponent(name)}?topk=5`, {
      method: "POST", body: blob, headers: { ...headers(), "Content-Type": blob.type || "application/octet-stream" },
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    show(answer, (performance.now() - start) / 1000, "server");
  } catch (error) {
    showError(error.message);
  } finally {
    state.busy = false;
  }
}

function useImage(blob) {
  stopCamera();
  $("preview").src = URL.createObjectURL(blob);
  $("preview").hidden = false;
  classify(blob);
}

function stopCamera() {
  if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
  state.stream = null;
  $("video").hidden = true;
  $("camera").textContent = "camera";
}

async function startCamera() {
  state.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  $("video").srcObject = state.stream;
  $("video").hidden = false;
  $("preview").hidden = true;
  $("camera").textContent = "stop";
  const canvas = document.createElement("canvas");
  const frame = async () => {
    if (!state.stream) return;
    const video = $("video");
    if (video.videoWidth && !state.busy) {
      if ($("local").checked) {
        await classify(null, squeezekitPreprocess.rgbOf(video, video.videoWidth, video.videoHeight));
      } else {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        canvas.getContext("2d").drawImage(video, 0, 0);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
        await classify(blob);
      }
    }
    setTimeout(frame, 250);
  };
  frame();
}

$("file").addEventListener("change", (event) => {
  if (event.target.files[0]) useImage(event.target.files[0]);
  event.target.value = "";  // choosing the same file again classifies it again
});
$("camera").addEventListener("click", () => (state.stream ? stopCamera() : startCamera().catch((error) => {
  $("status").textContent = "camera: " + error.message;
})));
$("token").addEventListener("change", () => { localStorage.setItem("squeezekit-token", $("token").value); $("local").addEventListener("change", () => {
  if ($("local").checked) browserSession($("model").value).then(() => { $("status").textContent = "Ready, in this browser."; },
                                                                  (error) => showError(error.message));
});
self.squeezekitPage = { state, classify };  // for tests and the curious
loadModels(); });
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (file) useImage(file);
});
document.addEventListener("paste", (event) => {
  const item = [...event.clipboardData.items].find((i) => i.type.startsWith("image/"));
  if (item) useImage(item.getAsFile());
});
$("local").addEventListener("change", () => {
  if ($("local").checked) browserSession($("model").value).then(() => { $("status").textContent = "Ready, in this browser."; },
                                                                  (error) => showError(error.message));
});
self.squeezekitPage = { state, classify };  // for tests and the curious
loadModels();
