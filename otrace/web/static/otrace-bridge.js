/* otrace-bridge.js: lets the otrace console evaluate JavaScript in this page.
 *
 * Include it, then hand it the page's WebSocket (the app's server side uses
 * otrace.web.bridge.BridgeSocketMixin):
 *
 *     <script src="/otrace/otrace-bridge.js"></script>
 *     var socket = new WebSocket(url);
 *     otrace.attach(socket);                 // or otrace.attach(socket, {remotelog: true})
 *
 * or let it open its own socket to a mounted otrace.web.bridge.routes() handler:
 *
 *     otrace.connect("/otrace/ws");
 *
 * Protocol: the server sends {"stdin": code, "id": n}; the page answers
 * {"stdout": String(value), "stderr": "", "id": n} or {"stdout": "", "stderr": "Error: ...",
 * "id": n}.  A value that is a promise is awaited first.  When remote logging is on (option
 * remotelog, the server's {"remotelog": true}, or otrace.remotelog(true) typed in the
 * console) console.log/info/warn/error and uncaught errors are sent as
 * {"stdout": "", "stderr": text, "log": level}.  Other messages on the socket are left to
 * the app.  No dependencies.
 */
(function (root) {
  "use strict";

  var MAX_TEXT = 100000;
  var bridges = [];
  var remote = false;
  var forwarding = false;  // guards against logging from inside a send
  var originalConsole = {};

  function clip(text) {
    return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + "..." : text;
  }

  function errorText(err) {
    if (err && typeof err === "object" && "name" in err && "message" in err) {
      return String(err.name) + ": " + String(err.message);
    }
    return String(err);
  }

  function describe(value) {
    var type = typeof value;
    if (value === undefined) return "undefined";
    if (value === null) return "null";
    if (type === "string") return clip(value);
    if (type !== "object") return clip(String(value));
    if (typeof Element !== "undefined" && value instanceof Element) {
      var tag = "<" + value.tagName.toLowerCase();
      if (value.id) tag += ' id="' + value.id + '"';
      if (value.className && typeof value.className === "string") tag += ' class="' + value.className + '"';
      return tag + ">";
    }
    try {
      var json = JSON.stringify(value);
      if (json !== undefined) return clip(json);
    } catch (e) {
      /* cyclic or exotic: fall through */
    }
    return clip(String(value));
  }

  function Bridge(socket, options) {
    var self = this;
    this.socket = socket;
    this.options = options || {};
    socket.addEventListener("message", function (event) {
      self.receive(event.data);
    });
    socket.addEventListener("close", function () {
      var i = bridges.indexOf(self);
      if (i >= 0) bridges.splice(i, 1);
    });
    bridges.push(this);
    if (this.options.remotelog) remotelog(true);
  }

  Bridge.prototype.send = function (message) {
    if (this.socket.readyState === 1) this.socket.send(JSON.stringify(message));
  };

  Bridge.prototype.receive = function (data) {
    var msg;
    if (typeof data !== "string") return;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.remotelog === "boolean") remotelog(msg.remotelog);
    if (typeof msg.stdin === "string") this.run(msg.stdin, msg.id);
  };

  Bridge.prototype.run = function (code, id) {
    var self = this;
    function reply(out, err) {
      var answer = { stdout: out, stderr: err };
      if (id !== undefined) answer.id = id;
      self.send(answer);
    }
    var value;
    try {
      value = (0, eval)(code);  // global scope, like the browser's own console
    } catch (err) {
      reply("", errorText(err));
      return;
    }
    if (value && typeof value.then === "function") {
      value.then(function (v) { reply(describe(v), ""); },
                 function (e) { reply("", errorText(e)); });
    } else {
      reply(describe(value), "");
    }
  };

  function forward(level, text) {
    if (!remote || forwarding) return;
    forwarding = true;
    try {
      for (var i = 0; i < bridges.length; i++) {
        bridges[i].send({ stdout: "", stderr: clip(text), log: level });
      }
    } finally {
      forwarding = false;
    }
  }

  function wrapConsole() {
    if (typeof console === "undefined" || originalConsole.log) return;
    ["log", "info", "warn", "error"].forEach(function (level) {
      var original = console[level];
      originalConsole[level] = original;
      console[level] = function () {
        var parts = [];
        for (var i = 0; i < arguments.length; i++) {
          var a = arguments[i];
          parts.push(typeof a === "string" ? a : describe(a));
        }
        forward(level, parts.join(" "));
        if (original) return original.apply(console, arguments);
      };
    });
    root.addEventListener("error", function (event) {
      var where = event.filename ? " (" + event.filename + ":" + event.lineno + ")" : "";
      forward("uncaught", (event.error ? errorText(event.error) : String(event.message)) + where);
    });
    root.addEventListener("unhandledrejection", function (event) {
      forward("unhandledrejection", errorText(event.reason));
    });
  }

  /* Turn forwarding of console output and uncaught errors on or off; returns the state. */
  function remotelog(on) {
    if (on) wrapConsole();
    remote = !!on;
    return remote;
  }

  function attach(socket, options) {
    return new Bridge(socket, options);
  }

  function connect(url, options) {
    if (!/^wss?:/.test(url)) {
      var scheme = root.location.protocol === "https:" ? "wss://" : "ws://";
      url = scheme + root.location.host + (url.charAt(0) === "/" ? "" : "/") + url;
    }
    return attach(new WebSocket(url), options);
  }

  root.otrace = {
    attach: attach,
    connect: connect,
    remotelog: remotelog,
    describe: describe,
    bridges: bridges
  };
})(window);
