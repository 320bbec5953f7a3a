/* Newsroom archive chat widget: <script src="https://rag.example.org/widget.js" async></script>
 * Renders <archive-chat> (shadow DOM) after its script tag, or inside data-target="#css-selector".
 * data-archive-url: the server (default: where this script came from); data-token: bearer token;
 * data-heading, data-placeholder: texts; data-mount="none": only define <archive-chat archive-url token>. Streams from /api/ask/stream: the draft is shown as
 * unchecked until the checked answer replaces it. Every text from the server goes in as text
 * (textContent / text nodes), never as markup. No dependencies. */
(function () {
  "use strict";
  var TAG = "archive-chat", TURNS = 6, MAX_ANSWER = 10000, CONTEXT = 180;
  var script = document.currentScript;
  var CSS =
    ":host{display:block;max-width:100%;color:#1f2328;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".box{border:1px solid #d0d7de;border-radius:8px;background:#fff;display:flex;flex-direction:column;overflow:hidden}" +
    ".head{font-weight:600;padding:8px 12px;border-bottom:1px solid #eaeef2;display:flex;justify-content:space-between;align-items:center}" +
    ".head button{font:inherit;font-size:12px;font-weight:400;border:0;background:none;color:#57606a;cursor:pointer}" +
    ".log{max-height:var(--archive-chat-height,440px);overflow-y:auto;padding:8px 12px}" +
    ".hint{color:#57606a;font-size:13px;margin:4px 0}" +
    ".q{font-weight:600;margin:10px 0 4px}" +
    ".a{margin:0 0 8px;white-space:pre-line;overflow-wrap:anywhere}" +
    ".draft{color:#57606a}.badge{display:inline-block;font-size:11px;text-transform:uppercase;letter-spacing:.04em;" +
    "background:#fff8c5;color:#6f5400;border-radius:4px;padding:0 5px;margin-right:6px}" +
    ".refusal{border-left:4px solid #b45309;background:#fff7ed;color:#7c2d12;padding:6px 8px;border-radius:4px}" +
    ".error{border-left:4px solid #b91c1c;background:#fef2f2;color:#7f1d1d;padding:6px 8px;border-radius:4px}" +
    "a.cite{color:#a3460f;font-weight:600;text-decoration:none}a.cite:hover{text-decoration:underline}" +
    "ol.cards{list-style:none;margin:4px 0 10px;padding:0}" +
    ".card{border:1px solid #eaeef2;border-radius:6px;padding:6px 8px;margin:0 0 6px;font-size:13px;transition:box-shadow .3s}" +
    ".card.active{box-shadow:0 0 0 2px #f59e0b}.ct{font-weight:600}.ct a{color:inherit}.n{color:#a3460f;margin-right:4px}" +
    ".meta{color:#57606a;font-size:12px}.passage{margin:3px 0 0;white-space:pre-line;overflow-wrap:anywhere}" +
    "mark{background:#fde68a;color:inherit;padding:0 1px}details{margin-top:6px;font-size:13px}summary{cursor:pointer}" +
    "form{display:flex;gap:6px;padding:8px 12px;border-top:1px solid #eaeef2}" +
    "textarea{flex:1;font:inherit;resize:none;border:1px solid #d0d7de;border-radius:6px;padding:5px 7px;min-height:2.2em}" +
    "form button{font:inherit;border:0;border-radius:6px;background:#a3460f;color:#fff;padding:0 12px;cursor:pointer}" +
    "form button:disabled{opacity:.5;cursor:default}";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function httpUrl(value) {  // only http(s) links: a document's url could say javascript:
    try {
      var u = new URL(String(value));
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) { return null; }
  }

  function hitFor(c, hits) {
    var i, h;
    for (i = 0; i < hits.length; i++) if (hits[i].chunk_id === c.chunk_id) return hits[i];
    for (i = 0; i < hits.length; i++) {
      h = hits[i];
      if (h.doc_id === c.doc_id && h.start <= c.start && c.end <= h.end) return h;
    }
    return null;
  }

  // The passage around the quoted sentence, the sentence in <mark>; each part a text node.
  function passage(c, hit) {
    var p = el("p", "passage"), quote = c.quote || "", text = hit ? hit.text || "" : "", a = -1, b = -1;
    if (hit) {
      a = c.start - hit.start; b = c.end - hit.start;
      if (a < 0 || b > text.length || a > b || text.slice(a, b).trim() !== quote.trim()) {
        a = quote ? text.indexOf(quote) : -1; b = a + quote.length;
      }
    }
    if (a < 0) { p.appendChild(el("mark", "", quote)); return p; }
    var s = Math.max(0, a - CONTEXT), e = Math.min(text.length, b + CONTEXT), cut;
    if (s > 0 && (cut = text.slice(s, a).search(/\s/)) >= 0) s += cut + 1;  // whole words only
    if (e < text.length && (cut = text.slice(b, e).search(/\s\S*$/)) >= 0) e = b + cut;
    p.appendChild(document.createTextNode((s > 0 ? "…" : "") + text.slice(s, a)));
    p.appendChild(el("mark", "", text.slice(a, b)));
    p.appendChild(document.createTextNode(text.slice(b, e) + (e < text.length ? "…" : "")));
    return p;
  }

  function card(c, hit) {
    var li = el("li", "card"), head = el("div", "ct"), meta = (hit && hit.metadata) || {};
    var url = httpUrl(meta.url), title = c.title || (hit && hit.title) || c.doc_id;
    head.appendChild(el("span", "n", "[" + c.n + "]"));
    if (url) {
      var link = el("a", "", title);
      link.href = url; link.target = "_blank"; link.rel = "noopener noreferrer";
      head.appendChild(link);
    } else head.appendChild(el("span", "", title));
    li.appendChild(head);
    var about = [meta.publisher, meta.published || meta.date].filter(Boolean).join(" · ");
    if (about) li.appendChild(el("div", "meta", about));
    li.appendChild(passage(c, hit));
    return li;
  }

  class ArchiveChat extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      var root = this.attachShadow({ mode: "open" }), self = this;
      root.appendChild(el("style", "", CSS));
      var box = el("div", "box"), head = el("div", "head"), clear = el("button", "", "New conversation");
      head.appendChild(el("span", "", this.getAttribute("heading") || "Ask the archive"));
      clear.type = "button";
      head.appendChild(clear);
      this.log = el("div", "log");
      this.log.setAttribute("role", "log");
      this.log.setAttribute("aria-live", "polite");
      this.hint = el("p", "hint", "Answers come only from archived articles; click a [n] to see the passage.");
      this.log.appendChild(this.hint);
      var form = el("form"), input = el("textarea"), send = el("button", "", "Ask");
      input.rows = 1; input.maxLength = 1000;
      input.placeholder = this.getAttribute("placeholder") || "Ask about the archive…";
      input.setAttribute("aria-label", "Question");
      send.type = "submit";
      form.appendChild(input); form.appendChild(send);
      box.appendChild(head); box.appendChild(this.log); box.appendChild(form);
      root.appendChild(box);
      this.input = input; this.send = send; this.turns = []; this.count = 0;
      form.addEventListener("submit", function (ev) { ev.preventDefault(); self.ask(); });
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); self.ask(); }
      });
      clear.addEventListener("click", function () { self.reset(); });
    }

    base() {
      var url = this.getAttribute("archive-url") || "";
      return url.replace(/\/+$/, "");
    }

    reset() {
      if (this.ctrl) this.ctrl.abort();
      this.turns = [];
      this.log.textContent = "";
      this.log.appendChild(this.hint);
    }

    ask() {
      var question = this.input.value.trim();
      if (!question || this.send.disabled) return;
      this.input.value = "";
      var turn = el("div", "turn"), answer = el("div", "a draft"), text = el("span", "");
      turn.appendChild(el("p", "q", question));
      answer.appendChild(el("span", "badge", "Draft, not yet checked"));
      answer.appendChild(text);
      turn.appendChild(answer);
      this.log.appendChild(turn);
      this.log.scrollTop = this.log.scrollHeight;
      this.stream(question, turn, answer, text);
    }

    async stream(question, turn, answer, text) {
      var self = this, headers = { "Content-Type": "application/json" }, token = this.getAttribute("token");
      if (token) headers.Authorization = "Bearer " + token;
      this.send.disabled = true;
      this.ctrl = new AbortController();
      var done = false;
      function fail(message) {
        var box = el("div", "a error", message);
        turn.replaceChild(box, answer);
        done = true;
      }
      function handle(name, data) {
        if (name === "token") { text.textContent += JSON.parse(data); self.follow(); }
        else if (name === "answer") { self.final(question, turn, answer, JSON.parse(data)); done = true; }
        else if (name === "error") fail("Something went wrong: " + (JSON.parse(data).detail || "unknown error"));
      }
      try {
        var res = await fetch(this.base() + "/api/ask/stream", {
          method: "POST", headers: headers, credentials: "omit", signal: this.ctrl.signal,
          body: JSON.stringify({ question: question, history: this.turns.slice(-TURNS) })
        });
        if (!res.ok) {
          var info = {};
          try { info = await res.json(); } catch (e) { /* not JSON */ }
          return fail("The archive refused the request (" + res.status + "): " + (info.message || info.detail || res.statusText));
        }
        var reader = res.body.getReader(), decoder = new TextDecoder(), buf = "";
        for (;;) {
          var chunk = await reader.read();
          if (chunk.done) break;
          buf += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
          var i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, i), name = "message", data = [];
            buf = buf.slice(i + 2);
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) name = line.slice(6).trim();
              else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
            });
            if (data.length) handle(name, data.join("\n"));
          }
        }
        if (!done) fail("The answer stopped before it was complete.");
      } catch (e) {
        if (e.name === "AbortError") return;
        if (!done) fail("The archive could not be reached (offline, or this site is not allowed by its CORS settings).");
      } finally {
        this.send.disabled = false;
      }
    }

    follow() { this.log.scrollTop = this.log.scrollHeight; }

    final(question, turn, draft, data) {
      var n = ++this.count, hits = data.hits || [], box, self = this;
      if (data.refused) {
        var sure = data.status === "not_found";
        box = el("div", "a refusal");
        box.appendChild(el("strong", "", sure ? "Not in the archive. " : "No confident answer. "));
        box.appendChild(el("span", "", sure ? "Nothing in the archive matches this question."
          : "The archive may hold it, but no passage found states it surely enough to cite. The closest passages:"));
        var near = data.closest || [];
        if (near.length) {
          var list = el("ol", "cards");
          near.forEach(function (c) { list.appendChild(card(c, hitFor(c, hits))); });
          box.appendChild(list);
        }
        turn.replaceChild(box, draft);
      } else {
        var cited = {}, cards = el("ol", "cards");
        box = el("div", "a answer");
        (data.citations || []).forEach(function (c) {
          var li = card(c, hitFor(c, hits));
          li.id = "src-" + n + "-" + c.n;
          cited[c.n] = li;
          cards.appendChild(li);
        });
        // Markers become links; everything between them stays a text node.
        (data.answer || "").split(/(\[\d{1,3}\])/).forEach(function (part) {
          var m = /^\[(\d{1,3})\]$/.exec(part), target = m && cited[+m[1]];
          if (!target) { if (part) box.appendChild(document.createTextNode(part)); return; }
          var a = el("a", "cite", part);
          a.href = "#" + target.id;
          a.addEventListener("click", function (ev) { ev.preventDefault(); self.reveal(target); });
          box.appendChild(a);
        });
        turn.replaceChild(box, draft);
        if (cards.childNodes.length) turn.appendChild(cards);
      }
      this.turns.push({ question: question, answer: (data.answer || "").slice(0, MAX_ANSWER) });
      this.follow();
    }

    // Scroll the widget's own log, never the host page, and outline the card.
    reveal(target) {
      var top = target.getBoundingClientRect().top - this.log.getBoundingClientRect().top;
      this.log.scrollTop += top - 8;
      var cards = this.shadowRoot.querySelectorAll(".card.active");
      for (var i = 0; i < cards.length; i++) cards[i].classList.remove("active");
      target.classList.add("active");
    }
  }

  if (!customElements.get(TAG)) customElements.define(TAG, ArchiveChat);
  if (!script || script.dataset.mount === "none") return;  // the page places <archive-chat> itself
  var widget = document.createElement(TAG), d = script.dataset;
  var origin = d.archiveUrl || script.src.replace(/\/widget\.js(\?.*)?$/, "");
  widget.setAttribute("archive-url", origin);
  ["token", "heading", "placeholder"].forEach(function (k) { if (d[k]) widget.setAttribute(k, d[k]); });
  var slot = d.target && document.querySelector(d.target);
  if (slot) slot.appendChild(widget);
  else script.parentNode.insertBefore(widget, script.nextSibling);
})();
