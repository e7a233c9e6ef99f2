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

// ---- record page: rich-text notes with @mentions, composer reset ----
(function () {
  "use strict";
  var pop = null;
  function closePop() { if (pop) { pop.remove(); pop = null; } }
  // The "@query" right before the caret, if any: {node, start, query}.
  function mentionAt() {
    var sel = window.getSelection();
    if (!sel || !sel.rangeCount) return null;
    var r = sel.getRangeAt(0);
    var node = r.startContainer;
    if (node.nodeType !== 3) return null;
    var before = node.textContent.slice(0, r.startOffset);
    var at = before.lastIndexOf("@");
    if (at < 0) return null;
    if (at > 0 && !/[\s\u00a0(（，,]/.test(before.charAt(at - 1))) return null;
    var q = before.slice(at + 1);
    if (q.length > 20 || /[\n@]/.test(q)) return null;
    return { node: node, start: at, end: r.startOffset, query: q };
  }
  function showPop(ed, users, m, sync) {
    closePop();
    var q = m.query.toLowerCase();
    var hits = users.filter(function (n) { return n.toLowerCase().indexOf(q) >= 0; }).slice(0, 8);
    if (!hits.length) return;
    pop = document.createElement("div");
    pop.className = "mention-pop";
    pop.owner = ed;
    pop.setAttribute("role", "listbox");
    hits.forEach(function (name, i) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "@" + name;
      b.setAttribute("role", "option");
      if (i === 0) b.className = "on";
      b.addEventListener("mousedown", function (e) { e.preventDefault(); pick(name); });
      pop.appendChild(b);
    });
    function pick(name) {
      var t = m.node.textContent;
      m.node.textContent = t.slice(0, m.start) + "@" + name + "\u00a0" + t.slice(m.end);
      var range = document.createRange();
      range.setStart(m.node, m.start + name.length + 2);
      range.collapse(true);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      closePop();
      sync();
    }
    pop.pick = function () {
      var on = pop.querySelector("button.on");
      if (on) pick(on.textContent.slice(1));
    };
    var rect = ed.getBoundingClientRect();
    pop.style.left = (window.scrollX + rect.left + 8) + "px";
    pop.style.top = (window.scrollY + rect.bottom + 2) + "px";
    document.body.appendChild(pop);
  }
  function enhance(root) {
    root.querySelectorAll("textarea.rich-src:not([data-enhanced])").forEach(function (ta) {
      ta.setAttribute("data-enhanced", "1");
      var users = [];
      try { users = JSON.parse(ta.getAttribute("data-users") || "[]"); } catch (e) { users = []; }
      var ed = document.createElement("div");
      ed.className = "editor";
      ed.contentEditable = "true";
      ed.setAttribute("role", "textbox");
      ed.setAttribute("aria-multiline", "true");
      ed.setAttribute("aria-label", ta.getAttribute("aria-label") || "");
      ed.setAttribute("data-placeholder", ta.getAttribute("placeholder") || "");
      var bar = document.createElement("div");
      bar.className = "editor-bar";
      function sync() { ta.value = ed.textContent.trim() === "" ? "" : ed.innerHTML; }
      [["bold", "B"], ["italic", "I"], ["insertUnorderedList", "•"], ["insertOrderedList", "1."]].forEach(function (c) {
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = c[1];
        b.title = c[0];
        b.addEventListener("mousedown", function (e) { e.preventDefault(); document.execCommand(c[0]); sync(); });
        bar.appendChild(b);
      });
      var required = ta.required;
      ta.required = false;
      ta.hidden = true;
      ta.parentNode.insertBefore(bar, ta);
      ta.parentNode.insertBefore(ed, ta);
      ed.addEventListener("input", function () {
        sync();
        var m = mentionAt();
        if (m && users.length) showPop(ed, users, m, sync); else closePop();
      });
      ed.addEventListener("keydown", function (e) {
        if (!pop) return;
        var items = Array.prototype.slice.call(pop.querySelectorAll("button"));
        var i = items.findIndex(function (b) { return b.className === "on"; });
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          if (i >= 0) items[i].className = "";
          i = (i + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
          items[i].className = "on";
        } else if (e.key === "Enter" || e.key === "Tab") {
          e.preventDefault();
          pop.pick();
        } else if (e.key === "Escape") {
          closePop();
        }
      });
      ed.addEventListener("blur", function () {
        // Close only this editor's pop-up: a timer left by another editor's blur must not
        // close the menu the user has just opened here.
        setTimeout(function () { if (pop && pop.owner === ed && document.activeElement !== ed) closePop(); }, 150);
      });
      var form = ta.form;
      if (form) {
        form.addEventListener("submit", function (e) {
          sync();
          if (required && !ta.value) { e.preventDefault(); e.stopImmediatePropagation(); ed.focus(); }
        }, true);
        form.addEventListener("reset", function () { ed.innerHTML = ""; });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (e) { enhance(e.target); });
  document.addEventListener("htmx:afterRequest", function (e) {
    var f = e.detail.elt;
    if (e.detail.successful && f && f.matches && f.matches("form[data-reset]")) f.reset();
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

// ---- recycle bin ----
// The header tick box ticks every row of the page.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.id !== "bin-select-page") return;
    document.querySelectorAll('input[name="items"][form="bin-form"]').forEach(function (c) { c.checked = t.checked; });
  });
})();

// ---- picker ---- The relation and user type-ahead (templates/picker.html): the hidden input
// holds the chosen id and only a choice changes it; what is typed only searches. Asks
// /pick/{object}?q= (the server answers with escaped <li> options), newest answer wins.
(function () {
  "use strict";
  var seq = 0;
  function parts(root) {
    return {
      root: root,
      value: root.querySelector("[data-picker-value]"),
      text: root.querySelector(".picker-text"),
      list: root.querySelector(".picker-list"),
      clear: root.querySelector("[data-picker-clear]")
    };
  }
  function close(p) {
    p.list.hidden = true;
    p.text.setAttribute("aria-expanded", "false");
    p.text.removeAttribute("aria-activedescendant");
  }
  function restore(p) {
    p.text.value = p.text.getAttribute("data-label") || "";
  }
  function options(p) {
    return Array.prototype.slice.call(p.list.querySelectorAll("li[data-value]"));
  }
  function activate(p, li) {
    options(p).forEach(function (o) { o.setAttribute("aria-selected", o === li ? "true" : "false"); });
    if (li) {
      p.text.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    }
  }
  function choose(p, value, label) {
    var changed = p.value.value !== value;
    p.value.value = value;
    p.text.value = label;
    p.text.setAttribute("data-label", label);
    if (p.clear) p.clear.hidden = value === "";
    close(p);
    if (changed) p.value.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function load(p) {
    var my = ++seq;
    p.root.setAttribute("data-seq", String(my));
    var url = p.root.getAttribute("data-source") + "?q=" + encodeURIComponent(p.text.value === p.text.getAttribute("data-label") ? "" : p.text.value);
    if (p.root.hasAttribute("data-me")) url += "&me=1";
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } }).then(function (r) {
      return r.ok ? r.text() : Promise.reject(r);
    }).then(function (html) {
      if (p.root.getAttribute("data-seq") !== String(my) || document.activeElement !== p.text) return;
      p.list.innerHTML = html;
      options(p).forEach(function (o, i) { o.id = p.text.id + "-o" + i; });
      p.list.hidden = false;
      p.text.setAttribute("aria-expanded", "true");
      var first = options(p)[0];
      if (first && p.text.value !== p.text.getAttribute("data-label")) activate(p, first);
      p.root.dispatchEvent(new CustomEvent("kehu:picker-loaded", { bubbles: true }));
    }).catch(function () {
      var b = document.body;
      if (window.kehuToast) window.kehuToast("error", b.getAttribute("data-offline") || "Network error");
    });
  }
  var timers = new WeakMap();
  function later(p) {
    clearTimeout(timers.get(p.root));
    timers.set(p.root, setTimeout(function () { load(p); }, 180));
  }
  function picker(el) {
    var root = el && el.closest ? el.closest("[data-picker]") : null;
    return root ? parts(root) : null;
  }
  // Focus selects the text (typing replaces it); the list opens on typing, a click in the box
  // or the down arrow — not on focus alone, so an autofocused editor does not cover its buttons.
  document.addEventListener("focusin", function (e) {
    var p = picker(e.target);
    if (p && e.target === p.text) p.text.select();
  });
  document.addEventListener("click", function (e) {
    var p = picker(e.target);
    if (!p || e.target !== p.text) return;
    // The chosen name is selected whole, so typing replaces it (an autofocused editor was
    // focused before the click).
    if (p.text.value === p.text.getAttribute("data-label")) p.text.select();
    if (p.list.hidden) load(p);
  });
  document.addEventListener("input", function (e) {
    var p = picker(e.target);
    if (p && e.target === p.text) later(p);
  });
  document.addEventListener("focusout", function (e) {
    var p = picker(e.target);
    if (!p || e.target !== p.text) return;
    setTimeout(function () {
      if (p.root.contains(document.activeElement)) return;
      close(p);
      restore(p);
    }, 120);
  });
  document.addEventListener("mousedown", function (e) {
    var li = e.target.closest ? e.target.closest(".picker-list li[data-value]") : null;
    if (!li) return;
    e.preventDefault();
    var p = picker(li);
    if (p) choose(p, li.getAttribute("data-value"), li.getAttribute("data-label"));
  });
  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("[data-picker-clear]") : null;
    if (!btn) return;
    var p = picker(btn);
    if (p) { choose(p, "", ""); p.text.focus(); }
  });
  document.addEventListener("keydown", function (e) {
    var p = picker(e.target);
    if (!p || e.target !== p.text) return;
    var opts = options(p);
    var cur = opts.findIndex(function (o) { return o.getAttribute("aria-selected") === "true"; });
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (p.list.hidden) { load(p); return; }
      var n = opts.length;
      if (!n) return;
      var next = e.key === "ArrowDown" ? (cur + 1) % n : (cur <= 0 ? n - 1 : cur - 1);
      activate(p, opts[next]);
    } else if (e.key === "Enter") {
      if (!p.list.hidden && cur >= 0) {
        e.preventDefault();
        choose(p, opts[cur].getAttribute("data-value"), opts[cur].getAttribute("data-label"));
      } else if (!p.list.hidden) {
        e.preventDefault();
      }
    } else if (e.key === "Escape") {
      if (!p.list.hidden) { e.stopPropagation(); close(p); restore(p); }
    }
  });
})();

// ---- board ---- Cards dragged between columns (vendored SortableJS) or moved from their
// "move to" menu are saved with the version they were read at (POST /o/{object}/{id}/move);
// the answer carries the card as it is now, where it belongs and fresh column totals, so a
// stale or refused move puts the card back and nothing is lost.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  function say(kind, text) {
    if (window.kehuToast) window.kehuToast(kind, text);
  }
  function column(board, key) {
    var found = null;
    board.querySelectorAll(".board-cards").forEach(function (c) {
      if (c.getAttribute("data-key") === key) found = c;
    });
    return found;
  }
  function totals(board, list) {
    board.querySelectorAll(".board-col").forEach(function (col) {
      var key = col.getAttribute("data-key");
      var t = list.filter(function (x) { return x.key === key; })[0];
      col.querySelector(".board-count").textContent = t ? String(t.count) : "0";
      col.querySelector(".board-sum").textContent = t ? t.sum : "";
    });
  }
  function place(board, card, key, html) {
    if (html) {
      var tmp = document.createElement("div");
      tmp.innerHTML = html.trim();
      var fresh = tmp.firstElementChild;
      if (fresh) {
        card.replaceWith(fresh);
        card = fresh;
      }
    }
    var target = column(board, key);
    if (!target) {
      card.remove();
    } else if (card.parentNode !== target) {
      target.insertBefore(card, target.firstChild);
    }
    return card;
  }
  function back(from, card, index) {
    from.insertBefore(card, from.children[index] || null);
  }
  function move(board, card, from, index, to) {
    var body = new URLSearchParams(board.getAttribute("data-state") || "");
    body.set("value", to);
    body.set("_version", card.getAttribute("data-version") || "");
    body.set("_csrf", csrf());
    card.classList.add("moving");
    board.setAttribute("data-busy", "1");
    var url = "/o/" + encodeURIComponent(board.getAttribute("data-object")) + "/" + card.getAttribute("data-id") + "/move";
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).then(function (r) {
      return r.json();
    }).then(function (j) {
      card.classList.remove("moving");
      if (j.totals) totals(board, j.totals);
      if (j.ok) {
        place(board, card, to, j.card);
        say("ok", j.message);
      } else if (j.card) {
        place(board, card, j.column, j.card);
        say("error", j.message);
      } else {
        back(from, card, index);
        say("error", j.message);
      }
      board.removeAttribute("data-busy");
      board.dispatchEvent(new CustomEvent("kehu:board-moved", { bubbles: true }));
    }).catch(function () {
      card.classList.remove("moving");
      back(from, card, index);
      board.removeAttribute("data-busy");
      say("error", document.body.getAttribute("data-offline") || "Network error");
    });
  }
  function init() {
    var board = document.getElementById("board");
    if (!board || !board.hasAttribute("data-can-move") || !window.Sortable) return;
    board.querySelectorAll(".board-cards").forEach(function (el) {
      if (el.getAttribute("data-sortable")) return;
      el.setAttribute("data-sortable", "1");
      window.Sortable.create(el, {
        group: "board",
        animation: 150,
        draggable: ".board-card",
        filter: "details, .board-more",
        preventOnFilter: false,
        delay: 150,
        delayOnTouchOnly: true,
        // Mouse and touch events rather than native drag and drop: the same on every
        // browser and phone, and drivable by tests.
        forceFallback: true,
        onEnd: function (ev) {
          if (ev.from === ev.to) return;
          move(board, ev.item, ev.from, ev.oldIndex, ev.to.getAttribute("data-key"));
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", init);
  // The keyboard way: a card's "move to" menu.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("[data-move-to]") : null;
    if (!btn) return;
    var board = btn.closest("#board");
    var card = btn.closest(".board-card");
    if (!board || !card) return;
    var menu = btn.closest("details");
    if (menu) menu.removeAttribute("open");
    var from = card.parentNode;
    var index = Array.prototype.indexOf.call(from.children, card);
    var key = btn.getAttribute("data-move-to");
    if (from.getAttribute("data-key") === key) return;
    var target = column(board, key);
    if (target) target.insertBefore(card, target.firstChild);
    move(board, card, from, index, key);
    card.focus();
  });
})();
