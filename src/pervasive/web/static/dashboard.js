// The live dashboard (pervasive.web.dashboard): keeps the server-rendered tables up to date
// from the server-sent events at data-events. A "snapshot" event replaces every table, a
// "change" event puts one row into a table or takes it out (row null). Rows carry display-ready
// values (the server formats everything); cells are filled with textContent only.
(function () {
  "use strict";
  var root = document.querySelector("[data-dashboard]");
  if (!root || !window.EventSource) {
    return;
  }
  var live = root.querySelector("[data-live]");
  var marker = root.querySelector("[data-snapshot]");
  var eventsKept = parseInt(root.getAttribute("data-events-kept"), 10) || 200;

  function body(table) {
    return root.querySelector('tbody[data-table="' + table + '"]');
  }

  function fill(tr, row) {
    tr.setAttribute("data-key", row.key);
    tr.setAttribute("data-flag", row.flag || "");
    var cells = tr.querySelectorAll("[data-field]");
    for (var i = 0; i < cells.length; i += 1) {
      var value = row[cells[i].getAttribute("data-field")];
      var text = value === null || value === undefined ? "" : String(value);
      cells[i].textContent = text;
      if (text.length > 24) {
        cells[i].title = text;
      } else {
        cells[i].removeAttribute("title");
      }
    }
    return tr;
  }

  function make(table, row) {
    var template = document.getElementById("row-" + table);
    return fill(template.content.firstElementChild.cloneNode(true), row);
  }

  function find(tbody, key) {
    for (var i = 0; i < tbody.rows.length; i += 1) {
      if (tbody.rows[i].getAttribute("data-key") === key) {
        return tbody.rows[i];
      }
    }
    return null;
  }

  function insert(table, tbody, tr) {
    if (table !== "devices" && table !== "status") {
      tbody.insertBefore(tr, tbody.firstChild); // newest first
      return;
    }
    var key = tr.getAttribute("data-key");
    for (var i = 0; i < tbody.rows.length; i += 1) {
      if (tbody.rows[i].getAttribute("data-key") > key) {
        tbody.insertBefore(tr, tbody.rows[i]);
        return;
      }
    }
    tbody.appendChild(tr);
  }

  function put(change) {
    var tbody = body(change.table);
    if (!tbody) {
      return;
    }
    var tr = find(tbody, change.key);
    if (change.row === null) {
      if (tr) {
        tr.remove();
      }
    } else if (tr) {
      fill(tr, change.row);
      if (change.table === "agreements" || change.table === "orders") {
        tbody.insertBefore(tr, tbody.firstChild); // most recently changed first
      }
    } else {
      insert(change.table, tbody, make(change.table, change.row));
    }
    if (change.table === "events") {
      while (tbody.rows.length > eventsKept) {
        tbody.deleteRow(tbody.rows.length - 1);
      }
    }
  }

  function replaceAll(snapshot) {
    ["status", "devices", "orders", "agreements", "events"].forEach(function (table) {
      var tbody = body(table);
      if (!tbody) {
        return;
      }
      var rows = document.createDocumentFragment();
      snapshot[table].forEach(function (row) {
        rows.appendChild(make(table, row));
      });
      tbody.replaceChildren(rows);
    });
  }

  function seen(id) {
    if (marker) {
      marker.textContent = id;
    }
  }

  function state(name, text) {
    root.setAttribute("data-state", name);
    if (live) {
      live.textContent = text;
    }
  }

  var source = new EventSource(root.getAttribute("data-events"));
  source.addEventListener("snapshot", function (event) {
    var snapshot = JSON.parse(event.data);
    replaceAll(snapshot);
    seen(snapshot.id);
    state("live", "live");
  });
  source.addEventListener("change", function (event) {
    var change = JSON.parse(event.data);
    put(change);
    seen(change.id);
  });
  source.addEventListener("open", function () {
    state("live", "live");
  });
  source.addEventListener("error", function () {
    state("reconnecting", "connection lost, reconnecting…");
  });
})();
