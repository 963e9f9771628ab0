// Sorts every leaderboard table by the column named in the address: #sort=<column>-<asc|desc>, and filters
// the rows of long boards by the text typed into their filter box. Clicking a header sets the address, so
// a sorted view can be linked. Numbers sort as numbers, text in natural order (v2 before v10); empty
// cells always sort last; ties keep the board's rank order. No dependencies, works from the file system.
(function () {
  "use strict";

  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function wanted() {
    var m = /(?:^#|&)sort=([a-z0-9_]+)-(asc|desc)(?:&|$)/.exec(window.location.hash);
    return m ? { key: m[1], dir: m[2] } : { key: "rank", dir: "asc" };
  }

  function compare(a, b, numeric) {
    return numeric ? parseFloat(a) - parseFloat(b) : collator.compare(a, b);
  }

  function sortTable(table, key, dir) {
    var headers = table.tHead.rows[0].cells;
    var col = -1;
    var numeric = false;
    for (var i = 0; i < headers.length; i++) {
      var match = headers[i].getAttribute("data-key") === key;
      headers[i].setAttribute("aria-sort", match ? (dir === "asc" ? "ascending" : "descending") : "none");
      if (match) {
        col = i;
        numeric = headers[i].getAttribute("data-type") === "number";
      }
    }
    if (col < 0) {
      return;
    }
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (ra, rb) {
      var a = ra.cells[col].getAttribute("data-value");
      var b = rb.cells[col].getAttribute("data-value");
      var order = 0;
      if (a === "" || b === "") {
        order = (a === "") - (b === "");
      } else {
        order = compare(a, b, numeric);
        if (dir === "desc") {
          order = -order;
        }
      }
      return order || parseInt(ra.getAttribute("data-rank"), 10) - parseInt(rb.getAttribute("data-rank"), 10);
    });
    for (var j = 0; j < rows.length; j++) {
      body.appendChild(rows[j]);
    }
  }

  function apply() {
    var sort = wanted();
    var tables = document.querySelectorAll("table.board");
    for (var i = 0; i < tables.length; i++) {
      sortTable(tables[i], sort.key, sort.dir);
    }
  }

  function onHeaderClick(event) {
    var th = event.currentTarget.parentNode;
    var key = th.getAttribute("data-key");
    var current = wanted();
    var dir;
    if (current.key === key) {
      dir = current.dir === "asc" ? "desc" : "asc";
    } else {
      dir = th.getAttribute("data-type") === "number" && key !== "rank" ? "desc" : "asc";
    }
    window.location.hash = "sort=" + key + "-" + dir;
  }

  function filter(input) {
    var table = document.getElementById("table-" + input.getAttribute("data-table"));
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var rows = table.tBodies[0].rows;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var text = rows[i].getAttribute("data-search");
      var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      rows[i].hidden = !keep;
      shown += keep ? 1 : 0;
    }
    input.parentNode.parentNode.querySelector("output").textContent =
      words.length ? shown + " of " + rows.length + " shown" : "";
  }

  var buttons = document.querySelectorAll("table.board th button");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", onHeaderClick);
  }
  var inputs = document.querySelectorAll("p.filter input");
  for (var k = 0; k < inputs.length; k++) {
    inputs[k].addEventListener("input", function (event) { filter(event.currentTarget); });
    inputs[k].parentNode.parentNode.hidden = false; // the box is useful only with this script
    filter(inputs[k]);
  }
  window.addEventListener("hashchange", apply);
  apply();
})();
