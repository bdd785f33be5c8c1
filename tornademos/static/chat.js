/* The chat page: post messages and show everyone's, over one WebSocket.
 * The same socket carries the otrace console's commands (see /otrace/otrace-bridge.js). */
(function () {
  "use strict";
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var socket = new WebSocket(scheme + location.host + "/chatsocket");
  var inbox = document.getElementById("inbox");
  var form = document.getElementById("messageform");
  var input = document.getElementById("message");

  if (window.otrace) window.otrace.attach(socket);

  /* A pinch of jQuery, so that the original tutorial's console lines work in this page:
   * $("body").css("background", "red"), $("#message").val().  The value prints as
   * [object Object], as jQuery's did. */
  window.$ = function (selector) {
    var nodes = Array.prototype.slice.call(document.querySelectorAll(selector));
    return {
      length: nodes.length,
      css: function (name, value) {
        if (value === undefined) return nodes.length ? getComputedStyle(nodes[0])[name] : undefined;
        nodes.forEach(function (n) { n.style[name] = value; });
        return this;
      },
      val: function (value) {
        if (value === undefined) return nodes.length ? nodes[0].value : undefined;
        nodes.forEach(function (n) { n.value = value; });
        return this;
      },
      text: function () {
        return nodes.map(function (n) { return n.textContent; }).join("");
      },
      toJSON: function () { return undefined; }
    };
  };

  socket.addEventListener("open", function () {
    document.body.setAttribute("data-connected", "yes");
  });
  socket.addEventListener("close", function () {
    document.body.setAttribute("data-connected", "no");
  });
  socket.addEventListener("message", function (event) {
    var msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (!msg || typeof msg.html !== "string") return;  /* otrace messages are not ours */
    if (document.getElementById("m" + msg.id)) return;
    var holder = document.createElement("div");
    holder.innerHTML = msg.html;
    while (holder.firstChild) inbox.appendChild(holder.firstChild);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.value) return;
    socket.send(JSON.stringify({ body: input.value }));
    input.value = "";
    input.focus();
  });
})();
