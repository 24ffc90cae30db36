// The page a connect link ends on: close the popup shortly after success.
"use strict";
if (document.querySelector(".done.ok")) {
  setTimeout(() => window.close(), 1200); // ignored by browsers when it is not a popup
}
