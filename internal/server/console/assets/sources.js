// cascade console, update source page: moves entries up and down without
// a reload, keeps the draft's `policy` field current when a setting
// changes, shows the fields of the kind of addresses chosen, warns
// before leaving a draft that is not saved, and keeps the last draft in
// the tab's session storage so that it can be restored (after a sign-in,
// or a page left anyway). Without it the page works by form posts alone.
"use strict";
(function () {
  var leaving = false;
  var latest = 0; // the number of the last refresh asked for

  function draft() { return document.getElementById("draft"); }

  // refresh posts the form as it is (action "apply"), with the order of
  // the rows shown (`order`: their ids, which the check boxes hold), and
  // puts the page the server answers in place of the draft: the server's
  // order, its validation and warnings, and the `policy` field.
  // Only the answer to the last one is shown: an earlier answer, which
  // misses the later steps, is dropped.
  function refresh(form) {
    var n = ++latest;
    var data = new FormData(form);
    data.set("action", "apply");
    form.querySelectorAll("#source-table input.sel").forEach(function (sel) {
      data.append("order", sel.value);
    });
    draft().setAttribute("data-state", "refreshing");
    fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (res) {
        return res.text().then(function (html) {
          if (n !== latest) {
            return;
          }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("draft");
          if (!fresh) {
            throw new Error("the server answered " + res.status);
          }
          draft().replaceWith(document.importNode(fresh, true));
          showKind();
          stash(false);
        });
      })
      .catch(function (err) {
        if (n !== latest) {
          return;
        }
        var d = draft();
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
    var tr = b.closest("tr");
    var tbody = tr.parentNode;
    var up = b.classList.contains("up");
    // The first row of a page moved up (the last moved down) goes to the
    // next page: the form's own post does that.
    if (!(up ? tr.previousElementSibling : tr.nextElementSibling)) {
      return;
    }
    ev.preventDefault();
    if (up) {
      tbody.insertBefore(tr, tr.previousElementSibling);
    } else {
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

  // The tab keeps the last draft that differs from the version in force.
  // A page fresh from the server showing the version in force offers it
  // back (offer); any other page without changes forgets it.
  // One per account: another account signed in in the same tab is not
  // offered it.
  var who = document.getElementById("whoami");
  var stashKey = "cascade-sources-draft " + (who ? who.textContent : "");

  function stash(offer) {
    var d = draft();
    if (!d) {
      return;
    }
    var policy = d.querySelector("input[name=policy]").value;
    var base = d.querySelector("input[name=base]").value;
    if (d.getAttribute("data-dirty") === "true") {
      sessionStorage.setItem(stashKey, JSON.stringify({ policy: policy, base: base }));
      return;
    }
    var kept = JSON.parse(sessionStorage.getItem(stashKey) || "null");
    if (!offer || !kept || kept.policy === policy || document.getElementById("saved")) {
      sessionStorage.removeItem(stashKey);
      return;
    }
    document.getElementById("restore-policy").value = kept.policy;
    document.getElementById("restore-base").value = kept.base;
    document.getElementById("restore").hidden = false;
  }

  document.addEventListener("click", function (ev) {
    if (ev.target.id === "discard-draft") {
      sessionStorage.removeItem(stashKey);
      document.getElementById("restore").hidden = true;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    showKind();
    var d = draft();
    stash(d !== null && d.getAttribute("data-fresh") === "true");
  });
})();
