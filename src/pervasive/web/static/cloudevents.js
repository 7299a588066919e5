// The CloudEvents table (pervasive.web.event_stream): prepends each event of the server-sent
// events at data-stream (starting after data-after; the browser resumes with Last-Event-ID),
// keeps data-shown rows, and marks a retracted event when its retraction arrives. Cells are
// filled with textContent only.
(function () {
  "use strict";
  var root = document.querySelector("[data-cloudevents]");
  if (!root || !window.EventSource) {
    return;
  }
  var tbody = root.querySelector('tbody[data-table="cloudevents"]');
  var shown = parseInt(root.getAttribute("data-shown"), 10) || 50;
  var url = root.getAttribute("data-stream") + "?after=" + encodeURIComponent(root.getAttribute("data-after") || "0");
  var source = new EventSource(url);
  source.addEventListener("cloudevent", function (message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    var tr = document.getElementById("row-cloudevents").content.firstElementChild.cloneNode(true);
    var values = {
      seq: message.lastEventId, time: event.time || "", type: event.type,
      subject: event.subject || "", source: event.source, id: event.id
    };
    var cells = tr.querySelectorAll("[data-field]");
    for (var i = 0; i < cells.length; i += 1) {
      cells[i].textContent = values[cells[i].getAttribute("data-field")];
    }
    tr.setAttribute("data-seq", message.lastEventId);
    tr.setAttribute("data-type", event.type);
    tr.setAttribute("data-id", event.id);
    tr.setAttribute("data-flag", "");
    if (event.retracts) {
      var rows = tbody.querySelectorAll("tr[data-id]");
      for (var j = 0; j < rows.length; j += 1) {
        if (rows[j].getAttribute("data-id") === event.retracts) {
          rows[j].setAttribute("data-flag", "retracted");
        }
      }
    }
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > shown) {
      tbody.deleteRow(tbody.rows.length - 1);
    }
  });
})();
