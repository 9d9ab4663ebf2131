//! Identifiers of rows written on every request (authentication requests, decisions,
//! credentials): unguessable, and ordered by creation time.
//!
//! They are keys of indexes written with every request (the request's primary key, its
//! approvers, the trace's subject index, the credential's `jti`). A purely random key
//! lands on a random leaf of each of those B-trees, so every commit dirtied (and wrote to
//! the WAL) one page per index per request, and a long run missed SQLite's page cache on
//! each; a key that starts with the time lands on the rightmost leaves, which a batch of
//! requests shares (docs/benchmarks.md, "Decide at machine speed").
//!
//! The ids passed from one module to another have types of their own ([`AuthReqId`],
//! [`ClientId`], [`Subject`]), so one cannot be handed where another belongs:
//!
//! ```compile_fail
//! use countersign_server::ids::{ClientId, Subject};
//! fn approve_as(_approver: &Subject) {}
//! approve_as(&ClientId::new("agent-7"));
//! ```
//!
//! while the right kind passes, and any of them reads as text:
//!
//! ```
//! use countersign_server::ids::{ClientId, Subject};
//! fn approve_as(approver: &Subject) -> usize { approver.len() }
//! assert_eq!(approve_as(&Subject::new("alice")), 5);
//! assert!(ClientId::new("agent-7").starts_with("agent"));
//! ```

/// A text identifier with a type of its own, so a function that takes one kind cannot be
/// handed another (a client id where a subject belongs): in the manner of the `oauth2`
/// crate's `ClientId`. Dereferences to `str` for reading; made from text with `new` or
/// `From` (never from another kind of id). Stored and serialised as the bare text.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                <String as sqlx::Decode<'r, sqlx::Any>>::decode(value).map(Self)
            }
        }
    };
}

text_id! {
    /// A CIBA authentication request's `auth_req_id` (OpenID CIBA 7.3): the key of
    /// everything a request carries, from the agent's poll to the wallet's decision.
    AuthReqId
}

impl AuthReqId {
    /// A new request's id, made at `now_ms`: unguessable (24 random bytes, so the id is a
    /// bearer secret as CIBA 7.3 asks) and sorting by time ([`sortable`]).
    pub fn mint(now_ms: i64) -> Self {
        Self(sortable("", now_ms, 24))
    }
}

text_id! {
    /// A registered client's `client_id` (RFC 6749 2.2): an agent, or a console or tool
    /// client.
    ClientId
}

text_id! {
    /// A human's subject identifier (`sub`): whom a request asks, who approves it.
    Subject
}

/// `prefix`, then the time in milliseconds as 12 lower-case hex digits (sorting as the
/// time until the year 10889), then `random_bytes` random bytes in base64url.
pub fn sortable(prefix: &str, now_ms: i64, random_bytes: usize) -> String {
    format!(
        "{prefix}{:012x}{}",
        now_ms.max(0),
        countersign_jose::random_b64url(random_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_ids_are_their_bare_text_on_the_wire_and_compare_with_text() {
        let id = ClientId::new("agent-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""agent-1""#);
        assert_eq!(
            serde_json::from_str::<ClientId>(r#""agent-1""#).unwrap(),
            id
        );
        assert_eq!(id, "agent-1");
        assert_eq!("agent-1", id);
        assert_ne!(id, "agent-2");
        assert_eq!(format!("client:{id}"), "client:agent-1");
        let mut subjects = vec![Subject::new("b"), Subject::new("a"), Subject::new("b")];
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects, [Subject::new("a"), Subject::new("b")]);

        let minted = AuthReqId::mint(1_796_665_432_088);
        assert!(minted.starts_with("01a2"), "{minted}");
        // 12 hex digits of time, 24 random bytes in base64url.
        assert_eq!(minted.len(), 12 + 32);
        assert_ne!(AuthReqId::mint(5), AuthReqId::mint(5));
    }

    #[test]
    fn later_ids_sort_after_earlier_ones_and_never_repeat() {
        let a = sortable("dec_", 1_796_665_432_088, 16);
        let b = sortable("dec_", 1_796_665_432_089, 16);
        assert!(a < b, "{a} < {b}");
        assert!(a.starts_with("dec_01a2"));
        assert_eq!(a.len(), 4 + 12 + 22);
        assert_ne!(sortable("", 5, 16), sortable("", 5, 16));
        // Still sorted across a change in the number of digits the time needs.
        assert!(sortable("", 0xfff, 16) < sortable("", 0x1000, 16));
    }
}
