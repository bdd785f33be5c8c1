// otrace traceback page: a prompt per frame, evaluated on the server in that frame.
(function () {
  "use strict";
  var root = document.getElementById("otrace-tb");
  var secret = root.dataset.secret, session = root.dataset.session;
  var evalUrl = root.dataset.evalUrl, pinUrl = root.dataset.pinUrl;
  var pinBar = document.getElementById("tb-pin");
  var pinForm = document.getElementById("tb-pin-form");
  var pinInput = document.getElementById("tb-pin-input");
  var pinMsg = document.getElementById("tb-pin-msg");
  var waiting = [];

  function post(url, payload) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-OTrace-Secret": secret },
      body: JSON.stringify(payload)
    }).then(function (r) {
      return r.json().catch(function () { return { error: "HTTP " + r.status }; });
    }, function (e) { return { error: "request failed: " + e }; });
  }

  function line(out, cls, text) {
    var pre = document.createElement("pre");
    pre.className = cls;
    pre.textContent = text;
    out.appendChild(pre);
    return pre;
  }

  function askPin(then) {
    waiting.push(then);
    pinBar.hidden = false;
    pinInput.focus();
  }

  pinForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    pinMsg.textContent = "";
    post(pinUrl, { pin: pinInput.value }).then(function (data) {
      if (data.ok) {
        pinBar.hidden = true;
        pinInput.value = "";
        var todo = waiting; waiting = [];
        todo.forEach(function (f) { f(); });
      } else {
        pinMsg.textContent = data.error || "refused";
      }
    });
  });

  function run(form, code) {
    var box = form.querySelector("textarea");
    var out = form.parentNode.querySelector(".tb-out");
    box.disabled = true;
    post(evalUrl, { session: session, frame: Number(form.dataset.frame), code: code })
      .then(function (data) {
        box.disabled = false;
        if (data.need_pin) {
          box.value = code;
          askPin(function () { box.value = ""; run(form, code); });
          return;
        }
        line(out, "tb-in", code.split("\n").map(function (l, i) {
          return (i ? "... " : ">>> ") + l;
        }).join("\n"));
        if (data.output) line(out, "tb-stdout", data.output.replace(/\n$/, ""));
        if (data.value !== null && data.value !== undefined) line(out, "tb-value", data.value);
        if (data.error) line(out, "tb-err", data.error.replace(/\n$/, ""));
        box.focus();
      });
  }

  function grow(box) {
    box.style.height = "auto";
    box.style.height = box.scrollHeight + "px";
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.tb-prompt"), function (form) {
    var box = form.querySelector("textarea");
    var history = [], pos = 0;
    form.addEventListener("submit", function (ev) { ev.preventDefault(); });
    box.addEventListener("input", function () { grow(box); });
    box.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        var code = box.value;
        if (!code.trim()) return;
        history.push(code); pos = history.length;
        box.value = ""; grow(box);
        run(form, code);
      } else if (ev.key === "ArrowUp" && box.value.indexOf("\n") < 0 && pos > 0) {
        ev.preventDefault(); pos -= 1; box.value = history[pos]; grow(box);
      } else if (ev.key === "ArrowDown" && box.value.indexOf("\n") < 0 && pos < history.length) {
        ev.preventDefault(); pos += 1; box.value = pos < history.length ? history[pos] : ""; grow(box);
      }
    });
  });

  var showLib = document.getElementById("tb-show-lib");
  if (showLib) {
    showLib.addEventListener("change", function () {
      document.getElementById("tb-frames").classList.toggle("show-lib", showLib.checked);
    });
  }
  if (root.dataset.needPin === "1" && pinBar) {
    // Say up front that evaluation needs the PIN; the bar closes once it is given.
    pinBar.hidden = false;
  }
})();
