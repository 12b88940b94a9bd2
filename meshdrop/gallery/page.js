// The gallery page's behaviour: inlined into index.html as a classic script (no modules:
// browsers CORS-fetch module scripts, which fails for pages opened from disk).
//
// Served over HTTP, each viewer gets its asset's relative URL. Opened from disk (file://),
// the page may not fetch files, so it loads gallery-data/<n>.js with a classic <script> tag;
// that script calls meshdropGallery.embedded() with the bytes, which become a blob: URL.
// Outcomes are recorded in data attributes (body and cards) so a headless browser's
// --dump-dom can check them, and shown to the user in words instead of an empty grey box.
"use strict";

window.meshdropGallery = (function () {
  // Anything not served over HTTP(S) (file:, or a viewer app's own scheme) gets the embedded bytes.
  var fromDisk = !/^https?:$/.test(location.protocol);
  var loaded = new Set();
  var shown = new Set();
  var failed = new Set();

  function record() {
    var body = document.body;
    body.dataset.loaded = Array.from(loaded).sort().join(" ");
    body.dataset.loadedCount = String(loaded.size);
    body.dataset.shown = Array.from(shown).sort().join(" ");
    body.dataset.failed = Array.from(failed).sort().join(" ");
    body.dataset.failedCount = String(failed.size);
  }

  function viewerOf(entry) {
    return document.querySelector('model-viewer[data-entry="' + entry + '"]');
  }

  // Replace the empty viewer area's silence with words; `state` goes into data-model.
  function note(viewer, state, text) {
    var card = viewer.closest(".card");
    card.dataset.model = state;
    var box = card.querySelector(".viewer-note");
    box.textContent = text;
    box.hidden = false;
  }

  function fail(viewer, text) {
    failed.add(viewer.dataset.entry);
    loaded.delete(viewer.dataset.entry);
    note(viewer, "error", text);
    record();
  }

  function decode(chunks) {
    var size = 0;
    var parts = chunks.map(function (chunk) {
      var text = atob(chunk);
      var bytes = new Uint8Array(text.length);
      for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      size += bytes.length;
      return bytes;
    });
    return { parts: parts, size: size };
  }

  // Called by gallery-data/<n>.js with one asset's bytes as base64 chunks.
  function embedded(entry, type, chunks) {
    var viewer = viewerOf(entry);
    if (!viewer) return;
    var data = decode(chunks);
    viewer.src = URL.createObjectURL(new Blob(data.parts, { type: type }));
  }

  function loadFromDisk(viewer) {
    var script = viewer.dataset.embed;
    if (!script) {
      note(viewer, "too-large", "Too large to show when the page is opened from disk: " +
        "serve the gallery to see it in 3D (see the note at the top), or download it below.");
      return;
    }
    var tag = document.createElement("script");
    tag.src = script;
    tag.onerror = function () {
      fail(viewer, "Could not load this asset: " + script + " is missing beside the page.");
    };
    document.body.appendChild(tag);
  }

  function webglAvailable() {
    try {
      var canvas = document.createElement("canvas");
      return !!(canvas.getContext("webgl2") || canvas.getContext("webgl"));
    } catch (e) {
      return false;
    }
  }

  function watch(viewer) {
    var entry = viewer.dataset.entry;
    var done = function () {
      if (failed.has(entry)) return;
      loaded.add(entry);
      viewer.closest(".card").dataset.model = "loaded";
      record();
    };
    viewer.addEventListener("load", done);
    // Fired once the model is drawn in place of the poster: proof it rendered, not just parsed.
    viewer.addEventListener("model-visibility", function (event) {
      if (event.detail && event.detail.visible) shown.add(entry);
      else shown.delete(entry);
      record();
    });
    viewer.addEventListener("error", function (event) {
      var detail = event.detail && event.detail.type ? " (" + event.detail.type + ")" : "";
      fail(viewer, "Could not load this asset" + detail + ": the file may be damaged; " +
        "download it below to inspect it.");
    });
    if (viewer.loaded) done();
  }

  // Once every script has run: was model-viewer's bundle there at all?
  function checkViewerDefined() {
    if (!window.customElements || !customElements.get("model-viewer")) {
      document.getElementById("viewer-missing-note").hidden = false;
      document.body.dataset.modelViewer = "missing";
    }
  }

  function start() {
    var body = document.body;
    body.dataset.origin = fromDisk ? "file" : "http";
    var webgl = webglAvailable();
    body.dataset.webgl = webgl ? "yes" : "no";
    if (!webgl) document.getElementById("webgl-note").hidden = false;
    var viewers = document.querySelectorAll("model-viewer");
    var tooLarge = false;
    viewers.forEach(function (viewer) {
      watch(viewer);
      if (!webgl) {
        note(viewer, "no-webgl", "No WebGL in this browser: the model cannot be drawn here; " +
          "download it below.");
        return;
      }
      if (!fromDisk) {
        viewer.src = viewer.dataset.src;
        return;
      }
      if (!viewer.dataset.embed) tooLarge = true;
      loadFromDisk(viewer);
    });
    if (tooLarge) document.getElementById("serve-note").hidden = false;
    if (document.readyState === "complete") checkViewerDefined();
    else window.addEventListener("load", checkViewerDefined);
    if (window.customElements) {
      customElements.whenDefined("model-viewer").then(function () {
        body.dataset.modelViewer = "defined";
      });
    }
    record();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  return { embedded: embedded };
})();
