// cascade console, update source page: moves entries up and down without
// a reload, keeps the draft's `policy` field current when a setting
// changes, shows the fields of the kind of addresses chosen, and warns
// before leaving a draft that is not saved. Without it the page works by
// form posts alone.
"use strict";
(function () {
  var leaving = false;

  function draft() { return document.getElementById("draft"); }

  // refresh posts the form as it is (action "apply") and puts the page
  // the server answers in place of the draft: the server's order, its
  // validation and warnings, and the `policy` field.
  function refresh(form) {
    var d = draft();
    var data = new FormData(form);
    data.set("action", "apply");
    d.setAttribute("data-state", "refreshing");
    fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (res) {
        return res.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("draft");
          if (!fresh) {
            throw new Error("the server answered " + res.status);
          }
          d.replaceWith(document.importNode(fresh, true));
          showKind();
        });
      })
      .catch(function (err) {
        d.setAttribute("data-state", "stale");
        var p = document.getElementById("refresh-error") || document.createElement("p");
        p.id = "refresh-error";
        p.className = "error";
        p.textContent = "The draft could not be checked (" + err.message + "): your changes are kept in the page and apply at the next step.";
        d.prepend(p);
      });
  }

  function renumber(tbody) {
    Array.prototype.forEach.call(tbody.rows, function (tr, i) {
      var pos = tr.querySelector(".pos");
      if (pos) {
        pos.textContent = String(i + 1);
      }
    });
  }

  // showKind shows only the address fields of the kind chosen.
  function showKind() {
    var kind = document.getElementById("kind");
    if (!kind) {
      return;
    }
    document.querySelectorAll("#entry-form [data-kind]").forEach(function (el) {
      el.hidden = el.getAttribute("data-kind") !== kind.value;
    });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("#source-table button.up, #source-table button.down");
    if (!b || !b.form) {
      return;
    }
    ev.preventDefault();
    var tr = b.closest("tr");
    var tbody = tr.parentNode;
    if (b.classList.contains("up")) {
      if (!tr.previousElementSibling) {
        return;
      }
      tbody.insertBefore(tr, tr.previousElementSibling);
    } else {
      if (!tr.nextElementSibling) {
        return;
      }
      tbody.insertBefore(tr.nextElementSibling, tr);
    }
    renumber(tbody);
    b.focus();
    refresh(b.form);
  });

  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.id === "kind") {
      showKind();
    } else if (t.id === "agent") {
      document.getElementById("source-agent").checked = true;
    } else if (t.closest("#settings") && t.form) {
      refresh(t.form);
    }
  });

  document.addEventListener("input", function (ev) {
    if (ev.target.id === "url") {
      document.getElementById("source-url").checked = true;
    }
  });

  document.addEventListener("submit", function (ev) {
    // Enter in a field of the entry form adds the entry: the browser
    // submits with the form's first button, which applies the settings.
    var f = document.activeElement;
    if (ev.submitter && ev.submitter.id === "apply" && f && f.matches("#entry-form input[type=text]")) {
      ev.preventDefault();
      // Not from inside this event: a form does not submit while it
      // fires its submit event.
      setTimeout(function () { document.getElementById("add-entry").click(); }, 0);
      return;
    }
    if (!(ev.submitter && ev.submitter.hasAttribute("data-download"))) {
      leaving = true;
    }
  });

  window.addEventListener("beforeunload", function (ev) {
    var d = draft();
    if (!leaving && d && d.getAttribute("data-dirty") === "true") {
      ev.preventDefault();
      ev.returnValue = "";
    }
  });

  document.addEventListener("DOMContentLoaded", showKind);
})();
