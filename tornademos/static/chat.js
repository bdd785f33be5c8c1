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
