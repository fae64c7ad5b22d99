/*
 * tutela cookie consent banner (R16). Embed on a website:
 *
 *   <script src="https://tutela.example.cn/consent.js"
 *           data-lang="zh"                                   (zh | en; default zh)
 *           data-analytics-src="https://site.example.cn/analytics.js"></script>
 *
 * - Strictly necessary cookies are always on; preferences, analytics (including
 *   third-party site analytics) and fraud prevention are off until the visitor chooses.
 * - The choice is recorded at tutela (POST /v1/cookie-consents, with the statement
 *   version) and kept in one strictly necessary cookie, `tutela_consent`.
 * - The visitor id is issued and signed by tutela (POST /v1/cookie-consents/visitors)
 *   the first time a choice is made, and kept in that cookie; tutela refuses choices
 *   under ids it did not issue, so nobody can write to another visitor's history.
 * - The analytics script named by data-analytics-src is loaded only after consent to
 *   analytics; refused, it is never requested, so it can set no cookie.
 * - window.tutelaConsent.open() shows the banner again to change the choice.
 */
(function () {
  "use strict";
  var STATEMENT_VERSION = "__STATEMENT_VERSION__";
  var COOKIE = "tutela_consent";
  var script = document.currentScript;
  var api = script && script.src ? new URL(script.src).origin : "";
  var lang = (script && script.getAttribute("data-lang")) === "en" ? "en" : "zh";
  var analyticsSrc = script ? script.getAttribute("data-analytics-src") : null;

  var TEXT = {
    zh: {
      title: "Cookie 设置",
      body: "我们使用必要的 Cookie 使网站正常运行。经您同意，我们还会使用 Cookie 保存您的偏好、进行站点分析（包括第三方分析服务）和防范欺诈。您可以随时更改选择。",
      necessary: "必要（始终开启）",
      preferences: "偏好设置",
      analytics: "站点分析（含第三方）",
      fraud_prevention: "防范欺诈",
      accept: "全部接受",
      reject: "仅必要 Cookie",
      save: "保存选择"
    },
    en: {
      title: "Cookie settings",
      body: "We use strictly necessary cookies to run this site. With your consent we also use cookies to remember your preferences, for site analytics (including third-party analytics) and to prevent fraud. You can change your choice at any time.",
      necessary: "Strictly necessary (always on)",
      preferences: "Preferences",
      analytics: "Analytics (including third parties)",
      fraud_prevention: "Fraud prevention",
      accept: "Accept all",
      reject: "Necessary only",
      save: "Save choice"
    }
  }[lang];

  function readCookie() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(COOKIE + "=") === 0) {
        var v = decodeURIComponent(parts[i].slice(COOKIE.length + 1)).split("|");
        if (v.length === 4 && v[0] === "v1") {
          return { visitor: v[1], flags: v[2], version: v[3] };
        }
      }
    }
    return null;
  }

  // An id issued by tutela: vis_<32 hex>.<key id>.<32 hex tag>.
  var SIGNED_ID = /^vis_[0-9a-f]{32}\.[0-9]+\.[0-9a-f]{32}$/;

  function visitorId(current) {
    if (current && SIGNED_ID.test(current.visitor)) {
      return Promise.resolve(current.visitor);
    }
    // No body: a "simple" cross-origin request, no preflight.
    return fetch(api + "/v1/cookie-consents/visitors", {
      method: "POST",
      mode: "cors",
      credentials: "omit"
    }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (v) {
      return v && typeof v.visitor_id === "string" && SIGNED_ID.test(v.visitor_id) ? v.visitor_id : null;
    }).catch(function () { return null; });
  }

  function store(visitor, choice) {
    var value = ["v1", visitor, flagsOf(choice), STATEMENT_VERSION].join("|");
    document.cookie = COOKIE + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; SameSite=Lax";
  }

  function flagsOf(choice) {
    return (choice.preferences ? "p" : "-") + (choice.analytics ? "a" : "-") + (choice.fraud_prevention ? "f" : "-");
  }

  function choiceOf(flags) {
    return {
      preferences: flags.indexOf("p") >= 0,
      analytics: flags.indexOf("a") >= 0,
      fraud_prevention: flags.indexOf("f") >= 0
    };
  }

  var analyticsLoaded = false;
  function apply(choice) {
    if (choice.analytics && analyticsSrc && !analyticsLoaded) {
      analyticsLoaded = true;
      var s = document.createElement("script");
      s.src = analyticsSrc;
      s.async = true;
      document.head.appendChild(s);
    }
  }

  function record(visitor, choice) {
    // text/plain keeps this a "simple" cross-origin request (no preflight).
    var body = JSON.stringify({
      visitor_id: visitor,
      preferences: choice.preferences,
      analytics: choice.analytics,
      fraud_prevention: choice.fraud_prevention,
      statement_version: STATEMENT_VERSION
    });
    return fetch(api + "/v1/cookie-consents", {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Content-Type": "text/plain" },
      body: body,
      keepalive: true
    }).catch(function () { /* the local choice stands; it is sent again on change */ });
  }

  function decide(choice) {
    var current = readCookie();
    // The choice applies at once, locally; the id (issued by tutela when there is none
    // yet) and the record at tutela follow.
    store(current ? current.visitor : "", choice);
    close();
    apply(choice);
    return visitorId(current).then(function (visitor) {
      if (!visitor) {
        return null; /* tutela unreachable: the local choice stands; sent again on change */
      }
      store(visitor, choice);
      return record(visitor, choice);
    });
  }

  var banner = null;
  function close() {
    if (banner && banner.parentNode) {
      banner.parentNode.removeChild(banner);
    }
    banner = null;
  }

  function open() {
    close();
    var current = readCookie();
    var choice = current ? choiceOf(current.flags) : { preferences: false, analytics: false, fraud_prevention: false };
    banner = document.createElement("div");
    banner.id = "tutela-consent-banner";
    banner.setAttribute("role", "dialog");
    banner.setAttribute("aria-label", TEXT.title);
    banner.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:2147483647;background:#fff;color:#222;border-top:1px solid #ccc;padding:1em;font:14px/1.5 sans-serif;box-shadow:0 -2px 8px rgba(0,0,0,.1)";
    var html = "<strong>" + TEXT.title + "</strong><p style=\"margin:.5em 0\">" + TEXT.body + "</p>" +
      "<label style=\"margin-right:1em\"><input type=\"checkbox\" checked disabled> " + TEXT.necessary + "</label>";
    ["preferences", "analytics", "fraud_prevention"].forEach(function (k) {
      html += "<label style=\"margin-right:1em\"><input type=\"checkbox\" data-tutela-category=\"" + k + "\"" +
        (choice[k] ? " checked" : "") + "> " + TEXT[k] + "</label>";
    });
    html += "<div style=\"margin-top:.75em\">" +
      "<button type=\"button\" data-tutela-choice=\"all\">" + TEXT.accept + "</button> " +
      "<button type=\"button\" data-tutela-choice=\"necessary\">" + TEXT.reject + "</button> " +
      "<button type=\"button\" data-tutela-choice=\"save\">" + TEXT.save + "</button></div>";
    banner.innerHTML = html;
    banner.addEventListener("click", function (ev) {
      var which = ev.target && ev.target.getAttribute ? ev.target.getAttribute("data-tutela-choice") : null;
      if (!which) {
        return;
      }
      if (which === "all") {
        decide({ preferences: true, analytics: true, fraud_prevention: true });
      } else if (which === "necessary") {
        decide({ preferences: false, analytics: false, fraud_prevention: false });
      } else {
        var picked = {};
        ["preferences", "analytics", "fraud_prevention"].forEach(function (k) {
          picked[k] = !!banner.querySelector("[data-tutela-category=\"" + k + "\"]").checked;
        });
        decide(picked);
      }
    });
    document.body.appendChild(banner);
  }

  window.tutelaConsent = {
    open: open,
    get: function () {
      var c = readCookie();
      return c ? choiceOf(c.flags) : null;
    }
  };

  function start() {
    var current = readCookie();
    if (current && current.version === STATEMENT_VERSION) {
      apply(choiceOf(current.flags));
    } else {
      // No choice yet, or one made under an earlier statement: ask (again).
      open();
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
