/* The audience builder: rows of attribute · operator · value kept in the hidden JSON field,
   and a live recipient count (debounced) from the count endpoint. No dependencies. */
(function () {
  "use strict";
  var DELAY_MS = 300;

  function setup(root) {
    var field = document.getElementById(root.dataset.target);
    var form = field.form;
    var rows = root.querySelector(".pw-audience-rules");
    var template = root.querySelector("template.pw-audience-row");
    var join = root.querySelector(".pw-audience-join");
    var output = root.querySelector(".pw-audience-count");
    var timer = null;
    var asked = 0;

    function parse() {
      try {
        var value = JSON.parse(field.value || "{}");
        if (!value.rules) {  // the old shape {"city": "Berlin"}
          value = {match: "all", rules: Object.keys(value).map(function (k) {
            return {attribute: k, op: "equals", value: value[k]};
          })};
        }
        return value;
      } catch (e) { return null; }
    }

    function addRow(rule) {
      var row = template.content.firstElementChild.cloneNode(true);
      row.querySelector(".pw-rule-attribute").value = rule.attribute || "";
      row.querySelector(".pw-rule-op").value = rule.op || "equals";
      var value = rule.value;
      row.querySelector(".pw-rule-value").value =
        Array.isArray(value) ? value.join(", ") : (value === undefined ? "" : String(value));
      row.querySelector(".pw-rule-case-sensitive").checked = !!rule.case_sensitive;
      row.querySelector(".pw-rule-remove").addEventListener("click", function () {
        row.remove(); write();
      });
      rows.appendChild(row);
      showValue(row);
    }

    function showValue(row) {
      var isSet = row.querySelector(".pw-rule-op").value === "is_set";
      row.querySelector(".pw-rule-value").hidden = isSet;
      row.querySelector(".pw-rule-case").hidden = isSet;
    }

    function render() {
      var value = parse();
      if (!value) { return; }
      rows.innerHTML = "";
      join.value = value.match || "all";
      (value.rules || []).forEach(addRow);
    }

    function write() {
      var rules = [];
      rows.querySelectorAll(".pw-audience-rule").forEach(function (row) {
        showValue(row);
        var attribute = row.querySelector(".pw-rule-attribute").value.trim();
        if (!attribute) { return; }
        var op = row.querySelector(".pw-rule-op").value;
        var rule = {attribute: attribute, op: op,
                    value: op === "is_set" ? "" : row.querySelector(".pw-rule-value").value,
                    case_sensitive: row.querySelector(".pw-rule-case-sensitive").checked};
        rules.push(rule);
      });
      field.value = JSON.stringify({match: join.value, rules: rules});
      schedule();
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(count, DELAY_MS);
    }

    function count() {
      if (!root.dataset.countUrl) { return; }
      var params = new URLSearchParams();
      ["lists", "exclude_lists"].forEach(function (name) {
        form.querySelectorAll('input[name="' + name + '"]:checked').forEach(function (box) {
          params.append(name, box.value);
        });
      });
      ["subscribed_after_0", "subscribed_after_1", "subscribed_before_0",
       "subscribed_before_1"].forEach(function (name) {
        var input = form.elements[name];
        if (input && input.value) { params.append(name, input.value); }
      });
      params.append("segment_attributes", field.value || "{}");
      var mine = ++asked;
      output.classList.remove("pw-error");
      fetch(root.dataset.countUrl + "?" + params.toString(),
            {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (mine !== asked) { return; }  // a newer question is on its way
          if (data.error) {
            output.classList.add("pw-error");
            output.textContent = data.error;
          } else {
            output.textContent = data.count + (data.count === 1 ? " recipient" : " recipients") +
              " (confirmed, distinct addresses) with these settings";
          }
        })
        .catch(function () {
          if (mine === asked) { output.textContent = "The count is not available right now."; }
        });
    }

    root.querySelector(".pw-audience-add").addEventListener("click", function () {
      addRow({}); rows.lastElementChild.querySelector(".pw-rule-attribute").focus();
    });
    rows.addEventListener("input", write);
    rows.addEventListener("change", write);
    join.addEventListener("change", write);
    field.addEventListener("input", function () { render(); schedule(); });
    form.addEventListener("change", function (event) {
      if (!root.contains(event.target)) { schedule(); }
    });
    render();
    count();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".pw-audience").forEach(setup);
  });
})();
