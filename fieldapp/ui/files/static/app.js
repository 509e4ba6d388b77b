// Tessera field app: saves each answer as it is entered and applies the
// form's skip logic, constraints, calculations and choice filters that the
// device computes. Every page works without this script too.
(function () {
  "use strict";
  var form = document.getElementById("iv");
  if (form) interview(form);
  var sync = document.getElementById("sync");
  if (sync) syncPage(sync);

  function sel(attr, v) { return "[" + attr + '="' + (window.CSS && CSS.escape ? CSS.escape(v) : v) + '"]'; }

  function interview(form) {
    var id = form.dataset.id, csrf = form.dataset.csrf;
    var saved = document.getElementById("saved");
    var timers = {};
    var chain = Promise.resolve();

    function valueOf(field) {
      var els = form.querySelectorAll(sel("data-field", field));
      if (!els.length) return "";
      var first = els[0], out = [];
      if (first.dataset.rank !== undefined) { // a rank: the choices by the position each was given
        var picks = [];
        for (var j = 0; j < els.length; j++) if (els[j].value) picks.push([+els[j].value, els[j].dataset.rank]);
        picks.sort(function (a, b) { return a[0] - b[0] || (a[1] < b[1] ? -1 : 1); });
        return picks.map(function (p) { return p[1]; }).join(" ");
      }
      if (first.type === "radio" || first.type === "checkbox") {
        for (var i = 0; i < els.length; i++) if (els[i].checked) out.push(els[i].value);
        return out.join(" ");
      }
      return first.value;
    }

    // Answers are sent one after another, in the order they were given.
    function send(field) {
      var body = new URLSearchParams({ field: field, value: valueOf(field) });
      saved.textContent = "Saving…";
      chain = chain.then(function () {
        return fetch("interview/" + id + "/answer", {
          method: "POST", body: body, credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" }
        }).then(function (r) {
          if (r.status === 401 || r.status === 403) {
            throw new Error("the device locked itself (or the page is stale): reload the page and unlock; every answer saved before is kept");
          }
          return r.json();
        }).then(function (st) {
          if (st.error) { saved.textContent = "Not saved: " + st.error; return; }
          apply(st, field);
          saved.textContent = "Saved on this device.";
          if (st.reload) location.reload();
        }).catch(function (e) { saved.textContent = "Not saved: " + (e && e.message ? e.message : e); });
      });
      return chain;
    }

    function apply(st, field) {
      form.querySelectorAll("[data-node]").forEach(function (el) {
        var r = st.relevant[el.dataset.node];
        if (r === true) el.hidden = false;
        if (r === false) el.hidden = true;
      });
      form.querySelectorAll("[data-msg]").forEach(function (el) {
        var f = el.dataset.msg, m = st.messages[f];
        if (m) { el.textContent = m; el.dataset.live = "1"; }
        else if (el.dataset.live === "1" || f === field) { el.textContent = ""; el.dataset.live = ""; }
      });
      Object.keys(st.choices || {}).forEach(function (f) {
        var allowed = st.choices[f] || [];
        var node = form.querySelector(sel("data-node", f));
        if (!node) return;
        node.querySelectorAll("[data-choice]").forEach(function (c) { c.hidden = allowed.indexOf(c.dataset.choice) < 0; });
      });
      Object.keys(st.texts || {}).forEach(function (f) {
        var el = form.querySelector(sel("data-text", f));
        if (el) el.textContent = st.texts[f];
      });
    }

    form.addEventListener("input", function (e) {
      var f = e.target.dataset.field;
      if (!f || e.target.type === "radio" || e.target.type === "checkbox") return;
      clearTimeout(timers[f]);
      timers[f] = setTimeout(function () { delete timers[f]; send(f); }, 400);
    });
    form.addEventListener("change", function (e) {
      if (e.target.dataset.media) { // a file picked or captured: store it now
        var b = form.querySelector(sel("data-attach", e.target.dataset.media));
        if (b && form.requestSubmit) form.requestSubmit(b);
        return;
      }
      var f = e.target.dataset.field;
      if (!f) return;
      clearTimeout(timers[f]);
      delete timers[f];
      send(f);
    });
    // Enter in a field moves on instead of submitting the form.
    form.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && e.target.tagName === "INPUT") e.preventDefault();
    });
    form.addEventListener("click", function (e) {
      var t = e.target;
      if (t.dataset.clear) {
        form.querySelectorAll(sel("data-field", t.dataset.clear)).forEach(function (el) { el.checked = false; });
        send(t.dataset.clear);
      }
      if (t.dataset.geo) {
        var input = form.querySelector(sel("data-field", t.dataset.geo));
        if (!navigator.geolocation) { input.placeholder = "no location on this device: type it"; return; }
        t.disabled = true;
        navigator.geolocation.getCurrentPosition(function (p) {
          var c = p.coords;
          input.value = [c.latitude, c.longitude, c.altitude || 0, c.accuracy || 0].join(" ");
          t.disabled = false;
          send(t.dataset.geo);
        }, function (err) { t.disabled = false; input.placeholder = "location unavailable (" + err.message + "): type it"; },
        { enableHighAccuracy: true, timeout: 60000 });
      }
      if (t.dataset.remove && !confirm(t.textContent.trim() + "?")) e.preventDefault();
    });
    // Pending keystrokes travel with the form itself when it is submitted.
    form.querySelectorAll("canvas[data-sig]").forEach(signaturePad);
    // Barcodes: typed always; scanned with the camera where the browser
    // has a barcode detector (Chrome on Android), nothing fetched.
    if (window.BarcodeDetector && navigator.mediaDevices) {
      form.querySelectorAll("[data-scan]").forEach(scanner);
    }
    function scanner(b) {
      var input = form.querySelector(sel("data-field", b.dataset.scan)), stream = null, video = null;
      b.hidden = false;
      function stop() {
        if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
        if (video) video.remove();
        stream = video = null; b.textContent = b.dataset.label;
      }
      b.dataset.label = b.textContent;
      b.addEventListener("click", function () {
        if (stream) { stop(); return; }
        var det = new BarcodeDetector();
        navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
          stream = s; video = document.createElement("video");
          video.className = "preview"; video.muted = true; video.setAttribute("playsinline", "");
          video.srcObject = s; b.insertAdjacentElement("afterend", video); video.play();
          b.textContent = "■ Stop";
          (function look() {
            if (!stream) return;
            det.detect(video).then(function (codes) {
              if (codes.length && codes[0].rawValue) {
                input.value = codes[0].rawValue; stop(); send(b.dataset.scan);
              } else setTimeout(look, 250);
            }).catch(function () { setTimeout(look, 250); });
          })();
        }).catch(function (err) { b.textContent = "Camera not allowed: " + err.name; });
      });
    }
    // Audio and video: record in the page where the browser can
    // (MediaRecorder); the recording goes into the file input and is
    // stored like a picked file. Elsewhere the picker's capture opens the
    // phone's recorder.
    if (window.MediaRecorder && navigator.mediaDevices && window.DataTransfer) {
      form.querySelectorAll('input[type=file][accept^="audio/"], input[type=file][accept^="video/"]').forEach(recorder);
    }
    function recorder(input) {
      var video = input.accept.indexOf("video/") === 0, rec = null, parts = [];
      var b = document.createElement("button");
      b.type = "button"; b.className = "secondary"; b.textContent = "● Record";
      input.insertAdjacentElement("afterend", b);
      b.addEventListener("click", function () {
        if (rec) { rec.stop(); return; }
        navigator.mediaDevices.getUserMedia(video ? { audio: true, video: true } : { audio: true }).then(function (stream) {
          rec = new MediaRecorder(stream); parts = [];
          rec.ondataavailable = function (e) { parts.push(e.data); };
          rec.onstop = function () {
            stream.getTracks().forEach(function (t) { t.stop(); });
            var type = rec.mimeType || (video ? "video/webm" : "audio/webm");
            var ext = type.indexOf("mp4") >= 0 ? (video ? ".mp4" : ".m4a") : (video ? ".webm" : ".weba");
            var dt = new DataTransfer();
            dt.items.add(new File(parts, "recording-" + Date.now() + ext, { type: type }));
            input.files = dt.files; rec = null;
            input.dispatchEvent(new Event("change", { bubbles: true }));
          };
          rec.start(); b.textContent = "■ Stop";
        }).catch(function (err) { b.textContent = "Recording not allowed: " + err.name; });
      });
    }
    function signaturePad(c) {
      var g = c.getContext("2d"), out = form.querySelector(sel("data-sig-out", c.dataset.sig)), down = false;
      g.lineWidth = 3; g.lineCap = "round"; g.strokeStyle = "#000";
      function at(e) {
        var r = c.getBoundingClientRect();
        return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height];
      }
      c.addEventListener("pointerdown", function (e) { down = true; var p = at(e); g.beginPath(); g.moveTo(p[0], p[1]); c.setPointerCapture(e.pointerId); });
      c.addEventListener("pointermove", function (e) { if (!down) return; var p = at(e); g.lineTo(p[0], p[1]); g.stroke(); });
      c.addEventListener("pointerup", function () { down = false; out.value = c.toDataURL("image/png"); });
      var clear = form.querySelector(sel("data-sig-clear", c.dataset.sig));
      if (clear) clear.addEventListener("click", function () { g.clearRect(0, 0, c.width, c.height); out.value = ""; });
    }
    form.addEventListener("submit", function () {
      Object.keys(timers).forEach(function (f) { clearTimeout(timers[f]); });
    });
  }

  function syncPage(box) {
    var state = document.getElementById("sync-state");
    var bar = document.getElementById("sync-progress");
    var button = document.getElementById("sync-now");
    var pending = document.getElementById("pending");
    function size(n) {
      if (n < 1024) return n + " B";
      if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
      return (n / 1048576).toFixed(1) + " MiB";
    }
    function poll() {
      fetch("sync/status", { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) { location.href = "/"; throw new Error("locked"); } // locked, or wiped
        return r.json();
      }).then(function (s) {
        if (s.locked) { location.href = "/"; return; } // locked meanwhile, or wiped
        var p = s.result || s.progress;
        if (s.running) {
          bar.hidden = false; button.disabled = true;
          state.textContent = "Syncing… " + p.pushed + " sent, " + p.pulled + " received, " + size(p.bytes_sent) + " up, " + size(p.bytes_received) + " down" +
            (p.media && p.media.progress ? "; files: " + size(p.media.progress) + " sent" : "");
          setTimeout(poll, 300);
          return;
        }
        bar.hidden = true; button.disabled = false;
        if (s.error) {
          state.innerHTML = "";
          var e = document.createElement("span");
          e.className = "error";
          e.textContent = "Sync failed: " + s.error;
          state.appendChild(e);
        } else if (s.result && p.wiped) {
          state.textContent = "This device was wiped at the project lead's request, after everything on it was sent. Nothing is left on it.";
        } else if (s.result) {
          state.textContent = "Done: " + p.pushed + " changes sent, " + p.pulled + " received (" + size(p.bytes_sent) + " up, " +
            size(p.bytes_received) + " down) in " + Math.round(p.duration_ms) + " ms." +
            (p.media && p.media.files ? " Files sent: " + p.media.files + " (" + size(p.media.bytes) + ")." : "") +
            (p.media && p.media.waiting ? " Files still to send: " + p.media.waiting + "." : "") +
            (p.forms_fetched || []).map(function (f) { return " New form: " + f + "."; }).join("") +
            (p.warnings || []).map(function (w) { return " " + w; }).join("");
          if (pending && !s.error) pending.textContent = "0";
        }
        box.dataset.running = "false";
        box.dataset.done = "true";
      });
    }
    if (box.dataset.running === "true") poll();
    else if (state.textContent.trim() !== "") box.dataset.done = "true";
  }
})();
