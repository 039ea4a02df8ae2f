// Runs Redoc on the API docs page (api/redoc.html) under the site's Content-Security-Policy.
// Loaded before Redoc's bundle, which writes its styles into <style> elements, some while it
// loads: each <style> made on this page gets this script's nonce, which the policy accepts
// for this request (a script can read its own nonce; markup injected into the page cannot).
(function () {
  "use strict";
  var nonce = document.currentScript.nonce;
  var createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (tagName) {
    var element = createElement.apply(this, arguments);
    if (String(tagName).toLowerCase() === "style") { element.nonce = nonce; }
    return element;
  };
  // Redoc's menu shows Redocly's logo from their CDN: the policy forbids it, and the docs
  // must work offline. React sets it both as an attribute and as the property; images keep
  // every other source.
  var setAttribute = Element.prototype.setAttribute;
  function blocked(name, value) {
    return name === "src" && String(value).indexOf("https://cdn.redoc.ly/") === 0;
  }
  HTMLImageElement.prototype.setAttribute = function (name, value) {
    if (blocked(name, value)) { return; }
    return setAttribute.call(this, name, value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) { if (!blocked("src", value)) { src.set.call(this, value); } }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("redoc-container");
    Redoc.init(container.dataset.schemaUrl, { nonce: nonce }, container);
  });
})();
