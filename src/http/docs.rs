//! The human entry points: `/`, an index linking to the reference and the
//! document, and `/docs`, an interactive reference of every surface
//! (Swagger UI over this server's own `/openapi.json`). Here, beside the
//! other HTTP-side pieces every surface shares, rather than in a surface:
//! the page belongs to no vendor and serves all of them. Every file is
//! embedded in the binary (Swagger UI is vendored under
//! `assets/docs/vendor/`), so the page works with no internet access, and
//! its Content-Security-Policy lets it reach this origin only.

use std::sync::LazyLock;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// Where the assets are served; the page names them as
/// `{ASSET_PREFIX}{name}?v={hash}`.
pub const ASSET_PREFIX: &str = "/docs/assets/";

/// One embedded file of the page.
pub struct Asset {
    /// The file name under [`ASSET_PREFIX`].
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every asset `/docs` loads. Swagger UI's two files are the vendored
/// release, unmodified; `docs.js` starts it with this server's settings.
pub static ASSETS: [Asset; 4] = [
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/docs/vendor/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/docs/vendor/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "docs.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/docs/docs.js"),
    },
    Asset {
        name: "docs.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/docs/docs.css"),
    },
];

/// The pages may load scripts, styles and images from this origin only and
/// send requests to it only: a stray external request fails in the browser
/// rather than leaking the reader's key or the document. Inline styles are
/// allowed because Swagger UI (React) sets `style` attributes, and the
/// index has a few lines of its own; no inline script is.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Assets are named with their content hash, so a URL's answer never
/// changes and browsers may keep it a year without asking again.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// The pages themselves name the current hashes: always revalidated.
const PAGE_CACHE: &str = "no-cache";

/// `/docs`, with each `{{name}}` replaced by that asset's content hash.
static DOCS_PAGE: LazyLock<String> = LazyLock::new(|| {
    ASSETS.iter().fold(
        include_str!("../../assets/docs/docs.html").to_owned(),
        |page, asset| {
            page.replace(
                &format!("{{{{{}}}}}", asset.name),
                &content_hash(asset.bytes),
            )
        },
    )
});

const INDEX_PAGE: &str = include_str!("../../assets/docs/index.html");

/// The first 16 hex digits of the SHA-256 of `bytes`: enough to tell two
/// versions of a file apart.
fn content_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// The routes of `/`, `/docs` and every asset. No token is needed; they
/// are not API operations and are not in the OpenAPI document.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let router = Router::new()
        .route("/", get(|| async { page(INDEX_PAGE) }))
        .route("/docs", get(|| async { page(DOCS_PAGE.as_str()) }));
    ASSETS.iter().fold(router, |router, asset| {
        router.route(
            &format!("{ASSET_PREFIX}{}", asset.name),
            get(move || async move { asset_response(asset) }),
        )
    })
}

fn page(html: &'static str) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static(PAGE_CACHE)),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
            ),
            nosniff(),
        ],
        html,
    )
        .into_response()
}

fn asset_response(asset: &'static Asset) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE)),
            nosniff(),
        ],
        asset.bytes,
    )
        .into_response()
}

/// The browser takes each file as the type served, never a guess.
fn nosniff() -> (HeaderName, HeaderValue) {
    (
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_asset_by_its_hash_and_nothing_else() {
        let page = DOCS_PAGE.as_str();
        assert!(!page.contains("{{"), "a placeholder was left: {page}");
        for asset in &ASSETS {
            let url = format!(
                "{ASSET_PREFIX}{}?v={}",
                asset.name,
                content_hash(asset.bytes)
            );
            assert!(page.contains(&url), "{url} is not in the page");
        }
    }
}
