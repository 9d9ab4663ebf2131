//! The use cases: each owns the sequence of steps of one thing the server does and the
//! write set it commits, calling the protocol modules (`ciba`, `oidc`) for parsing and
//! checks, `policy` for evaluation and `store` for reads and the write. They take the
//! dependencies they use, never the HTTP layer's `AppState`.

pub mod decide;
