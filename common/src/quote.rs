//! The web framework the lab hosts on its own server: the lecture's falcon
//! `QuoteResource`, written as plain axum code. Nothing here knows which
//! server runs it; [`crate::app::TowerApp`] hosts it on every model.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

// ANCHOR: router
/// `GET /quote` (and `HEAD`) answers the quote as JSON; axum itself answers
/// 405 (with `Allow`) to other methods and 404 to other paths.
pub fn router() -> Router {
    Router::new().route("/quote", get(quote))
}

async fn quote() -> Json<Value> {
    Json(json!({
        "quote": "I've always been more interested in the future than in the past.",
        "author": "Grace Hopper",
    }))
}
// ANCHOR_END: router
