/* The campaign body's toolbar editor (EasyMDE) and the live preview beside it.
 *
 * Every button writes what the body format asks (Markdown or HTML), read when it is
 * clicked, so switching the format mid-way keeps working. The preview posts the
 * unsaved content fields to the live-preview endpoint ~300 ms after the last key
 * and shows the answer in a sandboxed srcdoc iframe (no scripts, no same origin).
 * Upload and content-block buttons appear only when the page got their URLs.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 300;
  // A call-to-action link drawn as a button with inline styles only: mail programs
  // drop <style> blocks and classes they do not know, inline styles survive.
  var BUTTON_STYLE = "display:inline-block;padding:12px 24px;background:#1d4ed8;" +
    "color:#ffffff;text-decoration:none;border-radius:6px;font-weight:bold;";

  function escapeHtml(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;")
      .replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function markdownUrl(url) {
    // A merge tag stays whole (it is swapped out before Markdown runs); elsewhere
    // spaces and parentheses would end the link early.
    return url.split(/(\{\{.*?\}\})/).map(function (part, i) {
      return i % 2 ? part : part.replace(/[()\s]/g, encodeURIComponent);
    }).join("");
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function init() {
    var area = document.querySelector("textarea.pw-compose-body");
    if (!area || typeof EasyMDE === "undefined" || area.dataset.composeReady) return;
    area.dataset.composeReady = "1";
    var format = document.getElementById("id_body_format");
    var pane = document.getElementById("live-preview");
    var campaignId = pane ? pane.dataset.campaign : "";
    var fields = JSON.parse(area.dataset.fields || "[]");
    var status = document.createElement("p");
    status.className = "help pw-compose-status";
    status.setAttribute("aria-live", "polite");

    function isHtml() { return format && format.value === "html"; }
    function say(message, isError) {
      status.textContent = message;
      status.classList.toggle("pw-compose-error", !!isError);
    }

    var editor;
    function cm() { return editor.codemirror; }
    function selection() { return cm().getSelection(); }
    function insert(text) { cm().replaceSelection(text); cm().focus(); }
    function insertBlock(text) {
      // On lines of its own, so Markdown keeps raw HTML (and a block) as a block.
      var doc = cm();
      var cursor = doc.getCursor("from");
      var before = cursor.ch > 0 ? "\n\n" :
        (cursor.line > 0 && doc.getLine(cursor.line - 1).trim() ? "\n" : "");
      insert(before + text + "\n\n");
    }
    function wrap(open, close, placeholder) {
      var text = selection() || placeholder;
      insert(open + text + close);
    }
    function eachLine(prefixMd, open, close, item) {
      if (!isHtml()) { return prefixMd(editor); }
      var lines = (selection() || item).split("\n");
      insert(open + "\n" + lines.map(function (line) {
        return "  <li>" + line + "</li>";
      }).join("\n") + "\n" + close);
    }

    var actions = {
      bold: function () { if (isHtml()) wrap("<strong>", "</strong>", "bold text"); else EasyMDE.toggleBold(editor); },
      italic: function () { if (isHtml()) wrap("<em>", "</em>", "italic text"); else EasyMDE.toggleItalic(editor); },
      heading: function () { if (isHtml()) wrap("<h2>", "</h2>", "Heading"); else EasyMDE.toggleHeading2(editor); },
      bullets: function () { eachLine(EasyMDE.toggleUnorderedList, "<ul>", "</ul>", "Item"); },
      numbers: function () { eachLine(EasyMDE.toggleOrderedList, "<ol>", "</ol>", "Item"); },
      link: function () {
        var label = selection() || window.prompt("Link text", "") || "";
        if (!label) return;
        var url = window.prompt("Link address (https://…, or a field such as {{ preferences_url }})", "https://");
        if (!url) return;
        if (isHtml()) insert('<a href="' + escapeHtml(url) + '">' + escapeHtml(label) + "</a>");
        else insert("[" + label.replace(/[\[\]]/g, "\\$&") + "](" + markdownUrl(url) + ")");
      },
      button: function () {
        var label = selection() || window.prompt("Button text", "Read more") || "";
        if (!label) return;
        var url = window.prompt("Button link (https://…)", "https://");
        if (!url) return;
        // The same HTML in both formats: Markdown passes an HTML block through as is.
        insertBlock('<p><a class="pw-button" href="' + escapeHtml(url) + '" style="' +
          BUTTON_STYLE + '">' + escapeHtml(label) + "</a></p>");
      },
      field: function (button) {
        openMenu(button, fields.map(function (name) {
          return { label: "{{ " + name + " }}", run: function () {
            var field = name;
            if (name.indexOf("<key>") !== -1) {
              var key = window.prompt("Attribute name (e.g. city)", "");
              if (!key || !/^[A-Za-z0-9_-]+$/.test(key)) { if (key) say("An attribute name has only letters, digits, - and _.", true); return; }
              field = name.replace("<key>", key);
            }
            insert("{{ " + field + " }}");
          } };
        }));
      },
      image: function () {
        var picker = document.createElement("input");
        picker.type = "file";
        picker.accept = "image/*";
        picker.hidden = true;
        document.body.appendChild(picker);
        picker.addEventListener("change", function () {
          if (picker.files.length) upload(picker.files[0]);
          picker.remove();
        });
        picker.click();
      },
      block: function (button) {
        say("Loading the content blocks…");
        fetch(area.dataset.blocksUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) { return response.json().then(function (data) { return [response.ok, data]; }); })
          .then(function (result) {
            if (!result[0]) { say((result[1] && result[1].error) || "The blocks could not be loaded.", true); return; }
            say("");
            var blocks = result[1] || [];
            if (!blocks.length) { say("No content blocks yet: add one under Content blocks.", true); return; }
            openMenu(button, blocks.map(function (block) {
              var mismatch = block.body_format === "markdown" && isHtml();
              return { label: block.name, disabled: mismatch,
                title: mismatch ? "A Markdown block: switch the body format to Markdown to use it." : "",
                run: function () { insertBlock(block.body); } };
            }));
          })
          .catch(function () { say("The blocks could not be loaded (network).", true); });
      }
    };

    function upload(file) {
      var data = new FormData();
      data.append("file", file);
      if (campaignId) data.append("campaign", campaignId);
      say("Uploading " + file.name + "…");
      fetch(area.dataset.uploadUrl, { method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" } })
        .then(function (response) { return response.json().then(function (json) { return [response.ok, json]; }); })
        .then(function (result) {
          var json = result[1] || {};
          if (!result[0] || json.error) { say(json.error || "The upload was refused.", true); return; }
          insertBlock(isHtml() ? json.html : json.markdown);
          say("Uploaded " + file.name + ".");
        })
        .catch(function () { say("The upload failed (network or not an answer we understand).", true); });
    }

    var menu = null;
    function closeMenu() { if (menu) { menu.remove(); menu = null; } }
    function openMenu(anchor, items) {
      closeMenu();
      menu = document.createElement("div");
      menu.className = "pw-compose-menu";
      menu.setAttribute("role", "menu");
      items.forEach(function (item) {
        var entry = document.createElement("button");
        entry.type = "button";
        entry.setAttribute("role", "menuitem");
        entry.textContent = item.label;
        if (item.title) entry.title = item.title;
        entry.disabled = !!item.disabled;
        entry.addEventListener("click", function () { closeMenu(); item.run(); });
        menu.appendChild(entry);
      });
      anchor.parentNode.insertBefore(menu, anchor.nextSibling);
      menu.style.left = anchor.offsetLeft + "px";
      menu.style.top = (anchor.offsetTop + anchor.offsetHeight) + "px";
      var first = menu.querySelector("button:not([disabled])");
      if (first) first.focus();
    }
    document.addEventListener("click", function (event) {
      if (menu && !menu.contains(event.target) && !event.target.closest(".pw-menu-button")) closeMenu();
    });
    document.addEventListener("keydown", function (event) { if (event.key === "Escape") closeMenu(); });

    function button(name, text, title, extraClass) {
      return { name: "pw-" + name, text: text, title: title, className: extraClass ? "pw-tool " + extraClass : "pw-tool",
        action: function (mde) { actions[name](toolbarButton(name)); } };
    }
    function toolbarButton(name) {
      return (editor.toolbarElements && editor.toolbarElements["pw-" + name]) ||
        editor.gui.toolbar.querySelector(".pw-" + name);
    }
    var toolbar = [
      button("bold", "B", "Bold"), button("italic", "I", "Italic"),
      button("heading", "H", "Heading"), "|",
      button("bullets", "• List", "Bulleted list"), button("numbers", "1. List", "Numbered list"), "|",
      button("link", "Link", "Link"), button("button", "Button", "Button (call to action)"),
      button("field", "{{ }} Field ▾", "Personal field", "pw-menu-button")
    ];
    if (area.dataset.uploadUrl) toolbar.push(button("image", "Image", "Image (upload)"));
    if (area.dataset.blocksUrl) toolbar.push(button("block", "Block ▾", "Content block", "pw-menu-button"));

    var noKey = { toggleBold: null, toggleItalic: null, drawLink: null, toggleHeadingSmaller: null,
      drawImage: null, toggleUnorderedList: null, toggleOrderedList: null, toggleCodeBlock: null,
      togglePreview: null, toggleSideBySide: null, toggleFullScreen: null, toggleBlockquote: null,
      cleanBlock: null };
    editor = new EasyMDE({
      element: area, autoDownloadFontAwesome: false, spellChecker: false, status: false,
      forceSync: true, toolbar: toolbar, shortcuts: noKey, minHeight: "320px",
      previewRender: function () { return ""; }, indentWithTabs: false
    });
    area.EasyMDE = editor;
    var mod = /Mac/.test(navigator.platform) ? "Cmd-" : "Ctrl-";
    var keys = {};
    keys[mod + "B"] = function () { actions.bold(); };
    keys[mod + "I"] = function () { actions.italic(); };
    keys[mod + "K"] = function () { actions.link(); };
    cm().addKeyMap(keys);
    var toolbarEl = editor.gui.toolbar;
    toolbarEl.setAttribute("role", "toolbar");
    toolbarEl.setAttribute("aria-label", "Body formatting");
    toolbarEl.parentNode.insertBefore(status, toolbarEl.nextSibling);

    if (pane) livePreview(pane, editor, format);
  }

  function livePreview(pane, editor, format) {
    var frame = document.getElementById("live-frame");
    var subject = document.getElementById("live-subject");
    var error = document.getElementById("live-error");
    var status = document.getElementById("live-status");
    var previewAs = document.getElementById("live-preview-as");
    var timer = null, inFlight = null, sequence = 0;

    function value(id) {
      var element = document.getElementById(id);
      return element ? element.value : "";
    }
    function refresh() {
      timer = null;
      var data = new FormData();
      data.append("subject", value("id_subject"));
      data.append("preheader", value("id_preheader"));
      data.append("layout", value("id_layout"));
      data.append("body_format", format ? format.value : "markdown");
      data.append("body", editor.value());
      data.append("text_body", value("id_text_body"));
      if (pane.dataset.campaign) data.append("campaign", pane.dataset.campaign);
      if (previewAs && previewAs.value) data.append("preview_as", previewAs.value);
      if (inFlight) inFlight.abort();
      inFlight = new AbortController();
      var mine = ++sequence;
      status.textContent = "Updating…";
      fetch(pane.dataset.url, { method: "POST", body: data, credentials: "same-origin",
        signal: inFlight.signal,
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" } })
        .then(function (response) {
          return response.json().catch(function () {
            return { error: "The preview answered " + response.status + " without a preview." };
          });
        })
        .then(function (json) {
          if (mine !== sequence) return;
          if (json.error) {
            error.textContent = json.error;
            error.hidden = false;
            frame.classList.add("pw-live-stale");
            status.textContent = "Not updated: fix the problem above.";
            return;
          }
          error.hidden = true;
          frame.classList.remove("pw-live-stale");
          frame.srcdoc = json.html;
          subject.textContent = json.subject;
          status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
        })
        .catch(function (problem) {
          if (problem && problem.name === "AbortError") return;
          status.textContent = "The preview could not be reached; it will try again as you type.";
        });
    }
    function later() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(refresh, DEBOUNCE_MS);
    }
    editor.codemirror.on("change", later);
    ["id_subject", "id_preheader", "id_layout", "id_body_format", "id_text_body", "live-preview-as"]
      .forEach(function (id) {
        var element = document.getElementById(id);
        if (element) { element.addEventListener("input", later); element.addEventListener("change", later); }
      });

    var desktop = document.getElementById("live-desktop");
    var phone = document.getElementById("live-phone");
    var scroller = frame.parentNode;
    function fit() {
      // The mail at its real width, scaled down (never up) to the pane, as a thumbnail is.
      var scale = Math.min(1, scroller.clientWidth / Number(frame.width));
      frame.style.transform = scale < 1 ? "scale(" + scale + ")" : "";
      scroller.style.height = Math.ceil(frame.offsetHeight * scale) + "px";
    }
    window.addEventListener("resize", fit);
    function width(which) {
      var isPhone = which === "phone";
      frame.width = isPhone ? pane.dataset.phoneWidth : pane.dataset.desktopWidth;
      fit();
      phone.setAttribute("aria-pressed", String(isPhone));
      desktop.setAttribute("aria-pressed", String(!isPhone));
      pane.classList.toggle("pw-live-phone", isPhone);
    }
    desktop.addEventListener("click", function () { width("desktop"); });
    phone.addEventListener("click", function () { width("phone"); });
    fit();
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
