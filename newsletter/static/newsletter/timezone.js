// The time-zone field of "Schedule and send": a text input searching a <datalist> of
// every zone (labels carry the offset and the time there now). The browser's own zone
// comes first, and fills the field when no zone was chosen before. The server checks
// the name again (newsletter.timezones.timezone_resolve): this only helps typing.
(function () {
  "use strict";
  var input = document.getElementById("schedule-timezone");
  var list = document.getElementById("schedule-timezones");
  if (!input || !list) return;
  var byLower = {};
  Array.prototype.forEach.call(list.options, function (option) {
    byLower[option.value.toLowerCase()] = option;
  });
  var browserZone = "";
  try {
    browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) { /* an old browser: the list still works */ }
  var own = byLower[browserZone.toLowerCase()];
  if (own) {
    own.label = own.label + " · your browser";
    list.insertBefore(own, list.firstChild);
    if (!input.dataset.saved) input.value = own.value;
  }
  function check() {
    // "europe/berlin" or a whole label picked: the canonical name.
    var typed = input.value.split(" — ")[0].trim().replace(/ /g, "_");
    var option = byLower[typed.toLowerCase()];
    if (option) input.value = option.value;
    input.setCustomValidity(option || !input.value ? "" :
      "Choose a time zone from the list (type a city, e.g. Berlin).");
  }
  input.addEventListener("change", check);
  input.addEventListener("blur", check);
  // Focusing selects the zone, so typing searches afresh instead of appending.
  input.addEventListener("focus", function () { input.select(); });
})();
