// Every console page: tells the server the browser's time zone (an IANA name, in a
// cookie scoped to the console), so pages show times where the admin is. Until then, and
// without JavaScript, times are in UTC, and every page says which zone it uses.
"use strict";
(function () {
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || !/^[A-Za-z0-9_+\/-]{1,64}$/.test(zone)) { return; }
  if (document.cookie.split("; ").indexOf("countersign_tz=" + zone) === -1) {
    document.cookie = "countersign_tz=" + zone + "; Path=/console; SameSite=Strict; Max-Age=31536000";
  }
})();
