/* Drupal core behaviours (trimmed copy for the offline snapshot). */
window.Drupal = window.Drupal || { behaviors: {} };
(function (Drupal) {
  "use strict";
  Drupal.attachBehaviors = function (context) {
    Object.keys(Drupal.behaviors).forEach(function (name) {
      var behavior = Drupal.behaviors[name];
      if (typeof behavior.attach === "function") { behavior.attach(context || document); }
    });
  };
  document.addEventListener("DOMContentLoaded", function () { Drupal.attachBehaviors(); });
})(window.Drupal);
