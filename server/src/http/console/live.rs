//! Live parts of console pages, as server-sent events (`assets/live.js` swaps each
//! fragment in). The server checks what a part shows every [`TICK`] and sends the
//! fragment only when it changed; a stream lasts at most [`STREAM_LIFETIME`], so a
//! revoked or expired session stops receiving soon (the browser reconnects, and the
//! reconnection is checked like any request).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};

use super::Admin;
use crate::state::AppState;

/// How often a live part is looked at again.
const TICK: Duration = Duration::from_secs(2);
/// How long one stream lasts before the browser must reconnect (and be checked again).
const STREAM_LIFETIME: Duration = Duration::from_secs(60);

struct Cursor {
    state: AppState,
    last: String,
    started: tokio::time::Instant,
    first: bool,
}

/// The overview's queue of step-ups waiting for a human, live.
pub async fn queue(
    _admin: Admin,
    State(state): State<AppState>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let cursor = Cursor {
        state,
        last: String::new(),
        started: tokio::time::Instant::now(),
        first: true,
    };
    let updates = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if !cursor.first {
                tokio::time::sleep(TICK).await;
            }
            cursor.first = false;
            if cursor.started.elapsed() >= STREAM_LIFETIME || cursor.state.live.is_closed() {
                return None;
            }
            // A failed look (the database briefly away) sends nothing; the next tick retries.
            let Ok(html) = super::overview::queue_html(&cursor.state).await else {
                continue;
            };
            if html != cursor.last {
                cursor.last.clone_from(&html);
                return Some((Ok(Event::default().event("fragment").data(html)), cursor));
            }
        }
    });
    Sse::new(updates).keep_alive(KeepAlive::default())
}
