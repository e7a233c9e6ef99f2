// Kehu's own script: CSRF header for htmx, toasts, Ctrl+K, closing menus. No inline scripts
// anywhere (the CSP forbids them).
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });
  function toast(kind, text) {
    var box = document.getElementById("toasts");
    if (!box || !text) return;
    var t = document.createElement("div");
    t.className = "toast " + kind;
    t.textContent = text;
    box.appendChild(t);
    setTimeout(function () { t.remove(); }, 5000);
  }
  window.kehuToast = toast;
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (xhr.getResponseHeader("X-Kehu-Toast")) toast("error", xhr.responseText);
  });
  document.addEventListener("htmx:sendError", function () {
    var b = document.body;
    toast("error", b.getAttribute("data-offline") || "Network error");
  });
  document.addEventListener("kehu:toast", function (e) {
    toast((e.detail && e.detail.kind) || "ok", e.detail && e.detail.message);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts .toast").forEach(function (t) {
      setTimeout(function () { t.remove(); }, 5000);
    });
    document.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("submit", function (ev) {
        if (!window.confirm(el.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
  });
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && (e.key === "k" || e.key === "K")) {
      var q = document.getElementById("global-search");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
    }
    if (e.key === "Escape") {
      document.querySelectorAll("details.menu[open]").forEach(function (d) { d.removeAttribute("open"); });
      var s = document.getElementById("search-suggest");
      if (s) s.innerHTML = "";
    }
  });
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.menu[open]").forEach(function (d) {
      if (!d.contains(e.target)) d.removeAttribute("open");
    });
  });
})();

// ---- lists ----
// Selection and bulk bar (select all on the page, count, Merge for 2–5 records), filter rows
// removed in place, confirmations on buttons, reload of the list after a bulk action or a
// finished job, and the export form carrying the selection.
(function () {
  "use strict";
  function checked() {
    return Array.prototype.slice.call(document.querySelectorAll('input[name="ids"][form="bulk-form"]:checked'));
  }
  function refresh() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var n = checked().length;
    var all = document.getElementById("bulk-all");
    var count = document.getElementById("bulk-count");
    if (count) count.textContent = n ? n + " " + count.getAttribute("data-some") : count.getAttribute("data-none");
    form.classList.toggle("has-selection", n > 0 || (all && all.checked));
    var merge = document.getElementById("bulk-merge");
    if (merge) {
      var ok = n >= 2 && n <= 5 && !(all && all.checked);
      merge.hidden = !ok;
      if (ok) merge.href = form.getAttribute("data-merge") + "?ids=" + checked().map(function (c) { return c.value; }).join(",");
    }
    var page = document.getElementById("select-page");
    var boxes = document.querySelectorAll('input[name="ids"][form="bulk-form"]');
    if (page) page.checked = boxes.length > 0 && n === boxes.length;
  }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.id === "select-page") {
      document.querySelectorAll('input[name="ids"][form="bulk-form"]').forEach(function (c) { c.checked = t.checked; });
    }
    if (t.id === "select-page" || t.id === "bulk-all" || t.name === "ids") refresh();
  });
  document.addEventListener("click", function (e) {
    var rm = e.target.closest && e.target.closest("[data-remove-cond]");
    if (rm) { var c = rm.closest(".cond"); if (c) c.remove(); return; }
    document.querySelectorAll("details.panel[open]").forEach(function (d) {
      if (!d.contains(e.target)) d.removeAttribute("open");
    });
    var b = e.target.closest && e.target.closest("button[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); e.stopPropagation(); }
  }, true);
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.id !== "export-form") return;
    f.querySelectorAll('input[data-sel]').forEach(function (i) { i.remove(); });
    checked().forEach(function (c) {
      var i = document.createElement("input");
      i.type = "hidden"; i.name = "ids"; i.value = c.value; i.setAttribute("data-sel", "1");
      f.appendChild(i);
    });
  });
  // Toasts swapped in by htmx go away like the others (progress bars stay until done).
  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll("#toasts .toast:not([data-keep]):not([data-timer])").forEach(function (t) {
      t.setAttribute("data-timer", "1");
      setTimeout(function () { t.remove(); }, 6000);
    });
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.body.addEventListener("kehu-reload", function () {
      if (!window.htmx || !document.getElementById("list-region")) return;
      window.htmx.ajax("GET", window.location.href, { target: "#list-region", select: "#list-region", swap: "outerHTML" }).then(refresh);
    });
    refresh();
  });
})();
