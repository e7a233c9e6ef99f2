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

// ---- custom ---- Settings → Objects & fields: api names from the English label, type picker,
// colour swatches, more option rows, drag-to-reorder fields (the arrow buttons work without it).
(function () {
  "use strict";
  function slug(s) {
    var out = s.trim().toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
    if (/^[0-9]/.test(out)) out = "f_" + out;
    return out.slice(0, 40);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-derive]").forEach(function (src) {
      var dst = document.getElementById(src.getAttribute("data-derive"));
      if (!dst) return;
      var touched = dst.value !== "" && dst.value !== slug(src.value);
      dst.addEventListener("input", function () { touched = dst.value !== ""; });
      src.addEventListener("input", function () { if (!touched) dst.value = slug(src.value); });
    });
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
    document.addEventListener("change", function (e) {
      var t = e.target;
      if (t.name !== "choice_color") return;
      var sw = t.parentNode.querySelector(".swatch");
      if (sw) sw.className = "swatch c-" + t.value;
    });
    var add = document.getElementById("add-choice");
    var rows = document.getElementById("choice-rows");
    if (add && rows) {
      add.hidden = false;
      add.addEventListener("click", function () {
        var last = rows.lastElementChild;
        if (!last) return;
        var row = last.cloneNode(true);
        row.querySelectorAll("input").forEach(function (i) {
          if (i.name === "choice_pos") i.value = String(rows.children.length + 1);
          else i.value = "";
        });
        var st = row.querySelector('select[name="choice_state"]');
        if (st) { st.querySelectorAll('option[value="archived"]').forEach(function (o) { o.remove(); }); st.value = "active"; }
        rows.appendChild(row);
        var first = row.querySelector('input[name="choice_zh"]');
        if (first) first.focus();
      });
    }
    var list = document.getElementById("field-list");
    if (!list) return;
    var dragged = null;
    list.addEventListener("dragstart", function (e) {
      var li = e.target.closest && e.target.closest("li[draggable]");
      if (!li) return;
      dragged = li;
      li.classList.add("dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", li.getAttribute("data-api"));
    });
    list.addEventListener("dragover", function (e) {
      if (!dragged) return;
      var li = e.target.closest && e.target.closest("li[draggable]");
      if (!li || li === dragged) return;
      e.preventDefault();
      var r = li.getBoundingClientRect();
      list.insertBefore(dragged, e.clientY > r.top + r.height / 2 ? li.nextSibling : li);
    });
    list.addEventListener("dragend", function () {
      if (!dragged) return;
      dragged.classList.remove("dragging");
      dragged = null;
      var form = document.getElementById(list.getAttribute("data-order-form"));
      if (!form) return;
      list.querySelectorAll("li[data-api]").forEach(function (li) {
        if (li.classList.contains("is-builtin")) return;
        var i = document.createElement("input");
        i.type = "hidden"; i.name = "order"; i.value = li.getAttribute("data-api");
        form.appendChild(i);
      });
      form.submit();
    });
  });
})();
