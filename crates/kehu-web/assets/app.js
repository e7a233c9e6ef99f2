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
