//! A transparency-log witness (c2sp.org/tlog-witness): `POST /add-checkpoint` with the
//! old size, a consistency proof and the log's new signed checkpoint. It checks the
//! checkpoint is signed by the log's key, that the old size is the one it holds (else
//! 409 with its size), that the proof shows the new tree extends the one it cosigned
//! (else 422), and only then cosigns (cosignature/v1) and remembers the new checkpoint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use countersign_tlog::checkpoint::Checkpoint;
use countersign_tlog::cosignature::Cosigner;
use countersign_tlog::merkle::{self, Hash};
use countersign_tlog::note::{self, NoteVerifier};
use countersign_tlog::witness::{self, AddCheckpointRequest};

struct Shared {
    log_key: NoteVerifier,
    cosigner: Cosigner,
    /// The checkpoint it cosigned last: size and root.
    holds: Option<(u64, Hash)>,
    cosigned: usize,
    refused: Vec<(u16, String)>,
    /// Unix seconds its cosignatures are dated.
    now: u64,
}

pub struct FakeWitness {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

fn answer(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn refuse(s: &mut Shared, status: StatusCode, why: String) -> Response {
    s.refused.push((status.as_u16(), why.clone()));
    answer(status, why, "text/plain")
}

async fn add_checkpoint(State(shared): State<Arc<Mutex<Shared>>>, body: String) -> Response {
    let mut s = shared.lock().expect("lock");
    let request = match AddCheckpointRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return refuse(&mut s, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let opened = match note::open(&request.checkpoint, std::slice::from_ref(&s.log_key)) {
        Ok(o) => o,
        // Not signed by a log it witnesses.
        Err(e) => return refuse(&mut s, StatusCode::FORBIDDEN, e.to_string()),
    };
    let checkpoint = match Checkpoint::parse(&opened.text) {
        Ok(c) => c,
        Err(e) => return refuse(&mut s, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (held_size, held_root) = s.holds.unwrap_or((0, merkle::EMPTY_ROOT));
    if request.old_size != held_size {
        s.refused.push((
            409,
            format!("old {} but holds {held_size}", request.old_size),
        ));
        return answer(
            StatusCode::CONFLICT,
            witness::format_size_body(held_size),
            witness::SIZE_CONTENT_TYPE,
        );
    }
    if checkpoint.size < held_size {
        return refuse(&mut s, StatusCode::CONFLICT, "the log shrank".into());
    }
    if let Err(e) = merkle::verify_consistency(
        held_size,
        checkpoint.size,
        &held_root,
        &checkpoint.root,
        &request.proof,
    ) {
        return refuse(
            &mut s,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("not consistent with the checkpoint it holds: {e}"),
        );
    }
    let line = match s.cosigner.cosign(&checkpoint, s.now) {
        Ok(l) => l,
        Err(e) => return refuse(&mut s, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    s.holds = Some((checkpoint.size, checkpoint.root));
    s.cosigned += 1;
    answer(
        StatusCode::OK,
        witness::format_cosignatures(&[line]),
        "text/plain; charset=utf-8",
    )
}

impl FakeWitness {
    /// A witness of the log whose verifier key is `log_vkey`, dating its cosignatures at
    /// `now` (Unix seconds).
    pub async fn start(log_vkey: &str, now: u64) -> Self {
        let key = note::generate_pkcs8().expect("witness key");
        let cosigner =
            Cosigner::from_pkcs8("witness.example/w1", key.as_bytes()).expect("cosigner");
        let shared = Arc::new(Mutex::new(Shared {
            log_key: NoteVerifier::parse(log_vkey).expect("log vkey"),
            cosigner,
            holds: None,
            cosigned: 0,
            refused: Vec::new(),
            now,
        }));
        let app = Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its verifier key (what the log's operator configures).
    pub fn vkey(&self) -> String {
        self.shared
            .lock()
            .expect("lock")
            .cosigner
            .verifier()
            .to_string()
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.shared.lock().expect("lock").cosigner.verifier()
    }

    /// The size of the checkpoint it holds.
    pub fn holds(&self) -> u64 {
        self.shared.lock().expect("lock").holds.map_or(0, |h| h.0)
    }

    pub fn cosigned(&self) -> usize {
        self.shared.lock().expect("lock").cosigned
    }

    /// Refusals (status, reason), oldest first.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.shared.lock().expect("lock").refused.clone()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}
