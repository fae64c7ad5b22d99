//! Cookie consent (issue 4, R16): the record API, and the embeddable banner tested in a
//! real headless Chromium: refuse analytics, and no analytics cookie is ever set.

use crate::helpers::*;
use serde_json::{json, Value};
use tutela_core::{Region, Role};

#[tokio::test]
async fn cookie_choices_are_recorded_per_visitor_with_the_statement_version_r16() {
    let app = spawn_app().await;
    let visitor = issued_visitor(&app).await;
    let choice = json!({"visitor_id": visitor, "preferences": true, "analytics": false, "fraud_prevention": true, "statement_version": "2.0"});
    // The banner sends text/plain (no CORS preflight); JSON clients work too.
    let r = post_choice(&app, &choice.to_string(), "text/plain").await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let mut changed = choice.clone();
    changed["analytics"] = json!(true);
    assert_eq!(
        post_choice(&app, &changed.to_string(), "application/json")
            .await
            .status(),
        201
    );

    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let h: Value = app
        .get(&format!("/v1/cookie-consents/{visitor}"), &po)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["history"].as_array().unwrap().len(), 2, "append-only");
    assert_eq!(h["current"]["analytics"], true);
    assert_eq!(h["current"]["necessary"], true);
    assert_eq!(h["history"][0]["analytics"], false);
    assert_eq!(h["current"]["statement_version"], "2.0");

    // Bad input: clear errors, nothing recorded.
    let mut necessary_off = choice.clone();
    necessary_off["necessary"] = json!(false);
    let r = post_choice(&app, &necessary_off.to_string(), "text/plain").await;
    assert_error(r, 422, "necessary_cookies_required", Some("R16")).await;
    let mut old = choice.clone();
    old["statement_version"] = json!("1.0");
    assert_error(
        post_choice(&app, &old.to_string(), "text/plain").await,
        422,
        "statement_version_mismatch",
        Some("R44"),
    )
    .await;
    let mut bad_visitor = choice.clone();
    bad_visitor["visitor_id"] = json!("x");
    assert_error(
        post_choice(&app, &bad_visitor.to_string(), "text/plain").await,
        422,
        "invalid_visitor_id",
        Some("R16"),
    )
    .await;
    assert_error(
        post_choice(&app, "{not json", "text/plain").await,
        422,
        "invalid_body",
        None,
    )
    .await;
    let h: Value = app
        .get(&format!("/v1/cookie-consents/{visitor}"), &po)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["history"].as_array().unwrap().len(), 2);

    // Reading is for the privacy office.
    let (_, _, admin) = app.tenant_with_admin("Web Co").await;
    assert_error(
        app.get(&format!("/v1/cookie-consents/{visitor}"), &admin)
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    assert_error(
        app.get("/v1/cookie-consents/vis_unknown_visitor", &po)
            .await,
        404,
        "not_found",
        None,
    )
    .await;

    // The banner script carries the statement version in force.
    let r = app
        .client
        .get(format!("{}/consent.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    let js = r.text().await.unwrap();
    assert!(js.contains("var STATEMENT_VERSION = \"2.0\""));
    assert!(!js.contains("__STATEMENT_VERSION__"));
    app.stop().await;
}

#[tokio::test]
async fn choices_under_a_visitor_id_the_server_did_not_issue_are_refused_and_nothing_is_stored_r16()
{
    let app = spawn_app().await;
    let visitor = issued_visitor(&app).await;
    let (signed, tag) = visitor.rsplit_once('.').unwrap();
    let (base, kid) = signed.split_once('.').unwrap();
    assert!(base.starts_with("vis_") && base.len() == 36, "{visitor}");
    assert_eq!(kid, "1");
    assert_ne!(issued_visitor(&app).await, visitor, "fresh every time");
    let choice = |id: &str| json!({"visitor_id": id, "preferences": true, "analytics": true, "fraud_prevention": true, "statement_version": "2.0"});
    // The victim records a refusal.
    let mut refusal = choice(&visitor);
    refusal["analytics"] = json!(false);
    let r = post_choice(&app, &refusal.to_string(), "text/plain").await;
    assert_eq!(r.status(), 201);
    // Client-chosen ids (what the banner used to send), another visitor's random part
    // under a made-up tag, an altered id, an id under an unknown key: all refused.
    let flip = |s: &str| {
        let mut v: Vec<char> = s.chars().collect();
        let last = v.len() - 1;
        v[last] = if v[last] == '0' { '1' } else { '0' };
        v.into_iter().collect::<String>()
    };
    let forged = [
        "vis_0123456789abcdef".to_owned(),
        base.to_owned(),
        format!("{signed}.{}", "0".repeat(32)),
        format!("{base}.{kid}.{}", flip(tag)),
        format!("{}.{kid}.{tag}", flip(base)),
        format!("{base}.2.{tag}"),
        format!("{base}.01.{tag}"),
        format!("{visitor}.x"),
    ];
    for id in &forged {
        let r = post_choice(&app, &choice(id).to_string(), "text/plain").await;
        assert_error(r, 422, "invalid_visitor_id", Some("R16")).await;
    }
    // Nothing was appended to anyone's history.
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let h: Value = app
        .get(&format!("/v1/cookie-consents/{visitor}"), &po)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["history"].as_array().unwrap().len(), 1);
    assert_eq!(h["current"]["analytics"], false);
    for id in &forged {
        if !id.contains("..") {
            let r = app.get(&format!("/v1/cookie-consents/{id}"), &po).await;
            assert_eq!(r.status(), 404, "{id}");
        }
    }
    app.stop().await;
}

/// Where Chromium is; `None` when absent. CI (`.ci/run`) installs it and sets
/// `TUTELA_REQUIRE_BROWSER=1`, so the browser test can never be skipped there.
fn chromium() -> Option<String> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_owned);
    if found.is_none() {
        assert!(
            std::env::var("TUTELA_REQUIRE_BROWSER").is_err(),
            "TUTELA_REQUIRE_BROWSER is set but Chromium is not installed (apt-get install chromium)"
        );
        eprintln!("SKIPPED: Chromium not installed; the cookie banner browser test did not run");
    }
    found
}

/// A website on its own origin that embeds the banner, clicks one of its buttons as a
/// visitor would, then prints the cookies it ends up with.
async fn serve_site(tutela: &str, click: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    use axum::response::Html;
    use axum::routing::get;
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>site</title>
<script src="{tutela}/consent.js" data-lang="en" data-analytics-src="/analytics.js"></script>
</head><body><pre id="out">pending</pre>
<script>
window.addEventListener('load', function () {{
  setTimeout(function () {{
    var button = document.querySelector('[data-tutela-choice="{click}"]');
    if (!button) {{ document.getElementById('out').textContent = 'NO BANNER'; return; }}
    button.click();
    setTimeout(function () {{
      document.getElementById('out').textContent = 'COOKIES[' + document.cookie + ']';
    }}, 1500);
  }}, 200);
}});
</script></body></html>"#
    );
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(
            "/analytics.js",
            get(|| async {
                (
                    [("content-type", "application/javascript")],
                    "document.cookie = '_site_analytics=1; path=/';",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/"), server)
}

async fn run_chromium(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        "--virtual-time-budget=15000".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
        "--dump-dom".to_owned(),
        url.to_owned(),
    ];
    let browser = browser.to_owned();
    // Blocking wait on its own thread: the test's runtime keeps serving both sites.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(browser).args(args).output()
    })
    .await
    .unwrap()
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("id=\"out\""),
        "chromium produced no page: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = dom
        .find("COOKIES[")
        .unwrap_or_else(|| panic!("page did not finish: {dom}"));
    let rest = &dom[start + "COOKIES[".len()..];
    rest[..rest.find(']').unwrap()].to_owned()
}

#[tokio::test]
async fn refusing_analytics_in_a_real_browser_sets_no_analytics_cookie_r16() {
    let Some(browser) = chromium() else { return };
    let app = spawn_app().await;

    // Refuse: only the strictly necessary consent cookie exists, analytics never loads.
    let (site, server) = serve_site(&app.base, "necessary").await;
    let cookies = run_chromium(&browser, &site).await;
    assert!(cookies.contains("tutela_consent="), "{cookies}");
    assert!(
        !cookies.contains("_site_analytics"),
        "analytics cookie set after refusal: {cookies}"
    );
    let value = cookies
        .split("; ")
        .find_map(|c| c.strip_prefix("tutela_consent="))
        .unwrap();
    let decoded = value.replace("%7C", "|");
    let parts: Vec<&str> = decoded.split('|').collect();
    assert_eq!(parts[0], "v1");
    assert_eq!(parts[2], "---", "nothing optional consented: {decoded}");
    let visitor = parts[1];
    assert!(
        visitor.starts_with("vis_") && visitor.matches('.').count() == 2,
        "the banner keeps the id the server issued: {visitor}"
    );
    // The refusal was recorded at tutela with the statement version.
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let h: Value = app
        .get(&format!("/v1/cookie-consents/{visitor}"), &po)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["current"]["analytics"], false, "{h}");
    assert_eq!(h["current"]["statement_version"], "2.0");
    server.abort();

    // Control: accepting loads the analytics script, which sets its cookie.
    let (site, server) = serve_site(&app.base, "all").await;
    let cookies = run_chromium(&browser, &site).await;
    assert!(cookies.contains("_site_analytics=1"), "{cookies}");
    server.abort();
    app.stop().await;
}
